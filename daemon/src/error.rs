//! The engine's error type, classified by meaning so each front end maps it to its
//! own status codes in one place.

use skiff_image_store::StoreError;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// From the image store.
    #[error(transparent)]
    Image(#[from] StoreError),
    /// A configuration file or flag that cannot be used.
    #[error("config {path}: {why}")]
    Config {
        /// The file (or "flags").
        path: String,
        /// What is wrong.
        why: String,
    },
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
    /// The meaning of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Image(e) if e.is_not_found() => ErrorKind::NotFound,
            EngineError::Image(e) if e.is_invalid_input() => ErrorKind::InvalidInput,
            EngineError::Image(StoreError::Conflict { .. })
            | EngineError::Image(StoreError::AmbiguousImage(_)) => ErrorKind::Conflict,
            EngineError::Image(StoreError::AuthRefused { .. }) => ErrorKind::Unauthorized,
            EngineError::Image(StoreError::NoMatchingPlatform { .. }) => ErrorKind::NotFound,
            EngineError::Config { .. } => ErrorKind::InvalidInput,
            EngineError::Image(_) => ErrorKind::Internal,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
