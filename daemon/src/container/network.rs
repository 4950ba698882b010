//! The container side of networking: checking `--network`/`-p` at create, wiring a
//! container's namespace before its shim starts and unwiring it when its task ends,
//! `network connect`/`disconnect`, `/etc/hosts` of peers on user networks, published
//! ports, and reconciliation after a restart. The network work itself is done by
//! [`crate::network::Networks`] on a namespace path.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::options::{CreateOptions, NetworkMode};
use super::record::ContainerRecord;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::network::files::{self, HostEntry};
use crate::network::{
    dns, netns, ports, Member, NetworkError, NetworkRecord, PortBinding, PortSpec,
};

impl Engine {
    /// Validates the network options of a create request before anything is written.
    pub(crate) fn check_network_options(&self, opts: &CreateOptions) -> Result<()> {
        let publishes = !opts.publish.is_empty() || opts.publish_all;
        match &opts.network {
            NetworkMode::Container(target) => {
                if target.is_empty() {
                    return Err(EngineError::InvalidInput(
                        "--network container: needs a container name or ID".into(),
                    ));
                }
                self.containers.find(target)?;
            }
            NetworkMode::Named(n) => {
                self.networks.find(n)?;
            }
            NetworkMode::Bridge => {
                self.networks.default_network()?;
            }
            NetworkMode::None | NetworkMode::Host => {}
        }
        if publishes && opts.network.network_name().is_none() {
            return Err(EngineError::InvalidInput(format!(
                "conflicting options: port publishing and the {} network mode",
                opts.network.docker_name()
            )));
        }
        if !opts.network_aliases.is_empty() && !matches!(opts.network, NetworkMode::Named(_)) {
            return Err(EngineError::InvalidInput(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        Ok(())
    }

    /// `-P`: adds the image's exposed ports (random host ports) to `-p`.
    pub(crate) fn add_exposed_ports(
        &self,
        opts: &mut CreateOptions,
        image_config: &serde_json::Value,
    ) {
        if !opts.publish_all {
            return;
        }
        for (port, proto) in ports::exposed_ports(image_config) {
            let already = opts
                .publish
                .iter()
                .any(|p| p.container_port == port && p.proto == proto);
            if !already {
                opts.publish.push(PortSpec {
                    host_ip: None,
                    host_port: 0,
                    container_port: port,
                    proto,
                });
            }
        }
    }

    /// Makes a new container a member of its network.
    pub(crate) fn join_network(&self, rec: &ContainerRecord) -> Result<()> {
        if let Some(net) = rec.options.network.network_name() {
            self.networks
                .join(net, &rec.id, &rec.name, &rec.options.network_aliases)?;
        }
        Ok(())
    }

    /// Before the shim starts: the network namespace the container will use, wired
    /// into its networks, and the bundle's spec pointing at it.
    pub(crate) fn setup_network(&self, rec: &ContainerRecord) -> Result<()> {
        let spec = rec.bundle.join("config.json");
        match &rec.options.network {
            NetworkMode::None | NetworkMode::Host => Ok(()),
            NetworkMode::Container(target) => {
                let t = self.sync_state(self.containers.find(target)?)?;
                if !t.state.status.has_task() {
                    return Err(EngineError::Conflict(format!(
                        "cannot join the network namespace of container {}: it is not running",
                        t.name
                    )));
                }
                let pinned = self.networks.netns_path(&t.id);
                let ns = match t.options.network {
                    NetworkMode::Host => None,
                    _ if netns::is_namespace(&pinned) => Some(pinned),
                    _ => Some(PathBuf::from(format!("/proc/{}/ns/net", t.state.pid))),
                };
                Ok(netns::set_spec_namespace(&spec, ns.as_deref())?)
            }
            NetworkMode::Bridge | NetworkMode::Named(_) => {
                let primary = rec.options.network.network_name().unwrap_or_default();
                let net = self.networks.find(primary)?;
                if !net.members.contains_key(&rec.id) {
                    self.networks.join(
                        primary,
                        &rec.id,
                        &rec.name,
                        &rec.options.network_aliases,
                    )?;
                }
                let ns = self.networks.netns_path(&rec.id);
                let t0 = std::time::Instant::now();
                // Whatever a crash or reboot left of an earlier run goes first.
                self.networks.detach(&rec.id)?;
                netns::create(&ns)?;
                tracing::debug!(elapsed = ?t0.elapsed(), "network: namespace pinned");
                let wired = self
                    .networks
                    .attach(&ns, &rec.id, &rec.name, primary, &rec.options.publish)
                    .map_err(EngineError::from)
                    .and_then(|_| {
                        self.write_resolv_conf(rec)?;
                        self.refresh_hosts(&rec.id)?;
                        Ok(netns::set_spec_namespace(&spec, Some(&ns))?)
                    });
                if wired.is_err() {
                    let _ = self.networks.detach(&rec.id);
                }
                tracing::debug!(elapsed = ?t0.elapsed(), "network: wired");
                wired
            }
        }
    }

    /// After the task ended (or failed to start): unwires the container and updates
    /// its peers' `/etc/hosts`. Best effort and idempotent.
    pub(crate) fn release_network(&self, id: &str) {
        let t0 = std::time::Instant::now();
        let peers = self.peers_of(id);
        if let Err(e) = self.networks.detach(id) {
            tracing::warn!(container = %id, error = %e, "releasing the container's network");
        }
        for p in peers {
            let _ = self.write_hosts(&p);
        }
        tracing::debug!(elapsed = ?t0.elapsed(), "network: released");
    }

    /// On `rm`: leaves every network.
    pub(crate) fn forget_network(&self, id: &str) -> Result<()> {
        let peers = self.peers_of(id);
        self.networks.forget(id)?;
        for p in peers {
            let _ = self.write_hosts(&p);
        }
        Ok(())
    }

    /// After `rename`: the new name on the container's networks and in its peers'
    /// `/etc/hosts`.
    pub(crate) fn rename_network_member(&self, id: &str, name: &str) {
        if let Err(e) = self.networks.rename_member(id, name) {
            tracing::warn!(container = %id, error = %e, "renaming on networks");
        }
        for p in self.peers_of(id) {
            let _ = self.write_hosts(&p);
        }
    }

    /// Containers attached to the same user networks as `id`.
    fn peers_of(&self, id: &str) -> BTreeSet<String> {
        self.networks
            .memberships(id, None)
            .unwrap_or_default()
            .iter()
            .filter(|n| !n.is_default())
            .flat_map(|n| n.members.iter())
            .filter(|(cid, m)| cid.as_str() != id && m.ip.is_some())
            .map(|(cid, _)| cid.clone())
            .collect()
    }

    /// Rewrites `/etc/hosts` of `id` and of its peers.
    fn refresh_hosts(&self, id: &str) -> Result<()> {
        self.write_hosts(id)?;
        for p in self.peers_of(id) {
            let _ = self.write_hosts(&p);
        }
        Ok(())
    }

    /// Writes container `id`'s `/etc/hosts` in place (the bind mount follows the
    /// file's inode, so a running container sees the change).
    fn write_hosts(&self, id: &str) -> Result<()> {
        let Some(rec) = self.containers.load(id)? else {
            return Ok(());
        };
        let path = self.container_dir(id).join("hosts");
        if !path.exists() {
            return Ok(());
        }
        let nets = self
            .networks
            .memberships(id, rec.options.network.network_name())?;
        let own: Vec<Ipv4Addr> = nets
            .iter()
            .filter_map(|n| n.members.get(id).and_then(|m| m.ip))
            .collect();
        let mut peers = Vec::new();
        for n in nets.iter().filter(|n| !n.is_default()) {
            for (cid, m) in &n.members {
                if cid == id {
                    continue;
                }
                if let Some(ip) = m.ip {
                    let mut names = vec![m.name.clone()];
                    names.extend(m.aliases.iter().cloned());
                    names.push(cid[..12.min(cid.len())].to_string());
                    peers.push(HostEntry { ip, names });
                }
            }
        }
        let hostname = rec
            .options
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| rec.short_id().to_string());
        let body = files::hosts(&hostname, &own, &peers);
        fs::write(&path, body).map_err(|e| EngineError::io("writing", &path, e))
    }

    /// Writes the container's resolv.conf: the embedded DNS server of its user network
    /// when skiffd serves one, else the host's resolvers.
    fn write_resolv_conf(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.container_dir(&rec.id).join("resolv.conf");
        let embedded = match &rec.options.network {
            NetworkMode::Named(n) if dns::is_served(&self.config().run_root) => {
                Some(self.networks.find(n)?.gateway)
            }
            _ => None,
        };
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let body = files::resolv_conf(&host, embedded);
        fs::write(&path, body).map_err(|e| EngineError::io("writing", &path, e))
    }

    /// `network connect`: makes the container a member and, when it runs, wires it.
    pub fn connect_container(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        let rec = self.sync_state(self.containers.find(container)?)?;
        match &rec.options.network {
            NetworkMode::Bridge | NetworkMode::Named(_) => {}
            other => {
                return Err(EngineError::Conflict(format!(
                    "container {} uses the {} network mode and cannot be connected to networks",
                    rec.name,
                    other.docker_name()
                )))
            }
        }
        let net = self.networks.join(network, &rec.id, &rec.name, aliases)?;
        let ns = self.networks.netns_path(&rec.id);
        if rec.state.status.has_task() && netns::is_namespace(&ns) {
            if let Err(e) = self
                .networks
                .attach_one(&ns, &net.id, &rec.id, &rec.name, false, &[])
            {
                let _ = self.networks.leave(&net.id, &rec.id);
                return Err(e.into());
            }
            self.refresh_hosts(&rec.id)?;
        }
        Ok(())
    }

    /// `network disconnect`: unwires the container from the network and drops it.
    pub fn disconnect_container(&self, network: &str, container: &str) -> Result<()> {
        let rec = self.containers.find(container)?;
        let peers = self.peers_of(&rec.id);
        self.networks.leave(network, &rec.id)?;
        let _ = self.write_hosts(&rec.id);
        for p in peers {
            let _ = self.write_hosts(&p);
        }
        Ok(())
    }

    /// The networks a container is on, with what it holds on each (primary first).
    pub fn container_networks(&self, rec: &ContainerRecord) -> Vec<(NetworkRecord, Member)> {
        self.networks
            .memberships(&rec.id, rec.options.network.network_name())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| {
                let m = n.members.get(&rec.id)?.clone();
                Some((n, m))
            })
            .collect()
    }

    /// `port`: the ports a running container publishes.
    pub fn container_ports(&self, name: &str) -> Result<Vec<PortBinding>> {
        let rec = self.containers.find(name)?;
        Ok(self
            .container_networks(&rec)
            .into_iter()
            .flat_map(|(_, m)| m.ports)
            .collect())
    }

    /// `network rm`, by name or ID.
    pub fn remove_network(&self, key: &str) -> Result<NetworkRecord> {
        Ok(self.networks.remove(key)?)
    }

    /// Brings the host in line with the records after a restart or crash: no veth,
    /// rule, address or namespace of a container that does not run survives, and
    /// running containers keep theirs. A container being started or stopped right now
    /// (its operation lock is held, maybe by a daemonless CLI) is left alone; the others
    /// are checked and cleaned while their lock is held, so no start can interleave.
    pub fn reconcile_networks(&self) -> Result<()> {
        let exists = |id: &str| self.container_dir(id).join("record.json").exists();
        self.networks.reconcile_networks(&exists)?;
        for id in self.networks.holders()? {
            if !exists(&id) {
                self.networks.purge(&id)?;
                continue;
            }
            let Some(_ops) = self.containers.try_lock_ops(&id)? else {
                continue;
            };
            let running = match self.containers.load(&id)? {
                Some(rec) => self
                    .sync_state(rec)
                    .map(|r| r.state.status.has_task())
                    .unwrap_or(true),
                None => false,
            };
            if !running {
                tracing::info!(container = %id, "reconcile: releasing the network of a container that does not run");
                self.networks.purge(&id)?;
            }
        }
        Ok(())
    }
}

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
