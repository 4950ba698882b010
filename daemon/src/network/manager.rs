//! [`Networks`]: the network operations of one engine. This file: opening, listing,
//! `create`, `rm`, `prune` and the default bridge. Membership (`join`, `leave`) is in
//! [`super::membership`], wiring a namespace (`attach`, `detach`) in [`super::attach`]:
//! everything a container needs is done on a namespace path, so a pod sandbox or a CRI
//! front end can wire any namespace the same way. Recovery is in [`super::reconcile`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::error::NetworkError;
use super::record::{NetworkRecord, DEFAULT_NETWORK};
use super::store::NetworkStore;
use super::subnet::Subnet;
use super::{firewall, link};

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
    pub(super) store: NetworkStore,
    pub(super) netns_dir: PathBuf,
    default_bridge: String,
    default_subnet: String,
    pool: String,
    ip_forward: bool,
}

fn new_id() -> String {
    crate::container::new_id()
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
        validate_bridge_name(default_bridge)?;
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
pub(super) fn validate_name(name: &str) -> Result<(), NetworkError> {
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

/// `bridge-name`: an interface name skiff may create or use as its bridge. It goes
/// into `ip` batches, iptables rules and `/proc/sys` paths, so only
/// `[A-Za-z0-9_.-]{1,15}` without `..`; an existing interface must be a bridge (never
/// `eth0`).
pub(super) fn validate_bridge_name(name: &str) -> Result<(), NetworkError> {
    let bad = |why: String| {
        Err(NetworkError::InvalidOption {
            option: "bridge-name",
            value: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 15 {
        return bad("must be 1 to 15 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return bad("only letters, digits, '_', '.' and '-' are allowed".into());
    }
    if name == "." || name.contains("..") {
        return bad("must not be '.' or contain '..'".into());
    }
    if link::exists(name) && !link::is_bridge(name) {
        return bad(format!("host interface {name} exists and is not a bridge"));
    }
    Ok(())
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
    fn bridge_names() {
        for ok in ["skiff0", "sk-0123456789", "br_test.1", "a"] {
            assert!(validate_bridge_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "sixteen-chars-xx",
            "a/b",
            "../x",
            "a..b",
            ".",
            "a b",
            "a\tb",
            "br;x",
            "br\nlink",
            "brü",
        ] {
            assert!(validate_bridge_name(bad).is_err(), "{bad:?}");
        }
        // An existing interface that is not a bridge: the loopback is always there.
        let e = validate_bridge_name("lo").unwrap_err().to_string();
        assert!(e.contains("not a bridge"), "{e}");
        if link::exists("eth0") && !link::is_bridge("eth0") {
            assert!(validate_bridge_name("eth0").is_err());
        }
        assert!(link::ensure_bridge("lo", Ipv4Addr::new(10, 0, 0, 1), 24).is_err());
    }
}
