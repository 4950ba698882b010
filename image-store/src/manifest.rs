//! Parsing of manifests, indexes and image configs as they come from registries and
//! archives: outside bytes, so every field is checked before it is used.

use serde::Deserialize;

use crate::digest::Digest;
use crate::platform::Platform;
use crate::unpack::Compression;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Every manifest type skiff asks registries for (the full list matters: see host notes).
pub const ACCEPTED_MANIFESTS: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Platform, for index entries.
    pub platform: Option<Platform>,
}

/// An image manifest: one config and its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    /// Media type of the manifest itself.
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// Layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

/// What a manifest document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An index or manifest list.
    Index(Vec<Descriptor>),
    /// An image manifest.
    Image(ImageManifest),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

fn descriptor(raw: RawDescriptor) -> Result<Descriptor, String> {
    let digest = raw.digest.parse::<Digest>().map_err(|e| e.to_string())?;
    let size =
        u64::try_from(raw.size).map_err(|_| format!("descriptor {digest} has a negative size"))?;
    Ok(Descriptor {
        media_type: raw.media_type,
        digest,
        size,
        platform: raw.platform.map(|p| Platform {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant.filter(|v| !v.is_empty()),
        }),
    })
}

/// Parses a manifest or index. `content_type` is what the transport said, if anything.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if raw.schema_version == Some(1) {
        return Err("Docker schema 1 manifests are deprecated and not supported".into());
    }
    if raw.schema_version != Some(2) {
        return Err(format!(
            "unsupported manifest schemaVersion {:?}",
            raw.schema_version
        ));
    }
    let media_type = raw.media_type.clone().or(content_type.map(str::to_string));
    match (raw.manifests, raw.config, raw.layers) {
        (Some(list), None, None) => {
            if let Some(mt) = media_type
                .as_deref()
                .filter(|mt| *mt != OCI_INDEX && *mt != DOCKER_LIST)
            {
                return Err(format!("index has unexpected media type {mt}"));
            }
            Ok(Manifest::Index(
                list.into_iter().map(descriptor).collect::<Result<_, _>>()?,
            ))
        }
        (None, Some(config), Some(layers)) => {
            let media_type = media_type.unwrap_or_else(|| OCI_MANIFEST.to_string());
            if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
                return Err(format!("unknown manifest media type {media_type}"));
            }
            let config = descriptor(config)?;
            if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
                return Err(format!(
                    "config media type {} is not a container image (an OCI artifact?)",
                    config.media_type
                ));
            }
            let layers = layers
                .into_iter()
                .map(descriptor)
                .collect::<Result<Vec<_>, _>>()?;
            for l in &layers {
                if Compression::from_media_type(&l.media_type).is_none() {
                    return Err(format!(
                        "layer {} has unsupported media type {}",
                        l.digest, l.media_type
                    ));
                }
            }
            Ok(Manifest::Image(ImageManifest {
                media_type,
                config,
                layers,
            }))
        }
        _ => Err("document is neither an image manifest nor an index".into()),
    }
}

/// Picks the index entry that best fits `want`; errors list what the index offers.
pub fn choose_platform<'a>(
    entries: &'a [Descriptor],
    want: &Platform,
) -> Result<&'a Descriptor, String> {
    let best = entries
        .iter()
        .filter(|d| {
            d.media_type.is_empty()
                || d.media_type == OCI_MANIFEST
                || d.media_type == DOCKER_MANIFEST
        })
        .filter_map(|d| {
            d.platform
                .as_ref()
                .and_then(|p| want.match_score(p))
                .map(|s| (s, d))
        })
        .max_by_key(|(s, _)| *s);
    match best {
        Some((_, d)) => Ok(d),
        None => Err(entries
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect::<Vec<_>>()
            .join(", ")),
    }
}

/// The parts of an image config the store needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfigInfo {
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
    /// The image's platform.
    pub platform: Platform,
    /// Creation time (RFC 3339), if given.
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
    rootfs: RawRootfs,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

/// Parses an image config.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfigInfo, String> {
    let raw: RawConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("image config is not valid: {e}"))?;
    if raw.rootfs.kind != "layers" {
        return Err(format!(
            "image config rootfs type {:?} is not \"layers\"",
            raw.rootfs.kind
        ));
    }
    let diff_ids = raw
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.parse::<Digest>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImageConfigInfo {
        diff_ids,
        platform: Platform {
            os: raw.os,
            architecture: raw.architecture,
            variant: raw.variant.filter(|v| !v.is_empty()),
        },
        created: raw.created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_image_manifest() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":10}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":5}}]}}"#,
            d('a'),
            d('b')
        );
        let Manifest::Image(im) = parse_manifest(m.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(im.layers.len(), 1);
        assert_eq!(im.config.size, 10);
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(parse_manifest(b"{", None).unwrap_err().contains("JSON"));
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None)
            .unwrap_err()
            .contains("schema 1"));
        let neg = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":-1}},"layers":[]}}"#,
            d('a')
        );
        assert!(parse_manifest(neg.as_bytes(), None)
            .unwrap_err()
            .contains("negative"));
        let art = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":1}},"layers":[]}}"#,
            d('a')
        );
        assert!(parse_manifest(art.as_bytes(), None)
            .unwrap_err()
            .contains("not a container image"));
        let badlayer = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[{{"mediaType":"application/x-foo","digest":"{}","size":1}}]}}"#,
            d('a'),
            d('b')
        );
        assert!(parse_manifest(badlayer.as_bytes(), None)
            .unwrap_err()
            .contains("unsupported media type"));
    }

    #[test]
    fn chooses_platform() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let Manifest::Index(e) = parse_manifest(idx.as_bytes(), None).unwrap() else {
            panic!()
        };
        let amd = choose_platform(&e, &"linux/amd64".parse().unwrap()).unwrap();
        assert_eq!(amd.digest.to_string(), d('b'));
        let none = choose_platform(&e, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert_eq!(none, "linux/arm64, linux/amd64");
    }

    #[test]
    fn parses_config() {
        let c = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            d('c')
        );
        let info = parse_config(c.as_bytes()).unwrap();
        assert_eq!(info.diff_ids.len(), 1);
        assert!(parse_config(br#"{"rootfs":{"type":"layers","diff_ids":["x"]}}"#).is_err());
    }
}
