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

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::EngineError;
pub use skiff_image_store as image_store;
