//! Bad input: images whose layers try to write outside the unpack root, and
//! blobs damaged inside the registry's storage so the registry serves bytes
//! that do not match their digest.
//!
//! A correct unpacker refuses each hostile layer (or, for the absolute name,
//! may place it inside the root) and changes nothing outside the root;
//! [`HostileImage::check_host`] tells whether anything escaped.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fixtures::{busybox_layer, push_image, FixtureImage};
use crate::oci_layout::{BuiltImage, BuiltLayer, Compression, Platform, TarWriter};
use crate::registry::Registry;

/// The host file the hard-link fixture points at.
pub const HARDLINK_TARGET: &str = "/etc/hostname";

/// The ways a hostile layer tries to escape its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostileKind {
    /// A file entry named `../escape`.
    DotDot,
    /// A file entry named `/abs-escape`.
    Absolute,
    /// A symlink `evil -> /tmp`, then a file entry `evil/pwned`.
    SymlinkEscape,
    /// A hard link `link` to `../../etc/hostname`.
    HardlinkEscape,
}

impl HostileKind {
    /// Every kind, one image each.
    pub const ALL: [HostileKind; 4] = [
        HostileKind::DotDot,
        HostileKind::Absolute,
        HostileKind::SymlinkEscape,
        HostileKind::HardlinkEscape,
    ];

    /// The repository it is pushed as by [`push_hostile`], e.g. "hostile/dotdot".
    pub fn repository(self) -> &'static str {
        match self {
            HostileKind::DotDot => "hostile/dotdot",
            HostileKind::Absolute => "hostile/absolute",
            HostileKind::SymlinkEscape => "hostile/symlink",
            HostileKind::HardlinkEscape => "hostile/hardlink",
        }
    }

    /// Host paths that exist only if the escape succeeded, for a layer
    /// unpacked into `root`.
    pub fn escape_paths(self, root: &Path) -> Vec<PathBuf> {
        match self {
            HostileKind::DotDot => root
                .parent()
                .map(|parent| vec![parent.join("escape")])
                .unwrap_or_default(),
            HostileKind::Absolute => vec![PathBuf::from("/abs-escape")],
            HostileKind::SymlinkEscape => vec![PathBuf::from("/tmp/pwned")],
            HostileKind::HardlinkEscape => Vec::new(),
        }
    }
}

/// A hostile image pushed to a registry.
#[derive(Debug, Clone)]
pub struct HostileImage {
    /// How it tries to escape.
    pub kind: HostileKind,
    /// Reference, digests and layers. Its one layer (gzip) holds a harmless
    /// `ok.txt` first, then the hostile entries.
    pub image: FixtureImage,
}

impl HostileImage {
    /// Checks that unpacking into `root` let nothing escape: none of
    /// [`HostileKind::escape_paths`] exists, and no file under `root` is a hard
    /// link to [`HARDLINK_TARGET`].
    ///
    /// `root` must be the directory the layer was unpacked into (the
    /// snapshot's own directory): `../escape` is looked for next to it. Given a
    /// directory higher up (a whole store), the hard-link check still covers
    /// everything below, but an escape by one level stays inside and is missed.
    pub fn check_host(&self, root: &Path) -> std::result::Result<(), String> {
        check_host(self.kind, root)
    }
}

/// See [`HostileImage::check_host`].
pub fn check_host(kind: HostileKind, root: &Path) -> std::result::Result<(), String> {
    for path in kind.escape_paths(root) {
        if fs::symlink_metadata(&path).is_ok() {
            return Err(format!(
                "{kind:?}: {} was created outside the root",
                path.display()
            ));
        }
    }
    if let Ok(target) = fs::metadata(HARDLINK_TARGET) {
        if let Some(found) = find_inode(root, target.dev(), target.ino()) {
            return Err(format!(
                "{kind:?}: {} is a hard link to the host's {HARDLINK_TARGET}",
                found.display()
            ));
        }
    }
    Ok(())
}

fn find_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.dev() == dev && meta.ino() == ino {
            return Some(entry.path());
        }
        if meta.is_dir() {
            if let Some(found) = find_inode(&entry.path(), dev, ino) {
                return Some(found);
            }
        }
    }
    None
}

/// Builds the single-layer hostile image of `kind`. Names are written into the
/// tar headers byte for byte (the tar crate refuses to write them).
pub fn build_hostile(kind: HostileKind) -> Result<BuiltImage> {
    let mut tar = TarWriter::new();
    tar.file("ok.txt", 0o644, b"harmless\n");
    match kind {
        HostileKind::DotDot => {
            tar.raw_file(b"../escape", 0o644, b"escaped via ../\n");
        }
        HostileKind::Absolute => {
            tar.raw_file(b"/abs-escape", 0o644, b"escaped via an absolute name\n");
        }
        HostileKind::SymlinkEscape => {
            tar.raw_symlink(b"evil", b"/tmp").raw_file(
                b"evil/pwned",
                0o644,
                b"escaped via a symlink\n",
            );
        }
        HostileKind::HardlinkEscape => {
            tar.raw_hardlink(b"link", b"../../etc/hostname");
        }
    }
    let layer = BuiltLayer::new(&tar.finish(), Compression::Gzip)?;
    BuiltImage::new(vec![layer], Platform::linux_amd64(), Vec::new())
}

/// Pushes the hostile image of `kind` as `kind.repository():latest`.
pub fn push_hostile(registry: &Registry, kind: HostileKind) -> Result<HostileImage> {
    let image = push_image(registry, &build_hostile(kind)?, kind.repository(), "latest")?;
    Ok(HostileImage { kind, image })
}

/// Overwrites the stored bytes of blob `digest` with different bytes of the
/// same length (every byte inverted), so the registry serves content whose
/// digest does not match. Every repository sharing the blob is affected.
pub fn corrupt_blob(registry: &Registry, digest: &str) -> Result<()> {
    let path = registry.blob_path(digest)?;
    let mut data = fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
    if data.is_empty() {
        return Err(Error::Unexpected(format!(
            "blob {digest} is empty; nothing to corrupt"
        )));
    }
    for byte in &mut data {
        *byte = !*byte;
    }
    fs::write(&path, data).ctx(|| format!("overwriting {}", path.display()))
}

/// Cuts the stored bytes of blob `digest` to half their length, so the
/// registry serves a truncated blob.
pub fn truncate_blob(registry: &Registry, digest: &str) -> Result<()> {
    let path = registry.blob_path(digest)?;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    let len = file
        .metadata()
        .ctx(|| format!("reading {}", path.display()))?
        .len();
    if len == 0 {
        return Err(Error::Unexpected(format!(
            "blob {digest} is empty; nothing to truncate"
        )));
    }
    file.set_len(len / 2)
        .ctx(|| format!("truncating {}", path.display()))
}

/// An image whose top layer is unique to `repository`: the busybox layer plus
/// a layer holding `/damaged.txt` naming the repository.
fn build_damageable(repository: &str) -> Result<BuiltImage> {
    let base = busybox_layer(Compression::Gzip)?;
    let mut tar = TarWriter::new();
    tar.file("damaged.txt", 0o644, format!("{repository}\n").as_bytes());
    let top = BuiltLayer::new(&tar.finish(), Compression::Gzip)?;
    BuiltImage::new(vec![base, top], Platform::linux_amd64(), Vec::new())
}

/// Pushes a two-layer image as `repository:tag` and corrupts its last layer
/// (unique to `repository`) with [`corrupt_blob`]. Manifest and config stay
/// intact; `image.layers[1].digest` is the damaged blob.
pub fn push_corrupt(registry: &Registry, repository: &str, tag: &str) -> Result<FixtureImage> {
    let image = push_image(registry, &build_damageable(repository)?, repository, tag)?;
    corrupt_blob(registry, &last_layer(&image)?)?;
    Ok(image)
}

/// Like [`push_corrupt`], but the last layer is cut short with [`truncate_blob`].
pub fn push_truncated(registry: &Registry, repository: &str, tag: &str) -> Result<FixtureImage> {
    let image = push_image(registry, &build_damageable(repository)?, repository, tag)?;
    truncate_blob(registry, &last_layer(&image)?)?;
    Ok(image)
}

fn last_layer(image: &FixtureImage) -> Result<String> {
    image
        .layers
        .last()
        .map(|l| l.digest.clone())
        .ok_or_else(|| Error::Unexpected(format!("{} has no layers", image.reference)))
}
