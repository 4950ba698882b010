//! skiff's image store: image references and platform resolution, registry pulls,
//! a content-addressed blob store, layer unpacking into snapshots, overlay mounts,
//! garbage collection, and import/export of image archives.
//!
//! It knows nothing of containers: a container runtime asks it for an image's
//! config and for a rootfs [`mount::Mount`] list, and performs the mounts itself.

pub mod digest;
pub mod unpack;
