//! Layer unpacking: turns a (compressed) layer tar into files under a
//! snapshot directory, applying whiteouts either as overlayfs whiteouts or
//! directly to a full copy of the parent layers.
//!
//! Layers are hostile input. Entry paths are normalised and may not leave
//! the destination (no `..`, no absolute paths, no writing through a
//! symlink, no hard links to outside); existing files are unlinked before
//! they are replaced, never truncated in place; every failure names the
//! entry it is about.

mod apply;
mod compression;
mod copy_tree;
mod error;
mod meta;
mod path;
mod whiteout;
mod xattr;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use crate::digest::Digest;

pub use compression::Compression;
pub use copy_tree::copy_tree;
pub use error::UnpackError;

/// How whiteouts are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// `dest` is this layer's own overlay diff directory: `.wh.NAME` becomes a
    /// 0/0 character device NAME, `.wh..wh..opq` sets the xattr
    /// `trusted.overlay.opaque=y` on its directory.
    Overlay,
    /// `dest` already holds a full copy of the parent layers' tree: `.wh.NAME`
    /// deletes NAME (recursively), `.wh..wh..opq` removes every child of its
    /// directory that did not come from this same layer (entries of this
    /// layer that precede the marker in the tar survive).
    Native,
}

/// What unpacking one layer produced.
#[derive(Debug, Clone)]
pub struct LayerStats {
    /// sha256 of the uncompressed tar stream, all of it, including the
    /// padding after the end-of-archive marker.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream in bytes.
    pub uncompressed_size: u64,
    /// Number of tar entries read (whiteouts included).
    pub entries: u64,
}

/// Unpacks one layer stream, compressed as `compression`, into `dest` (an
/// existing directory), applying whiteouts as `mode` says. The stream is
/// decompressed and hashed as it is read, never held in memory.
pub fn apply_layer<R: Read>(
    layer: R,
    compression: Compression,
    dest: &Path,
    mode: WhiteoutMode,
) -> Result<LayerStats, UnpackError> {
    apply::apply_layer(layer, compression, dest, mode)
}
