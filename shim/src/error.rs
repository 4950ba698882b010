//! The shim's error type, and its mapping onto ttrpc status codes.

use std::path::{Path, PathBuf};

use containerd_shim::protos::ttrpc::{self, Code};

/// Everything that can go wrong in the shim, with enough context to name the step.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A request or command line carried something unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The task or process asked for does not exist (or has already exited).
    #[error("not found: {0}")]
    NotFound(String),
    /// The task already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The task is not in a state that allows the request.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// The feature is not implemented by this shim.
    #[error("not implemented: {0}")]
    Unimplemented(String),
    /// A file system or system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What the shim was doing.
        what: String,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A system call without a path failed.
    #[error("{what}: {source}")]
    Sys {
        /// What the shim was doing.
        what: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// libcontainer failed at a named step.
    #[error("{step}: {source}")]
    Container {
        /// The step (e.g. "building container").
        step: String,
        /// libcontainer's error.
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// Mounting or unmounting the root filesystem failed.
    #[error("rootfs: {0}")]
    Mount(String),
    /// The OCI spec could not be read or written.
    #[error("spec {}: {why}", path.display())]
    Spec {
        /// The config.json.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The ttrpc layer failed (server start, client connect).
    #[error("ttrpc: {0}")]
    Ttrpc(String),
    /// A step failed in the create helper process (its message names the step).
    #[error("{0}")]
    Helper(String),
    /// Anything else that should not happen.
    #[error("internal: {0}")]
    Internal(String),
}

impl ShimError {
    /// An I/O error while doing `what` to `path`.
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        ShimError::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// A failed system call while doing `what`.
    pub fn sys(what: &str, source: nix::Error) -> Self {
        ShimError::Sys {
            what: what.to_string(),
            source,
        }
    }

    /// A libcontainer failure at `step`.
    pub fn container(step: &str, source: libcontainer::error::LibcontainerError) -> Self {
        ShimError::Container {
            step: step.to_string(),
            source: Box::new(source),
        }
    }

    /// The gRPC status code containerd expects for this error.
    pub fn code(&self) -> Code {
        match self {
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            _ => Code::INTERNAL,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

/// Result with [`ShimError`].
pub type Result<T> = std::result::Result<T, ShimError>;
