//! Applying the entries of one layer tar to a destination directory.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::error::UnpackError;
use super::meta::{self, EntryMeta};
use super::{path, whiteout, LayerStats, WhiteoutMode};
use crate::digest::HashingReader;

/// Size of the buffer file data is copied through.
const COPY_BUFFER: usize = 64 * 1024;
/// Extended attributes a layer may not set: overlayfs's own bookkeeping
/// (`redirect`, `metacopy`, `origin`, ...) would let a layer reach into
/// other layers. Opaque directories come from `.wh..wh..opq` markers instead.
const FORBIDDEN_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Unpacks one layer stream into `dest`; see [`super::apply_layer`].
pub(crate) fn apply_layer<R: Read>(
    layer: R,
    compression: super::Compression,
    dest: &Path,
    mode: WhiteoutMode,
) -> Result<LayerStats, UnpackError> {
    check_destination(dest)?;
    let decoder = compression
        .decoder(layer)
        .map_err(|e| UnpackError::corrupt("starting the decompressor", e))?;
    let mut archive = tar::Archive::new(HashingReader::new(decoder));
    let mut unpacker = Unpacker::new(dest, mode);
    unpacker.unpack_entries(&mut archive)?;
    unpacker.apply_dir_times()?;
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| UnpackError::corrupt("reading past the end of the tar archive", e))?;
    let (diff_id, uncompressed_size) = rest.finish();
    Ok(LayerStats {
        diff_id,
        uncompressed_size,
        entries: unpacker.entries,
    })
}

/// `dest` must be an existing directory.
fn check_destination(dest: &Path) -> Result<(), UnpackError> {
    let meta =
        fs::metadata(dest).map_err(|e| UnpackError::io("opening the destination", dest, e))?;
    if meta.is_dir() {
        Ok(())
    } else {
        let err = io::Error::from_raw_os_error(libc::ENOTDIR);
        Err(UnpackError::io("opening the destination", dest, err))
    }
}

/// Removes whatever is at `full` (recursively for a directory); nothing there
/// is fine. Symlinks are removed, never followed.
pub(crate) fn remove_path(full: &Path, raw: &Path) -> Result<(), UnpackError> {
    let removed = match fs::symlink_metadata(full) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(full),
        Ok(_) => fs::remove_file(full),
    };
    removed.map_err(|e| UnpackError::io("removing what was at", raw, e))
}

/// Whether `full` is a real directory (not a symlink to one).
fn is_real_dir(full: &Path) -> bool {
    fs::symlink_metadata(full).is_ok_and(|m| m.is_dir())
}

/// The kind of filesystem object an entry creates.
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
    Node(SFlag, u64),
}

/// State of unpacking one layer.
pub(crate) struct Unpacker<'a> {
    /// The directory unpacked into.
    pub(crate) dest: &'a Path,
    /// How whiteouts are applied.
    pub(crate) mode: WhiteoutMode,
    /// Paths (relative to `dest`) this layer created or updated, implicit
    /// parents included; what an opaque marker in native mode must keep.
    pub(crate) written: HashSet<PathBuf>,
    /// Directory times, applied once all entries are in place.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    /// Entries read so far.
    entries: u64,
    /// Buffer file data is copied through.
    buffer: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    /// An unpacker writing into `dest`.
    fn new(dest: &'a Path, mode: WhiteoutMode) -> Self {
        Unpacker {
            dest,
            mode,
            written: HashSet::new(),
            dir_times: Vec::new(),
            entries: 0,
            buffer: vec![0; COPY_BUFFER],
        }
    }

    /// Unpacks every entry of `archive`, in order.
    fn unpack_entries<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
    ) -> Result<(), UnpackError> {
        let entries = archive
            .entries()
            .map_err(|e| UnpackError::corrupt("reading the tar archive", e))?;
        let mut last = PathBuf::from("(start of archive)");
        for entry in entries {
            let mut entry = entry.map_err(|e| {
                UnpackError::corrupt(format!("reading the tar header after entry {last:?}"), e)
            })?;
            self.entries += 1;
            last = self.unpack_entry(&mut entry)?;
        }
        Ok(())
    }

    /// Unpacks one entry; returns its path as written in the layer.
    fn unpack_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<PathBuf, UnpackError> {
        let raw = entry
            .path()
            .map_err(|e| UnpackError::corrupt(format!("path of entry {}", self.entries), e))?
            .into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type == EntryType::XGlobalHeader {
            return Ok(raw);
        }
        let rel = path::normalise(&raw)?;
        let meta = EntryMeta::read(entry, &raw)?;
        if let Some(w) = whiteout::classify(&rel, &raw)? {
            self.apply_whiteout(w, &rel, &raw, &meta)?;
            return Ok(raw);
        }
        let kind = self.kind_of(entry, &raw)?;
        if rel.as_os_str().is_empty() {
            return match kind {
                Kind::Dir => Ok(raw), // the destination itself: left as it is
                _ => Err(UnpackError::escape(
                    &raw,
                    "entry would replace the destination",
                )),
            };
        }
        let created = path::ensure_parents(self.dest, &rel, &raw)?;
        self.written.extend(created);
        self.create(entry, kind, &rel, &raw, &meta)?;
        self.written.insert(rel);
        Ok(raw)
    }

    /// What `entry` creates.
    fn kind_of<R: Read>(&self, entry: &tar::Entry<'_, R>, raw: &Path) -> Result<Kind, UnpackError> {
        let header = entry.header();
        let link_name = || -> Result<PathBuf, UnpackError> {
            entry
                .link_name()
                .map_err(|e| UnpackError::corrupt(format!("link name of {raw:?}"), e))?
                .map(|l| l.into_owned())
                .ok_or_else(|| UnpackError::unsupported(raw, "link without a target"))
        };
        let device = || -> Result<u64, UnpackError> {
            let bad = |e| UnpackError::corrupt(format!("device numbers of {raw:?}"), e);
            let major = header.device_major().map_err(bad)?.unwrap_or(0);
            let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
            Ok(makedev(major.into(), minor.into()))
        };
        let trailing_slash = entry.path_bytes().ends_with(b"/");
        Ok(match header.entry_type() {
            EntryType::Directory => Kind::Dir,
            EntryType::Regular | EntryType::Continuous if trailing_slash => Kind::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
            EntryType::Symlink => Kind::Symlink(link_name()?),
            EntryType::Link => Kind::HardLink(link_name()?),
            EntryType::Char => Kind::Node(SFlag::S_IFCHR, device()?),
            EntryType::Block => Kind::Node(SFlag::S_IFBLK, device()?),
            EntryType::Fifo => Kind::Node(SFlag::S_IFIFO, 0),
            other => {
                let why = format!(
                    "tar entry type {:?} is not supported",
                    other.as_byte() as char
                );
                return Err(UnpackError::unsupported(raw, why));
            }
        })
    }

    /// Creates entry `rel` of kind `kind` (replacing what is there) and sets
    /// its metadata.
    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: Kind,
        rel: &Path,
        raw: &Path,
        meta: &EntryMeta,
    ) -> Result<(), UnpackError> {
        let full = self.dest.join(rel);
        match kind {
            Kind::Dir => {
                create_dir(&full, raw)?;
                self.set_metadata(&full, raw, meta, false)?;
                self.dir_times.push((rel.to_path_buf(), meta.mtime));
            }
            Kind::File => {
                remove_path(&full, raw)?;
                self.write_file(entry, &full, raw)?;
                self.set_metadata(&full, raw, meta, false)?;
                set_times(&full, raw, meta.mtime)?;
            }
            Kind::Symlink(target) => {
                remove_path(&full, raw)?;
                std::os::unix::fs::symlink(&target, &full)
                    .map_err(|e| UnpackError::io("creating symlink", raw, e))?;
                self.set_metadata(&full, raw, meta, true)?;
                set_times(&full, raw, meta.mtime)?;
            }
            Kind::HardLink(target) => self.create_hard_link(&target, rel, raw)?,
            Kind::Node(kind, dev) => {
                remove_path(&full, raw)?;
                mknod(&full, kind, Mode::from_bits_truncate(0o600), dev)
                    .map_err(|e| UnpackError::io("creating device or fifo", raw, e.into()))?;
                self.set_metadata(&full, raw, meta, false)?;
                set_times(&full, raw, meta.mtime)?;
            }
        }
        Ok(())
    }

    /// Writes the data of `entry` to a new file at `full` (nothing may be
    /// there: an existing file is unlinked first, never truncated, so hard
    /// links to it keep their content).
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        full: &Path,
        raw: &Path,
    ) -> Result<(), UnpackError> {
        let expected = entry.size();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(full)
            .map_err(|e| UnpackError::io("creating file", raw, e))?;
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::corrupt(format!("data of {raw:?}"), e)),
            };
            file.write_all(&self.buffer[..n])
                .map_err(|e| UnpackError::io("writing file", raw, e))?;
            written += n as u64;
        }
        if written != expected {
            let why = format!("file data ends after {written} of {expected} bytes");
            let err = io::Error::new(io::ErrorKind::UnexpectedEof, why);
            return Err(UnpackError::corrupt(format!("data of {raw:?}"), err));
        }
        Ok(())
    }

    /// Creates `rel` as a hard link to `target`, which must already be inside
    /// the destination. The link shares the target's metadata; none is set.
    fn create_hard_link(
        &mut self,
        target: &Path,
        rel: &Path,
        raw: &Path,
    ) -> Result<(), UnpackError> {
        let target = path::hard_link_target(self.dest, target, raw)?;
        if target == rel {
            return Ok(());
        }
        let full = self.dest.join(rel);
        remove_path(&full, raw)?;
        fs::hard_link(self.dest.join(&target), &full)
            .map_err(|e| UnpackError::io("creating hard link", raw, e))
    }

    /// Sets owner, then mode (chown clears setuid; symlinks have none), then
    /// extended attributes of `full`.
    fn set_metadata(
        &self,
        full: &Path,
        raw: &Path,
        meta: &EntryMeta,
        symlink: bool,
    ) -> Result<(), UnpackError> {
        meta::set_owner(full, meta.uid, meta.gid)
            .map_err(|e| UnpackError::io("changing the owner of", raw, e))?;
        if !symlink {
            meta::set_mode(full, meta.mode)
                .map_err(|e| UnpackError::io("changing the mode of", raw, e))?;
        }
        for (name, value) in &meta.xattrs {
            if name.starts_with(FORBIDDEN_XATTR_PREFIX) {
                let name = String::from_utf8_lossy(name);
                tracing::warn!(entry = %raw.display(), %name, "overlayfs extended attribute in layer ignored");
                continue;
            }
            meta::set_xattr(full, name, value).map_err(|e| {
                let op = format!(
                    "setting extended attribute {:?} on",
                    String::from_utf8_lossy(name)
                );
                UnpackError::io(&op, raw, e)
            })?;
        }
        Ok(())
    }

    /// Sets the times of the directories unpacked, deepest first, now that
    /// nothing more is added to them.
    fn apply_dir_times(&mut self) -> Result<(), UnpackError> {
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
        for (rel, mtime) in dirs {
            let full = self.dest.join(&rel);
            if is_real_dir(&full) {
                set_times(&full, &rel, mtime)?;
            }
        }
        Ok(())
    }
}

/// Makes `full` a directory: an existing one is kept (its metadata is then
/// updated by the caller), anything else there is replaced.
fn create_dir(full: &Path, raw: &Path) -> Result<(), UnpackError> {
    if is_real_dir(full) {
        return Ok(());
    }
    remove_path(full, raw)?;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(full)
        .map_err(|e| UnpackError::io("creating directory", raw, e))
}

/// Sets access and modification time of `full` to `mtime`.
fn set_times(full: &Path, raw: &Path, mtime: TimeSpec) -> Result<(), UnpackError> {
    meta::set_times(full, mtime, mtime).map_err(|e| UnpackError::io("setting the times of", raw, e))
}
