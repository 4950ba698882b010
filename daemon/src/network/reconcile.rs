//! Recovery after a crash or restart: bridges and rules back in place, and what
//! containers that no longer run still hold on the host found and removed.

use super::error::NetworkError;
use super::manager::Networks;
use super::{firewall, link};

impl Networks {
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
