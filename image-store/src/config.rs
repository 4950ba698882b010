//! Settings of an image store: where it lives, which registries are plain HTTP,
//! which mirrors stand in for Docker Hub, and which snapshotter to use.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::reference::DOCKER_HUB;

/// Which snapshotter builds root filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotterChoice {
    /// overlayfs when the kernel and the data root allow it, else native.
    #[default]
    Auto,
    /// Kernel overlayfs: each layer unpacked once into its own directory.
    Overlayfs,
    /// Plain copies: each snapshot is a full tree (works everywhere, costs disk).
    Native,
}

/// Settings of an image store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct StoreConfig {
    /// Directory holding blobs, snapshots and metadata.
    pub root: PathBuf,
    /// Registries reached over plain HTTP (host or host:port, or a CIDR such as 10.0.0.0/8).
    pub insecure_registries: Vec<String>,
    /// Mirrors tried before Docker Hub, as URLs (`http://127.0.0.1:5000`) or host:port.
    pub registry_mirrors: Vec<String>,
    /// The snapshotter to use.
    pub snapshotter: SnapshotterChoice,
    /// Where `login` stores credentials (Docker's config.json format). Default:
    /// `$XDG_CONFIG_HOME/skiff/auth.json` or `~/.config/skiff/auth.json`.
    pub auth_file: Option<PathBuf>,
    /// How many blobs download at once.
    pub max_concurrent_downloads: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            root: PathBuf::from("/var/lib/skiff"),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            snapshotter: SnapshotterChoice::Auto,
            auth_file: None,
            max_concurrent_downloads: 3,
        }
    }
}

/// One place to fetch a repository from: a registry host and whether it speaks plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// host[:port] as used in URLs.
    pub host: String,
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// This endpoint is a mirror of `registry`, not the registry itself.
    pub mirror: bool,
}

impl StoreConfig {
    /// The endpoints to try, in order, for a repository of `registry`.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if registry == DOCKER_HUB {
            for m in &self.registry_mirrors {
                let (host, scheme_http) = split_url(m);
                if host.is_empty() {
                    continue;
                }
                out.push(Endpoint {
                    plain_http: scheme_http.unwrap_or_else(|| self.is_insecure(&host)),
                    host,
                    mirror: true,
                });
            }
        }
        out.push(Endpoint {
            host: registry.to_string(),
            plain_http: self.is_insecure(registry),
            mirror: false,
        });
        out
    }

    /// Whether a registry is reached over plain HTTP: loopback addresses always (as Docker
    /// does), and those listed in `insecure_registries`.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" {
            return true;
        }
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let (entry_host, _) = split_url(entry);
            if entry_host == registry || entry_host == host {
                return true;
            }
            match (ip, parse_cidr(entry)) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }
}

/// Splits `http://host:port/` into (`host:port`, Some(true)); a bare host gives (host, None).
fn split_url(s: &str) -> (String, Option<bool>) {
    let (rest, http) = if let Some(r) = s.strip_prefix("http://") {
        (r, Some(true))
    } else if let Some(r) = s.strip_prefix("https://") {
        (r, Some(false))
    } else {
        (s, None)
    };
    (rest.trim_end_matches('/').to_string(), http)
}

/// The host part of `host[:port]`, keeping IPv6 brackets.
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry
            .split_once(']')
            .map(|(h, _)| &registry[..h.len() + 1])
            .unwrap_or(registry);
    }
    registry
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(registry)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    Some((ip.parse().ok()?, bits.parse().ok()?))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http() {
        let c = StoreConfig::default();
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("127.1.2.3"));
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(!c.is_insecure("docker.io"));
        assert!(!c.is_insecure("10.1.2.3:5000"));
    }

    #[test]
    fn configured_insecure() {
        let c = StoreConfig {
            insecure_registries: vec!["reg.example:5000".into(), "10.0.0.0/8".into()],
            ..Default::default()
        };
        assert!(c.is_insecure("reg.example:5000"));
        assert!(c.is_insecure("10.9.9.9:443"));
        assert!(!c.is_insecure("11.0.0.1"));
    }

    #[test]
    fn mirrors_come_first_for_docker_hub_only() {
        let c = StoreConfig {
            registry_mirrors: vec!["http://127.0.0.1:5000/".into()],
            ..Default::default()
        };
        let e = c.endpoints("docker.io");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].host, "127.0.0.1:5000");
        assert!(e[0].plain_http && e[0].mirror);
        assert_eq!(e[1].host, "docker.io");
        assert_eq!(c.endpoints("quay.io").len(), 1);
    }
}
