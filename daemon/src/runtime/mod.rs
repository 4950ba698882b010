//! Runtime backends. Every backend runs tasks through skiff's shim
//! (`containerd-shim-skiff-v1`), spoken to with containerd's task API over ttrpc, so
//! real containerd and skiff share one tested path and containers outlive the engine.

pub mod shim;

/// The backends this engine knows, by the name `--runtime` takes.
pub const RUNTIMES: &[&str] = &["oci"];

/// The default backend.
pub const DEFAULT_RUNTIME: &str = "oci";

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskExit {
    /// Exit code, or 128+signal.
    pub code: i32,
    /// When it ended (Unix seconds and nanoseconds).
    pub at: (i64, u32),
}

/// What the shim says of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Stopped with this exit.
    Stopped(TaskExit),
    /// Anything else.
    Unknown,
}
