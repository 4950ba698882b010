//! skiff's image store: image references and platform resolution, registry pulls,
//! a content-addressed blob store, layer unpacking into snapshots, overlay mounts,
//! garbage collection, and import/export of image archives.
//!
//! It knows nothing of containers: a container runtime asks it for an image's
//! config and for a rootfs [`mount::Mount`], and performs the mount itself.

pub mod archive;
pub mod auth;
pub mod config;
pub mod content;
pub mod digest;
pub mod error;
pub mod gc;
pub mod image;
pub mod lock;
pub mod login;
pub mod manifest;
pub mod metadata;
pub mod mount;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use config::{SnapshotterChoice, StoreConfig};
pub use digest::Digest;
pub use error::{Result, StoreError};
pub use image::ImageRecord;
pub use progress::{ProgressSink, PullEvent};
pub use pull::PullOptions;
pub use reference::ImageRef;
pub use store::ImageStore;
