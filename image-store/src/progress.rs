//! Progress of long operations (pulls), as events a front end renders: bars on a TTY,
//! plain lines otherwise, Docker's JSON progress stream on the API.

use std::sync::Arc;

use crate::digest::Digest;

/// One step of a pull, per layer where it applies (like the lines of `docker pull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// Looking up the reference ("latest: Pulling from library/alpine").
    Resolving {
        /// Tag or digest being pulled.
        tag: String,
        /// Repository, familiar form.
        repository: String,
    },
    /// The layers of the chosen manifest are known.
    Layers {
        /// Each layer's blob digest and size.
        layers: Vec<(Digest, u64)>,
    },
    /// The layer is already unpacked here.
    AlreadyExists {
        /// Layer blob digest.
        layer: Digest,
    },
    /// Bytes of a layer downloaded so far.
    Downloading {
        /// Layer blob digest.
        layer: Digest,
        /// Bytes so far.
        current: u64,
        /// Total bytes.
        total: u64,
    },
    /// A layer is fully downloaded and verified.
    DownloadComplete {
        /// Layer blob digest.
        layer: Digest,
    },
    /// A layer is being unpacked.
    Extracting {
        /// Layer blob digest.
        layer: Digest,
    },
    /// A layer is unpacked.
    PullComplete {
        /// Layer blob digest.
        layer: Digest,
    },
    /// The image is in the store.
    Done {
        /// The digest of the manifest (or index) pulled.
        digest: Digest,
        /// The image ID.
        image_id: Digest,
        /// Whether anything new was stored.
        updated: bool,
        /// The reference, fully qualified.
        reference: String,
    },
}

/// Where progress events go.
pub type ProgressSink = Arc<dyn Fn(PullEvent) + Send + Sync>;

/// A sink that drops everything.
pub fn no_progress() -> ProgressSink {
    Arc::new(|_| {})
}
