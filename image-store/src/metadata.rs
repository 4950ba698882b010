//! The metadata database (redb): images, tags and snapshots.
//!
//! redb commits are crash-safe (a kill -9 at any moment leaves the last committed state).
//! The database is opened for each operation under an flock, so several skiff processes
//! (daemonless CLIs, a daemon) can share one store.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::{ImageRecord, SnapshotRecord};
use crate::lock::{FileLock, LockMode};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

/// Handle on the metadata database of one store.
#[derive(Debug, Clone)]
pub struct Metadata {
    path: PathBuf,
    lock: PathBuf,
}

/// A write transaction's view, given to [`Metadata::write`] closures.
pub struct Writer<'a> {
    txn: &'a redb::WriteTransaction,
    path: &'a Path,
}

/// A read view, given to [`Metadata::read`] closures.
pub struct Reader<'a> {
    txn: &'a redb::ReadTransaction,
    path: &'a Path,
}

impl Metadata {
    /// Opens (creating if needed) the database under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let m = Metadata {
            path: root.join("metadata.redb"),
            lock: root.join("metadata.lock"),
        };
        // Create tables when the database is new, so readers never see a missing table.
        if m.path.exists() {
            return Ok(m);
        }
        m.write(|w| {
            w.txn.open_table(IMAGES).map_err(|e| w.err(e))?;
            w.txn.open_table(TAGS).map_err(|e| w.err(e))?;
            w.txn.open_table(SNAPSHOTS).map_err(|e| w.err(e))?;
            w.txn.open_table(SETTINGS).map_err(|e| w.err(e))?;
            Ok(())
        })?;
        Ok(m)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Metadata {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    fn db(&self) -> Result<(FileLock, Database)> {
        let lock = FileLock::acquire(&self.lock, LockMode::Exclusive)?;
        let db = Database::builder()
            .set_cache_size(1 << 20)
            .create(&self.path)
            .map_err(|e| self.err(e))?;
        Ok((lock, db))
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub fn write<T>(&self, f: impl FnOnce(&Writer) -> Result<T>) -> Result<T> {
        let (_lock, db) = self.db()?;
        let txn = db.begin_write().map_err(|e| self.err(e))?;
        let out = f(&Writer {
            txn: &txn,
            path: &self.path,
        })?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Runs `f` on a consistent read view.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let (_lock, db) = self.db()?;
        let txn = db.begin_read().map_err(|e| self.err(e))?;
        f(&Reader {
            txn: &txn,
            path: &self.path,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Metadata {
        path: path.to_path_buf(),
        why: format!("corrupt record: {e}"),
    })
}

fn encode<T: serde::Serialize>(path: &Path, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Metadata {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

macro_rules! read_methods {
    ($t:ty) => {
        impl $t {
            fn err(&self, e: impl std::fmt::Display) -> StoreError {
                StoreError::Metadata {
                    path: self.path.to_path_buf(),
                    why: e.to_string(),
                }
            }

            /// The image with this ID.
            pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
                let t = self.txn.open_table(IMAGES).map_err(|e| self.err(e))?;
                let v = t.get(id.to_string().as_str()).map_err(|e| self.err(e))?;
                v.map(|v| decode(self.path, v.value())).transpose()
            }

            /// Every image.
            pub fn images(&self) -> Result<Vec<ImageRecord>> {
                let t = self.txn.open_table(IMAGES).map_err(|e| self.err(e))?;
                let mut out = Vec::new();
                for row in t.iter().map_err(|e| self.err(e))? {
                    let (_, v) = row.map_err(|e| self.err(e))?;
                    out.push(decode(self.path, v.value())?);
                }
                Ok(out)
            }

            /// The image ID a `registry/repo:tag` name points at.
            pub fn tag(&self, name: &str) -> Result<Option<Digest>> {
                let t = self.txn.open_table(TAGS).map_err(|e| self.err(e))?;
                let v = t.get(name).map_err(|e| self.err(e))?;
                v.map(|v| v.value().parse::<Digest>().map_err(|e| self.err(e)))
                    .transpose()
            }

            /// Every (name:tag, image ID) pair.
            pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
                let t = self.txn.open_table(TAGS).map_err(|e| self.err(e))?;
                let mut out = Vec::new();
                for row in t.iter().map_err(|e| self.err(e))? {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    out.push((
                        k.value().to_string(),
                        v.value().parse().map_err(|e| self.err(e))?,
                    ));
                }
                Ok(out)
            }

            /// The snapshot of a chain ID.
            pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<SnapshotRecord>> {
                let t = self.txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
                let v = t
                    .get(chain_id.to_string().as_str())
                    .map_err(|e| self.err(e))?;
                v.map(|v| decode(self.path, v.value())).transpose()
            }

            /// Every snapshot with its chain ID.
            pub fn snapshots(&self) -> Result<Vec<(Digest, SnapshotRecord)>> {
                let t = self.txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
                let mut out = Vec::new();
                for row in t.iter().map_err(|e| self.err(e))? {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    out.push((
                        k.value().parse().map_err(|e| self.err(e))?,
                        decode(self.path, v.value())?,
                    ));
                }
                Ok(out)
            }

            /// A store-wide setting.
            pub fn setting(&self, key: &str) -> Result<Option<String>> {
                let t = self.txn.open_table(SETTINGS).map_err(|e| self.err(e))?;
                let v = t.get(key).map_err(|e| self.err(e))?;
                Ok(v.map(|v| v.value().to_string()))
            }
        }
    };
}

read_methods!(Reader<'_>);
read_methods!(Writer<'_>);

impl Writer<'_> {
    /// Inserts or replaces an image record.
    pub fn put_image(&self, img: &ImageRecord) -> Result<()> {
        let mut t = self.txn.open_table(IMAGES).map_err(|e| self.err(e))?;
        let bytes = encode(self.path, img)?;
        t.insert(img.id.to_string().as_str(), bytes.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes an image record.
    pub fn remove_image(&self, id: &Digest) -> Result<()> {
        let mut t = self.txn.open_table(IMAGES).map_err(|e| self.err(e))?;
        t.remove(id.to_string().as_str()).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Points `name` (registry/repo:tag) at an image; returns the image it pointed at before.
    pub fn set_tag(&self, name: &str, id: &Digest) -> Result<Option<Digest>> {
        let mut t = self.txn.open_table(TAGS).map_err(|e| self.err(e))?;
        let old = t
            .insert(name, id.to_string().as_str())
            .map_err(|e| self.err(e))?;
        old.map(|v| v.value().parse::<Digest>().map_err(|e| self.err(e)))
            .transpose()
    }

    /// Removes a tag; returns the image it pointed at.
    pub fn remove_tag(&self, name: &str) -> Result<Option<Digest>> {
        let mut t = self.txn.open_table(TAGS).map_err(|e| self.err(e))?;
        let old = t.remove(name).map_err(|e| self.err(e))?;
        old.map(|v| v.value().parse::<Digest>().map_err(|e| self.err(e)))
            .transpose()
    }

    /// Records a committed snapshot.
    pub fn put_snapshot(&self, chain_id: &Digest, s: &SnapshotRecord) -> Result<()> {
        let mut t = self.txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        let bytes = encode(self.path, s)?;
        t.insert(chain_id.to_string().as_str(), bytes.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a snapshot.
    pub fn remove_snapshot(&self, chain_id: &Digest) -> Result<()> {
        let mut t = self.txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        t.remove(chain_id.to_string().as_str())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Sets a store-wide setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut t = self.txn.open_table(SETTINGS).map_err(|e| self.err(e))?;
        t.insert(key, value).map_err(|e| self.err(e))?;
        Ok(())
    }
}
