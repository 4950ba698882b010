//! skiff's wire front ends. The Docker Engine API, CRI and Garden servers and the client
//! the CLI uses to reach `skiffd` live here; each translates its protocol into
//! [`skiff_daemon::Engine`] calls and holds no state of its own.
//!
//! Nothing is served yet: the Docker API comes with its own issue.

pub use skiff_daemon::Engine;
