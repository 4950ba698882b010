//! The engine's error type, classified by meaning so each front end maps it to its
//! own status codes (HTTP, gRPC, exit status) in one place.

use std::path::{Path, PathBuf};

use skiff_image_store::StoreError;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// From the image store.
    #[error(transparent)]
    Image(#[from] StoreError),
    /// From container networking.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// A configuration file or flag that cannot be used.
    #[error("config {path}: {why}")]
    Config {
        /// The file (or "flags").
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No such container (or other object).
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong (bad option value, bad name).
    #[error("{0}")]
    InvalidInput(String),
    /// It conflicts with the current state (name in use, container running).
    #[error("{0}")]
    Conflict(String),
    /// The container's command does not exist in it (exit 127 in Docker).
    #[error("failed to create task for container {container}: exec: {command:?}: executable file not found in $PATH")]
    CommandNotFound {
        /// The container.
        container: String,
        /// The command.
        command: String,
    },
    /// The container's command exists but cannot be executed (exit 126 in Docker).
    #[error(
        "failed to create task for container {container}: exec: {command:?}: permission denied"
    )]
    CommandNotExecutable {
        /// The container.
        container: String,
        /// The command.
        command: String,
    },
    /// The runtime (shim, libcontainer) failed.
    #[error("runtime error on container {container}: {why}")]
    Runtime {
        /// The container.
        container: String,
        /// What failed.
        why: String,
    },
    /// A filesystem error, with what was being done and where.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of failure an error is, independent of any wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing asked for does not exist (HTTP 404).
    NotFound,
    /// The request itself is wrong (HTTP 400).
    InvalidInput,
    /// It conflicts with the current state (HTTP 409).
    Conflict,
    /// Credentials missing or refused (HTTP 401/403).
    Unauthorized,
    /// Anything else (HTTP 500).
    Internal,
}

impl EngineError {
    /// Wraps an I/O error with context.
    pub fn io(context: &'static str, path: &Path, source: std::io::Error) -> EngineError {
        EngineError::Io {
            context,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The meaning of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Image(e) if e.is_not_found() => ErrorKind::NotFound,
            EngineError::Image(e) if e.is_invalid_input() => ErrorKind::InvalidInput,
            EngineError::Image(StoreError::Conflict { .. })
            | EngineError::Image(StoreError::AmbiguousImage(_)) => ErrorKind::Conflict,
            EngineError::Image(StoreError::AuthRefused { .. }) => ErrorKind::Unauthorized,
            EngineError::Image(StoreError::NoMatchingPlatform { .. }) => ErrorKind::NotFound,
            EngineError::Network(e) => e.kind(),
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Config { .. } | EngineError::InvalidInput(_) => ErrorKind::InvalidInput,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }

    /// The exit status `docker run` gives for this error: 127 command not found,
    /// 126 not executable, 125 anything else the engine failed at.
    pub fn exit_status(&self) -> u8 {
        match self {
            EngineError::CommandNotFound { .. } => 127,
            EngineError::CommandNotExecutable { .. } => 126,
            _ => 125,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
