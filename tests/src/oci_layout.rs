//! Deterministic image building blocks: a tar writer with fixed mtimes and
//! raw-name support, layer compression, OCI image config, manifest and index,
//! and an OCI image-layout writer (`oci-layout`, `index.json`, `blobs/sha256`).
//!
//! Same input, same bytes, same digests: every mtime is [`MTIME`], gzip headers
//! carry no time or name, and JSON keys are sorted.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};

/// The mtime of every tar entry (2023-11-14T22:13:20Z).
pub const MTIME: u64 = 1_700_000_000;
/// The `created` time of every image config and history entry.
pub const CREATED: &str = "2023-11-14T22:13:20Z";
/// The `PATH` every fixture config sets.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// OCI image manifest media type.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer media type.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// gzip OCI layer media type.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// zstd OCI layer media type.
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// `"sha256:" + hex(sha256(bytes))`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What a tar entry is.
#[derive(Debug, Clone)]
enum EntryKind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a [u8]),
    Hardlink(&'a [u8]),
}

/// Writes a tar archive in memory, one entry at a time, deterministically:
/// ustar headers, mtime [`MTIME`], no user or group names, PAX `path` /
/// `linkpath` records for names longer than 100 bytes.
///
/// Names are written exactly as given (no normalisation, no checks), so
/// hostile names such as `../escape` or `/abs` can be produced. Directory names
/// get a trailing `/` as other tar writers do.
#[derive(Debug, Default, Clone)]
pub struct TarWriter {
    out: Vec<u8>,
}

impl TarWriter {
    /// An empty archive.
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    /// A directory owned by root.
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.dir_owned(path, mode, 0, 0)
    }

    /// A directory with the given owner.
    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> &mut Self {
        let name = format!("{}/", path.trim_end_matches('/'));
        self.entry(name.as_bytes(), EntryKind::Dir, mode, uid, gid)
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, mode: u32, content: &[u8]) -> &mut Self {
        self.file_owned(path, mode, 0, 0, content)
    }

    /// A regular file with the given owner.
    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        content: &[u8],
    ) -> &mut Self {
        self.entry(path.as_bytes(), EntryKind::File(content), mode, uid, gid)
    }

    /// A symlink `path -> target`, owned by root.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(
            path.as_bytes(),
            EntryKind::Symlink(target.as_bytes()),
            0o777,
            0,
            0,
        )
    }

    /// A hard link `path` to the earlier entry `target` (an archive path).
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(
            path.as_bytes(),
            EntryKind::Hardlink(target.as_bytes()),
            0o644,
            0,
            0,
        )
    }

    /// A `.wh.NAME` whiteout deleting `path` from lower layers.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name),
            None => (String::new(), path),
        };
        let entry = format!("{parent}.wh.{name}");
        self.file(&entry, 0o644, b"")
    }

    /// A `DIR/.wh..wh..opq` marker: `dir` hides everything lower layers put in it.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        let entry = format!("{}/.wh..wh..opq", dir.trim_end_matches('/'));
        self.file(&entry, 0o644, b"")
    }

    /// A regular file whose header name bytes are written verbatim.
    pub fn raw_file(&mut self, name: &[u8], mode: u32, content: &[u8]) -> &mut Self {
        self.entry(name, EntryKind::File(content), mode, 0, 0)
    }

    /// A symlink whose name and target bytes are written verbatim.
    pub fn raw_symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        self.entry(name, EntryKind::Symlink(target), 0o777, 0, 0)
    }

    /// A hard link whose name and target bytes are written verbatim.
    pub fn raw_hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        self.entry(name, EntryKind::Hardlink(target), 0o644, 0, 0)
    }

    /// Ends the archive (two zero blocks) and returns its bytes.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.out.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn entry(
        &mut self,
        name: &[u8],
        kind: EntryKind<'_>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> &mut Self {
        let link = match kind {
            EntryKind::Symlink(t) | EntryKind::Hardlink(t) => t,
            EntryKind::File(_) | EntryKind::Dir => b"",
        };
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax.extend_from_slice(&pax_record("path", name));
        }
        if link.len() > 100 {
            pax.extend_from_slice(&pax_record("linkpath", link));
        }
        if !pax.is_empty() {
            let mut header = base_header(tar::EntryType::XHeader, 0o644, 0, 0, pax.len() as u64);
            set_bytes(&mut header.as_old_mut().name, b"././@PaxHeader");
            self.push(header, &pax);
        }
        let (entry_type, data): (tar::EntryType, &[u8]) = match kind {
            EntryKind::File(content) => (tar::EntryType::Regular, content),
            EntryKind::Dir => (tar::EntryType::Directory, b""),
            EntryKind::Symlink(_) => (tar::EntryType::Symlink, b""),
            EntryKind::Hardlink(_) => (tar::EntryType::Link, b""),
        };
        let mut header = base_header(entry_type, mode, uid, gid, data.len() as u64);
        set_bytes(&mut header.as_old_mut().name, name);
        set_bytes(&mut header.as_old_mut().linkname, link);
        self.push(header, data);
        self
    }

    fn push(&mut self, mut header: tar::Header, data: &[u8]) {
        header.set_cksum();
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.resize(self.out.len() + pad, 0);
    }
}

/// A ustar header with the fixed fields set.
fn base_header(
    entry_type: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_mtime(MTIME);
    header.set_size(size);
    header
}

/// Copies as much of `src` as fits into the NUL-padded field `dst`.
fn set_bytes(dst: &mut [u8], src: &[u8]) {
    dst.fill(0);
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// One PAX record, "LEN key=value\n", where LEN counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar (`application/vnd.oci.image.layer.v1.tar`).
    None,
    /// gzip, no name or mtime in the header (`...tar+gzip`).
    Gzip,
    /// zstd level 3 (`...tar+zstd`).
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_TYPE_LAYER_TAR,
            Compression::Gzip => MEDIA_TYPE_LAYER_GZIP,
            Compression::Zstd => MEDIA_TYPE_LAYER_ZSTD,
        }
    }

    /// Compresses `tar`.
    pub fn compress(self, tar: &[u8]) -> Result<Vec<u8>> {
        use std::io::Write as _;
        match self {
            Compression::None => Ok(tar.to_vec()),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder
                    .write_all(tar)
                    .and_then(|()| encoder.finish())
                    .ctx(|| "gzip-compressing a layer".into())
            }
            Compression::Zstd => {
                zstd::stream::encode_all(tar, 3).ctx(|| "zstd-compressing a layer".into())
            }
        }
    }
}

/// The facts about one layer of a built or pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFacts {
    /// Digest of the (compressed) blob, as in the manifest.
    pub digest: String,
    /// Digest of the uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// The layer media type in the manifest.
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// A layer blob with its facts.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Digest, diff_id, media type and size.
    pub facts: LayerFacts,
    /// The compressed bytes.
    pub blob: Vec<u8>,
}

impl BuiltLayer {
    /// Compresses the tar bytes `tar` into a layer blob.
    pub fn new(tar: &[u8], compression: Compression) -> Result<BuiltLayer> {
        let blob = compression.compress(tar)?;
        Ok(BuiltLayer {
            facts: LayerFacts {
                digest: sha256_digest(&blob),
                diff_id: sha256_digest(tar),
                media_type: compression.media_type().to_string(),
                size: blob.len() as u64,
            },
            blob,
        })
    }
}

/// An OCI platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `os`, e.g. "linux".
    pub os: String,
    /// `architecture`, e.g. "amd64".
    pub architecture: String,
    /// `variant`, e.g. "v7", if any.
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64, the platform of every single-platform fixture.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The OCI JSON form, `{"architecture", "os", ["variant"]}`.
    fn to_json(&self) -> Value {
        let mut platform = json!({ "architecture": self.architecture, "os": self.os });
        if let (Some(variant), Some(map)) = (&self.variant, platform.as_object_mut()) {
            map.insert("variant".into(), json!(variant));
        }
        platform
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A complete single-platform OCI image in memory: layers, config, manifest.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The layers, bottom first.
    pub layers: Vec<BuiltLayer>,
    /// The config JSON bytes.
    pub config: Vec<u8>,
    /// Digest of `config`.
    pub config_digest: String,
    /// The OCI manifest JSON bytes.
    pub manifest: Vec<u8>,
    /// Digest of `manifest`.
    pub manifest_digest: String,
    /// The platform in the config.
    pub platform: Platform,
    /// What the rootfs must look like after all layers are applied.
    pub expected: Vec<crate::ExpectedPath>,
}

impl BuiltImage {
    /// Builds config and manifest for `layers` (bottom first): `config.Cmd`
    /// `["sh"]`, `Env` [`DEFAULT_PATH`], `rootfs.diff_ids` from the layers, one
    /// history entry per layer.
    pub fn new(
        layers: Vec<BuiltLayer>,
        platform: Platform,
        expected: Vec<crate::ExpectedPath>,
    ) -> Result<BuiltImage> {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.facts.diff_id.as_str()).collect();
        let history: Vec<Value> = (0..layers.len())
            .map(|i| json!({ "created": CREATED, "created_by": format!("skiff-tests fixture layer {i}") }))
            .collect();
        let mut config = json!({
            "created": CREATED,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {
                "Cmd": ["sh"],
                "Env": [DEFAULT_PATH],
                "WorkingDir": "/",
            },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        if let (Some(variant), Some(map)) = (&platform.variant, config.as_object_mut()) {
            map.insert("variant".into(), json!(variant));
        }
        let config = to_json_bytes(&config)?;
        let config_digest = sha256_digest(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_CONFIG,
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.facts.media_type,
                "digest": l.facts.digest,
                "size": l.facts.size,
            })).collect::<Vec<_>>(),
        });
        let manifest = to_json_bytes(&manifest)?;
        Ok(BuiltImage {
            manifest_digest: sha256_digest(&manifest),
            manifest,
            config_digest,
            config,
            layers,
            platform,
            expected,
        })
    }

    /// The layer facts, bottom first.
    pub fn layer_facts(&self) -> Vec<LayerFacts> {
        self.layers.iter().map(|l| l.facts.clone()).collect()
    }

    /// Writes the image as an OCI image layout in `dir`, tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        let layout = LayoutWriter::create(dir)?;
        layout.write_image_blobs(self)?;
        layout.write_index_json(
            MEDIA_TYPE_MANIFEST,
            &self.manifest_digest,
            self.manifest.len(),
            tag,
        )
    }
}

/// A multi-platform OCI image index in memory, with its images.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    /// The images, in index order.
    pub images: Vec<BuiltImage>,
    /// The index JSON bytes.
    pub index: Vec<u8>,
    /// Digest of `index`.
    pub index_digest: String,
}

impl BuiltIndex {
    /// Builds an OCI image index listing `images` in the given order, each
    /// with its platform.
    pub fn new(images: Vec<BuiltImage>) -> Result<BuiltIndex> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": images.iter().map(|image| json!({
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": image.manifest_digest,
                "size": image.manifest.len(),
                "platform": image.platform.to_json(),
            })).collect::<Vec<_>>(),
        });
        let index = to_json_bytes(&index)?;
        Ok(BuiltIndex {
            index_digest: sha256_digest(&index),
            index,
            images,
        })
    }

    /// Writes the index and all its images as an OCI image layout in `dir`,
    /// the index tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        let layout = LayoutWriter::create(dir)?;
        for image in &self.images {
            layout.write_image_blobs(image)?;
        }
        layout.write_blob(&self.index)?;
        layout.write_index_json(MEDIA_TYPE_INDEX, &self.index_digest, self.index.len(), tag)
    }
}

/// Serialises JSON compactly (keys sorted: serde_json's default map).
fn to_json_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Unexpected(format!("serialising JSON: {e}")))
}

/// Writes the files of an OCI image layout.
struct LayoutWriter<'a> {
    dir: &'a Path,
}

impl<'a> LayoutWriter<'a> {
    fn create(dir: &'a Path) -> Result<LayoutWriter<'a>> {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).ctx(|| format!("creating {}", blobs.display()))?;
        let marker = dir.join("oci-layout");
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .ctx(|| format!("writing {}", marker.display()))?;
        Ok(LayoutWriter { dir })
    }

    fn write_blob(&self, bytes: &[u8]) -> Result<()> {
        let digest = sha256_digest(bytes);
        let hex = digest.trim_start_matches("sha256:");
        let path = self.dir.join("blobs/sha256").join(hex);
        fs::write(&path, bytes).ctx(|| format!("writing {}", path.display()))
    }

    fn write_image_blobs(&self, image: &BuiltImage) -> Result<()> {
        for layer in &image.layers {
            self.write_blob(&layer.blob)?;
        }
        self.write_blob(&image.config)?;
        self.write_blob(&image.manifest)
    }

    fn write_index_json(
        &self,
        media_type: &str,
        digest: &str,
        size: usize,
        tag: &str,
    ) -> Result<()> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "annotations": { "org.opencontainers.image.ref.name": tag },
            }],
        });
        let path = self.dir.join("index.json");
        fs::write(&path, to_json_bytes(&index)?).ctx(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let record = pax_record("path", &[b'a'; 150]);
        let text = String::from_utf8(record.clone()).unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, record.len());
        let record = pax_record("path", b"x");
        assert_eq!(record, b"9 path=x\n");
        let record = pax_record("path", &[b'a'; 91]);
        assert_eq!(&record[..4], b"101 ");
        assert_eq!(record.len(), 101);
    }

    #[test]
    fn tar_writer_output_is_read_back_by_the_tar_crate() {
        let long = format!("data/{}", "n".repeat(150));
        let mut tar = TarWriter::new();
        tar.dir("data", 0o755)
            .file_owned("data/keep.txt", 0o640, 1000, 1000, b"keep\n")
            .file(&long, 0o644, b"long\n")
            .symlink("sl", "/data/keep.txt")
            .hardlink("data/link", "data/keep.txt")
            .whiteout("data/gone.txt")
            .opaque("opq");
        let bytes = tar.finish();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "data/",
                "data/keep.txt",
                long.as_str(),
                "sl",
                "data/link",
                "data/.wh.gone.txt",
                "opq/.wh..wh..opq"
            ]
        );
        assert_eq!(entries[1].1, 0o640);
        assert_eq!(entries[1].2, 1000);
    }

    #[test]
    fn the_same_input_gives_the_same_digests() {
        let mut tar = TarWriter::new();
        tar.file("a", 0o644, b"a\n");
        let bytes = tar.finish();
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let a = BuiltLayer::new(&bytes, compression).unwrap();
            let b = BuiltLayer::new(&bytes, compression).unwrap();
            assert_eq!(a.facts, b.facts);
            assert_eq!(a.facts.diff_id, sha256_digest(&bytes));
            assert_eq!(a.facts.media_type, compression.media_type());
        }
    }
}
