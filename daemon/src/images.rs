//! Image views for front ends: what `images` lists and what `image inspect` shows,
//! shaped after Docker's ImageSummary and ImageInspect so every front end agrees.

use serde::Serialize;
use serde_json::Value;
use skiff_image_store::gc::familiar;
use skiff_image_store::mount::Mount;
use skiff_image_store::ImageRecord;

use crate::engine::Engine;
use crate::error::Result;

/// One image as `images` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// `name:tag` in Docker's short form.
    pub repo_tags: Vec<String>,
    /// `name@digest` in Docker's short form.
    pub repo_digests: Vec<String>,
    /// Creation time from the image config, as Unix seconds (0 if unknown).
    pub created: i64,
    /// Uncompressed size in bytes.
    pub size: u64,
}

/// `image inspect` output, in Docker's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDetails {
    /// Image ID.
    pub id: String,
    /// Tags, short form.
    pub repo_tags: Vec<String>,
    /// Repo digests, short form.
    pub repo_digests: Vec<String>,
    /// Always empty (no local builds).
    pub parent: String,
    /// From the config.
    pub comment: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// The runtime config from the image (Env, Cmd, Entrypoint, ...).
    pub config: Value,
    /// CPU architecture.
    pub architecture: String,
    /// Architecture variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system.
    pub os: String,
    /// Uncompressed size.
    pub size: u64,
    /// Storage details.
    pub graph_driver: GraphDriver,
    /// Layers by diff ID.
    pub root_f_s: RootFs,
    /// The manifest this image came from.
    pub descriptor: Descriptor,
}

/// Which snapshotter stores the image and where.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// `overlayfs` or `native`.
    pub name: String,
    /// Driver details (snapshot directories).
    pub data: serde_json::Map<String, Value>,
}

/// Docker's RootFS section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Diff IDs, bottom first.
    pub layers: Vec<String>,
}

/// An OCI descriptor of the image manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Manifest media type.
    pub media_type: String,
    /// Manifest digest.
    pub digest: String,
}

fn created_unix(img: &ImageRecord) -> i64 {
    img.created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Engine {
    /// Every image, newest first.
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        Ok(self
            .images()
            .list()?
            .into_iter()
            .map(|(img, tags)| ImageSummary {
                id: img.id.to_string(),
                repo_tags: tags.iter().map(|t| familiar(t)).collect(),
                repo_digests: img.repo_digests.iter().map(|d| familiar(d)).collect(),
                created: created_unix(&img),
                size: img.size,
            })
            .collect())
    }

    /// Details of one image.
    pub fn inspect_image(&self, name: &str) -> Result<ImageDetails> {
        let store = self.images();
        let img = store.resolve(name)?;
        let config = store.config_json(&img)?;
        let tags = store.tags_of(&img.id)?;
        let mut data = serde_json::Map::new();
        if let Some(top) = img.top_chain_id() {
            match store.rootfs_view(&img) {
                Ok(Mount::Overlay { lower, .. }) => {
                    let dirs: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
                    data.insert("LowerDir".into(), Value::String(dirs.join(":")));
                }
                Ok(Mount::Bind { source, .. }) => {
                    data.insert("Dir".into(), Value::String(source.display().to_string()));
                }
                Err(_) => {}
            }
            data.insert("TopChainID".into(), Value::String(top.to_string()));
        }
        Ok(ImageDetails {
            id: img.id.to_string(),
            repo_tags: tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: img.repo_digests.iter().map(|d| familiar(d)).collect(),
            parent: String::new(),
            comment: config
                .get("comment")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            created: img.created.clone().unwrap_or_default(),
            config: config.get("config").cloned().unwrap_or(Value::Null),
            architecture: img.platform.architecture.clone(),
            variant: img.platform.variant.clone(),
            os: img.platform.os.clone(),
            size: img.size,
            graph_driver: GraphDriver {
                name: store.snapshotter().name().to_string(),
                data,
            },
            root_f_s: RootFs {
                kind: "layers".into(),
                layers: img.layers.iter().map(|l| l.diff_id.to_string()).collect(),
            },
            descriptor: Descriptor {
                media_type: img.manifest_media_type.clone(),
                digest: img.manifest_digest.to_string(),
            },
        })
    }
}
