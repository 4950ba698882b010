//! What the store knows about an image and its layers, as persisted in the metadata database.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::platform::Platform;

/// One layer of an image: its compressed blob and its uncompressed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (usually compressed).
    pub digest: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar (from the image config's rootfs.diff_ids).
    pub diff_id: Digest,
    /// Identity of this layer stacked on all the ones below it (OCI ChainID).
    pub chain_id: Digest,
}

/// An image in the local store. Its ID is the digest of its config, as in Docker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Image ID: digest of the config blob.
    pub id: Digest,
    /// Digest of the image manifest.
    pub manifest_digest: Digest,
    /// Media type of the manifest (OCI or Docker schema2).
    pub manifest_media_type: String,
    /// Digest of the index or manifest list the manifest was chosen from, if any.
    #[serde(default)]
    pub index_digest: Option<Digest>,
    /// `name@digest` references this image was pulled as (Docker's RepoDigests).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Platform from the config.
    pub platform: Platform,
    /// Creation time from the config (RFC 3339), if it says.
    #[serde(default)]
    pub created: Option<String>,
    /// Sum of the uncompressed layer sizes (Docker's image Size).
    pub size: u64,
    /// When this store first got the image (RFC 3339).
    pub added: String,
}

impl ImageRecord {
    /// Every blob this image needs kept: manifest, config, layers, and its index.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest_digest, &self.id]
            .into_iter()
            .chain(self.index_digest.iter())
            .chain(self.layers.iter().map(|l| &l.digest))
    }

    /// The chain ID of the top layer: the snapshot that holds the whole image.
    pub fn top_chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

/// A layer unpacked on disk: `snapshots/<id>/fs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Short numeric directory name (keeps overlay mount options short).
    pub id: u64,
    /// Chain ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// The layer's uncompressed digest.
    pub diff_id: Digest,
    /// Uncompressed size of the layer.
    pub size: u64,
}

/// OCI ChainIDs for a list of diff IDs: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(format!("{prev} {d}").as_bytes());
                Digest::from_hasher(h)
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
