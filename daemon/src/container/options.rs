//! What a user asks for when creating a container: the options of `skiff run` /
//! `docker run` / the Docker API's container config, independent of any wire format.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A bind mount or named volume (`-v SRC:DST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Host path (absolute) for a bind mount, or a volume name.
    pub source: String,
    /// Absolute path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// A tmpfs mount (`--tmpfs /run:size=64m`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// Mount options (`size=64m`, `mode=1777`, ...).
    pub options: Vec<String>,
}

/// Network mode of a container (`--network`). `Bridge` is what the CLI and the Docker
/// API default to; the type's default stays `None` so older records read unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Own network namespace with loopback only.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// The default bridge network (`bridge`).
    Bridge,
    /// Another container's namespace (`container:NAME`).
    Container(String),
    /// A user-defined network, by name or ID.
    Named(String),
}

impl NetworkMode {
    /// Parses `--network`: `none`, `host`, `bridge` (or `default`), `container:NAME`,
    /// or a network name.
    pub fn parse(s: &str) -> NetworkMode {
        match s {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" | "bridge" | "default" => NetworkMode::Bridge,
            other => match other.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c.to_string()),
                None => NetworkMode::Named(other.to_string()),
            },
        }
    }

    /// The network it attaches to, for bridge and user networks.
    pub fn network_name(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(crate::network::DEFAULT_NETWORK),
            NetworkMode::Named(n) => Some(n),
            _ => None,
        }
    }

    /// Docker's name of the mode (`bridge`, `host`, `container:x`, `mynet`).
    pub fn docker_name(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Container(c) => format!("container:{c}"),
            NetworkMode::Named(n) => n.clone(),
        }
    }
}

/// Restart policy (`--restart`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Restart on non-zero exit, at most `max_retries` times (0 = unlimited).
    OnFailure {
        /// Retry limit, 0 for none.
        max_retries: u32,
    },
    /// Always restart.
    Always,
    /// Always, unless the user stopped it.
    UnlessStopped,
}

/// Resource limits (cgroups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    /// `-m`: memory limit in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory+swap limit in bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--cpus` as nano-CPUs (1.5 CPUs = 1_500_000_000).
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. "0-1".
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit` (-1 or 0 unlimited).
    pub pids_limit: Option<i64>,
}

/// Everything that defines a container at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CreateOptions {
    /// `--name` (generated when empty).
    pub name: Option<String>,
    /// Image reference or ID.
    pub image: String,
    /// `--entrypoint` (Some(empty) clears the image's).
    pub entrypoint: Option<Vec<String>>,
    /// Command after the image name (replaces the image's Cmd when non-empty).
    pub cmd: Vec<String>,
    /// `-e KEY=VALUE` and `--env-file` entries, in order (a bare `KEY` takes the caller's value).
    pub env: Vec<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `-u user[:group]`, names or numbers.
    pub user: Option<String>,
    /// `--hostname` (default: the short container ID).
    pub hostname: Option<String>,
    /// `-i`: keep stdin open.
    pub stdin_open: bool,
    /// `-t`: allocate a TTY.
    pub tty: bool,
    /// With `tty`: the terminal's initial size as (columns, rows), set before the
    /// process starts so it never sees a 0x0 terminal (Docker's `ConsoleSize`).
    pub console_size: Option<(u32, u32)>,
    /// With `stdin_open`: the container's stdin closes when the first attached client's
    /// stdin does (`docker run -i`). Otherwise it stays open across attaches (`-dit`).
    #[serde(default)]
    pub stdin_once: bool,
    /// `-v`.
    pub volumes: Vec<VolumeMount>,
    /// `--tmpfs`.
    pub tmpfs: Vec<TmpfsMount>,
    /// `--read-only`.
    pub read_only: bool,
    /// cgroup limits.
    pub resources: Resources,
    /// `--cap-add` (names like `NET_ADMIN` or `CAP_NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`: no seccomp filter (the rest of the default
    /// confinement stays).
    #[serde(default)]
    pub seccomp_unconfined: bool,
    /// `--network`.
    pub network: NetworkMode,
    /// `-p`: ports to publish (on the container's first network).
    #[serde(default)]
    pub publish: Vec<crate::network::PortSpec>,
    /// `-P`: publish every port the image exposes on a random host port.
    #[serde(default)]
    pub publish_all: bool,
    /// `--network-alias`: more names on its network's DNS.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--init`: run a minimal init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--runtime` (backend name; default `oci`).
    pub runtime: Option<String>,
    /// `--stop-signal` (default SIGTERM, or the image's StopSignal).
    pub stop_signal: Option<String>,
    /// Where bind-mount sources are resolved relative paths from (not used for absolute).
    pub cwd: Option<PathBuf>,
}

/// What Docker's `--security-opt` values ask for, of what skiff supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `no-new-privileges` (or `:true` / `=true`; `:false` turns it off again).
    pub no_new_privileges: bool,
    /// `seccomp=unconfined` (or `seccomp:unconfined`).
    pub seccomp_unconfined: bool,
}

impl SecurityOpts {
    /// Reads `--security-opt` values (the CLI flag, or the API's `HostConfig.SecurityOpt`);
    /// the error names the first value skiff cannot honour.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<SecurityOpts, String> {
        let mut o = SecurityOpts::default();
        for v in values {
            match v.as_ref() {
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                    o.no_new_privileges = true
                }
                "no-new-privileges:false" | "no-new-privileges=false" => {
                    o.no_new_privileges = false
                }
                "seccomp=unconfined" | "seccomp:unconfined" => o.seccomp_unconfined = true,
                other if other.starts_with("seccomp=") || other.starts_with("seccomp:") => {
                    return Err(
                        "custom seccomp profiles are not supported by skiff (supported: the default profile, seccomp=unconfined)"
                            .to_string(),
                    )
                }
                other => {
                    return Err(format!(
                        "security option {other:?} is not supported by skiff (supported: no-new-privileges, seccomp=unconfined)"
                    ))
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod security_opt_tests {
    use super::SecurityOpts;

    #[test]
    fn docker_spellings_and_refusals() {
        let o = SecurityOpts::parse(&["no-new-privileges", "seccomp=unconfined"]).unwrap();
        assert!(o.no_new_privileges && o.seccomp_unconfined);
        let o =
            SecurityOpts::parse(&["no-new-privileges:true", "no-new-privileges=false"]).unwrap();
        assert!(!o.no_new_privileges && !o.seccomp_unconfined);
        assert!(
            SecurityOpts::parse(&["seccomp:unconfined"])
                .unwrap()
                .seccomp_unconfined
        );
        let e =
            SecurityOpts::parse(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]).unwrap_err();
        assert!(e.contains("custom seccomp profiles"), "{e}");
        assert!(SecurityOpts::parse(&["apparmor=x"])
            .unwrap_err()
            .contains("apparmor"));
        assert_eq!(
            SecurityOpts::parse::<&str>(&[]).unwrap(),
            SecurityOpts::default()
        );
    }
}
