//! Wiring a network namespace into its networks and unwiring it: addresses from the
//! allocator, veth pairs, published ports. Works on any namespace path.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::Path;

use super::error::NetworkError;
use super::manager::Networks;
use super::ports::{PortBinding, PortSpec, Proto};
use super::record::{Member, NetworkRecord};
use super::{firewall, link, netns};

/// What attaching a namespace to one network produced.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// The member as now recorded (address, interface, ports).
    pub member: Member,
    /// The network's gateway.
    pub gateway: Ipv4Addr,
}

/// A short, stable tag of a (container, network) pair for interface names.
fn short_hash(a: &str, b: &str) -> String {
    // FNV-1a: stable across builds, good enough to keep names apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

impl Networks {
    /// Checks `-p` requests against other containers' bindings and the host's sockets,
    /// and resolves random host ports.
    fn resolve_ports(
        &self,
        id: &str,
        specs: &[PortSpec],
        all: &[NetworkRecord],
    ) -> Result<Vec<PortBinding>, NetworkError> {
        let mut out: Vec<PortBinding> = Vec::new();
        for spec in specs {
            let host_ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let what = |port: u16| format!("{host_ip}:{port}/{}", spec.proto.as_str());
            let clash = |port: u16, ip: Ipv4Addr, proto: Proto, b: &PortBinding| {
                b.host_port == port
                    && b.proto == proto
                    && (b.host_ip == ip || b.host_ip.is_unspecified() || ip.is_unspecified())
            };
            let holder = |port: u16| -> Option<String> {
                if out.iter().any(|b| clash(port, host_ip, spec.proto, b)) {
                    return Some("it is published twice in the same request".into());
                }
                all.iter()
                    .flat_map(|n| n.members.iter())
                    .filter(|(cid, _)| cid.as_str() != id)
                    // A holder whose namespace is gone (a reboot, a crash nobody
                    // reconciled yet) holds nothing.
                    .filter(|(cid, _)| netns::is_namespace(&self.netns_path(cid)))
                    .find(|(_, m)| m.ports.iter().any(|b| clash(port, host_ip, spec.proto, b)))
                    .map(|(_, m)| format!("port is already allocated by container {}", m.name))
            };
            let port = if spec.host_port == 0 {
                let mut found = None;
                for _ in 0..20 {
                    let p = probe(host_ip, 0, spec.proto).map_err(|e| NetworkError::PortInUse {
                        what: what(0),
                        container: id.to_string(),
                        why: e.to_string(),
                    })?;
                    if holder(p).is_none() {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| NetworkError::PortInUse {
                    what: what(0),
                    container: id.to_string(),
                    why: "no free host port found".into(),
                })?
            } else {
                if let Some(why) = holder(spec.host_port) {
                    return Err(NetworkError::PortInUse {
                        what: what(spec.host_port),
                        container: id.to_string(),
                        why,
                    });
                }
                probe(host_ip, spec.host_port, spec.proto).map_err(|e| {
                    NetworkError::PortInUse {
                        what: what(spec.host_port),
                        container: id.to_string(),
                        why: format!("the host cannot bind it: {e}"),
                    }
                })?;
                spec.host_port
            };
            out.push(PortBinding {
                host_ip,
                host_port: port,
                container_port: spec.container_port,
                proto: spec.proto,
            });
        }
        Ok(out)
    }

    /// Attaches the namespace at `ns` to every network container `id` is a member
    /// of (`primary` first: it gets `eth0`, the default route and the published
    /// `ports`). Each address is persisted before the interface exists, so a crash
    /// mid-way leaves a record that [`Networks::detach`] or reconciliation cleans.
    /// On failure, everything attached so far is detached again.
    pub fn attach(
        &self,
        ns: &Path,
        id: &str,
        name: &str,
        primary: &str,
        ports: &[PortSpec],
    ) -> Result<Vec<Attachment>, NetworkError> {
        let mut done = Vec::new();
        let result = (|| {
            let nets = self.memberships(id, Some(primary))?;
            for (i, net) in nets.iter().enumerate() {
                let p = if i == 0 { ports } else { &[] };
                done.push(self.attach_one(ns, &net.id, id, name, i == 0, p)?);
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(done),
            Err(e) => {
                let _ = self.detach(id);
                Err(e)
            }
        }
    }

    /// Attaches namespace `ns` of container `id` to one network (`connect` on a
    /// running container uses it directly).
    pub fn attach_one(
        &self,
        ns: &Path,
        net_key: &str,
        id: &str,
        name: &str,
        default_route: bool,
        ports: &[PortSpec],
    ) -> Result<Attachment, NetworkError> {
        // Reserve the address, interface name and ports under the lock.
        let (net, member) = {
            let _lock = self.store.lock()?;
            let all = self.store.list()?;
            let mut net = all
                .iter()
                .find(|n| n.id == net_key || n.name == net_key)
                .cloned()
                .ok_or_else(|| NetworkError::NotFound(net_key.to_string()))?;
            let bindings = self.resolve_ports(id, ports, &all)?;
            let used: Vec<String> = all
                .iter()
                .filter_map(|n| n.members.get(id))
                .filter_map(|m| m.ifname.clone())
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .unwrap_or_else(|| "eth0".into());
            let ip = net
                .free_address()
                .ok_or_else(|| NetworkError::AddressesExhausted(net.name.clone()))?;
            let Some(member) = net.members.get_mut(id) else {
                return Err(NetworkError::Conflict(format!(
                    "container {name} is not connected to network {}",
                    net.name
                )));
            };
            member.name = name.to_string();
            member.ip = Some(ip);
            member.ifname = Some(ifname);
            member.veth = Some(format!("sk{}", short_hash(id, &net.id)));
            member.mac = Some(link::mac_for(ip));
            member.ports = bindings;
            let member = member.clone();
            net.last_allocated = Some(ip);
            self.store.save(&net)?;
            (net, member)
        };
        tracing::debug!(network = %net.name, "network: address reserved");
        let wired = (|| {
            // A bridge set up by an earlier version lacks the loopback guard: its
            // rules are brought up to date before a container joins it.
            if !link::exists(&net.bridge) || !firewall::has_loopback_guard(&net.bridge) {
                self.ensure_bridge(&net)?;
            }
            let (Some(ip), Some(veth), Some(ifname)) = (member.ip, &member.veth, &member.ifname)
            else {
                return Err(NetworkError::Conflict("member not reserved".into()));
            };
            link::wire(&link::Wiring {
                veth,
                bridge: &net.bridge,
                netns: ns,
                ifname,
                ip,
                prefix: net.subnet.prefix,
                gateway: default_route.then_some(net.gateway),
            })?;
            tracing::debug!(network = %net.name, "network: veth wired");
            firewall::add_ports(&net.bridge, id, ip, &member.ports)
        })();
        if let Err(e) = wired {
            let _ = self.detach_one(&net.id, id);
            return Err(e);
        }
        Ok(Attachment {
            network: net.name.clone(),
            gateway: net.gateway,
            member,
        })
    }

    /// Detaches container `id` from one network: its port rules, its veth pair and
    /// its address go; it stays a member. Idempotent.
    pub fn detach_one(&self, net_key: &str, id: &str) -> Result<(), NetworkError> {
        let _lock = self.store.lock()?;
        let mut net = self.store.find(net_key)?;
        let Some(member) = net.members.get_mut(id) else {
            return Ok(());
        };
        // Rules exist only for recorded ports; strays of a crash are found by
        // reconciliation's scan.
        if !member.ports.is_empty() {
            firewall::remove_ports(&net.bridge, id)?;
        }
        if let Some(veth) = &member.veth {
            link::delete(veth)?;
        }
        if member.ip.is_some() || member.veth.is_some() {
            member.clear_attachment();
            self.store.save(&net)?;
        }
        Ok(())
    }

    /// Detaches container `id` from every network and unpins its namespace.
    pub fn detach(&self, id: &str) -> Result<(), NetworkError> {
        let mut first_err = None;
        for net in self.store.list()? {
            if net
                .members
                .get(id)
                .is_some_and(|m| m.ip.is_some() || m.veth.is_some())
            {
                if let Err(e) = self.detach_one(&net.id, id) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Err(e) = netns::remove(&self.netns_path(id)) {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Binds `ip:port` briefly to see that the host can have it; returns the port (the
/// kernel's pick for port 0).
fn probe(ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_tags_are_stable_and_short() {
        assert_eq!(short_hash("a", "b"), short_hash("a", "b"));
        assert_ne!(short_hash("a", "b"), short_hash("b", "a"));
        assert_eq!(format!("sk{}", short_hash("x", "y")).len(), 10);
    }
}
