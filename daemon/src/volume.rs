//! Named volumes, as Docker's `local` driver keeps them: the data in
//! `<data-root>/volumes/<name>/_data`, what `volume inspect` shows in `volume.json` next
//! to it. `-v NAME:/dst` creates a volume on first use; `volume create|ls|inspect|rm|prune`
//! manage them. A volume is in use while any container (running or not) names it.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::container::now_rfc3339;
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// The label Docker puts on volumes created without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What is kept about a volume (`volume.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// The volume's name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// User labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A volume as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// What is kept about it.
    pub record: VolumeRecord,
    /// The host directory containers mount.
    pub mountpoint: PathBuf,
    /// IDs of the containers that name it.
    pub users: Vec<String>,
}

impl Volume {
    /// Docker's Volume object (`volume inspect`, the API); `size` in bytes adds the
    /// `UsageData` that `system df` shows.
    pub fn docker_json(&self, size: Option<u64>) -> serde_json::Value {
        let mut out = serde_json::json!({
            "Name": self.record.name,
            "Driver": "local",
            "Mountpoint": self.mountpoint,
            "CreatedAt": self.record.created_at,
            "Labels": self.record.labels,
            "Scope": "local",
            "Options": {},
        });
        if let Some(size) = size {
            out["UsageData"] = serde_json::json!({"Size": size, "RefCount": self.users.len()});
        }
        out
    }
}

/// What `volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// The name; a random one (and the anonymous label) when absent.
    pub name: Option<String>,
    /// The driver: only `local` (or none) is supported.
    pub driver: Option<String>,
    /// Driver options: the local driver's mount options are not supported.
    pub driver_opts: BTreeMap<String, String>,
    /// User labels.
    pub labels: BTreeMap<String, String>,
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at most 255 bytes.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    first_ok && rest_ok && name.len() <= 255
}

/// [`is_valid_name`] as an error for the caller.
pub fn validate_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(EngineError::InvalidInput(format!(
            "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (2 to 255 characters)"
        )))
    }
}

impl Engine {
    fn volume_root(&self) -> PathBuf {
        self.config().data_root.join("volumes")
    }

    /// Creates a volume, or returns the one of that name (creating is idempotent, as in
    /// Docker).
    pub fn create_volume(&self, req: &CreateVolume) -> Result<Volume> {
        match req.driver.as_deref() {
            None | Some("") | Some("local") => {}
            Some(other) => {
                return Err(EngineError::InvalidInput(format!(
                    "volume driver {other:?} is not supported by skiff (only local)"
                )))
            }
        }
        if let Some(k) = req.driver_opts.keys().next() {
            return Err(EngineError::InvalidInput(format!(
                "volume driver option {k:?} is not supported by skiff (the local driver's mount options are not available)"
            )));
        }
        let mut labels = req.labels.clone();
        let name = match &req.name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                crate::container::new_id()
            }
        };
        validate_name(&name)?;
        let dir = self.volume_root().join(&name);
        if dir.join("_data").is_dir() {
            return self.volume(&name);
        }
        self.write_volume(&dir, &name, labels)?;
        self.volume(&name)
    }

    /// Makes sure volume `name` exists (a container about to mount it).
    pub fn ensure_volume(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let dir = self.volume_root().join(name);
        if dir.join("_data").is_dir() && dir.join("volume.json").is_file() {
            return Ok(());
        }
        self.write_volume(&dir, name, BTreeMap::new())
    }

    fn write_volume(
        &self,
        dir: &std::path::Path,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        let data = dir.join("_data");
        fs::create_dir_all(&data).map_err(|e| EngineError::io("creating volume", &data, e))?;
        let meta = dir.join("volume.json");
        if meta.exists() {
            return Ok(());
        }
        let rec = VolumeRecord {
            name: name.to_string(),
            created_at: now_rfc3339(),
            labels,
        };
        let body =
            serde_json::to_vec_pretty(&rec).map_err(|e| EngineError::Internal(e.to_string()))?;
        let tmp = dir.join(format!(".volume.json.{}", std::process::id()));
        fs::write(&tmp, body)
            .and_then(|_| fs::rename(&tmp, &meta))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                EngineError::io("writing", &meta, e)
            })
    }

    /// Which containers name which volumes.
    fn volume_users(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in self.containers.list()? {
            for v in &c.options.volumes {
                if !v.source.contains('/') {
                    users
                        .entry(v.source.clone())
                        .or_default()
                        .push(c.id.clone());
                }
            }
        }
        Ok(users)
    }

    fn load_volume(&self, name: &str, users: &BTreeMap<String, Vec<String>>) -> Option<Volume> {
        let dir = self.volume_root().join(name);
        let data = dir.join("_data");
        let meta = fs::symlink_metadata(&data).ok().filter(|m| m.is_dir())?;
        // Volumes made before volume.json existed: their directory's time stands in.
        let record = fs::read(dir.join("volume.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<VolumeRecord>(&b).ok())
            .filter(|r| r.name == name)
            .unwrap_or_else(|| VolumeRecord {
                name: name.to_string(),
                created_at: meta
                    .modified()
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
                    .unwrap_or_default(),
                labels: BTreeMap::new(),
            });
        Some(Volume {
            record,
            mountpoint: data,
            users: users.get(name).cloned().unwrap_or_default(),
        })
    }

    /// One volume.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        let users = self.volume_users()?;
        if !is_valid_name(name) {
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        }
        self.load_volume(name, &users)
            .ok_or_else(|| EngineError::NotFound(format!("get {name}: no such volume")))
    }

    /// Every volume, by name.
    pub fn list_volumes(&self) -> Result<Vec<Volume>> {
        let users = self.volume_users()?;
        let mut names: Vec<String> = match fs::read_dir(self.volume_root()) {
            Ok(d) => d
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_valid_name(n))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(EngineError::io("listing", &self.volume_root(), e)),
        };
        names.sort();
        Ok(names
            .iter()
            .filter_map(|n| self.load_volume(n, &users))
            .collect())
    }

    /// Removes a volume no container names. `force` makes a missing volume no error
    /// (Docker's `volume rm -f`); a volume in use is never removed.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let v = match self.volume(name) {
            Ok(v) => v,
            Err(EngineError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        self.delete_unused(&v)
    }

    /// Deletes a volume found unused when `v` was read (`v.users` empty).
    fn delete_unused(&self, v: &Volume) -> Result<()> {
        let name = &v.record.name;
        if !v.users.is_empty() {
            let ids: Vec<&str> = v.users.iter().map(|id| &id[..12.min(id.len())]).collect();
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        let dir = self.volume_root().join(name);
        fs::remove_dir_all(&dir).map_err(|e| EngineError::io("removing volume", &dir, e))
    }

    /// Gives the container's anonymous volumes (`-v /path`: an empty source) generated
    /// names and creates them; returns the names. The caller removes them again if the
    /// create fails ([`Engine::remove_anonymous_volumes`]).
    pub fn create_anonymous_volumes(
        &self,
        volumes: &mut [crate::container::options::VolumeMount],
    ) -> Result<Vec<String>> {
        let mut made = Vec::new();
        for v in volumes.iter_mut().filter(|v| v.source.is_empty()) {
            match self.create_volume(&CreateVolume::default()) {
                Ok(vol) => {
                    v.source = vol.record.name.clone();
                    made.push(vol.record.name);
                }
                Err(e) => {
                    for name in &made {
                        let _ = self.remove_volume(name, true);
                    }
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// Removes the anonymous volumes a (removed) container named, unless another
    /// container uses them too. Failures are logged: the container is gone already.
    pub fn remove_anonymous_volumes(&self, rec: &crate::container::record::ContainerRecord) {
        let named: Vec<&str> = rec
            .options
            .volumes
            .iter()
            .filter(|v| !v.source.is_empty() && !v.source.contains('/'))
            .map(|v| v.source.as_str())
            .collect();
        if named.is_empty() {
            return;
        }
        let users = match self.volume_users() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(container = %rec.id, error = %e, "listing volume users");
                return;
            }
        };
        for name in named {
            let Some(vol) = self.load_volume(name, &users) else {
                continue;
            };
            if vol.record.labels.contains_key(ANONYMOUS_LABEL) && vol.users.is_empty() {
                if let Err(e) = self.delete_unused(&vol) {
                    tracing::warn!(volume = %name, error = %e, "removing an anonymous volume");
                }
            }
        }
    }

    /// Removes unused volumes: anonymous ones, or with `all` every unused one; `keep`
    /// says which of them to spare (label filters). Returns the names and the bytes
    /// freed.
    pub fn prune_volumes(
        &self,
        all: bool,
        keep: &dyn Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.list_volumes()? {
            let anonymous = v.record.labels.contains_key(ANONYMOUS_LABEL);
            if !v.users.is_empty() || !(all || anonymous) || keep(&v) {
                continue;
            }
            let size = dir_size(&v.mountpoint);
            self.delete_unused(&v)?;
            freed += size;
            removed.push(v.record.name);
        }
        Ok((removed, freed))
    }
}

/// Bytes in a directory tree (not following symlinks).
pub fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(p)
        .map(|d| d.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "data", "my_vol.1-x", "0a"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-ab",
            ".ab",
            "a/b",
            "../x",
            "a b",
            "ä b",
            &"x".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
