//! skiff's integration-test harness.
//!
//! Integration tests start real things; this crate gives them the pieces:
//!
//! - [`Registry`]: Debian's `docker-registry` (distribution 2.8) on a free
//!   127.0.0.1 port, with filesystem storage in a temporary directory, optionally
//!   behind htpasswd basic auth.
//! - [`fixtures`]: deterministic OCI images built from Debian's busybox-static
//!   (single layer, multi-layer with whiteouts and hard links, zstd,
//!   uncompressed, multi-arch index, 100+ layers), pushed with `skopeo`. Each
//!   push returns a [`FixtureImage`] holding the facts a test checks against:
//!   reference, digests, layers, and the expected rootfs contents.
//! - [`hostile`]: images whose layers try to escape the unpack root, and
//!   helpers that corrupt or truncate a blob inside the registry's storage.
//! - [`oci_layout`]: the tar, layer, config, manifest and OCI-layout writers the
//!   fixtures are made with, for tests that need an image of their own.
//!
//! Nothing here talks to any address other than 127.0.0.1.

#![warn(missing_docs)]

pub mod error;
pub mod expect;
pub mod fixtures;
pub mod hostile;
pub mod http;
pub mod oci_layout;
pub mod registry;
pub mod tools;

pub use error::{Error, Result};
pub use expect::{ExpectedKind, ExpectedPath};
pub use fixtures::{FixtureImage, FixtureIndex};
pub use oci_layout::{BuiltImage, BuiltIndex, Compression, LayerFacts, Platform};
pub use registry::{Registry, RegistryOptions};
pub use tools::{require_root_tools, require_tool};
