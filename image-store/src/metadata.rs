//! The metadata database (redb): images, tags and snapshots.
//!
//! redb commits are crash-safe (a kill -9 at any moment leaves the last committed state).
//! The database is opened for each operation under an flock, so several skiff processes
//! (daemonless CLIs, a daemon) can share one store.
//!
//! Reads open the file through [`SnapshotFile`], a copy-on-write view that never writes
//! or syncs the file: a plain redb open and close of an existing database costs three
//! fdatasyncs and a ~0.5 MiB allocator-state write even when nothing changes, which was
//! most of the metadata cost of a `run`. Readers share the lock; writers hold it alone.
//!
//! Even so, opening redb costs a few milliseconds (it loads the allocator state), paid
//! several times per `run`. So a process keeps the tables it last read in memory and
//! reuses them while the database is unchanged: every writer bumps a generation counter
//! kept in the lock file before it touches the database, and a reader compares that
//! counter (and the file's identity, size and times) under the shared lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable, StorageBackend, TableDefinition, TableHandle};

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
    /// The tables as last read, with the state of the database they were read from.
    cache: Arc<Mutex<Option<CachedTables>>>,
}

/// Tables read into memory, with the state of the database they were read in.
type CachedTables = (Stamp, Arc<Tables>);

/// One state of the database, as a reader holding the lock sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    generation: u64,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Every table of the database, read into memory.
#[derive(Debug, Default)]
struct Tables {
    images: BTreeMap<String, Vec<u8>>,
    tags: BTreeMap<String, String>,
    snapshots: BTreeMap<String, Vec<u8>>,
    settings: BTreeMap<String, String>,
}

/// A write transaction's view, given to [`Metadata::write`] closures.
pub struct Writer<'a> {
    txn: &'a redb::WriteTransaction,
    path: &'a Path,
}

/// A read view, given to [`Metadata::read`] closures.
pub struct Reader<'a> {
    tables: &'a Tables,
    path: &'a Path,
}

impl Metadata {
    /// Opens (creating if needed) the database under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let m = Metadata {
            path: root.join("metadata.redb"),
            lock: root.join("metadata.lock"),
            cache: Arc::new(Mutex::new(None)),
        };
        // Create tables when the database is new, so readers never see a missing table
        // (also when a process was killed after creating the file, before its first
        // commit: the file then exists without tables).
        if m.path.exists() && m.has_tables()? {
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
        // Before anything can change: every process's cached tables are now stale.
        let generation = read_generation(&lock);
        lock.file()
            .write_all_at(&generation.wrapping_add(1).to_le_bytes(), 0)
            .map_err(StoreError::io("bumping the generation in", &self.lock))?;
        let db = Database::builder()
            .set_cache_size(1 << 20)
            // New stores use redb's v3 file format, which keeps the allocator state in
            // the quick-repair commits only: closing the database no longer serialises
            // it (~0.5 MiB, most of a daemonless `run`'s CPU time in skiff itself).
            .create_with_file_format_v3(true)
            .create(&self.path)
            .map_err(|e| self.err(e))?;
        Ok((lock, db))
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub fn write<T>(&self, f: impl FnOnce(&Writer) -> Result<T>) -> Result<T> {
        let (_lock, db) = self.db()?;
        let mut txn = db.begin_write().map_err(|e| self.err(e))?;
        // Save the allocator state with this commit (two-phase): otherwise closing the
        // database makes a second commit just for it, two more fdatasyncs per write.
        txn.set_quick_repair(true);
        let out = f(&Writer {
            txn: &txn,
            path: &self.path,
        })?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Whether every table exists (a read, cheap: nothing is written).
    fn has_tables(&self) -> Result<bool> {
        let (_lock, db) = self.db_read_only()?;
        let txn = db.begin_read().map_err(|e| self.err(e))?;
        let names: Vec<String> = txn
            .list_tables()
            .map_err(|e| self.err(e))?
            .map(|t| t.name().to_string())
            .collect();
        Ok([
            IMAGES.name(),
            TAGS.name(),
            SNAPSHOTS.name(),
            SETTINGS.name(),
        ]
        .iter()
        .all(|n| names.iter().any(|have| have == n)))
    }

    /// Opens the database for reading only: a shared lock, and a backend that keeps
    /// redb's bookkeeping writes (recovery flag, allocator state) in memory, so the file
    /// is left exactly as it was and nothing is synced.
    fn db_read_only(&self) -> Result<(FileLock, Database)> {
        let lock = FileLock::acquire(&self.lock, LockMode::Shared)?;
        let file = File::open(&self.path).map_err(|e| self.err(e))?;
        let len = file.metadata().map_err(|e| self.err(e))?.len();
        // redb's header: a 9-byte magic number, then the "god byte", whose bit 1 says
        // the last writer did not close the file (it crashed: nobody holds it now, we
        // hold the lock). Then a repair is due, and it must be written: take the
        // ordinary path, exclusively. The same for a file never initialised.
        let mut head = [0u8; 10];
        let clean = len >= head.len() as u64
            && file.read_exact_at(&mut head, 0).is_ok()
            && head[..9] == *b"redb\x1a\x0a\xa9\x0d\x0a"
            && head[9] & 2 == 0;
        if !clean {
            drop(lock);
            return self.db();
        }
        let backend = SnapshotFile {
            file,
            state: Mutex::new(Overlay {
                len,
                writes: Vec::new(),
            }),
        };
        let db = Database::builder()
            .set_cache_size(1 << 20)
            .create_with_file_format_v3(true)
            .create_with_backend(backend)
            .map_err(|e| self.err(e))?;
        Ok((lock, db))
    }

    /// Runs `f` on a consistent read view.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let tables = self.tables()?;
        f(&Reader {
            tables: &tables,
            path: &self.path,
        })
    }

    /// The tables as they are now: the cached ones if the database has not changed
    /// since they were read, else read afresh.
    fn tables(&self) -> Result<Arc<Tables>> {
        {
            let lock = FileLock::acquire(&self.lock, LockMode::Shared)?;
            let stamp = self.stamp(&lock)?;
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((cached, tables)) = cache.as_ref() {
                if *cached == stamp {
                    return Ok(tables.clone());
                }
            }
        }
        let (lock, db) = self.db_read_only()?;
        let tables = Arc::new(self.load(&db)?);
        drop(db);
        // The state the tables were read in: nobody can have written since, the lock is
        // still held (a repair on open may have written; then this reads its result).
        let stamp = self.stamp(&lock)?;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((stamp, tables.clone()));
        Ok(tables)
    }

    fn stamp(&self, lock: &FileLock) -> Result<Stamp> {
        let m = std::fs::metadata(&self.path).map_err(|e| self.err(e))?;
        Ok(Stamp {
            generation: read_generation(lock),
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Reads every table.
    fn load(&self, db: &Database) -> Result<Tables> {
        let txn = db.begin_read().map_err(|e| self.err(e))?;
        let mut t = Tables::default();
        let images = txn.open_table(IMAGES).map_err(|e| self.err(e))?;
        for row in images.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            t.images.insert(k.value().to_string(), v.value().to_vec());
        }
        let tags = txn.open_table(TAGS).map_err(|e| self.err(e))?;
        for row in tags.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            t.tags.insert(k.value().to_string(), v.value().to_string());
        }
        let snapshots = txn.open_table(SNAPSHOTS).map_err(|e| self.err(e))?;
        for row in snapshots.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            t.snapshots
                .insert(k.value().to_string(), v.value().to_vec());
        }
        let settings = txn.open_table(SETTINGS).map_err(|e| self.err(e))?;
        for row in settings.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            t.settings
                .insert(k.value().to_string(), v.value().to_string());
        }
        Ok(t)
    }
}

/// The writers' generation counter, kept in the first 8 bytes of the lock file (0 for a
/// new lock file).
fn read_generation(lock: &FileLock) -> u64 {
    let mut b = [0u8; 8];
    match lock.file().read_exact_at(&mut b, 0) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => 0,
    }
}

impl Reader<'_> {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Metadata {
            path: self.path.to_path_buf(),
            why: e.to_string(),
        }
    }

    /// The image with this ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        self.tables
            .images
            .get(&id.to_string())
            .map(|v| decode(self.path, v))
            .transpose()
    }

    /// Every image.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.tables
            .images
            .values()
            .map(|v| decode(self.path, v))
            .collect()
    }

    /// The image ID a `registry/repo:tag` name points at.
    pub fn tag(&self, name: &str) -> Result<Option<Digest>> {
        self.tables
            .tags
            .get(name)
            .map(|v| v.parse::<Digest>().map_err(|e| self.err(e)))
            .transpose()
    }

    /// Every (name:tag, image ID) pair.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        self.tables
            .tags
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.parse().map_err(|e| self.err(e))?)))
            .collect()
    }

    /// The snapshot of a chain ID.
    pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<SnapshotRecord>> {
        self.tables
            .snapshots
            .get(&chain_id.to_string())
            .map(|v| decode(self.path, v))
            .transpose()
    }

    /// Every snapshot with its chain ID.
    pub fn snapshots(&self) -> Result<Vec<(Digest, SnapshotRecord)>> {
        self.tables
            .snapshots
            .iter()
            .map(|(k, v)| Ok((k.parse().map_err(|e| self.err(e))?, decode(self.path, v)?)))
            .collect()
    }

    /// A store-wide setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.tables.settings.get(key).cloned())
    }
}

/// A read-only, copy-on-write view of the database file for [`Metadata::read`]: reads
/// come from the file with this session's own writes laid over them; writes, length
/// changes and syncs stay in memory and are dropped with the view.
#[derive(Debug)]
struct SnapshotFile {
    file: File,
    state: Mutex<Overlay>,
}

#[derive(Debug)]
struct Overlay {
    len: u64,
    /// (offset, bytes), oldest first; later writes win.
    writes: Vec<(u64, Vec<u8>)>,
}

impl StorageBackend for SnapshotFile {
    fn len(&self) -> std::result::Result<u64, std::io::Error> {
        Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()).len)
    }

    fn read(&self, offset: u64, len: usize) -> std::result::Result<Vec<u8>, std::io::Error> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = vec![0u8; len];
        // The file's bytes (zeros past its end, as after a set_len extension).
        let file_len = self.file.metadata()?.len();
        if offset < file_len {
            let n = ((file_len - offset) as usize).min(len);
            self.file.read_exact_at(&mut buf[..n], offset)?;
        }
        let end = offset + len as u64;
        for (w_off, data) in &state.writes {
            let w_end = w_off + data.len() as u64;
            if *w_off >= end || w_end <= offset {
                continue;
            }
            let from = offset.max(*w_off);
            let to = end.min(w_end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - w_off) as usize..(to - w_off) as usize]);
        }
        // Bytes past a shrunken length read as zeros.
        if end > state.len {
            let keep = state.len.saturating_sub(offset) as usize;
            buf[keep.min(len)..].fill(0);
        }
        Ok(buf)
    }

    fn set_len(&self, len: u64) -> std::result::Result<(), std::io::Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if len < state.len {
            // Forget what lay beyond the new end, so a later extension reads zeros.
            let zeros = vec![0u8; (state.len - len) as usize];
            state.writes.push((len, zeros));
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> std::result::Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), std::io::Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.writes.push((offset, data.to_vec()));
        Ok(())
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

impl Writer<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_leave_the_file_untouched_and_see_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(dir.path()).unwrap();
        m.write(|w| w.set_setting("a", "1")).unwrap();
        let before = std::fs::read(dir.path().join("metadata.redb")).unwrap();
        for _ in 0..3 {
            let v = m.read(|r| r.setting("a")).unwrap();
            assert_eq!(v.as_deref(), Some("1"));
        }
        let after = std::fs::read(dir.path().join("metadata.redb")).unwrap();
        assert!(before == after, "a read changed the database file");
        // Writes after reads still commit, and reads see them.
        for i in 0..50 {
            m.write(|w| w.set_setting(&format!("k{i}"), &"x".repeat(1000)))
                .unwrap();
            let v = m.read(|r| r.setting(&format!("k{i}"))).unwrap();
            assert_eq!(v.map(|s| s.len()), Some(1000));
        }
        m.write(|w| w.set_setting("a", "2")).unwrap();
        assert_eq!(m.read(|r| r.setting("a")).unwrap().as_deref(), Some("2"));
        assert_eq!(
            m.read(|r| r.setting("k49")).unwrap().map(|s| s.len()),
            Some(1000)
        );
    }

    #[test]
    fn cached_tables_never_hide_another_handles_writes() {
        // Two handles: what two processes sharing the store have. Writes follow each
        // other faster than the file's timestamps change; the generation counter in the
        // lock file is what tells the reader's cache it is stale.
        let dir = tempfile::tempdir().unwrap();
        let reader = Metadata::open(dir.path()).unwrap();
        let writer = Metadata::open(dir.path()).unwrap();
        for i in 0..200 {
            writer
                .write(|w| w.set_setting("n", &i.to_string()))
                .unwrap();
            let seen = reader.read(|r| r.setting("n")).unwrap();
            assert_eq!(seen, Some(i.to_string()), "a stale read after write {i}");
            // And the cache answers while nothing changes.
            let again = reader.read(|r| r.setting("n")).unwrap();
            assert_eq!(again, Some(i.to_string()));
        }
        // Every writer bumps the counter, whatever the file's timestamps do (their
        // granularity depends on the kernel and the filesystem).
        let generation = || {
            let lock = FileLock::acquire(&dir.path().join("metadata.lock"), LockMode::Shared);
            read_generation(&lock.unwrap())
        };
        let before = generation();
        writer.write(|w| w.set_setting("n", "last")).unwrap();
        assert_eq!(generation(), before + 1);
    }

    #[test]
    fn a_crashed_writer_is_repaired_by_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(dir.path()).unwrap();
        m.write(|w| w.set_setting("a", "1")).unwrap();
        // What a writer killed mid-session leaves: the god byte's recovery bit set.
        let path = dir.path().join("metadata.redb");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut god = [0u8; 1];
        f.read_exact_at(&mut god, 9).unwrap();
        f.write_all_at(&[god[0] | 2], 9).unwrap();
        drop(f);
        assert_eq!(m.read(|r| r.setting("a")).unwrap().as_deref(), Some("1"));
        let mut head = [0u8; 10];
        File::open(&path)
            .unwrap()
            .read_exact_at(&mut head, 0)
            .unwrap();
        assert_eq!(head[9] & 2, 0, "the repair was not written");
    }

    #[test]
    fn a_database_without_tables_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        // A process killed after creating the file, before its first commit.
        drop(Database::create(dir.path().join("metadata.redb")).unwrap());
        let m = Metadata::open(dir.path()).unwrap();
        assert_eq!(m.read(|r| r.setting("a")).unwrap(), None);
        assert!(m.read(|r| r.images()).unwrap().is_empty());
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(dir.path()).unwrap();
        m.write(|w| w.set_setting("n", "0")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        if t == 0 {
                            m.write(|w| w.set_setting("n", &i.to_string())).unwrap();
                        } else {
                            let v = m.read(|r| r.setting("n")).unwrap().unwrap();
                            assert!(v.parse::<u32>().unwrap() < 20);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.read(|r| r.setting("n")).unwrap().as_deref(), Some("19"));
    }
}
