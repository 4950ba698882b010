//! Where a shim's ttrpc socket lives.
//!
//! With `SKIFF_SHIM_SOCKET_DIR` set: `unix://<dir>/<16 hex chars of sha256("<ns>/<id>")>.sock`
//! (the path must stay under 100 bytes). Otherwise containerd's convention, as the
//! containerd-shim crate computes it: `unix:///run/containerd/s/<sha256(address/ns/id)>`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::{Result, ShimError};

/// Environment variable naming the directory for shim sockets.
pub const SOCKET_DIR_ENV: &str = "SKIFF_SHIM_SOCKET_DIR";

/// Longest socket path accepted (sun_path holds 108 bytes; keep a margin).
const MAX_SOCKET_PATH: usize = 100;

/// The `unix://` address of the shim for `namespace`/`id`.
pub fn socket_address(containerd_address: &str, namespace: &str, id: &str) -> Result<String> {
    match std::env::var(SOCKET_DIR_ENV) {
        Ok(dir) if !dir.is_empty() => {
            let digest = Sha256::digest(format!("{namespace}/{id}").as_bytes());
            let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let path = format!("{}/{hash}.sock", dir.trim_end_matches('/'));
            if !path.starts_with('/') {
                return Err(ShimError::InvalidArgument(format!(
                    "{SOCKET_DIR_ENV}={dir:?} is not an absolute path"
                )));
            }
            if path.len() >= MAX_SOCKET_PATH {
                return Err(ShimError::InvalidArgument(format!(
                    "socket path {path} is {} bytes; {SOCKET_DIR_ENV} must be shorter",
                    path.len()
                )));
            }
            Ok(format!("unix://{path}"))
        }
        _ => Ok(containerd_shim::socket_address(
            containerd_address,
            namespace,
            id,
        )),
    }
}

/// The file system path of a `unix://` address.
pub fn socket_path(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

/// Whether a shim answers on `address` (connect succeeds).
pub fn answers(address: &str) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(address)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            socket_path("unix:///run/x.sock"),
            PathBuf::from("/run/x.sock")
        );
        let a = containerd_shim::socket_address("/run/containerd/containerd.sock", "default", "1");
        assert!(a.starts_with("unix:///run/containerd/s/"));
    }
}
