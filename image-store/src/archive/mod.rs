//! Import and export of image archives: `skiff save` and `skiff load`.
//!
//! [`ImageStore::save`](crate::store::ImageStore::save) writes one tar stream that is at
//! once a docker-archive (`manifest.json` + `repositories`, laid out as `docker save` of
//! Docker 25+ writes it) and an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), so `docker load` and OCI tools both read it.
//!
//! [`ImageStore::load`](crate::store::ImageStore::load) reads docker-archives (the Docker
//! 25+ layout and the legacy `<id>/layer.tar` one, as well as podman's `<digest>.tar`
//! flavour) and OCI layouts, plain or gzip or zstd compressed;
//! [`ImageStore::load_oci_dir`](crate::store::ImageStore::load_oci_dir) reads an OCI
//! layout directory on disk.
//!
//! Archives are hostile input: entry names may not be absolute or contain `..`, JSON
//! documents are size-capped, every blob is streamed into the content store and verified
//! against its name, and layers are verified against the config's diff IDs as they are
//! unpacked. An image is recorded (and tagged) only after all of its layers, and those of
//! every other image of the archive, are unpacked.

mod load;
mod prepare;
mod save;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::platform::Platform;
use crate::unpack::Compression;

/// One image that [`load`](crate::store::ImageStore::load) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image ID (digest of its config).
    pub id: Digest,
    /// The tags it got, in Docker's familiar form (`alpine:latest`); empty for an image
    /// loaded by ID only (`Loaded image ID: sha256:...`).
    pub tags: Vec<String>,
}

/// Annotation of an `index.json` entry holding the image's fully qualified name (containerd, Docker 25+).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation of an `index.json` entry holding its tag (OCI image layout).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// OCI zstd layer media type.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Largest JSON document (manifest.json, index.json, a manifest or config) read from an archive.
pub(crate) const MAX_JSON: u64 = 4 << 20;
/// Largest sum of the small JSON files buffered while streaming one archive.
pub(crate) const MAX_JSON_TOTAL: u64 = 64 << 20;
/// Most links, legacy layer files and JSON files one archive may hold (each costs memory
/// while the archive is read).
pub(crate) const MAX_TRACKED_ENTRIES: usize = 100_000;
/// How many links are followed to find one docker-archive file.
const MAX_LINK_HOPS: usize = 16;

/// `oci-layout` file contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciLayout {
    pub image_layout_version: String,
}

/// An OCI content descriptor as written in `index.json` and manifests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciDescriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An OCI image index (`index.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciIndex {
    pub schema_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<OciDescriptor>,
}

/// An OCI image manifest, as synthesized for legacy docker-archive images.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OciManifestOut {
    pub schema_version: i64,
    pub media_type: String,
    pub config: OciDescriptor,
    pub layers: Vec<OciDescriptor>,
}

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DockerManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Normalises an archive entry name to `a/b/c`: no absolute paths, no `..`; `.` parts
/// are dropped. Returns an empty string for the archive root (`./`).
pub(crate) fn clean_path(raw: &std::path::Path) -> std::result::Result<String, String> {
    use std::path::Component;
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| format!("entry {raw:?} is not UTF-8"))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "entry {:?} contains \"..\"",
                    raw.display().to_string()
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "entry {:?} is an absolute path",
                    raw.display().to_string()
                ))
            }
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link `target` found at archive path `at` (symlinks are relative to the
/// link's directory); None if it leaves the archive or is absolute.
pub(crate) fn resolve_link_target(at: &str, target: &str, symlink: bool) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = if symlink {
        let mut p: Vec<&str> = at.split('/').collect();
        p.pop();
        p
    } else {
        Vec::new()
    };
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Follows `links` from `path` until it names no link; None on a loop or a dangling link.
pub(crate) fn follow_links(
    links: &std::collections::HashMap<String, Option<String>>,
    path: &str,
) -> Option<String> {
    let mut cur = path.to_string();
    for _ in 0..MAX_LINK_HOPS {
        match links.get(&cur) {
            None => return Some(cur),
            Some(None) => return None,
            Some(Some(next)) => cur = next.clone(),
        }
    }
    None
}

/// The digest named by an archive path `blobs/sha256/<hex>`, if it is one.
pub(crate) fn blob_path_digest(path: &str) -> Option<std::result::Result<Digest, StoreError>> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    Some(format!("sha256:{hex}").parse::<Digest>().map_err(|e| {
        StoreError::InvalidArchive(format!(
            "entry {path:?} is not named by a valid sha256 digest: {}",
            e.why
        ))
    }))
}

/// The archive path of a blob.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Reads at most [`MAX_JSON`] bytes of a JSON document named `what`.
pub(crate) fn read_json_capped(mut r: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut r)
        .take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StoreError::InvalidArchive(format!("reading {what}: {e}")))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(StoreError::InvalidArchive(format!(
            "{what} is larger than {} MiB",
            MAX_JSON >> 20
        )));
    }
    Ok(buf)
}

/// The OCI media type of a layer blob, from its first bytes.
pub(crate) fn layer_media_type(first: &[u8]) -> &'static str {
    match Compression::sniff(first) {
        Compression::Gzip => crate::manifest::OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
        Compression::None => crate::manifest::OCI_LAYER_TAR,
    }
}

/// Reads up to `buf.len()` bytes (fewer only at end of stream).
pub(crate) fn read_head(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
