//! Which containers are on which network: `join`, `leave`, renames, and forgetting a
//! removed container.

use super::error::NetworkError;
use super::manager::{validate_name, Networks};
use super::record::{Member, NetworkRecord, DEFAULT_NETWORK};

impl Networks {
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
}
