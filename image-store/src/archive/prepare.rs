//! Turning what an archive held into images: reading `index.json` (OCI) and
//! `manifest.json` (docker-archive), checking every document, then unpacking all layers
//! and, last, recording and tagging the images.

use std::collections::BTreeMap;
use std::path::Path;

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::gc::familiar;
use crate::image::chain_ids;
use crate::manifest::{
    self, choose_platform, parse_config, parse_manifest, ImageConfigInfo, ImageManifest, Manifest,
    DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use crate::pull::NewImage;
use crate::reference::ImageRef;
use crate::store::ImageStore;

use super::load::{Gathered, Source};
use super::{
    blob_path_digest, clean_path, follow_links, layer_media_type, read_head, DockerManifestEntry,
    LoadedImage, OciDescriptor, OciIndex, OciManifestOut, ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME, MAX_JSON,
};

fn bad(why: String) -> StoreError {
    StoreError::InvalidArchive(why)
}

/// An image whose documents are checked and whose blobs are in the content store.
pub(super) struct Prepared {
    manifest_bytes: Vec<u8>,
    manifest_digest: Digest,
    manifest: ImageManifest,
    index: Option<(Vec<u8>, Digest)>,
    config: ImageConfigInfo,
    /// Fully qualified tags.
    tags: Vec<String>,
}

/// A manifest found for an image, with the index it was chosen from.
struct Found {
    bytes: Vec<u8>,
    digest: Digest,
    manifest: ImageManifest,
    index: Option<(Vec<u8>, Digest)>,
}

/// Adds `p` to `out`, or its tags to the image with the same ID already there.
fn merge(out: &mut Vec<Prepared>, p: Prepared) {
    match out
        .iter_mut()
        .find(|o| o.manifest.config.digest == p.manifest.config.digest)
    {
        Some(o) => {
            for t in p.tags {
                if !o.tags.contains(&t) {
                    o.tags.push(t);
                }
            }
        }
        None => out.push(p),
    }
}

/// A name from an archive as a fully qualified tag; None for a digest reference.
fn full_tag(name: &str, what: &str) -> Result<Option<String>> {
    let r = ImageRef::parse(name).map_err(|e| bad(format!("{what}: image name {name:?}: {e}")))?;
    if r.digest().is_some() {
        return Ok(None);
    }
    Ok(Some(r.with_tag(r.tag().unwrap_or("latest")).to_string()))
}

/// The tags of an `index.json` entry, from its annotations and the default name.
fn entry_tags(
    ann: &BTreeMap<String, String>,
    default_name: Option<&ImageRef>,
    what: &str,
) -> Result<Vec<String>> {
    if let Some(full) = ann.get(ANNOTATION_IMAGE_NAME) {
        return Ok(full_tag(full, what)?.into_iter().collect());
    }
    match (ann.get(ANNOTATION_REF_NAME), default_name) {
        // A bare tag (the usual OCI form) names a tag of the default repository.
        (Some(r), Some(n)) if !r.contains(['/', ':', '@']) => {
            Ok(full_tag(&format!("{}:{r}", n.name()), what)?
                .into_iter()
                .collect())
        }
        (Some(r), None) if !r.contains(['/', ':', '@']) => {
            tracing::warn!(entry = %what, tag = %r, "tag without a repository name; loading the image untagged");
            Ok(Vec::new())
        }
        (Some(r), _) => Ok(full_tag(r, what)?.into_iter().collect()),
        (None, Some(n)) => Ok(vec![n.with_tag(n.tag().unwrap_or("latest")).to_string()]),
        (None, None) => Ok(Vec::new()),
    }
}

impl ImageStore {
    /// Checks every image the archive describes (index.json first, then manifest.json),
    /// merging the tags of entries that are the same image.
    pub(super) fn prepare_all(
        &self,
        src: &Source,
        g: &Gathered,
        default_name: Option<&ImageRef>,
    ) -> Result<Vec<Prepared>> {
        let mut out: Vec<Prepared> = Vec::new();
        if let Some(ix) = &g.index_json {
            for p in self.prepare_oci(src, ix, default_name)? {
                merge(&mut out, p);
            }
        }
        if let Some(mj) = &g.manifest_json {
            for p in self.prepare_docker(src, g, mj)? {
                merge(&mut out, p);
            }
        }
        if out.is_empty() {
            return Err(bad("the archive holds no image".into()));
        }
        Ok(out)
    }

    /// Unpacks the layers of every prepared image, then records and tags them.
    pub(super) fn finish_load(&self, prepared: Vec<Prepared>) -> Result<Vec<LoadedImage>> {
        let mut all_sizes = Vec::with_capacity(prepared.len());
        for p in &prepared {
            let chains = chain_ids(&p.config.diff_ids);
            let mut sizes = Vec::with_capacity(chains.len());
            for (i, ((layer, chain), diff)) in p
                .manifest
                .layers
                .iter()
                .zip(&chains)
                .zip(&p.config.diff_ids)
                .enumerate()
            {
                let parent = i.checked_sub(1).and_then(|j| chains.get(j));
                sizes.push(self.unpack_layer(layer, chain, parent, diff)?);
            }
            all_sizes.push(sizes);
        }
        let mut out = Vec::with_capacity(prepared.len());
        for (p, sizes) in prepared.iter().zip(&all_sizes) {
            let (record, _) = self.commit_image(NewImage {
                manifest_bytes: &p.manifest_bytes,
                manifest_digest: &p.manifest_digest,
                manifest: &p.manifest,
                index: p.index.as_ref().map(|(b, d)| (b.as_slice(), d)),
                config: &p.config,
                layer_sizes: sizes,
                repo_digest: None,
                tags: p.tags.clone(),
            })?;
            out.push(LoadedImage {
                id: record.id,
                tags: p.tags.iter().map(|t| familiar(t)).collect(),
            });
        }
        Ok(out)
    }

    /// Reads a small blob (manifest, index, config), checking the size its descriptor gave.
    fn read_json_blob(
        &self,
        src: &Source,
        d: &Digest,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<Vec<u8>> {
        if !src.ensure_blob(self, d)? {
            return Err(bad(format!("{what}: blob {d} is not in the archive")));
        }
        let size = self.content.size(d)?;
        if let Some(want) = expected_size.filter(|w| *w != size) {
            return Err(StoreError::DigestMismatch {
                what: "blob",
                expected: d.clone(),
                why: format!("size {size} bytes, {what} says {want}"),
            });
        }
        if size > MAX_JSON {
            return Err(bad(format!(
                "{what}: blob {d} is larger than {} MiB",
                MAX_JSON >> 20
            )));
        }
        self.content.read(d)
    }

    /// The images of an OCI `index.json`.
    fn prepare_oci(
        &self,
        src: &Source,
        bytes: &[u8],
        default_name: Option<&ImageRef>,
    ) -> Result<Vec<Prepared>> {
        let index: OciIndex =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("index.json: {e}")))?;
        if index.schema_version != 2 {
            return Err(bad(format!(
                "index.json: unsupported schemaVersion {}",
                index.schema_version
            )));
        }
        let mut out = Vec::new();
        for (i, entry) in index.manifests.iter().enumerate() {
            let what = format!("index.json entry {i} ({})", entry.digest);
            let mt = entry.media_type.as_str();
            if ![OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, ""].contains(&mt) {
                tracing::warn!(entry = %what, media_type = %mt, "skipping index.json entry that is not an image");
                continue;
            }
            let tags = entry_tags(&entry.annotations, default_name, &what)?;
            let content_type = (!mt.is_empty()).then_some(mt);
            let doc = self.read_json_blob(src, &entry.digest, Some(entry.size), &what)?;
            let found = match parse_manifest(&doc, content_type)
                .map_err(|w| bad(format!("{what}: {w}")))?
            {
                Manifest::Image(manifest) => Found {
                    bytes: doc,
                    digest: entry.digest.clone(),
                    manifest,
                    index: None,
                },
                Manifest::Index(entries) => {
                    let present: Vec<manifest::Descriptor> = entries
                        .into_iter()
                        .filter(|e| src.has_blob(self, &e.digest))
                        .collect();
                    let chosen =
                        choose_platform(&present, &self.platform).map_err(|available| {
                            StoreError::NoMatchingPlatform {
                                reference: what.clone(),
                                platform: self.platform.to_string(),
                                available: if available.is_empty() {
                                    "none in the archive".into()
                                } else {
                                    available
                                },
                            }
                        })?;
                    let mwhat = format!("{what}, manifest {}", chosen.digest);
                    let mb = self.read_json_blob(src, &chosen.digest, Some(chosen.size), &mwhat)?;
                    let ct = (!chosen.media_type.is_empty()).then_some(chosen.media_type.as_str());
                    match parse_manifest(&mb, ct).map_err(|w| bad(format!("{mwhat}: {w}")))? {
                        Manifest::Image(manifest) => Found {
                            bytes: mb,
                            digest: chosen.digest.clone(),
                            manifest,
                            index: Some((doc, entry.digest.clone())),
                        },
                        Manifest::Index(_) => return Err(bad(format!("{mwhat}: nested index"))),
                    }
                }
            };
            out.push(self.prepare_image(src, &what, found, tags)?);
        }
        Ok(out)
    }

    /// The images of a docker-archive `manifest.json`, each with a synthesized OCI manifest.
    fn prepare_docker(&self, src: &Source, g: &Gathered, bytes: &[u8]) -> Result<Vec<Prepared>> {
        let entries: Vec<DockerManifestEntry> =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let repo_tags = e.repo_tags.unwrap_or_default();
            let what = if repo_tags.is_empty() {
                format!("manifest.json entry {i}")
            } else {
                format!("manifest.json entry {i} ({})", repo_tags.join(", "))
            };
            let mut tags = Vec::new();
            for t in &repo_tags {
                tags.extend(full_tag(t, &what)?);
            }
            let locate = |p: &str, kind: &str| -> Result<String> {
                let clean =
                    clean_path(Path::new(p)).map_err(|why| bad(format!("{what}: {kind} {why}")))?;
                follow_links(&g.links, &clean).ok_or_else(|| {
                    bad(format!(
                        "{what}: {kind} {p:?} is a link that leads nowhere in the archive"
                    ))
                })
            };

            let config_path = locate(&e.config, "config")?;
            let config_digest = match blob_path_digest(&config_path) {
                Some(d) => d?,
                None => {
                    let b = g.json_files.get(&config_path).ok_or_else(|| {
                        bad(format!(
                            "{what}: config {:?} is not in the archive",
                            e.config
                        ))
                    })?;
                    self.content.write_bytes(b, None)?
                }
            };
            let config_what = format!("{what}: config {:?}", e.config);
            let config_bytes = self.read_json_blob(src, &config_digest, None, &config_what)?;

            let mut layers = Vec::with_capacity(e.layers.len());
            for lp in &e.layers {
                let missing = || bad(format!("{what}: layer {lp:?} is not in the archive"));
                let p = locate(lp, "layer")?;
                let digest = match blob_path_digest(&p) {
                    Some(d) => {
                        let d = d?;
                        if !src.ensure_blob(self, &d)? {
                            return Err(missing());
                        }
                        d
                    }
                    None => g.files.get(&p).cloned().ok_or_else(missing)?,
                };
                let mut blob = self.content.open_blob(&digest)?;
                let mut head = [0u8; 4];
                let n = read_head(&mut blob, &mut head)
                    .map_err(StoreError::io("reading layer", self.content.path(&digest)))?;
                layers.push(OciDescriptor {
                    media_type: layer_media_type(&head[..n]).to_string(),
                    size: self.content.size(&digest)?,
                    digest,
                    annotations: BTreeMap::new(),
                    platform: None,
                });
            }
            let synthesized = OciManifestOut {
                schema_version: 2,
                media_type: OCI_MANIFEST.to_string(),
                config: OciDescriptor {
                    media_type: OCI_CONFIG.to_string(),
                    digest: config_digest,
                    size: config_bytes.len() as u64,
                    annotations: BTreeMap::new(),
                    platform: None,
                },
                layers,
            };
            let manifest_bytes = serde_json::to_vec(&synthesized)
                .map_err(|e| bad(format!("{what}: encoding manifest: {e}")))?;
            let manifest = match parse_manifest(&manifest_bytes, None)
                .map_err(|w| bad(format!("{what}: {w}")))?
            {
                Manifest::Image(m) => m,
                Manifest::Index(_) => {
                    return Err(bad(format!("{what}: synthesized manifest is an index")))
                }
            };
            let found = Found {
                digest: Digest::of(&manifest_bytes),
                bytes: manifest_bytes,
                manifest,
                index: None,
            };
            out.push(self.prepare_image(src, &what, found, tags)?);
        }
        Ok(out)
    }

    /// Checks an image's config and layers against its manifest; every blob must be in
    /// the content store afterwards.
    fn prepare_image(
        &self,
        src: &Source,
        what: &str,
        found: Found,
        tags: Vec<String>,
    ) -> Result<Prepared> {
        let Found {
            bytes: manifest_bytes,
            digest: manifest_digest,
            manifest,
            index,
        } = found;
        let config_what = format!("{what}: config");
        let config_bytes = self.read_json_blob(
            src,
            &manifest.config.digest,
            Some(manifest.config.size),
            &config_what,
        )?;
        let config = parse_config(&config_bytes).map_err(|w| bad(format!("{config_what}: {w}")))?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(bad(format!(
                "{what}: config lists {} layers but the manifest has {}",
                config.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        if manifest.layers.is_empty() {
            return Err(bad(format!("{what}: image has no layers")));
        }
        for l in &manifest.layers {
            if !src.ensure_blob(self, &l.digest)? {
                return Err(bad(format!(
                    "{what}: layer {} is not in the archive",
                    l.digest
                )));
            }
            let size = self.content.size(&l.digest)?;
            if size != l.size {
                return Err(StoreError::DigestMismatch {
                    what: "layer",
                    expected: l.digest.clone(),
                    why: format!("size {size} bytes, the manifest of {what} says {}", l.size),
                });
            }
        }
        Ok(Prepared {
            manifest_bytes,
            manifest_digest,
            manifest,
            index,
            config,
            tags,
        })
    }
}
