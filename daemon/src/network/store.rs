//! Persistence of networks: `<data root>/networks/<id>.json`, written atomically
//! (temp file, rename), under one lock so daemonless CLIs and skiffd never hand out
//! one address twice.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use skiff_image_store::lock::{FileLock, LockMode};

use super::error::NetworkError;
use super::record::NetworkRecord;

/// Where network records live.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

/// The store-wide lock; held across read-modify-write of records.
pub type NetworkLock = FileLock;

impl NetworkStore {
    /// Opens (creating) the record directory.
    pub fn open(dir: &Path) -> Result<Self, NetworkError> {
        fs::create_dir_all(dir).map_err(|e| NetworkError::io("creating", dir, e))?;
        Ok(NetworkStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Takes the exclusive lock.
    pub fn lock(&self) -> Result<NetworkLock, NetworkError> {
        let path = self.dir.join(".lock");
        FileLock::acquire(&path, LockMode::Exclusive).map_err(|e| NetworkError::State {
            path,
            why: e.to_string(),
        })
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes a record atomically (temp file + rename). No fsync: the attachments it
    /// records only exist in the running kernel, which a power loss takes with it, and
    /// a killed process loses no written data; this keeps fsyncs off the start path.
    pub fn save(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        let path = self.path_of(&rec.id);
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", rec.id, std::process::id()));
        let body = serde_json::to_vec_pretty(rec).map_err(|e| NetworkError::State {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(|e| NetworkError::io("writing", &tmp, e))?;
        f.write_all(&body)
            .map_err(|e| NetworkError::io("writing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            NetworkError::io("renaming", &path, e)
        })
    }

    /// Every network, oldest first.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworkError> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.dir).map_err(|e| NetworkError::io("listing", &self.dir, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let path = e.path();
            let body = match fs::read(&path) {
                Ok(b) => b,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(NetworkError::io("reading", &path, err)),
            };
            match serde_json::from_slice::<NetworkRecord>(&body) {
                Ok(r) => out.push(r),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "skipping unreadable network record")
                }
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Finds a network by name, full ID or unique ID prefix.
    pub fn find(&self, key: &str) -> Result<NetworkRecord, NetworkError> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkRecord> = if key.is_empty() {
            Vec::new()
        } else {
            all.iter().filter(|n| n.id.starts_with(key)).collect()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(NetworkError::NotFound(key.to_string())),
        }
    }

    /// Deletes a record.
    pub fn remove(&self, id: &str) -> Result<(), NetworkError> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetworkError::io("removing", &path, e)),
        }
    }
}
