//! `pull`: resolve a reference (mirrors first for Docker Hub), choose the platform,
//! download blobs in parallel straight to disk, unpack each layer once, record the image.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::auth;
use crate::config::Endpoint;
use crate::content::Ingest;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::{chain_ids, ImageRecord, LayerRecord};
use crate::manifest::{self, Descriptor, ImageConfigInfo, ImageManifest, Manifest};
use crate::platform::Platform;
use crate::progress::{ProgressSink, PullEvent};
use crate::reference::ImageRef;
use crate::registry::RepoClient;
use crate::snapshot::LayerSource;
use crate::store::ImageStore;
use crate::unpack::Compression;

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Platform to pull (default: the host's).
    pub platform: Option<Platform>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Registry {
            reference: String::new(),
            why: format!("internal task failed: {e}"),
        })?
}

impl ImageStore {
    /// Pulls `reference` into the store and returns the image.
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
        progress: ProgressSink,
    ) -> Result<ImageRecord> {
        self.pull_with_credentials(reference, opts, None, progress)
            .await
    }

    /// Like [`ImageStore::pull`], with credentials for the image's registry given by
    /// the caller (a Docker API client's `X-Registry-Auth`) instead of the stored ones;
    /// mirrors still use theirs.
    pub async fn pull_with_credentials(
        &self,
        reference: &str,
        opts: &PullOptions,
        creds: Option<auth::Credentials>,
        progress: ProgressSink,
    ) -> Result<ImageRecord> {
        let image = ImageRef::parse(reference)?;
        let store = self.clone();
        let _gc_guard = blocking(move || store.hold_against_gc()).await?;
        let endpoints = self.config.endpoints(image.registry());
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self
                .pull_from(ep, &image, opts, creds.as_ref(), &progress)
                .await
            {
                Ok(img) => return Ok(img),
                Err(e) if i < last => {
                    tracing::warn!(mirror = %ep.host, error = %e, "mirror failed, trying the next endpoint");
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::ManifestNotFound {
            reference: image.to_string(),
            why: "no endpoint to pull from".into(),
        })
    }

    async fn pull_from(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        opts: &PullOptions,
        given: Option<&auth::Credentials>,
        progress: &ProgressSink,
    ) -> Result<ImageRecord> {
        let auth_file = self
            .config
            .auth_file
            .clone()
            .unwrap_or_else(auth::default_auth_file);
        let creds = match given {
            Some(c) if !ep.mirror => Some(c.clone()),
            _ => auth::lookup(
                &auth_file,
                if ep.mirror {
                    &ep.host
                } else {
                    image.registry()
                },
            )?,
        };
        let client = Arc::new(RepoClient::new(ep, image, creds));
        let tag_or_digest = match (image.digest(), image.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        progress(PullEvent::Resolving {
            tag: image
                .tag()
                .map(str::to_string)
                .unwrap_or_else(|| tag_or_digest.clone()),
            repository: image.repository().to_string(),
        });
        let unsupported = |why: String| StoreError::UnsupportedManifest {
            reference: image.to_string(),
            why,
        };
        let (bytes, digest, content_type) = client.manifest(&tag_or_digest).await?;
        let platform = opts
            .platform
            .clone()
            .unwrap_or_else(|| self.platform.clone());
        let (index, manifest_bytes, manifest_digest, manifest) =
            match manifest::parse_manifest(&bytes, content_type.as_deref()).map_err(unsupported)? {
                Manifest::Image(m) => (None, bytes, digest, m),
                Manifest::Index(entries) => {
                    let chosen =
                        manifest::choose_platform(&entries, &platform).map_err(|available| {
                            StoreError::NoMatchingPlatform {
                                reference: image.to_string(),
                                platform: platform.to_string(),
                                available,
                            }
                        })?;
                    let (mbytes, mdigest, _) = client.manifest(&chosen.digest.to_string()).await?;
                    if mbytes.len() as u64 != chosen.size {
                        return Err(StoreError::DigestMismatch {
                            what: "manifest",
                            expected: chosen.digest.clone(),
                            why: format!("size {} bytes, index says {}", mbytes.len(), chosen.size),
                        });
                    }
                    match manifest::parse_manifest(&mbytes, Some(&chosen.media_type))
                        .map_err(unsupported)?
                    {
                        Manifest::Image(m) => (Some((bytes, digest)), mbytes, mdigest, m),
                        Manifest::Index(_) => return Err(unsupported("nested index".into())),
                    }
                }
            };

        // Config first: it names the uncompressed layers.
        self.fetch_blob(&client, &manifest.config, "config", None)
            .await?;
        let config_bytes = self.content.read(&manifest.config.digest)?;
        let info = manifest::parse_config(&config_bytes).map_err(unsupported)?;
        if info.diff_ids.len() != manifest.layers.len() {
            return Err(unsupported(format!(
                "config lists {} layers but the manifest has {}",
                info.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        if manifest.layers.is_empty() {
            return Err(unsupported("image has no layers".into()));
        }
        let chains = chain_ids(&info.diff_ids);
        progress(PullEvent::Layers {
            layers: manifest
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect(),
        });

        let sizes = self
            .fetch_and_unpack(&client, &manifest.layers, &info.diff_ids, &chains, progress)
            .await?;

        let repo_digest = format!(
            "{}@{}",
            image.name(),
            index.as_ref().map(|(_, d)| d).unwrap_or(&manifest_digest)
        );
        let tag = image.tag().map(|t| image.with_tag(t).to_string());
        let (record, updated) = self.commit_image(NewImage {
            manifest_bytes: &manifest_bytes,
            manifest_digest: &manifest_digest,
            manifest: &manifest,
            index: index.as_ref().map(|(b, d)| (b.as_slice(), d)),
            config: &info,
            layer_sizes: &sizes,
            repo_digest: Some(repo_digest),
            tags: tag.into_iter().collect(),
        })?;
        progress(PullEvent::Done {
            digest: index.map(|(_, d)| d).unwrap_or(manifest_digest),
            image_id: record.id.clone(),
            updated,
            reference: image.to_string(),
        });
        Ok(record)
    }

    /// Downloads a blob unless the store has it. Returns whether it was downloaded.
    async fn fetch_blob(
        &self,
        client: &RepoClient,
        desc: &Descriptor,
        what: &'static str,
        on_bytes: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<bool> {
        let content = self.content.clone();
        let (d, size) = (desc.digest.clone(), desc.size);
        let ingest = blocking(move || content.ingest(&d, Some(size))).await?;
        let Ingest::Writer(mut writer) = ingest else {
            return Ok(false);
        };
        client
            .blob(&desc.digest, desc.size, &mut writer, |n| {
                if let Some(f) = on_bytes {
                    f(n)
                }
            })
            .await?;
        blocking(move || writer.commit(what)).await?;
        Ok(true)
    }

    /// Downloads missing layers in parallel and unpacks them in order as they arrive.
    /// Returns each layer's uncompressed size.
    async fn fetch_and_unpack(
        &self,
        client: &Arc<RepoClient>,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        chains: &[Digest],
        progress: &ProgressSink,
    ) -> Result<Vec<u64>> {
        let existing: Vec<bool> = {
            let chains = chains.to_vec();
            self.meta.read(|r| {
                chains
                    .iter()
                    .map(|c| Ok(r.snapshot(c)?.is_some()))
                    .collect::<Result<Vec<_>>>()
            })?
        };
        let sem = Arc::new(Semaphore::new(self.config.max_concurrent_downloads.max(1)));
        let mut downloads: Vec<Option<JoinHandle<Result<()>>>> = Vec::with_capacity(layers.len());
        for (layer, have) in layers.iter().zip(&existing) {
            if *have {
                progress(PullEvent::AlreadyExists {
                    layer: layer.digest.clone(),
                });
                downloads.push(None);
                continue;
            }
            let (store, client, sem, progress, layer) = (
                self.clone(),
                client.clone(),
                sem.clone(),
                progress.clone(),
                layer.clone(),
            );
            downloads.push(Some(tokio::spawn(async move {
                let _permit = sem
                    .acquire_owned()
                    .await
                    .map_err(|e| StoreError::Registry {
                        reference: layer.digest.to_string(),
                        why: e.to_string(),
                    })?;
                let (d, total) = (layer.digest.clone(), layer.size);
                let p2 = progress.clone();
                let report = move |n: u64| {
                    p2(PullEvent::Downloading {
                        layer: d.clone(),
                        current: n,
                        total,
                    })
                };
                store
                    .fetch_blob(&client, &layer, "layer", Some(&report))
                    .await?;
                progress(PullEvent::DownloadComplete {
                    layer: layer.digest.clone(),
                });
                Ok(())
            })));
        }
        let abort_all = |downloads: &mut Vec<Option<JoinHandle<Result<()>>>>| {
            for h in downloads.iter().flatten() {
                h.abort();
            }
        };
        let mut sizes = Vec::with_capacity(layers.len());
        for i in 0..layers.len() {
            if let Some(h) = downloads[i].take() {
                let joined = h.await.map_err(|e| StoreError::Registry {
                    reference: layers[i].digest.to_string(),
                    why: format!("download task failed: {e}"),
                });
                if let Err(e) = joined.and_then(|r| r) {
                    abort_all(&mut downloads);
                    return Err(e);
                }
            }
            let layer = layers[i].clone();
            if !existing[i] {
                progress(PullEvent::Extracting {
                    layer: layer.digest.clone(),
                });
            }
            let store = self.clone();
            let (chain, parent, diff) = (
                chains[i].clone(),
                (i > 0).then(|| chains[i - 1].clone()),
                diff_ids[i].clone(),
            );
            let unpacked =
                blocking(move || store.unpack_layer(&layer, &chain, parent.as_ref(), &diff)).await;
            match unpacked {
                Ok(size) => sizes.push(size),
                Err(e) => {
                    abort_all(&mut downloads);
                    return Err(e);
                }
            }
            if !existing[i] {
                progress(PullEvent::PullComplete {
                    layer: layers[i].digest.clone(),
                });
            }
        }
        Ok(sizes)
    }
}

/// Everything needed to record an image whose blobs and snapshots are in place.
pub(crate) struct NewImage<'a> {
    /// The manifest document.
    pub manifest_bytes: &'a [u8],
    /// Its digest.
    pub manifest_digest: &'a Digest,
    /// The parsed manifest.
    pub manifest: &'a ImageManifest,
    /// The index it came from, if any.
    pub index: Option<(&'a [u8], &'a Digest)>,
    /// The parsed config.
    pub config: &'a ImageConfigInfo,
    /// Uncompressed size of each layer.
    pub layer_sizes: &'a [u64],
    /// `registry/repo@digest` to remember, if any.
    pub repo_digest: Option<String>,
    /// Fully qualified `registry/repo:tag` names to point at the image.
    pub tags: Vec<String>,
}

impl ImageStore {
    /// Unpacks one layer (whose blob is committed) into its snapshot unless it exists;
    /// returns its uncompressed size.
    pub(crate) fn unpack_layer(
        &self,
        layer: &Descriptor,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
    ) -> Result<u64> {
        let (rec, _) = self.snapshots.ensure(chain, parent, diff_id, || {
            let mut blob = self.content.open_blob(&layer.digest)?;
            let compression = sniff_compression(&mut blob, &layer.media_type).map_err(
                StoreError::io("reading layer", self.content.path(&layer.digest)),
            )?;
            Ok(LayerSource {
                blob,
                compression,
                digest: layer.digest.clone(),
            })
        })?;
        Ok(rec.size)
    }

    /// Stores the manifest (and index) blobs and records the image and its tags in one
    /// metadata commit. Returns the record and whether anything changed.
    pub(crate) fn commit_image(&self, new: NewImage) -> Result<(ImageRecord, bool)> {
        self.content
            .write_bytes(new.manifest_bytes, Some(new.manifest_digest))?;
        if let Some((ib, id)) = new.index {
            self.content.write_bytes(ib, Some(id))?;
        }
        let chains = chain_ids(&new.config.diff_ids);
        let layers: Vec<LayerRecord> = new
            .manifest
            .layers
            .iter()
            .zip(new.config.diff_ids.iter().zip(&chains))
            .map(|(l, (diff, chain))| LayerRecord {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: diff.clone(),
                chain_id: chain.clone(),
            })
            .collect();
        let record = ImageRecord {
            id: new.manifest.config.digest.clone(),
            manifest_digest: new.manifest_digest.clone(),
            manifest_media_type: new.manifest.media_type.clone(),
            index_digest: new.index.map(|(_, d)| d.clone()),
            repo_digests: new.repo_digest.iter().cloned().collect(),
            layers,
            platform: new.config.platform.clone(),
            created: new.config.created.clone(),
            size: new.layer_sizes.iter().sum(),
            added: chrono::Utc::now().to_rfc3339(),
        };
        self.meta.write(|w| {
            let (record, mut updated) = match w.image(&record.id)? {
                Some(mut old) => {
                    let missing: Vec<String> = record
                        .repo_digests
                        .iter()
                        .filter(|d| !old.repo_digests.contains(d))
                        .cloned()
                        .collect();
                    let changed = !missing.is_empty();
                    if changed {
                        old.repo_digests.extend(missing);
                        w.put_image(&old)?;
                    }
                    (old, changed)
                }
                None => {
                    w.put_image(&record)?;
                    (record.clone(), true)
                }
            };
            for t in &new.tags {
                updated |= w.set_tag(t, &record.id)?.as_ref() != Some(&record.id);
            }
            Ok((record, updated))
        })
    }
}

/// The compression of a layer blob: what its first bytes say, which wins over the media
/// type (as Docker does), falling back to the media type for an empty blob.
fn sniff_compression(blob: &mut std::fs::File, media_type: &str) -> std::io::Result<Compression> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match blob.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    blob.seek(SeekFrom::Start(0))?;
    Ok(match Compression::sniff(&head[..n]) {
        Compression::None if n == 0 => {
            Compression::from_media_type(media_type).unwrap_or(Compression::None)
        }
        c => c,
    })
}
