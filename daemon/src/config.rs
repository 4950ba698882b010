//! Engine settings: `/etc/skiff/config.toml`, where every key is also a command-line flag.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skiff_image_store::{SnapshotterChoice, StoreConfig};

use crate::error::{EngineError, Result};

/// The default config file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/skiff/config.toml";

/// Where `--init` looks for a statically linked init when `init-binary` is not set:
/// Debian's `tini-static` (package `tini`), then Docker's `docker-init` (also tini).
pub const DEFAULT_INIT_BINARIES: &[&str] = &[
    "/usr/libexec/skiff/skiff-init",
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
];

/// Settings of one engine instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Blobs, snapshots, metadata and containers.
    pub data_root: PathBuf,
    /// Sockets, pids and bundles (lost on reboot).
    pub run_root: PathBuf,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Mirrors tried before Docker Hub.
    pub registry_mirrors: Vec<String>,
    /// `auto`, `overlayfs` or `native`.
    pub snapshotter: SnapshotterChoice,
    /// Where `login` keeps credentials.
    pub auth_file: Option<PathBuf>,
    /// Parallel blob downloads per pull.
    pub max_concurrent_downloads: usize,
    /// The shim binary (default: next to the running executable, else on PATH).
    pub shim_binary: Option<PathBuf>,
    /// The static init `--init` runs as PID 1 (default: the first of
    /// [`DEFAULT_INIT_BINARIES`] that exists).
    pub init_binary: Option<PathBuf>,
    /// Size at which a container's json-file log rotates, in bytes.
    pub log_max_size: u64,
    /// How many json-file logs are kept per container (current + rotated).
    pub log_max_files: u32,
    /// The default bridge's interface name.
    pub bridge_name: String,
    /// The default bridge's subnet.
    pub bridge_subnet: String,
    /// Where user networks without `--subnet` get a /24 from.
    pub network_pool: String,
    /// Turn on IPv4 forwarding (for outbound NAT) when a bridge is set up.
    pub ip_forward: bool,
    /// Where the embedded DNS server forwards names it does not know (`host:port`);
    /// empty: the host's resolv.conf name servers.
    pub dns_upstreams: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_root: PathBuf::from("/var/lib/skiff"),
            run_root: PathBuf::from("/run/skiff"),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            snapshotter: SnapshotterChoice::Auto,
            auth_file: None,
            max_concurrent_downloads: 3,
            shim_binary: None,
            init_binary: None,
            log_max_size: 20 << 20,
            log_max_files: 5,
            bridge_name: "skiff0".into(),
            bridge_subnet: "10.77.0.0/16".into(),
            network_pool: "10.78.0.0/16".into(),
            ip_forward: true,
            dns_upstreams: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// Reads a config file; a missing file gives the defaults when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(e) => {
                return Err(EngineError::Config {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })
            }
        };
        toml::from_str(&text).map_err(|e| EngineError::Config {
            path: path.display().to_string(),
            why: e.to_string(),
        })
    }

    /// The image store's part of the settings.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            root: self.data_root.clone(),
            insecure_registries: self.insecure_registries.clone(),
            registry_mirrors: self.registry_mirrors.clone(),
            snapshotter: self.snapshotter,
            auth_file: self.auth_file.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kebab_case_keys_and_rejects_unknown_ones() {
        let c: EngineConfig = toml::from_str(
            "data-root = \"/d\"\nregistry-mirrors = [\"http://127.0.0.1:5000\"]\nsnapshotter = \"native\"\n",
        )
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.snapshotter, SnapshotterChoice::Native);
        assert!(toml::from_str::<EngineConfig>("data_rot = 1").is_err());
    }
}
