//! `load`: streaming an archive (or reading an OCI layout directory) into the content
//! store, before [`prepare`](super::prepare) turns what it found into images.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::Ingest;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Result, StoreError};
use crate::reference::ImageRef;
use crate::store::ImageStore;
use crate::unpack::Compression;

use super::{
    blob_path_digest, clean_path, read_head, read_json_capped, resolve_link_target, LoadedImage,
    OciLayout, MAX_JSON_TOTAL, MAX_TRACKED_ENTRIES,
};

fn bad(why: String) -> StoreError {
    StoreError::InvalidArchive(why)
}

/// Where the blobs of an archive are found.
pub(super) enum Source<'a> {
    /// A streamed tarball: its blobs went into the content store as they came.
    Stream,
    /// An OCI layout directory: blobs are copied in (and verified) when needed.
    Dir(&'a Path),
}

/// What streaming an archive found, besides the blobs it put in the content store.
#[derive(Default)]
pub(super) struct Gathered {
    /// `index.json`, if present.
    pub index_json: Option<Vec<u8>>,
    /// `manifest.json`, if present.
    pub manifest_json: Option<Vec<u8>>,
    /// Other small `*.json` files (legacy configs) by archive path.
    pub json_files: HashMap<String, Vec<u8>>,
    /// Other regular files (legacy `<id>/layer.tar`, podman's `<hex>.tar`) by archive
    /// path, with the digest they were stored under.
    pub files: HashMap<String, Digest>,
    /// Symbolic and hard links by archive path: their target as an archive path, or None
    /// if it points outside the archive.
    pub links: HashMap<String, Option<String>>,
    /// Bytes of JSON buffered so far.
    json_total: u64,
}

impl Gathered {
    fn small_json(&mut self, r: impl Read, path: &str) -> Result<Vec<u8>> {
        let b = read_json_capped(r, &format!("archive entry {path}"))?;
        self.json_total += b.len() as u64;
        if self.json_total > MAX_JSON_TOTAL {
            return Err(bad(format!(
                "archive holds more than {} MiB of JSON documents (at entry {path})",
                MAX_JSON_TOTAL >> 20
            )));
        }
        Ok(b)
    }
}

impl Source<'_> {
    /// Is blob `d` available (in the store already, or in the source)?
    pub(super) fn has_blob(&self, store: &ImageStore, d: &Digest) -> bool {
        store.content.exists(d)
            || match self {
                Source::Stream => false,
                Source::Dir(dir) => dir.join(super::blob_path(d)).is_file(),
            }
    }

    /// Makes sure blob `d` is committed in the content store, copying (and verifying) it
    /// from the source if needed. Returns false if neither has it.
    pub(super) fn ensure_blob(&self, store: &ImageStore, d: &Digest) -> Result<bool> {
        if store.content.exists(d) {
            return Ok(true);
        }
        let Source::Dir(dir) = self else {
            return Ok(false);
        };
        let path = dir.join(super::blob_path(d));
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("opening", &path)(e)),
        };
        let shown = path.display().to_string();
        store.ingest_named(&mut file, &shown, d)?;
        Ok(true)
    }
}

/// A file in `<root>/tmp`, removed when dropped.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    fn create(dir: &Path) -> Result<TempFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir).map_err(StoreError::io("creating", dir))?;
        let mut attempts = 0;
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("load-{}-{n}.tmp", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok(TempFile { path, file }),
                // Left by an earlier process with the same pid: try the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 1000 => {
                    attempts += 1
                }
                Err(e) => return Err(StoreError::io("creating", &path)(e)),
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Streams `r` into `sink` in chunks; read errors are archive errors naming `what`.
fn copy_to(
    r: &mut impl Read,
    what: &str,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("reading {what}: {e}"))),
        };
        sink(&buf[..n])?;
        total += n as u64;
    }
}

/// Opens the (possibly compressed) archive stream, sniffing its first bytes.
fn decompress<'a>(input: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let mut head = [0u8; 6];
    let n = read_head(&mut input, &mut head).map_err(|e| bad(format!("reading input: {e}")))?;
    let head = &head[..n];
    if head.is_empty() {
        return Err(bad("empty input: no archive to load".into()));
    }
    if head.len() >= 4 && head.starts_with(b"BZh") && head[3].is_ascii_digit() {
        return Err(bad(
            "bzip2-compressed archives are not supported; decompress it first".into(),
        ));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(bad(
            "xz-compressed archives are not supported; decompress it first".into(),
        ));
    }
    let compression = Compression::sniff(head);
    let chained = std::io::Cursor::new(head.to_vec()).chain(input);
    compression
        .decoder(chained)
        .map_err(|e| bad(format!("opening {compression:?} stream: {e}")))
}

impl ImageStore {
    /// Reads a docker-archive or OCI-layout tarball (plain, gzip or zstd compressed, told
    /// apart by their magic bytes) and stores its images; returns the loaded images with
    /// the names they got, so a CLI can print `Loaded image: alpine:latest` or
    /// `Loaded image ID: sha256:...` as Docker does.
    ///
    /// Blobs are streamed into the content store and verified against their names; an
    /// image is tagged only once every layer of every image in the archive is unpacked,
    /// so a failed load tags nothing (the blobs it left are removed by [`gc`](Self::gc)).
    pub fn load(&self, input: impl Read) -> Result<Vec<LoadedImage>> {
        let _gc_guard = self.hold_against_gc()?;
        let stream = decompress(input)?;
        let gathered = self.gather_stream(stream)?;
        if gathered.index_json.is_none() && gathered.manifest_json.is_none() {
            return Err(bad(
                "neither manifest.json nor index.json found: not a docker-archive or an OCI image layout".into(),
            ));
        }
        let prepared = self.prepare_all(&Source::Stream, &gathered, None)?;
        self.finish_load(prepared)
    }

    /// Same as [`load`](Self::load) for an OCI image-layout directory on disk (the
    /// `oci:DIR` case). Tags come from the `io.containerd.image.name` annotation of each
    /// `index.json` entry, else from `org.opencontainers.image.ref.name`: a full reference
    /// is used as is, a bare tag is applied to `default_name`'s repository. An entry with
    /// neither annotation is tagged `default_name` (with `latest` if it has no tag), or
    /// loaded untagged. Entries that are indexes themselves are resolved to this host's
    /// platform ([`platform`](Self::platform)).
    pub fn load_oci_dir(&self, dir: &Path, default_name: Option<&str>) -> Result<Vec<LoadedImage>> {
        let default = default_name.map(ImageRef::parse).transpose()?;
        let _gc_guard = self.hold_against_gc()?;
        let read_small = |name: &str| -> Result<Option<Vec<u8>>> {
            let p = dir.join(name);
            match File::open(&p) {
                Ok(f) => read_json_capped(f, &p.display().to_string()).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::io("opening", &p)(e)),
            }
        };
        if let Some(layout) = read_small("oci-layout")? {
            check_layout(&layout, &dir.join("oci-layout").display().to_string())?;
        }
        let Some(index) = read_small("index.json")? else {
            return Err(bad(format!(
                "{}: not an OCI image layout (no index.json)",
                dir.display()
            )));
        };
        let gathered = Gathered {
            index_json: Some(index),
            ..Default::default()
        };
        let prepared = self.prepare_all(&Source::Dir(dir), &gathered, default.as_ref())?;
        self.finish_load(prepared)
    }

    /// Reads every tar entry: blobs go to the content store, small JSON documents are
    /// kept, links are remembered, legacy layer files are stored under their digest.
    fn gather_stream(&self, stream: impl Read) -> Result<Gathered> {
        let mut archive = tar::Archive::new(stream);
        let mut g = Gathered::default();
        let mut count = 0u64;
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| bad(format!("reading tar entry {}: {e}", count + 1)))?;
            count += 1;
            let raw = entry
                .path()
                .map_err(|e| bad(format!("tar entry {count} has an unreadable name: {e}")))?
                .into_owned();
            let path = clean_path(&raw).map_err(bad)?;
            if path.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Directory => continue,
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| bad(format!("entry {path}: unreadable link target: {e}")))?
                        .ok_or_else(|| bad(format!("entry {path}: link without a target")))?;
                    let target = target.to_str().map(str::to_string);
                    let resolved = target.and_then(|t| {
                        resolve_link_target(&path, &t, kind == tar::EntryType::Symlink)
                    });
                    g.links.insert(path.clone(), resolved);
                    if g.links.len() > MAX_TRACKED_ENTRIES {
                        return Err(bad(format!(
                            "archive has more than {MAX_TRACKED_ENTRIES} links (at entry {path})"
                        )));
                    }
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => {
                    tracing::debug!(entry = %path, kind = ?other, "skipping archive entry that is not a file");
                    continue;
                }
            }
            g.links.remove(&path);
            self.gather_file(&mut g, &path, &mut entry)?;
            if g.links.len() + g.files.len() + g.json_files.len() > MAX_TRACKED_ENTRIES {
                return Err(bad(format!(
                    "archive has more than {MAX_TRACKED_ENTRIES} links and files besides blobs (at entry {path})"
                )));
            }
        }
        if count == 0 {
            return Err(bad("the archive has no entries".into()));
        }
        Ok(g)
    }

    fn gather_file(&self, g: &mut Gathered, path: &str, entry: &mut impl Read) -> Result<()> {
        let last = path.rsplit('/').next().unwrap_or(path);
        match path {
            "index.json" => g.index_json = Some(g.small_json(entry, path)?),
            "manifest.json" => g.manifest_json = Some(g.small_json(entry, path)?),
            "oci-layout" => {
                let b = g.small_json(entry, path)?;
                check_layout(&b, "archive entry oci-layout")?;
            }
            "repositories" => {}
            p if p.starts_with("blobs/") => match blob_path_digest(p) {
                Some(d) => self.ingest_named(entry, &format!("archive entry {p}"), &d?)?,
                None => {
                    tracing::warn!(entry = %p, "skipping blob with an unsupported digest algorithm")
                }
            },
            p if p.ends_with(".json") => {
                let b = g.small_json(entry, p)?;
                g.json_files.insert(p.to_string(), b);
            }
            // Legacy per-layer metadata that the image config supersedes.
            _ if last == "VERSION" || last == "json" => {}
            p => {
                let d = self.ingest_unnamed(entry, p)?;
                g.files.insert(p.to_string(), d);
            }
        }
        Ok(())
    }

    /// Streams a blob whose name says its digest into the content store; content that
    /// does not match is a [`StoreError::DigestMismatch`] naming `what`.
    fn ingest_named(&self, r: &mut impl Read, what: &str, d: &Digest) -> Result<()> {
        let Ingest::Writer(mut w) = self.content.ingest(d, None)? else {
            return Ok(());
        };
        copy_to(r, what, |b| w.write_all(b))?;
        w.commit("blob").map_err(|e| match e {
            StoreError::DigestMismatch { expected, why, .. } => StoreError::DigestMismatch {
                what: "archive blob",
                expected,
                why: format!("{why} ({what} is not what its name says)"),
            },
            e => e,
        })
    }

    /// Stores a file of unknown digest (a legacy layer): hashed into a temp file first,
    /// then committed under the digest found.
    fn ingest_unnamed(&self, r: &mut impl Read, path: &str) -> Result<Digest> {
        let tmp = TempFile::create(&self.root().join("tmp"))?;
        let what = format!("archive entry {path}");
        let mut hw = HashingWriter::new(&tmp.file);
        copy_to(r, &what, |b| {
            hw.write_all(b)
                .map_err(StoreError::io("writing", &tmp.path))
        })?;
        let (_, digest, size) = hw.finish();
        if let Ingest::Writer(mut w) = self.content.ingest(&digest, Some(size))? {
            let mut f = &tmp.file;
            f.seek(SeekFrom::Start(0))
                .map_err(StoreError::io("rewinding", &tmp.path))?;
            copy_to(&mut f, &what, |b| w.write_all(b))?;
            w.commit("layer")?;
        }
        Ok(digest)
    }
}

/// Checks an `oci-layout` document.
fn check_layout(bytes: &[u8], what: &str) -> Result<()> {
    let layout: OciLayout =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("{what}: {e}")))?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(bad(format!(
            "{what}: unsupported imageLayoutVersion {:?}",
            layout.image_layout_version
        )));
    }
    Ok(())
}
