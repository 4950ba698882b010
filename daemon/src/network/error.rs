//! Errors of container networking, each naming the network, container or value it
//! failed on; [`NetworkError::kind`] classifies them for the front ends.

use std::path::PathBuf;

use crate::error::ErrorKind;

/// What went wrong while managing networks or wiring a container into one.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A `--subnet` that is not an IPv4 CIDR we can use.
    #[error("invalid subnet {subnet}: {why}")]
    InvalidSubnet {
        /// As given.
        subnet: String,
        /// What is wrong with it.
        why: String,
    },
    /// A subnet that overlaps another network's or a host route's.
    #[error("subnet {subnet} overlaps with {other}")]
    SubnetOverlap {
        /// The requested subnet.
        subnet: String,
        /// Which network or host address it overlaps.
        other: String,
    },
    /// A `--gateway` outside the subnet, or another bad network option.
    #[error("invalid network option {option} {value:?}: {why}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A port publication (`-p`) that cannot be parsed.
    #[error("invalid port specification {spec:?}: {why}")]
    InvalidPort {
        /// As given.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A host port another container or process already holds.
    #[error("cannot publish {what} for container {container}: {why}")]
    PortInUse {
        /// `0.0.0.0:8080/tcp`.
        what: String,
        /// The container being started.
        container: String,
        /// Who holds it.
        why: String,
    },
    /// No network by that name or ID.
    #[error("network {0} not found")]
    NotFound(String),
    /// A network name already taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// A name that cannot be a network name.
    #[error("invalid network name {name:?}: {why}")]
    InvalidName {
        /// As given.
        name: String,
        /// Why.
        why: String,
    },
    /// `network rm` of a network containers use.
    #[error("error while removing network: network {network} has active endpoints ({containers})")]
    InUse {
        /// The network.
        network: String,
        /// Names of the containers on it.
        containers: String,
    },
    /// A container already connected, or not connected, or in a mode without networks.
    #[error("{0}")]
    Conflict(String),
    /// The network's subnet has no free address left.
    #[error("no available IPv4 address on network {0}")]
    AddressesExhausted(String),
    /// A host tool (`ip`, `iptables`) failed.
    #[error("{tool} failed while {doing}: {why}")]
    Tool {
        /// `ip` or `iptables`.
        tool: &'static str,
        /// What it was asked to do.
        doing: String,
        /// Its error output.
        why: String,
    },
    /// A file or namespace operation failed.
    #[error("{doing} {path}: {source}")]
    Io {
        /// What was being done.
        doing: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Corrupt state on disk.
    #[error("network state {path}: {why}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

impl NetworkError {
    /// Wraps an I/O error with what was being done and where.
    pub fn io(doing: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetworkError::Io {
            doing,
            path: path.into(),
            source,
        }
    }

    /// The meaning of the error, for status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::InvalidSubnet { .. }
            | NetworkError::InvalidOption { .. }
            | NetworkError::InvalidPort { .. }
            | NetworkError::InvalidName { .. } => ErrorKind::InvalidInput,
            NetworkError::SubnetOverlap { .. }
            | NetworkError::PortInUse { .. }
            | NetworkError::Exists(_)
            | NetworkError::InUse { .. }
            | NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::NotFound(_) => ErrorKind::NotFound,
            NetworkError::AddressesExhausted(_)
            | NetworkError::Tool { .. }
            | NetworkError::Io { .. }
            | NetworkError::State { .. } => ErrorKind::Internal,
        }
    }
}
