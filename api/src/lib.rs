//! skiff's wire front ends. The Docker Engine API, CRI and Garden servers and the client
//! the CLI uses to reach `skiffd` live here; each translates its protocol into
//! [`skiff_daemon::Engine`] calls and holds no state of its own.
//!
//! Served so far: the first slice of the Docker Engine API ([`docker`]), by the
//! `skiffd` daemon ([`daemon`]).

pub mod daemon;
pub mod docker;

pub use skiff_daemon::Engine;
