//! The image store facade: the one type the engine and the CLI use.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::StoreConfig;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::ImageRecord;
use crate::lock::{FileLock, LockMode};
use crate::metadata::Metadata;
use crate::mount::Mount;
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::snapshot::{Snapshots, SnapshotterKind};

/// A local image store: blobs, snapshots and image metadata under one data root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) config: StoreConfig,
    pub(crate) content: ContentStore,
    pub(crate) meta: Metadata,
    pub(crate) snapshots: Snapshots,
    pub(crate) platform: Platform,
    gc_lock: PathBuf,
}

impl ImageStore {
    /// Opens (creating if needed) the store described by `config`.
    pub fn open(config: StoreConfig) -> Result<Self> {
        let root = config.root.clone();
        std::fs::create_dir_all(&root).map_err(StoreError::io("creating data root", &root))?;
        let content = ContentStore::open(&root)?;
        let meta = Metadata::open(&root)?;
        let snapshots = Snapshots::open(&root, meta.clone(), config.snapshotter)?;
        Ok(ImageStore {
            gc_lock: root.join("gc.lock"),
            config,
            content,
            meta,
            snapshots,
            platform: Platform::host(),
        })
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Which snapshotter builds root filesystems here.
    pub fn snapshotter(&self) -> SnapshotterKind {
        self.snapshots.kind()
    }

    /// The platform pulls resolve to by default.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The content (blob) store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Held while content is being added, so garbage collection waits.
    pub(crate) fn hold_against_gc(&self) -> Result<FileLock> {
        FileLock::acquire(&self.gc_lock, LockMode::Shared)
    }

    /// Held by garbage collection.
    pub(crate) fn exclusive_for_gc(&self) -> Result<FileLock> {
        FileLock::acquire(&self.gc_lock, LockMode::Exclusive)
    }

    /// Finds an image by reference (`alpine`, `alpine:3`, `name@sha256:...`), full ID
    /// (`sha256:...`) or unique ID prefix, as Docker does.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let not_found = || StoreError::ImageNotFound(name.to_string());
        if let Ok(id) = name.parse::<Digest>() {
            return self.meta.read(|r| r.image(&id))?.ok_or_else(not_found);
        }
        if let Ok(r) = ImageRef::parse(name) {
            if let Some(d) = r.digest() {
                let wanted = format!("{}@{d}", r.name());
                return self
                    .meta
                    .read(|m| m.images())?
                    .into_iter()
                    .find(|i| {
                        i.repo_digests.contains(&wanted)
                            || (&i.manifest_digest == d && r.tag().is_none())
                    })
                    .ok_or_else(not_found);
            }
            let tagged = r.with_tag(r.tag().unwrap_or("latest")).to_string();
            let found = self.meta.read(|m| match m.tag(&tagged)? {
                Some(id) => m.image(&id),
                None => Ok(None),
            })?;
            if let Some(img) = found {
                return Ok(img);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let matches: Vec<ImageRecord> = self
                .meta
                .read(|m| m.images())?
                .into_iter()
                .filter(|i| i.id.hex().starts_with(prefix))
                .collect();
            return match matches.len() {
                0 => Err(not_found()),
                1 => Ok(matches.into_iter().next().ok_or_else(not_found)?),
                _ => Err(StoreError::AmbiguousImage(name.to_string())),
            };
        }
        Err(not_found())
    }

    /// Every image, with the tags pointing at it (fully qualified `registry/repo:tag`).
    pub fn list(&self) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        self.meta.read(|r| {
            let tags = r.tags()?;
            let mut out: Vec<(ImageRecord, Vec<String>)> = r
                .images()?
                .into_iter()
                .map(|img| {
                    let mine = tags
                        .iter()
                        .filter(|(_, id)| *id == img.id)
                        .map(|(t, _)| t.clone())
                        .collect();
                    (img, mine)
                })
                .collect();
            out.sort_by(|a, b| b.0.added.cmp(&a.0.added));
            Ok(out)
        })
    }

    /// The tags pointing at image `id`.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self
            .meta
            .read(|r| r.tags())?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(t, _)| t)
            .collect())
    }

    /// The raw config of an image (its JSON document).
    pub fn config_json(&self, img: &ImageRecord) -> Result<serde_json::Value> {
        let bytes = self.content.read(&img.id)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::UnsupportedManifest {
            reference: img.id.to_string(),
            why: format!("stored config is not JSON: {e}"),
        })
    }

    /// Points `target` (a reference with an optional tag) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord> {
        let img = self.resolve(source)?;
        let t = ImageRef::parse(target)?;
        if t.digest().is_some() {
            return Err(StoreError::InvalidReference {
                reference: target.to_string(),
                why: "refusing to create a tag with a digest reference".into(),
            });
        }
        let full = t.with_tag(t.tag().unwrap_or("latest")).to_string();
        self.meta.write(|w| w.set_tag(&full, &img.id))?;
        Ok(img)
    }

    /// A read-only view of an image's root filesystem.
    pub fn rootfs_view(&self, img: &ImageRecord) -> Result<Mount> {
        match img.top_chain_id() {
            Some(top) => self.snapshots.view(top),
            None => Err(StoreError::UnsupportedManifest {
                reference: img.id.to_string(),
                why: "image has no layers".into(),
            }),
        }
    }

    /// A writable root filesystem on top of the image; changes go under `rw_dir`.
    pub fn rootfs_writable(&self, img: &ImageRecord, rw_dir: &Path) -> Result<Mount> {
        match img.top_chain_id() {
            Some(top) => self.snapshots.writable(top, rw_dir),
            None => Err(StoreError::UnsupportedManifest {
                reference: img.id.to_string(),
                why: "image has no layers".into(),
            }),
        }
    }
}

/// The layer directories of one image, topmost first, for looking up its files
/// without mounting it.
#[derive(Debug, Clone)]
pub struct ImageView {
    layers: Vec<PathBuf>,
}

impl ImageStore {
    /// A view of `img`'s files (reads the snapshot chain once).
    pub fn image_view(&self, img: &ImageRecord) -> Result<ImageView> {
        let Some(top) = img.top_chain_id() else {
            return Ok(ImageView { layers: Vec::new() });
        };
        let chain = self.snapshots.chain(top)?;
        let layers = match self.snapshots.kind() {
            SnapshotterKind::Native => vec![self.snapshots.fs_dir(chain[0].id)],
            SnapshotterKind::Overlayfs => {
                chain.iter().map(|s| self.snapshots.fs_dir(s.id)).collect()
            }
        };
        Ok(ImageView { layers })
    }
}

impl ImageView {
    /// Where file `rel` (a path inside the image, like `etc/passwd`) is stored on the
    /// host: the topmost layer that has it, or None if no layer has it or a layer above
    /// deleted it. Symlinks are returned as themselves (not followed).
    pub fn find(&self, rel: &str) -> Option<PathBuf> {
        use std::os::unix::fs::FileTypeExt;
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return None;
        }
        let components: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for layer in &self.layers {
            let path = components.iter().fold(layer.clone(), |p, c| p.join(c));
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return None,
                Ok(_) => return Some(path),
                Err(_) => {}
            }
            // A whiteout or an opaque directory on the way hides lower layers.
            let mut dir = layer.clone();
            for c in &components[..components.len().saturating_sub(1)] {
                dir = dir.join(c);
                match std::fs::symlink_metadata(&dir) {
                    Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return None,
                    Ok(m) if m.is_dir() && is_opaque(&dir) => return None,
                    _ => {}
                }
            }
        }
        None
    }
}

fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(p) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 2];
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}
