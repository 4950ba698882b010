//! The container side of networking: checking `--network`/`-p` at create, wiring a
//! container's namespace before its shim starts and unwiring it when its task ends,
//! `network connect`/`disconnect`, `/etc/hosts` of peers on user networks, published
//! ports, and reconciliation after a restart. The network work itself is done by
//! [`crate::network::Networks`] on a namespace path; Docker-shaped views are in
//! [`super::network_json`].

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::options::{CreateOptions, NetworkMode};
use super::record::ContainerRecord;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::network::files::{self, HostEntry};
use crate::network::{dns, netns, ports, Member, NetworkRecord, PortBinding, PortSpec};

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
