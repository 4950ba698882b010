//! Persistence of container records: `containers/<id>/record.json`, written atomically
//! (temp + rename; synced too when what the user configured changes), with a lock so
//! several skiff processes (daemonless CLIs, a daemon) never give two containers one
//! name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use skiff_image_store::lock::{FileLock, LockMode};

use super::record::ContainerRecord;
use crate::error::{EngineError, Result};

/// Where container records live.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

/// An exclusive lock: over all records (held while names are reserved or renamed), or
/// over one container's operations.
pub type StoreLock = FileLock;

fn lock_err(e: skiff_image_store::StoreError) -> EngineError {
    EngineError::Internal(format!("container store: {e}"))
}

impl ContainerStore {
    /// Opens (creating) the record directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
        Ok(ContainerStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory of container `id` (record, log, hosts files, writable layer).
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Takes the store-wide lock.
    pub fn lock(&self) -> Result<StoreLock> {
        FileLock::acquire(&self.dir.join(".lock"), LockMode::Exclusive).map_err(lock_err)
    }

    /// Takes container `id`'s operation lock, which `start` and `stop` hold so that a
    /// stop arriving during a (policy) start waits for it and then stops what it started,
    /// instead of being overwritten by it.
    pub fn lock_ops(&self, id: &str) -> Result<StoreLock> {
        FileLock::acquire(&self.dir_of(id).join(".ops.lock"), LockMode::Exclusive).map_err(lock_err)
    }

    /// The operation lock if nobody holds it (`None` while a start or stop runs).
    pub fn try_lock_ops(&self, id: &str) -> Result<Option<StoreLock>> {
        FileLock::try_acquire(&self.dir_of(id).join(".ops.lock"), LockMode::Exclusive)
            .map_err(lock_err)
    }

    /// Writes a record atomically and durably (creation, rename, update: what the user
    /// configured).
    pub fn save(&self, rec: &ContainerRecord) -> Result<()> {
        self.write(rec, true)
    }

    /// Saves a state change (running, exited, paused, removing...): atomically, but
    /// without waiting for the disk. State is rebuilt from the shims when the daemon
    /// starts (and after a host crash nothing runs anyway), so losing the newest state to
    /// a power cut costs nothing, while a sync per transition is a millisecond or more
    /// on every start and exit.
    pub fn save_state(&self, rec: &ContainerRecord) -> Result<()> {
        self.write(rec, false)
    }

    fn write(&self, rec: &ContainerRecord, durable: bool) -> Result<()> {
        let dir = self.dir_of(&rec.id);
        // Never re-create a removed container: a late exit record must not revive it.
        if !dir.is_dir() {
            return Err(EngineError::NotFound(format!(
                "No such container: {}",
                rec.id
            )));
        }
        let path = dir.join("record.json");
        // Unique per writer: a daemon and CLIs may save the same record at once.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".record.json.{}.{seq}", std::process::id()));
        let body =
            serde_json::to_vec_pretty(rec).map_err(|e| EngineError::Internal(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(|e| EngineError::io("writing", &tmp, e))?;
        f.write_all(&body)
            .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
            .map_err(|e| EngineError::io("writing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            EngineError::io("renaming", &path, e)
        })
    }

    /// Reads one record.
    pub fn load(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let path = self.dir_of(id).join("record.json");
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                EngineError::Internal(format!("corrupt record {}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io("reading", &path, e)),
        }
    }

    /// Every record (unreadable ones are skipped with a warning).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(|e| EngineError::io("listing", &self.dir, e))? {
            let Ok(e) = e else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() != 64 {
                continue;
            }
            match self.load(&name) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(container = %name, error = %err, "skipping unreadable container record")
                }
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container by full ID, unique ID prefix, or name, as Docker does.
    pub fn find(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let key = name_or_id.trim_start_matches('/');
        let not_found = || EngineError::NotFound(format!("No such container: {name_or_id}"));
        if key.is_empty() {
            return Err(not_found());
        }
        if key.len() == 64 {
            if let Some(r) = self.load(key)? {
                return Ok(r);
            }
        }
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == key) {
            return Ok(r.clone());
        }
        let matches: Vec<&ContainerRecord> = all.iter().filter(|r| r.id.starts_with(key)).collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(matches[0].clone()),
            _ => Err(EngineError::InvalidInput(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// Deletes a container's directory (record, log, writable layer).
    pub fn remove(&self, id: &str) -> Result<()> {
        let d = self.dir_of(id);
        match fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io("removing", &d, e)),
        }
    }
}
