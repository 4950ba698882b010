//! The error type of layer unpacking.

use std::io;
use std::path::{Path, PathBuf};

/// Why a layer could not be unpacked. Every variant names the entry (or the
/// stage of unpacking) it is about, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry tried to reach outside the destination: a `..` component, an
    /// absolute path, a write through a symlinked parent, a hard link to a
    /// target outside the destination or missing, or a malformed whiteout name.
    #[error("layer entry {entry:?} escapes the destination: {why}")]
    Escape {
        /// The entry path as written in the layer.
        entry: PathBuf,
        /// What the entry tried to do.
        why: String,
    },
    /// A filesystem operation on the destination failed.
    #[error("{context}: {source}")]
    Io {
        /// The operation and the entry it was for.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The layer stream is not a valid (compressed) tar archive, or it ends early.
    #[error("corrupt layer ({context}): {source}")]
    Corrupt {
        /// Where in the layer the problem was found.
        context: String,
        /// The decoder's or tar reader's error.
        #[source]
        source: io::Error,
    },
    /// An entry is of a kind (or has a value) that skiff does not unpack.
    #[error("unsupported layer entry {entry:?}: {why}")]
    UnsupportedEntry {
        /// The entry path as written in the layer.
        entry: PathBuf,
        /// What is unsupported about it.
        why: String,
    },
}

impl UnpackError {
    /// An [`UnpackError::Escape`] for `entry`.
    pub(crate) fn escape(entry: &Path, why: impl Into<String>) -> Self {
        UnpackError::Escape {
            entry: entry.to_path_buf(),
            why: why.into(),
        }
    }

    /// An [`UnpackError::Io`] for operation `op` on `entry`.
    pub(crate) fn io(op: &str, entry: &Path, source: io::Error) -> Self {
        UnpackError::Io {
            context: format!("{op} {entry:?}"),
            source,
        }
    }

    /// An [`UnpackError::Corrupt`] found while reading `context`.
    pub(crate) fn corrupt(context: impl Into<String>, source: io::Error) -> Self {
        UnpackError::Corrupt {
            context: context.into(),
            source,
        }
    }

    /// An [`UnpackError::UnsupportedEntry`] for `entry`.
    pub(crate) fn unsupported(entry: &Path, why: impl Into<String>) -> Self {
        UnpackError::UnsupportedEntry {
            entry: entry.to_path_buf(),
            why: why.into(),
        }
    }
}
