//! The content-addressed blob store: `blobs/sha256/<hex>`, written ingest-then-commit.
//!
//! A writer streams into `ingest/<hex>.partial` while holding `ingest/<hex>.lock`;
//! `commit` checks size and digest, fsyncs and renames into place, so readers only ever
//! see complete, verified blobs. The per-digest lock makes concurrent pulls (in one
//! process or several) download a blob once: the second waiter finds it committed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Result, StoreError};
use crate::lock::{FileLock, LockMode};

/// The blob store under one data root.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

/// What `ingest` found: the blob already there, or a writer to fill.
pub enum Ingest {
    /// Someone committed the blob already.
    Exists,
    /// Write the blob with this writer, then commit it.
    Writer(Box<BlobWriter>),
}

/// An in-progress blob write, exclusive for its digest until committed or dropped.
pub struct BlobWriter {
    expected: Digest,
    expected_size: Option<u64>,
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<HashingWriter<File>>,
    _lock: FileLock,
}

impl ContentStore {
    /// Opens (creating if needed) the blob store under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs/sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(StoreError::io("creating", d))?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    /// Where the committed blob lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Is the blob committed?
    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// The committed blob's size.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(d.clone()))
            }
            Err(e) => Err(StoreError::io("stat", p)(e)),
        }
    }

    /// Opens a committed blob for streaming.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        File::open(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::io("opening blob", p)(e),
        })
    }

    /// Reads a small committed blob (a manifest or config) whole.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        let p = self.path(d);
        self.open_blob(d)?
            .read_to_end(&mut v)
            .map_err(StoreError::io("reading blob", p))?;
        Ok(v)
    }

    /// Starts writing blob `expected` (blocking until no other writer holds it).
    pub fn ingest(&self, expected: &Digest, expected_size: Option<u64>) -> Result<Ingest> {
        if self.exists(expected) {
            return Ok(Ingest::Exists);
        }
        let lock = FileLock::acquire(
            &self.ingest.join(format!("{}.lock", expected.hex())),
            LockMode::Exclusive,
        )?;
        if self.exists(expected) {
            return Ok(Ingest::Exists);
        }
        let tmp = self.ingest.join(format!("{}.partial", expected.hex()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(StoreError::io("creating", &tmp))?;
        Ok(Ingest::Writer(Box::new(BlobWriter {
            expected: expected.clone(),
            expected_size,
            dest: self.path(expected),
            tmp,
            file: Some(HashingWriter::new(file)),
            _lock: lock,
        })))
    }

    /// Stores bytes already in memory under their digest, checking `expected` if given.
    pub fn write_bytes(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let actual = Digest::of(bytes);
        if let Some(e) = expected {
            if *e != actual {
                return Err(StoreError::DigestMismatch {
                    what: "blob",
                    expected: e.clone(),
                    why: format!("got {actual}"),
                });
            }
        }
        if let Ingest::Writer(mut w) = self.ingest(&actual, Some(bytes.len() as u64))? {
            w.write_all(bytes)?;
            w.commit("blob")?;
        }
        Ok(actual)
    }

    /// Removes a committed blob (for garbage collection); missing is fine.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing blob", p)(e)),
        }
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(StoreError::io("listing", &self.blobs))? {
            let e = e.map_err(StoreError::io("listing", &self.blobs))?;
            if let Ok(d) = format!("sha256:{}", e.file_name().to_string_lossy()).parse() {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes partial downloads that no writer holds (left by a killed pull).
    pub fn clean_stale_ingests(&self) -> Result<usize> {
        let mut removed = 0;
        for e in fs::read_dir(&self.ingest).map_err(StoreError::io("listing", &self.ingest))? {
            let e = e.map_err(StoreError::io("listing", &self.ingest))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".lock") else {
                continue;
            };
            let lock_path = e.path();
            if let Some(_held) = FileLock::try_acquire(&lock_path, LockMode::Exclusive)? {
                let _ = fs::remove_file(self.ingest.join(format!("{hex}.partial")));
                let _ = fs::remove_file(&lock_path);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl BlobWriter {
    /// Appends bytes.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        match self.file.as_mut() {
            Some(f) => f
                .write_all(buf)
                .map_err(StoreError::io("writing", &self.tmp)),
            None => Ok(()),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.written())
    }

    /// Verifies size and digest, then makes the blob visible atomically.
    /// `what` names the content in errors ("layer", "config", ...).
    pub fn commit(mut self, what: &'static str) -> Result<()> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let (file, actual, size) = writer.finish();
        let mismatch = |why: String| StoreError::DigestMismatch {
            what,
            expected: self.expected.clone(),
            why,
        };
        if let Some(want) = self.expected_size {
            if want != size {
                let _ = fs::remove_file(&self.tmp);
                return Err(mismatch(format!(
                    "size {size} bytes, expected {want} (truncated or padded)"
                )));
            }
        }
        if actual != self.expected {
            let _ = fs::remove_file(&self.tmp);
            return Err(mismatch(format!("content has digest {actual}")));
        }
        file.sync_all()
            .map_err(StoreError::io("fsync", &self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(StoreError::io("committing", &self.dest))?;
        if let Some(dir) = self.dest.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(StoreError::io("fsync", dir))?;
        }
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a commit the temp file is gone and this is a no-op.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_verifies_digest_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        let Ingest::Writer(mut w) = cs.ingest(&good, Some(5)).unwrap() else {
            panic!()
        };
        w.write_all(b"hellx").unwrap();
        assert!(matches!(
            w.commit("layer"),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!cs.exists(&good));
        let Ingest::Writer(mut w) = cs.ingest(&good, Some(5)).unwrap() else {
            panic!()
        };
        w.write_all(b"hell").unwrap();
        let e = w.commit("layer").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        assert!(!cs.exists(&good));
        assert_eq!(cs.write_bytes(b"hello", Some(&good)).unwrap(), good);
        assert_eq!(cs.read(&good).unwrap(), b"hello");
        assert!(matches!(cs.ingest(&good, None).unwrap(), Ingest::Exists));
        assert_eq!(cs.list().unwrap(), vec![good]);
    }

    #[test]
    fn stale_ingest_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"x");
        let Ingest::Writer(mut w) = cs.ingest(&d, None).unwrap() else {
            panic!()
        };
        w.write_all(b"partial").unwrap();
        std::mem::forget(w); // as if the process was killed mid-write (lock fd leaks here)
                             // The leaked lock fd is still held by this process, so nothing is removed.
        assert_eq!(cs.clean_stale_ingests().unwrap(), 0);
    }
}
