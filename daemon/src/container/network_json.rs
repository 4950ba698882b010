//! Networking as Docker shows it: `NetworkSettings` and `HostConfig.PortBindings` of a
//! container, NetworkResource of a network (`network ls` / `inspect`), the PORTS column.

use super::record::ContainerRecord;
use crate::engine::Engine;
use crate::error::Result;
use crate::network::{netns, Member, NetworkError, NetworkRecord, PortBinding, PortSpec};
/// Docker's `HostConfig.PortBindings` of `-p` requests.
pub fn port_bindings_json(specs: &[PortSpec]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for s in specs {
        let key = format!("{}/{}", s.container_port, s.proto.as_str());
        let entry = map.entry(key).or_insert_with(|| serde_json::json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(serde_json::json!({
                "HostIp": s.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": if s.host_port == 0 { String::new() } else { s.host_port.to_string() },
            }));
        }
    }
    serde_json::Value::Object(map)
}

/// Docker's `NetworkSettings.Ports` of bound ports (requested ones map to `null`
/// while the container does not run).
pub fn ports_json(specs: &[PortSpec], bound: &[PortBinding]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for s in specs {
        map.insert(
            format!("{}/{}", s.container_port, s.proto.as_str()),
            serde_json::Value::Null,
        );
    }
    for b in bound {
        let key = format!("{}/{}", b.container_port, b.proto.as_str());
        let entry = map.entry(key).or_insert(serde_json::Value::Null);
        if entry.is_null() {
            *entry = serde_json::json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(serde_json::json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}));
        }
    }
    serde_json::Value::Object(map)
}

impl Engine {
    /// Docker's `NetworkSettings` of a container.
    pub fn network_settings_json(&self, rec: &ContainerRecord) -> serde_json::Value {
        let nets = self.container_networks(rec);
        let bound: Vec<PortBinding> = nets.iter().flat_map(|(_, m)| m.ports.clone()).collect();
        let mut networks = serde_json::Map::new();
        for (n, m) in &nets {
            networks.insert(n.name.clone(), endpoint_json(n, m, &rec.id));
        }
        let primary = nets.first();
        let ip = primary
            .and_then(|(_, m)| m.ip)
            .map(|i| i.to_string())
            .unwrap_or_default();
        let sandbox = self.networks.netns_path(&rec.id);
        serde_json::json!({
            "Bridge": "",
            "SandboxID": if netns::is_namespace(&sandbox) { rec.id.clone() } else { String::new() },
            "SandboxKey": if netns::is_namespace(&sandbox) { sandbox.display().to_string() } else { String::new() },
            "Ports": ports_json(&rec.options.publish, &bound),
            "IPAddress": ip,
            "IPPrefixLen": primary.filter(|(_, m)| m.ip.is_some()).map(|(n, _)| n.subnet.prefix).unwrap_or(0),
            "Gateway": primary.filter(|(_, m)| m.ip.is_some()).map(|(n, _)| n.gateway.to_string()).unwrap_or_default(),
            "MacAddress": primary.and_then(|(_, m)| m.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }
}

/// Docker's EndpointSettings of a container on a network.
pub fn endpoint_json(n: &NetworkRecord, m: &Member, id: &str) -> serde_json::Value {
    let attached = m.ip.is_some();
    serde_json::json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": if m.aliases.is_empty() { serde_json::Value::Null } else { serde_json::json!(m.aliases) },
        "NetworkID": n.id,
        "EndpointID": if attached { format!("{}{}", &id[..32.min(id.len())], &n.id[..32.min(n.id.len())]) } else { String::new() },
        "Gateway": if attached { n.gateway.to_string() } else { String::new() },
        "IPAddress": m.ip.map(|i| i.to_string()).unwrap_or_default(),
        "IPPrefixLen": if attached { n.subnet.prefix } else { 0 },
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": m.mac.clone().unwrap_or_default(),
        "DNSNames": if attached { serde_json::json!(std::iter::once(m.name.clone()).chain(m.aliases.iter().cloned()).chain(std::iter::once(id[..12.min(id.len())].to_string())).collect::<Vec<_>>()) } else { serde_json::Value::Null },
    })
}

/// The IDs of the pseudo networks `host` and `none` (stable, 64 hex digits).
pub fn builtin_network_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}").repeat(4)
}

impl Engine {
    /// Every network as Docker's NetworkResource, the pseudo networks `host` and
    /// `none` included, the default bridge first.
    pub fn networks_json(&self) -> Result<Vec<serde_json::Value>> {
        self.networks.default_network()?;
        let mut out: Vec<serde_json::Value> = Vec::new();
        let mut nets = self.networks.list()?;
        nets.sort_by_key(|n| !n.is_default());
        for n in &nets {
            out.push(self.network_json(n));
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            out.push(serde_json::json!({
                "Name": name, "Id": builtin_network_id(name), "Created": "0001-01-01T00:00:00Z",
                "Scope": "local", "Driver": driver, "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Options": null, "Config": []},
                "Internal": false, "Attachable": false, "Ingress": false,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
                "Containers": {}, "Options": {}, "Labels": {},
            }));
        }
        Ok(out)
    }

    /// One network (by name, ID or ID prefix; `host` and `none` too) as Docker's
    /// NetworkResource.
    pub fn network_inspect_json(&self, key: &str) -> Result<serde_json::Value> {
        if key == "host" || key == "none" {
            return self
                .networks_json()?
                .into_iter()
                .find(|n| n["Name"] == key)
                .ok_or_else(|| NetworkError::NotFound(key.to_string()).into());
        }
        Ok(self.network_json(&self.networks.find(key)?))
    }

    /// Docker's NetworkResource of a network record.
    pub fn network_json(&self, n: &NetworkRecord) -> serde_json::Value {
        let mut containers = serde_json::Map::new();
        for (id, m) in n.members.iter().filter(|(_, m)| m.ip.is_some()) {
            let ep = endpoint_json(n, m, id);
            containers.insert(
                id.clone(),
                serde_json::json!({
                    "Name": m.name,
                    "EndpointID": ep["EndpointID"],
                    "MacAddress": ep["MacAddress"],
                    "IPv4Address": m.ip.map(|ip| format!("{ip}/{}", n.subnet.prefix)).unwrap_or_default(),
                    "IPv6Address": "",
                }),
            );
        }
        serde_json::json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv4": true,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
            "Internal": false,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": {
                "com.docker.network.bridge.name": n.bridge,
                "com.docker.network.bridge.default_bridge": n.is_default().to_string(),
            },
            "Labels": n.labels,
        })
    }
}

impl Engine {
    /// The PORTS column of `ps`: `127.0.0.1:8080->80/tcp, 0.0.0.0:8081->80/tcp`.
    pub fn ports_text(&self, rec: &ContainerRecord) -> String {
        self.container_networks(rec)
            .iter()
            .flat_map(|(_, m)| m.ports.iter())
            .map(|b| {
                format!(
                    "{}:{}->{}/{}",
                    b.host_ip,
                    b.host_port,
                    b.container_port,
                    b.proto.as_str()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
