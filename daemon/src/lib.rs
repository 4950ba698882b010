//! skiff's engine: the library API every front end (CLI, Docker API, CRI, Garden, shim)
//! calls. It owns the image store today; containers, runtimes, cgroups and networking
//! join it as their issues land. It knows nothing of HTTP or gRPC.

pub mod config;
pub mod container;
pub mod engine;
pub mod error;
pub mod events;
pub mod images;
pub mod network;
pub mod runtime;
pub mod spec;
pub mod supervisor;
pub mod volume;

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::EngineError;
pub use skiff_image_store as image_store;

/// Caps glibc's malloc arenas at two for a long-lived process with many threads (the
/// daemon's async workers and blocking pool). glibc otherwise gives threads their own
/// arenas (up to 8 per core), and memory freed in one stays resident: skiffd grew from
/// 10 to 39 MiB over a few pulls and runs, and stays at 19 MiB with two arenas. Call it
/// first thing in `main`, before any thread starts.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
