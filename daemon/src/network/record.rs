//! A network as the engine persists it: its bridge and subnet, and the containers on
//! it with the address each holds while it runs (the IP allocator's state).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::ports::PortBinding;
use super::subnet::Subnet;

/// The name of the default bridge network.
pub const DEFAULT_NETWORK: &str = "bridge";

/// A bridge network: the default one (`bridge`) or a user-defined one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// The host bridge interface (`skiff0`, `sk-<id>`).
    pub bridge: String,
    /// The subnet containers get addresses from.
    pub subnet: Subnet,
    /// The bridge's address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The containers on this network, by full ID.
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
    /// The last address handed out, so a freed address is not reused at once.
    #[serde(default)]
    pub last_allocated: Option<Ipv4Addr>,
}

impl NetworkRecord {
    /// Whether this is the default bridge (no embedded DNS, host resolvers only).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    /// The next free address after the last one handed out, wrapping around; skips
    /// the gateway and addresses members hold.
    pub fn free_address(&self) -> Option<Ipv4Addr> {
        let used: Vec<Ipv4Addr> = self.members.values().filter_map(|m| m.ip).collect();
        let size = self.subnet.size();
        let start = self
            .last_allocated
            .filter(|ip| self.subnet.contains(*ip))
            .map(|ip| u32::from(ip) - u32::from(self.subnet.addr))
            .unwrap_or(1);
        (1..size)
            .map(|i| (start + i) % size)
            .filter_map(|n| self.subnet.nth(n))
            .find(|ip| self.subnet.is_host(*ip) && *ip != self.gateway && !used.contains(ip))
    }
}

/// A container on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The container's name (kept for DNS and `/etc/hosts`).
    pub name: String,
    /// `--network-alias` names it also answers to on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Its address while attached (the container runs); `None` when stopped.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// The interface name inside the container (`eth0`) while attached.
    #[serde(default)]
    pub ifname: Option<String>,
    /// The host end of its veth pair while attached.
    #[serde(default)]
    pub veth: Option<String>,
    /// The MAC address of its interface while attached.
    #[serde(default)]
    pub mac: Option<String>,
    /// Ports published through this network while attached.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

impl Member {
    /// A member that is not attached yet.
    pub fn new(name: &str, aliases: Vec<String>) -> Self {
        Member {
            name: name.to_string(),
            aliases,
            ip: None,
            ifname: None,
            veth: None,
            mac: None,
            ports: Vec::new(),
        }
    }

    /// Forgets what only exists while attached.
    pub fn clear_attachment(&mut self) {
        self.ip = None;
        self.ifname = None;
        self.veth = None;
        self.mac = None;
        self.ports.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str) -> NetworkRecord {
        let subnet: Subnet = subnet.parse().unwrap();
        NetworkRecord {
            id: "0".repeat(64),
            name: "n".into(),
            created: String::new(),
            bridge: "br".into(),
            subnet,
            gateway: subnet.default_gateway(),
            labels: BTreeMap::new(),
            members: BTreeMap::new(),
            last_allocated: None,
        }
    }

    #[test]
    fn allocates_around_the_gateway_and_holders() {
        let mut n = net("10.9.0.0/29");
        let mut got = Vec::new();
        while let Some(ip) = n.free_address() {
            let mut m = Member::new(&format!("c{}", got.len()), vec![]);
            m.ip = Some(ip);
            n.members.insert(format!("{}", got.len()), m);
            n.last_allocated = Some(ip);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        // Freed addresses come back only after the others.
        n.members.remove("1");
        assert_eq!(n.free_address(), Some("10.9.0.3".parse().unwrap()));
    }
}
