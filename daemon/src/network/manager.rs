//! [`Networks`]: the network operations of one engine. Everything a container needs
//! is done on a namespace path (`attach` / `detach`), so a pod sandbox or a CRI
//! front end can wire any namespace the same way.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use super::error::NetworkError;
use super::ports::{PortBinding, PortSpec, Proto};
use super::record::{Member, NetworkRecord, DEFAULT_NETWORK};
use super::store::NetworkStore;
use super::subnet::Subnet;
use super::{firewall, link, netns};

/// Names `network create` refuses: the modes `--network` takes besides networks.
const RESERVED: &[&str] = &["bridge", "host", "none", "default"];

/// The request of `network create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateNetwork {
    /// Its name.
    pub name: String,
    /// `--subnet` (picked from the pool when `None`).
    pub subnet: Option<String>,
    /// `--gateway` (the subnet's first address when `None`).
    pub gateway: Option<String>,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
}

/// The network settings of an engine.
#[derive(Debug, Clone)]
pub struct Networks {
    store: NetworkStore,
    netns_dir: PathBuf,
    default_bridge: String,
    default_subnet: String,
    pool: String,
    ip_forward: bool,
}

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

fn new_id() -> String {
    crate::container::new_id()
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

/// Host addresses with their prefixes (`ip -4 -o addr`), to keep subnets off them.
fn host_subnets() -> Vec<(String, Subnet)> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let dev = words.get(1)?;
            let cidr = words.get(3)?;
            let (ip, prefix) = cidr.split_once('/')?;
            let ip: Ipv4Addr = ip.parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            if ip.is_loopback() || prefix == 0 || prefix > 32 {
                return None;
            }
            let mask = u32::MAX << (32 - u32::from(prefix));
            let net = Subnet {
                addr: Ipv4Addr::from(u32::from(ip) & mask),
                prefix,
            };
            Some((dev.to_string(), net))
        })
        .collect()
}

impl Networks {
    /// The networks of an engine: records under `state_dir`, namespaces under
    /// `netns_dir`, the default bridge `default_bridge` on `default_subnet`, user
    /// networks without `--subnet` get a /24 of `pool`.
    pub fn open(
        state_dir: &Path,
        netns_dir: &Path,
        default_bridge: &str,
        default_subnet: &str,
        pool: &str,
        ip_forward: bool,
    ) -> Result<Self, NetworkError> {
        if default_bridge.is_empty() || default_bridge.len() > 15 {
            return Err(NetworkError::InvalidOption {
                option: "bridge-name",
                value: default_bridge.to_string(),
                why: "must be 1 to 15 characters".into(),
            });
        }
        Ok(Networks {
            store: NetworkStore::open(state_dir)?,
            netns_dir: netns_dir.to_path_buf(),
            default_bridge: default_bridge.to_string(),
            default_subnet: default_subnet.to_string(),
            pool: pool.to_string(),
            ip_forward,
        })
    }

    /// The namespace path skiff pins for container `id`.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// The directory of pinned namespaces.
    pub fn netns_dir(&self) -> &Path {
        &self.netns_dir
    }

    /// Every network (the default bridge included once it was used).
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworkError> {
        self.store.list()
    }

    /// A network by name, ID or ID prefix; `bridge` is created on first use.
    pub fn find(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        match self.store.find(key) {
            Err(NetworkError::NotFound(_)) if key == DEFAULT_NETWORK => self.default_network(),
            other => other,
        }
    }

    /// The default bridge network's record, created on first use.
    pub fn default_network(&self) -> Result<NetworkRecord, NetworkError> {
        let _lock = self.store.lock()?;
        if let Ok(n) = self.store.find(DEFAULT_NETWORK) {
            return Ok(n);
        }
        let subnet: Subnet = self.default_subnet.parse()?;
        let all = self.store.list()?;
        // The default bridge may exist already: another data root on this host shares
        // it, or this one's record was lost.
        self.check_overlap(&subnet, &all, Some(&self.default_bridge))?;
        let rec = NetworkRecord {
            id: new_id(),
            name: DEFAULT_NETWORK.to_string(),
            created: crate::container::now_rfc3339(),
            bridge: self.default_bridge.clone(),
            subnet,
            gateway: subnet.default_gateway(),
            labels: BTreeMap::new(),
            members: BTreeMap::new(),
            last_allocated: None,
        };
        self.store.save(&rec)?;
        Ok(rec)
    }

    fn check_overlap(
        &self,
        subnet: &Subnet,
        all: &[NetworkRecord],
        own_bridge: Option<&str>,
    ) -> Result<(), NetworkError> {
        if let Some(n) = all.iter().find(|n| n.subnet.overlaps(subnet)) {
            return Err(NetworkError::SubnetOverlap {
                subnet: subnet.to_string(),
                other: format!("network {} ({})", n.name, n.subnet),
            });
        }
        for (dev, net) in host_subnets() {
            if Some(dev.as_str()) == own_bridge {
                continue;
            }
            if net.overlaps(subnet) {
                return Err(NetworkError::SubnetOverlap {
                    subnet: subnet.to_string(),
                    other: format!("{net} on host interface {dev}"),
                });
            }
        }
        Ok(())
    }

    /// `network create`: validates everything first, then creates the bridge and its
    /// rules; a failure leaves nothing behind.
    pub fn create(&self, req: &CreateNetwork) -> Result<NetworkRecord, NetworkError> {
        validate_name(&req.name)?;
        if RESERVED.contains(&req.name.as_str()) {
            return Err(NetworkError::InvalidName {
                name: req.name.clone(),
                why: "it is a pre-defined network name".into(),
            });
        }
        let requested = match &req.subnet {
            Some(s) => Some(s.parse::<Subnet>()?),
            None => None,
        };
        let _lock = self.store.lock()?;
        let all = self.store.list()?;
        if all.iter().any(|n| n.name == req.name) {
            return Err(NetworkError::Exists(req.name.clone()));
        }
        // The default bridge's subnet is reserved even before its first use.
        let mut taken = all.clone();
        if !taken.iter().any(|n| n.name == DEFAULT_NETWORK) {
            if let Ok(s) = self.default_subnet.parse::<Subnet>() {
                taken.push(placeholder(DEFAULT_NETWORK, s));
            }
        }
        let subnet = match requested {
            Some(s) => {
                self.check_overlap(&s, &taken, None)?;
                s
            }
            None => self.pick_subnet(&taken)?,
        };
        let gateway = match &req.gateway {
            None => subnet.default_gateway(),
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| NetworkError::InvalidOption {
                    option: "--gateway",
                    value: g.clone(),
                    why: "not an IPv4 address".into(),
                })?;
                if !subnet.is_host(ip) {
                    return Err(NetworkError::InvalidOption {
                        option: "--gateway",
                        value: g.clone(),
                        why: format!("not a host address of subnet {subnet}"),
                    });
                }
                ip
            }
        };
        let id = new_id();
        let rec = NetworkRecord {
            bridge: format!("sk-{}", &id[..10]),
            id,
            name: req.name.clone(),
            created: crate::container::now_rfc3339(),
            subnet,
            gateway,
            labels: req.labels.clone(),
            members: BTreeMap::new(),
            last_allocated: None,
        };
        if let Err(e) = self.ensure_bridge(&rec) {
            self.remove_bridge(&rec);
            return Err(e);
        }
        if let Err(e) = self.store.save(&rec) {
            self.remove_bridge(&rec);
            return Err(e);
        }
        Ok(rec)
    }

    fn pick_subnet(&self, taken: &[NetworkRecord]) -> Result<Subnet, NetworkError> {
        let pool: Subnet = self.pool.parse()?;
        let host = host_subnets();
        let count = if pool.prefix < 24 {
            1u32 << (24 - pool.prefix)
        } else {
            1
        };
        for i in 0..count {
            let candidate = Subnet {
                addr: Ipv4Addr::from(u32::from(pool.addr) + (i << 8)),
                prefix: 24.max(pool.prefix),
            };
            if taken.iter().any(|n| n.subnet.overlaps(&candidate))
                || host.iter().any(|(_, h)| h.overlaps(&candidate))
            {
                continue;
            }
            return Ok(candidate);
        }
        Err(NetworkError::InvalidOption {
            option: "network-pool",
            value: self.pool.clone(),
            why: "every subnet of the pool is in use; pass --subnet".into(),
        })
    }

    /// The bridge, its address and its rules, present (idempotent).
    pub fn ensure_bridge(&self, net: &NetworkRecord) -> Result<(), NetworkError> {
        link::ensure_bridge(&net.bridge, net.gateway, net.subnet.prefix)?;
        firewall::ensure_network(&net.bridge, &net.subnet)?;
        if self.ip_forward {
            firewall::enable_forwarding();
        }
        Ok(())
    }

    fn remove_bridge(&self, net: &NetworkRecord) {
        firewall::remove_network(&net.bridge, &net.subnet);
        if let Err(e) = link::delete(&net.bridge) {
            tracing::warn!(network = %net.name, error = %e, "removing bridge");
        }
    }

    /// `network rm`: refused while containers are on it.
    pub fn remove(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        let _lock = self.store.lock()?;
        let net = self.store.find(key)?;
        if net.is_default() {
            return Err(NetworkError::Conflict(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        if !net.members.is_empty() {
            return Err(NetworkError::InUse {
                network: net.name.clone(),
                containers: net
                    .members
                    .values()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.remove_bridge(&net);
        self.store.remove(&net.id)?;
        Ok(net)
    }

    /// `network prune`: removes user networks without containers; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for n in self.store.list()? {
            if !n.is_default() && n.members.is_empty() && self.remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Records container `id` as a member of network `key` (not attached yet).
    pub fn join(
        &self,
        key: &str,
        id: &str,
        name: &str,
        aliases: &[String],
    ) -> Result<NetworkRecord, NetworkError> {
        if key == DEFAULT_NETWORK {
            self.default_network()?;
        }
        let _lock = self.store.lock()?;
        let mut net = self.store.find(key)?;
        if net.members.contains_key(id) {
            return Err(NetworkError::Conflict(format!(
                "endpoint with name {name} already exists in network {}",
                net.name
            )));
        }
        for a in aliases {
            validate_name(a)?;
        }
        net.members
            .insert(id.to_string(), Member::new(name, aliases.to_vec()));
        self.store.save(&net)?;
        Ok(net)
    }

    /// Removes container `id` from network `key` (detaching it first if attached).
    pub fn leave(&self, key: &str, id: &str) -> Result<NetworkRecord, NetworkError> {
        let net = self.store.find(key)?;
        if !net.members.contains_key(id) {
            return Err(NetworkError::Conflict(format!(
                "container {id} is not connected to network {}",
                net.name
            )));
        }
        self.detach_one(&net.id, id)?;
        let _lock = self.store.lock()?;
        let mut net = self.store.find(&net.id)?;
        net.members.remove(id);
        self.store.save(&net)?;
        Ok(net)
    }

    /// Records a container's new name on every network it is on (for DNS and hosts).
    pub fn rename_member(&self, id: &str, name: &str) -> Result<(), NetworkError> {
        let _lock = self.store.lock()?;
        for mut net in self.store.list()? {
            if let Some(m) = net.members.get_mut(id) {
                m.name = name.to_string();
                self.store.save(&net)?;
            }
        }
        Ok(())
    }

    /// Every network container `id` is a member of, `primary` first.
    pub fn memberships(
        &self,
        id: &str,
        primary: Option<&str>,
    ) -> Result<Vec<NetworkRecord>, NetworkError> {
        let mut nets: Vec<NetworkRecord> = self
            .store
            .list()?
            .into_iter()
            .filter(|n| n.members.contains_key(id))
            .collect();
        if let Some(p) = primary {
            nets.sort_by_key(|n| n.name != p && n.id != p);
        }
        Ok(nets)
    }

    /// Removes container `id` from every network (on `rm`), tearing down what it held.
    pub fn forget(&self, id: &str) -> Result<(), NetworkError> {
        self.detach(id)?;
        let _lock = self.store.lock()?;
        for mut net in self.store.list()? {
            if net.members.remove(id).is_some() {
                self.store.save(&net)?;
            }
        }
        Ok(())
    }

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
            if !link::exists(&net.bridge) {
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

    /// After a crash or restart: the bridge and rules of every network that needs one
    /// exist again, and members of containers that no longer exist are dropped.
    pub fn reconcile_networks(&self, exists: &dyn Fn(&str) -> bool) -> Result<(), NetworkError> {
        for net in self.store.list()? {
            let attached = net.members.values().any(|m| m.ip.is_some());
            if !net.is_default() || attached || link::exists(&net.bridge) {
                if let Err(e) = self.ensure_bridge(&net) {
                    tracing::warn!(network = %net.name, error = %e, "reconcile: bridge");
                }
            }
            let gone: Vec<String> = net
                .members
                .keys()
                .filter(|id| !exists(id))
                .cloned()
                .collect();
            for id in &gone {
                tracing::info!(network = %net.name, container = %id, "reconcile: dropping a removed container");
                self.purge(id)?;
            }
            if !gone.is_empty() {
                let _lock = self.store.lock()?;
                let mut fresh = self.store.find(&net.id)?;
                for id in &gone {
                    fresh.members.remove(id);
                }
                self.store.save(&fresh)?;
            }
        }
        Ok(())
    }

    /// Containers that hold something on the host: an address or veth in the records,
    /// a pinned namespace, or DNAT rules.
    pub fn holders(&self) -> Result<Vec<String>, NetworkError> {
        let mut ids = Vec::new();
        for net in self.store.list()? {
            for (id, m) in &net.members {
                if m.ip.is_some() || m.veth.is_some() {
                    ids.push(id.clone());
                }
            }
            ids.extend(firewall::port_owners(&net.bridge));
        }
        if let Ok(entries) = std::fs::read_dir(&self.netns_dir) {
            ids.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Removes everything container `id` holds on the host (veth, addresses, DNAT rules
    /// even without a record, namespace); it stays a member of its networks.
    pub fn purge(&self, id: &str) -> Result<(), NetworkError> {
        self.detach(id)?;
        for net in self.store.list()? {
            if firewall::port_owners(&net.bridge).iter().any(|o| o == id) {
                firewall::remove_ports(&net.bridge, id)?;
            }
        }
        Ok(())
    }
}

fn placeholder(name: &str, subnet: Subnet) -> NetworkRecord {
    NetworkRecord {
        id: String::new(),
        name: name.to_string(),
        created: String::new(),
        bridge: String::new(),
        subnet,
        gateway: subnet.default_gateway(),
        labels: BTreeMap::new(),
        members: BTreeMap::new(),
        last_allocated: None,
    }
}

/// Network names and aliases: Docker's rule, a letter or digit then letters, digits,
/// `_`, `.` and `-`.
fn validate_name(name: &str) -> Result<(), NetworkError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidName {
            name: name.to_string(),
            why: "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".into(),
        })
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
    fn names() {
        assert!(validate_name("my-net_1.x").is_ok());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("").is_err());
    }

    #[test]
    fn interface_tags_are_stable_and_short() {
        assert_eq!(short_hash("a", "b"), short_hash("a", "b"));
        assert_ne!(short_hash("a", "b"), short_hash("b", "a"));
        assert_eq!(format!("sk{}", short_hash("x", "y")).len(), 10);
    }
}
