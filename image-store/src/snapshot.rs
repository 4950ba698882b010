//! Snapshots: each layer unpacked once, under a short numeric directory
//! (`snapshots/<n>/fs`), keyed by its chain ID so images sharing a base share it.
//!
//! With overlayfs a snapshot holds only its own layer's changes (whiteouts as overlay
//! whiteouts) and a root filesystem is an overlay of them. Where overlayfs is not
//! available the native snapshotter keeps full copies: a snapshot is its parent's tree
//! copied, with the layer applied on top.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::SnapshotterChoice;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::SnapshotRecord;
use crate::lock::{FileLock, LockMode};
use crate::metadata::Metadata;
use crate::mount::{self, Mount};
use crate::unpack::{self, Compression, WhiteoutMode};

/// The snapshotter a store uses, fixed when the store is first opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotterKind {
    /// Kernel overlayfs.
    Overlayfs,
    /// Full copies.
    Native,
}

impl SnapshotterKind {
    /// The name shown by `skiff info` (Docker's "Storage Driver").
    pub fn name(self) -> &'static str {
        match self {
            SnapshotterKind::Overlayfs => "overlayfs",
            SnapshotterKind::Native => "native",
        }
    }
}

/// The snapshots of one store.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    locks: PathBuf,
    kind: SnapshotterKind,
    meta: Metadata,
}

/// A layer waiting to be unpacked: its blob and how it is compressed.
pub struct LayerSource {
    /// The committed blob.
    pub blob: File,
    /// Its compression.
    pub compression: Compression,
    /// The blob's digest (for errors).
    pub digest: Digest,
}

impl Snapshots {
    /// Opens the snapshot area under `root`, settling which snapshotter the store uses.
    pub fn open(root: &Path, meta: Metadata, choice: SnapshotterChoice) -> Result<Self> {
        let dir = root.join("snapshots");
        let locks = dir.join("locks");
        fs::create_dir_all(&locks).map_err(StoreError::io("creating", &locks))?;
        let kind = settle_kind(root, &meta, choice)?;
        Ok(Snapshots {
            dir,
            locks,
            kind,
            meta,
        })
    }

    /// The snapshotter in use.
    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// The directory holding snapshot `id`'s files.
    pub fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string()).join("fs")
    }

    /// The directory of snapshot `id` (fs and bookkeeping).
    pub fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// The directory holding all snapshots.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// Makes sure the snapshot of `chain_id` exists, unpacking `layer` on top of `parent`
    /// if it does not. Returns the record and whether it was created now. The unpacked
    /// content must have digest `diff_id`, or nothing is recorded.
    pub fn ensure(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        layer: impl FnOnce() -> Result<LayerSource>,
    ) -> Result<(SnapshotRecord, bool)> {
        let _lock = FileLock::acquire(&self.locks.join(chain_id.hex()), LockMode::Exclusive)?;
        let (existing, parent_rec) = self.meta.read(|r| {
            let existing = r.snapshot(chain_id)?;
            let parent = match (&existing, parent) {
                (None, Some(p)) => Some(
                    r.snapshot(p)?
                        .ok_or_else(|| StoreError::BlobNotFound(p.clone()))?,
                ),
                _ => None,
            };
            Ok((existing, parent))
        })?;
        if let Some(s) = existing {
            return Ok((s, false));
        }
        let id = self.allocate_dir()?;
        let fs_dir = self.fs_dir(id);
        let result = self.unpack_into(&fs_dir, parent_rec.as_ref(), diff_id, layer);
        match result {
            Ok(size) => {
                let rec = SnapshotRecord {
                    id,
                    parent: parent.cloned(),
                    diff_id: diff_id.clone(),
                    size,
                };
                self.meta.write(|w| w.put_snapshot(chain_id, &rec))?;
                Ok((rec, true))
            }
            Err(e) => {
                let _ = fs::remove_dir_all(self.snapshot_dir(id));
                Err(e)
            }
        }
    }

    /// Claims the next free numeric snapshot directory (mkdir is the atomic claim, so
    /// concurrent processes never share one).
    fn allocate_dir(&self) -> Result<u64> {
        let mut next = self.dirs_on_disk()?.into_iter().max().unwrap_or(0) + 1;
        loop {
            let d = self.snapshot_dir(next);
            match fs::create_dir(&d) {
                Ok(()) => return Ok(next),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(StoreError::io("creating", d)(e)),
            }
        }
    }

    fn unpack_into(
        &self,
        fs_dir: &Path,
        parent: Option<&SnapshotRecord>,
        diff_id: &Digest,
        layer: impl FnOnce() -> Result<LayerSource>,
    ) -> Result<u64> {
        let mode = match self.kind {
            SnapshotterKind::Overlayfs => WhiteoutMode::Overlay,
            SnapshotterKind::Native => WhiteoutMode::Native,
        };
        match (self.kind, parent) {
            (SnapshotterKind::Native, Some(p)) => {
                if let Some(d) = fs_dir.parent() {
                    fs::create_dir_all(d).map_err(StoreError::io("creating", d))?;
                }
                unpack::copy_tree(&self.fs_dir(p.id), fs_dir)
                    .map_err(StoreError::io("copying parent snapshot", fs_dir))?
            }
            _ => fs::create_dir_all(fs_dir).map_err(StoreError::io("creating", fs_dir))?,
        }
        let src = layer()?;
        let digest = src.digest.clone();
        let stats = unpack::apply_layer(
            std::io::BufReader::with_capacity(256 * 1024, src.blob),
            src.compression,
            fs_dir,
            mode,
        )
        .map_err(|source| StoreError::Unpack {
            layer: digest.clone(),
            source,
        })?;
        if stats.diff_id != *diff_id {
            return Err(StoreError::DigestMismatch {
                what: "layer",
                expected: diff_id.clone(),
                why: format!(
                    "uncompressed content of blob {digest} has digest {} (the image config's diff_id differs)",
                    stats.diff_id
                ),
            });
        }
        Ok(stats.uncompressed_size)
    }

    /// The chain of snapshot records from `top` down to the base layer.
    pub fn chain(&self, top: &Digest) -> Result<Vec<SnapshotRecord>> {
        self.meta.read(|r| {
            let mut out = Vec::new();
            let mut next = Some(top.clone());
            while let Some(c) = next {
                let rec = r
                    .snapshot(&c)?
                    .ok_or_else(|| StoreError::BlobNotFound(c.clone()))?;
                next = rec.parent.clone();
                out.push(rec);
            }
            Ok(out)
        })
    }

    /// Mounts giving a read-only view of the image whose top layer is `top`.
    pub fn view(&self, top: &Digest) -> Result<Mount> {
        let chain = self.chain(top)?;
        if self.kind == SnapshotterKind::Native || chain.len() == 1 {
            return Ok(Mount::Bind {
                source: self.fs_dir(chain[0].id),
                readonly: true,
            });
        }
        Ok(Mount::Overlay {
            lower: chain.iter().map(|s| self.fs_dir(s.id)).collect(),
            upper: None,
        })
    }

    /// The mount of a writable root filesystem on top of image layer `top`, whose
    /// changes go to `rw_dir` (which gets `upper/` and `work/`, or a full copy `fs/`
    /// with the native snapshotter).
    pub fn writable(&self, top: &Digest, rw_dir: &Path) -> Result<Mount> {
        let chain = self.chain(top)?;
        match self.kind {
            SnapshotterKind::Overlayfs => Ok(Mount::Overlay {
                lower: chain.iter().map(|s| self.fs_dir(s.id)).collect(),
                upper: Some((rw_dir.join("upper"), rw_dir.join("work"))),
            }),
            SnapshotterKind::Native => {
                let fs_dir = rw_dir.join("fs");
                if !fs_dir.exists() {
                    fs::create_dir_all(rw_dir).map_err(StoreError::io("creating", rw_dir))?;
                    unpack::copy_tree(&self.fs_dir(chain[0].id), &fs_dir)
                        .map_err(StoreError::io("copying image rootfs", &fs_dir))?;
                }
                Ok(Mount::Bind {
                    source: fs_dir,
                    readonly: false,
                })
            }
        }
    }

    /// Deletes a snapshot's files and record.
    pub fn remove(&self, chain_id: &Digest, rec: &SnapshotRecord) -> Result<()> {
        self.meta.write(|w| w.remove_snapshot(chain_id))?;
        let d = self.snapshot_dir(rec.id);
        match fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing snapshot", d)(e)),
        }
    }

    /// Numeric snapshot directories on disk (to find ones no record owns).
    pub fn dirs_on_disk(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(StoreError::io("listing", &self.dir))? {
            let e = e.map_err(StoreError::io("listing", &self.dir))?;
            if let Ok(n) = e.file_name().to_string_lossy().parse::<u64>() {
                out.push(n);
            }
        }
        Ok(out)
    }
}

/// Decides the snapshotter: the one recorded for this store, else the configured one,
/// else overlayfs if a probe mount works here.
fn settle_kind(root: &Path, meta: &Metadata, choice: SnapshotterChoice) -> Result<SnapshotterKind> {
    if let Some(stored) = meta.read(|r| r.setting("snapshotter"))? {
        let kind = match stored.as_str() {
            "overlayfs" => SnapshotterKind::Overlayfs,
            _ => SnapshotterKind::Native,
        };
        let wanted = match choice {
            SnapshotterChoice::Auto => kind,
            SnapshotterChoice::Overlayfs => SnapshotterKind::Overlayfs,
            SnapshotterChoice::Native => SnapshotterKind::Native,
        };
        if wanted != kind && !meta.read(|r| r.snapshots())?.is_empty() {
            return Err(StoreError::Config {
                path: root.to_path_buf(),
                why: format!(
                    "this store was created with the {} snapshotter; {} was asked for (use another data root)",
                    kind.name(),
                    wanted.name()
                ),
            });
        }
        if wanted == kind {
            return Ok(kind);
        }
    }
    let kind = match choice {
        SnapshotterChoice::Overlayfs => SnapshotterKind::Overlayfs,
        SnapshotterChoice::Native => SnapshotterKind::Native,
        SnapshotterChoice::Auto => {
            if overlay_works(root) {
                SnapshotterKind::Overlayfs
            } else {
                SnapshotterKind::Native
            }
        }
    };
    meta.write(|w| w.set_setting("snapshotter", kind.name()))?;
    Ok(kind)
}

/// Tries an overlay mount with an upper dir inside the data root.
fn overlay_works(root: &Path) -> bool {
    let probe = root
        .join("tmp")
        .join(format!("overlay-probe-{}", std::process::id()));
    let dirs = ["l1", "l2", "u", "w", "m"].map(|d| probe.join(d));
    let ok = dirs.iter().all(|d| fs::create_dir_all(d).is_ok()) && {
        let m = Mount::Overlay {
            lower: vec![dirs[0].clone(), dirs[1].clone()],
            upper: Some((dirs[2].clone(), dirs[3].clone())),
        };
        let mounted = m.mount(&dirs[4]).is_ok();
        let usable =
            mounted && fs::write(dirs[4].join("x"), b"x").is_ok() && read_back(&dirs[2].join("x"));
        if mounted {
            let _ = mount::unmount(&dirs[4]);
        }
        usable
    };
    let _ = fs::remove_dir_all(&probe);
    ok
}

fn read_back(p: &Path) -> bool {
    let mut s = String::new();
    File::open(p)
        .and_then(|mut f| f.read_to_string(&mut s))
        .is_ok()
        && s == "x"
}
