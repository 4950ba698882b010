//! Whiteouts: `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq`
//! hides everything below in its directory. Turned into overlayfs whiteouts
//! or applied directly to a full copy, depending on [`WhiteoutMode`].

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::apply::{remove_path, Unpacker};
use super::error::UnpackError;
use super::meta::{self, EntryMeta};
use super::path;
use super::WhiteoutMode;

/// Prefix of every whiteout file name.
const PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout-format metadata entries (`.wh..wh.plnk`, ...).
const META_PREFIX: &[u8] = b".wh..wh.";
/// Name of the opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
const OVERLAY_OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// What a whiteout entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Whiteout {
    /// Hide everything the lower layers have in the marker's directory.
    Opaque,
    /// Delete this name (in the marker's directory) from the lower layers.
    Remove(OsString),
    /// A `.wh..wh.*` bookkeeping entry of the whiteout format; ignored.
    Metadata,
}

/// Whether entry `rel` (normalised, from layer path `raw`) is a whiteout, and
/// which. A whiteout naming `.`, `..`, nothing, or a path is an escape.
pub(crate) fn classify(rel: &Path, raw: &Path) -> Result<Option<Whiteout>, UnpackError> {
    let Some(name) = rel.file_name().map(OsStr::as_bytes) else {
        return Ok(None);
    };
    let Some(target) = name.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if name == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Some(Whiteout::Metadata));
    }
    let bad = matches!(target, b"" | b"." | b"..") || target.iter().any(|b| matches!(b, b'/' | 0));
    if bad {
        let why = format!("whiteout names {:?}", OsStr::from_bytes(target));
        return Err(UnpackError::escape(raw, why));
    }
    Ok(Some(Whiteout::Remove(
        OsStr::from_bytes(target).to_os_string(),
    )))
}

impl Unpacker<'_> {
    /// Applies whiteout `whiteout`, found at `rel` (layer path `raw`).
    pub(crate) fn apply_whiteout(
        &mut self,
        whiteout: Whiteout,
        rel: &Path,
        raw: &Path,
        meta: &EntryMeta,
    ) -> Result<(), UnpackError> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        match (whiteout, self.mode) {
            (Whiteout::Metadata, _) => {
                tracing::debug!(entry = %raw.display(), "whiteout metadata entry ignored");
                Ok(())
            }
            (Whiteout::Opaque, WhiteoutMode::Overlay) => self.mark_opaque(dir, rel, raw),
            (Whiteout::Opaque, WhiteoutMode::Native) => self.clear_opaque_dir(dir, rel, raw),
            (Whiteout::Remove(name), mode) => {
                let target = dir.join(name);
                if self.written.contains(&target) {
                    // A whiteout only hides what the layers below have.
                    tracing::debug!(entry = %raw.display(), "whiteout of an entry of its own layer ignored");
                    return Ok(());
                }
                match mode {
                    WhiteoutMode::Overlay => self.create_whiteout_device(&target, raw, meta),
                    WhiteoutMode::Native => self.remove_whited_out(&target, raw),
                }
            }
        }
    }

    /// Overlay: sets `trusted.overlay.opaque=y` on `dir`, creating it if needed.
    fn mark_opaque(&mut self, dir: &Path, marker: &Path, raw: &Path) -> Result<(), UnpackError> {
        let created = path::ensure_parents(self.dest, marker, raw)?;
        self.written.extend(created);
        super::xattr::lset(&self.dest.join(dir), OVERLAY_OPAQUE_XATTR, b"y")
            .map_err(|e| UnpackError::io("marking opaque the directory of", raw, e))
    }

    /// Overlay: replaces `target` with a 0/0 character device, the overlayfs
    /// whiteout, owned as the whiteout entry says.
    fn create_whiteout_device(
        &mut self,
        target: &Path,
        raw: &Path,
        meta: &EntryMeta,
    ) -> Result<(), UnpackError> {
        let created = path::ensure_parents(self.dest, target, raw)?;
        self.written.extend(created);
        let full = self.dest.join(target);
        remove_path(&full, raw)?;
        mknod(&full, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(|e| UnpackError::io("creating the whiteout device for", raw, e.into()))?;
        meta::set_owner(&full, meta.uid, meta.gid)
            .map_err(|e| UnpackError::io("changing the owner of the whiteout for", raw, e))?;
        self.written.insert(target.to_path_buf());
        Ok(())
    }

    /// Native: deletes `target` (recursively) if the lower layers have it.
    fn remove_whited_out(&self, target: &Path, raw: &Path) -> Result<(), UnpackError> {
        if path::parents_exist(self.dest, target, raw)? {
            remove_path(&self.dest.join(target), raw)?;
        }
        Ok(())
    }

    /// Native: deletes everything below `dir` that this layer did not write.
    fn clear_opaque_dir(&self, dir: &Path, marker: &Path, raw: &Path) -> Result<(), UnpackError> {
        if path::parents_exist(self.dest, marker, raw)? {
            self.remove_unwritten_children(dir, raw)?;
        }
        Ok(())
    }

    /// Removes the children of `dir` not written by this layer, and recurses
    /// into the directories it did write.
    fn remove_unwritten_children(&self, dir: &Path, raw: &Path) -> Result<(), UnpackError> {
        let listing_err = |e| UnpackError::io("listing the opaque directory of", raw, e);
        for child in fs::read_dir(self.dest.join(dir)).map_err(listing_err)? {
            let child = child.map_err(listing_err)?;
            let rel = dir.join(child.file_name());
            let is_dir = child.file_type().map_err(listing_err)?.is_dir();
            if !self.written.contains(&rel) {
                remove_path(&child.path(), raw)?;
            } else if is_dir {
                self.remove_unwritten_children(&rel, raw)?;
            }
        }
        Ok(())
    }
}
