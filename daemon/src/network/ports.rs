//! Published ports: `-p [ip:][hostPort:]containerPort[/tcp|udp]` parsed into
//! [`PortSpec`], and the [`PortBinding`] a started container actually holds.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::error::NetworkError;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What the user asked to publish (`-p`, `-P`, Docker's PortBindings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to listen on; `None` is every address (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port; 0 picks a free one at start.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
}

/// A port a running container publishes, with the host port resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address (`0.0.0.0` for every address).
    pub host_ip: Ipv4Addr,
    /// Host port.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
}

impl fmt::Display for PortBinding {
    /// `80/tcp -> 0.0.0.0:8080`, as `docker port` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port,
            self.proto.as_str(),
            self.host_ip,
            self.host_port
        )
    }
}

/// Parses a port number 1-65535 (0 only when `allow_zero`).
fn port(spec: &str, s: &str, what: &str, allow_zero: bool) -> Result<u16, NetworkError> {
    let bad = |why: String| NetworkError::InvalidPort {
        spec: spec.to_string(),
        why,
    };
    if s.contains('-') {
        return Err(bad("port ranges are not supported".into()));
    }
    let n: u16 = s
        .parse()
        .map_err(|_| bad(format!("{what} {s:?} is not a port number")))?;
    if n == 0 && !allow_zero {
        return Err(bad(format!("{what} must be between 1 and 65535")));
    }
    Ok(n)
}

/// Parses a container port with an optional protocol: `80`, `80/tcp`, `53/udp`.
pub fn parse_container_port(spec: &str) -> Result<(u16, Proto), NetworkError> {
    let (num, proto) = match spec.split_once('/') {
        Some((n, p)) => (n, p),
        None => (spec, "tcp"),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(NetworkError::InvalidPort {
                spec: spec.to_string(),
                why: format!("unknown protocol {other:?} (tcp or udp)"),
            })
        }
    };
    Ok((port(spec, num, "container port", false)?, proto))
}

/// Parses `-p [ip:][hostPort:]containerPort[/proto]`.
pub fn parse_publish(spec: &str) -> Result<PortSpec, NetworkError> {
    let (addr_ports, proto_part) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (spec, None),
    };
    let parts: Vec<&str> = addr_ports.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => {
            return Err(NetworkError::InvalidPort {
                spec: spec.to_string(),
                why: "expected [ip:][hostPort:]containerPort[/tcp|udp]".into(),
            })
        }
    };
    let cport_spec = match proto_part {
        Some(p) => format!("{container}/{p}"),
        None => container.to_string(),
    };
    let (container_port, proto) = parse_container_port(&cport_spec).map_err(|e| match e {
        NetworkError::InvalidPort { why, .. } => NetworkError::InvalidPort {
            spec: spec.to_string(),
            why,
        },
        other => other,
    })?;
    let host_port = if host.is_empty() {
        0
    } else {
        port(spec, host, "host port", false)?
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let addr: Ipv4Addr = ip.parse().map_err(|_| NetworkError::InvalidPort {
                spec: spec.to_string(),
                why: format!("{ip:?} is not an IPv4 address"),
            })?;
            (!addr.is_unspecified()).then_some(addr)
        }
    };
    Ok(PortSpec {
        host_ip,
        host_port,
        container_port,
        proto,
    })
}

/// The ports an image declares (`ExposedPorts`), for `-P`.
pub fn exposed_ports(image_config: &serde_json::Value) -> Vec<(u16, Proto)> {
    let mut out: Vec<(u16, Proto)> = image_config["config"]["ExposedPorts"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| parse_container_port(k).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 8080, 80));
        assert_eq!(p.proto, Proto::Tcp);
        let p = parse_publish("127.0.0.1:9000:90/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (9000, 90, Proto::Udp)
        );
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!((p.host_ip, p.host_port), (Some(Ipv4Addr::LOCALHOST), 0));
        let p = parse_publish("0.0.0.0:81:80").unwrap();
        assert_eq!(p.host_ip, None);
    }

    #[test]
    fn exposed_ports_of_an_image() {
        let cfg = serde_json::json!({"config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}});
        assert_eq!(exposed_ports(&cfg), [(53, Proto::Udp), (80, Proto::Tcp)]);
        assert!(exposed_ports(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn bad_specs_say_why() {
        for bad in [
            "",
            "abc",
            "0",
            "70000",
            "8080:",
            ":80x",
            "1:2:3:4",
            "80/sctp",
            "a.b.c.d:1:2",
            "8000-8001:80",
        ] {
            let e = parse_publish(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid port specification"),
                "{bad}: {e}"
            );
        }
    }
}
