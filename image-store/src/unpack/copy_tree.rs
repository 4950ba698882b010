//! A faithful tree copy, for the native snapshotter: a new snapshot starts as
//! a full copy of its parent.

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::meta;
use super::xattr;

/// Copies the tree at `src` to `dst`, preserving file types (regular files,
/// directories, symlinks, character and block devices, fifos; sockets are
/// skipped), hard links (recreated as hard links within `dst`), owners, modes
/// including setuid/setgid/sticky, access and modification times (directories
/// set after their children) and extended attributes including `trusted.*`.
/// `dst` is created if missing; what it already holds is replaced where `src`
/// has the same name.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let root = fs::symlink_metadata(src).map_err(context("reading", src))?;
    if !root.is_dir() {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "not a directory");
        return Err(context("copying", src)(err));
    }
    let mut copier = Copier::default();
    copier.copy_dir(src, dst, &root)?;
    let mut pending = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((src_dir, dst_dir)) = pending.pop() {
        for child in fs::read_dir(&src_dir).map_err(context("listing", &src_dir))? {
            let child = child.map_err(context("listing", &src_dir))?;
            let (from, to) = (child.path(), dst_dir.join(child.file_name()));
            let meta = fs::symlink_metadata(&from).map_err(context("reading", &from))?;
            if meta.is_dir() {
                copier.copy_dir(&from, &to, &meta)?;
                pending.push((from, to));
            } else {
                copier.copy_non_dir(&from, &to, &meta)?;
            }
        }
    }
    copier.apply_dir_times()
}

/// A function adding `op` and `path` to an I/O error's message.
fn context<'a>(op: &'a str, path: &'a Path) -> impl Fn(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

/// State of one tree copy.
#[derive(Default)]
struct Copier {
    /// First copy of each multiply-linked inode, by (device, inode).
    links: HashMap<(u64, u64), PathBuf>,
    /// Copied directories and their (atime, mtime), parents before children.
    dirs: Vec<(PathBuf, TimeSpec, TimeSpec)>,
}

impl Copier {
    /// Creates directory `to` (keeping an existing one) with the metadata of
    /// `from`; its times are set at the end.
    fn copy_dir(&mut self, from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
        if !fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
            remove_existing(to)?;
            fs::DirBuilder::new()
                .mode(0o700)
                .create(to)
                .map_err(context("creating directory", to))?;
        }
        copy_metadata(from, to, meta)?;
        self.dirs.push((to.to_path_buf(), atime(meta), mtime(meta)));
        Ok(())
    }

    /// Copies a non-directory `from` to `to`, as a hard link to an earlier
    /// copy when `from` is a further link to an inode already copied.
    fn copy_non_dir(&mut self, from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&key) {
                remove_existing(to)?;
                return fs::hard_link(first, to).map_err(context("linking", to));
            }
        }
        if !copy_node(from, to, meta)? {
            return Ok(());
        }
        copy_metadata(from, to, meta)?;
        meta::set_times(to, atime(meta), mtime(meta)).map_err(context("setting times of", to))?;
        if meta.nlink() > 1 {
            self.links.insert(key, to.to_path_buf());
        }
        Ok(())
    }

    /// Sets the directory times, children before their parents.
    fn apply_dir_times(&self) -> io::Result<()> {
        for (dir, atime, mtime) in self.dirs.iter().rev() {
            meta::set_times(dir, *atime, *mtime).map_err(context("setting times of", dir))?;
        }
        Ok(())
    }
}

/// Creates `to` as the same kind of object as `from` (contents copied);
/// false if `from` is of a kind not copied (sockets).
fn copy_node(from: &Path, to: &Path, meta: &Metadata) -> io::Result<bool> {
    let kind = meta.file_type();
    let node = if kind.is_char_device() {
        Some(SFlag::S_IFCHR)
    } else if kind.is_block_device() {
        Some(SFlag::S_IFBLK)
    } else if kind.is_fifo() {
        Some(SFlag::S_IFIFO)
    } else {
        None
    };
    if kind.is_socket() {
        tracing::debug!(path = %from.display(), "socket not copied");
        return Ok(false);
    }
    remove_existing(to)?;
    if kind.is_symlink() {
        let target = fs::read_link(from).map_err(context("reading symlink", from))?;
        std::os::unix::fs::symlink(target, to).map_err(context("creating symlink", to))?;
    } else if let Some(node) = node {
        mknod(to, node, Mode::from_bits_truncate(0o600), meta.rdev())
            .map_err(|e| context("creating node", to)(e.into()))?;
    } else {
        copy_file_data(from, to)?;
    }
    Ok(true)
}

/// Copies the contents of regular file `from` into new file `to`.
fn copy_file_data(from: &Path, to: &Path) -> io::Result<()> {
    let mut input = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(from)
        .map_err(context("opening", from))?;
    let mut output: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(to)
        .map_err(context("creating", to))?;
    io::copy(&mut input, &mut output).map_err(context("copying data to", to))?;
    Ok(())
}

/// Copies owner, then mode (not for symlinks), then extended attributes.
fn copy_metadata(from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
    meta::set_owner(to, meta.uid(), meta.gid()).map_err(context("changing owner of", to))?;
    if !meta.file_type().is_symlink() {
        meta::set_mode(to, meta.mode()).map_err(context("changing mode of", to))?;
    }
    copy_xattrs(from, to)
}

/// Copies every extended attribute of `from` to `to`.
fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    let names = match xattr::llist(from) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        other => other.map_err(context("listing extended attributes of", from))?,
    };
    for name in names {
        let value =
            xattr::lget(from, &name).map_err(context("reading extended attributes of", from))?;
        meta::set_xattr(to, &name, &value)
            .map_err(context("setting extended attributes of", to))?;
    }
    Ok(())
}

/// Removes what is at `path`, if anything (recursively for a directory).
fn remove_existing(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    removed.map_err(context("replacing", path))
}

/// The access time of `meta`.
fn atime(meta: &Metadata) -> TimeSpec {
    TimeSpec::new(meta.atime(), meta.atime_nsec())
}

/// The modification time of `meta`.
fn mtime(meta: &Metadata) -> TimeSpec {
    TimeSpec::new(meta.mtime(), meta.mtime_nsec())
}
