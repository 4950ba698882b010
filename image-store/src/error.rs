//! The image store's error type: every variant names the image, blob or path it is about.

use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::unpack::UnpackError;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A reference that does not parse.
    #[error("invalid reference format {reference:?}: {why}")]
    InvalidReference {
        /// The rejected text.
        reference: String,
        /// What is wrong with it.
        why: String,
    },
    /// A digest that does not parse.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
    /// No image by that name, tag or ID in the local store.
    #[error("No such image: {0}")]
    ImageNotFound(String),
    /// A name (prefix of an ID) that matches several images.
    #[error("{0}: image ID prefix is ambiguous")]
    AmbiguousImage(String),
    /// The registry could not be reached.
    #[error("registry {registry} unreachable while pulling {reference}: {why}")]
    RegistryUnreachable {
        /// Registry host.
        registry: String,
        /// What was being pulled.
        reference: String,
        /// The underlying error.
        why: String,
    },
    /// The registry refused our credentials (or wanted some).
    #[error("authentication to {registry} refused for {reference}: {why}")]
    AuthRefused {
        /// Registry host.
        registry: String,
        /// What was being pulled.
        reference: String,
        /// The registry's answer.
        why: String,
    },
    /// The registry does not know this repository, tag or digest.
    #[error("manifest for {reference} not found: {why}")]
    ManifestNotFound {
        /// The reference asked for.
        reference: String,
        /// The registry's answer.
        why: String,
    },
    /// Any other registry error.
    #[error("registry error pulling {reference}: {why}")]
    Registry {
        /// The reference being pulled.
        reference: String,
        /// The registry's answer.
        why: String,
    },
    /// A manifest, index or config skiff cannot use.
    #[error("unsupported manifest for {reference}: {why}")]
    UnsupportedManifest {
        /// The reference being pulled.
        reference: String,
        /// Why.
        why: String,
    },
    /// An index has no entry for this host's platform.
    #[error("no matching manifest for {platform} in the manifest list entries of {reference} (available: {available})")]
    NoMatchingPlatform {
        /// The reference being pulled.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the index lists.
        available: String,
    },
    /// Content whose digest or size is not what its descriptor says.
    #[error("{what} {expected}: content verification failed: {why}")]
    DigestMismatch {
        /// What the content is (layer, config, manifest, blob).
        what: &'static str,
        /// The digest it should have.
        expected: Digest,
        /// What was found instead.
        why: String,
    },
    /// A blob the store should have but does not.
    #[error("blob {0} not found in the content store")]
    BlobNotFound(Digest),
    /// A layer that could not be unpacked.
    #[error("unpacking layer {layer}: {source}")]
    Unpack {
        /// The layer's digest.
        layer: Digest,
        /// What went wrong.
        #[source]
        source: UnpackError,
    },
    /// Mounting or unmounting a rootfs failed.
    #[error("mount {target}: {why}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        why: String,
    },
    /// An image archive (docker-archive or OCI layout) that cannot be read.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// An image still used (by a tag, a child or a container) and not forced.
    #[error("conflict: unable to remove image {image}: {why}")]
    Conflict {
        /// The image.
        image: String,
        /// Why.
        why: String,
    },
    /// The metadata database failed.
    #[error("metadata database {path}: {why}")]
    Metadata {
        /// The database file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Bad configuration or credentials file.
    #[error("config {path}: {why}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A filesystem error, with what was being done and on which path.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            context,
            path,
            source,
        }
    }

    /// Is this a "not found" kind of error (for status-code mapping in the front ends)?
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::ImageNotFound(_)
                | StoreError::ManifestNotFound { .. }
                | StoreError::BlobNotFound(_)
        )
    }

    /// Is this an error in what the caller asked for (bad reference, bad archive...)?
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidReference { .. }
                | StoreError::InvalidDigest(_)
                | StoreError::InvalidArchive(_)
        )
    }
}

/// Result alias for the image store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
