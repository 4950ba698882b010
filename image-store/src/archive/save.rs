//! `save`: images out as one tar that is both a docker-archive and an OCI image layout.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::gc::familiar;
use crate::image::ImageRecord;
use crate::manifest::OCI_INDEX;
use crate::reference::ImageRef;
use crate::store::ImageStore;

use super::{
    blob_path, DockerManifestEntry, OciDescriptor, OciIndex, OciLayout, ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
};

/// How errors name the output stream, which has no path.
const OUTPUT: &str = "<output stream>";

/// One image to write and the fully qualified tags to write it under.
struct Selected {
    image: ImageRecord,
    tags: Vec<String>,
}

/// A blob to stream: its digest and size at selection time.
struct BlobOut {
    digest: Digest,
    size: u64,
}

impl ImageStore {
    /// Writes the images `names` (references or IDs) as one tar stream that is both a
    /// docker-archive (`manifest.json` + `repositories`, as `docker save` of Docker 25+
    /// writes it) and an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`),
    /// so both `docker load` and OCI tools read it.
    ///
    /// A name with a tag saves the image under that tag; a repository name without a tag
    /// (`alpine`) saves every tag of that repository, as Docker does; an ID saves the
    /// image untagged. Blobs are streamed from the content store as stored (layers stay
    /// compressed) and each is written once.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let selected = self.select_for_save(names)?;
        // Garbage collection must not delete blobs while they are written out.
        let _gc_guard = self.hold_against_gc()?;
        let mut blobs: Vec<BlobOut> = Vec::new();
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut index = OciIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
        };
        let mut docker_manifest: Vec<DockerManifestEntry> = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for sel in &selected {
            let img = &sel.image;
            let mut add = |d: &Digest| -> Result<u64> {
                let size = self.content.size(d)?;
                if seen.insert(d.clone()) {
                    blobs.push(BlobOut {
                        digest: d.clone(),
                        size,
                    });
                }
                Ok(size)
            };
            add(&img.id)?;
            for l in &img.layers {
                add(&l.digest)?;
            }
            let manifest_size = add(&img.manifest_digest)?;
            let desc = |annotations: BTreeMap<String, String>| OciDescriptor {
                media_type: img.manifest_media_type.clone(),
                digest: img.manifest_digest.clone(),
                size: manifest_size,
                annotations,
                platform: None,
            };
            if sel.tags.is_empty() {
                index.manifests.push(desc(BTreeMap::new()));
            }
            for t in &sel.tags {
                let r = ImageRef::parse(t)?;
                let tag = r.tag().unwrap_or("latest").to_string();
                let annotations = BTreeMap::from([
                    (ANNOTATION_IMAGE_NAME.to_string(), t.clone()),
                    (ANNOTATION_REF_NAME.to_string(), tag.clone()),
                ]);
                index.manifests.push(desc(annotations));
                if let Some(top) = img.layers.last() {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(tag, top.digest.hex().to_string());
                }
            }
            docker_manifest.push(DockerManifestEntry {
                config: blob_path(&img.id),
                repo_tags: Some(sel.tags.iter().map(|t| familiar(t)).collect()),
                layers: img.layers.iter().map(|l| blob_path(&l.digest)).collect(),
            });
        }

        let mut tar = tar::Builder::new(out);
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, dir, std::io::empty())
                .map_err(StoreError::io("writing archive entry", dir))?;
        }
        for b in &blobs {
            let path = blob_path(&b.digest);
            let file = self.content.open_blob(&b.digest)?;
            let mut h = header(tar::EntryType::Regular, 0o644, b.size);
            let reader = ExactReader {
                inner: file,
                remaining: b.size,
            };
            tar.append_data(&mut h, &path, reader)
                .map_err(StoreError::io("writing archive entry", &path))?;
        }
        let files: [(&str, Option<Vec<u8>>); 4] = [
            ("index.json", Some(to_json(&index)?)),
            ("manifest.json", Some(to_json(&docker_manifest)?)),
            (
                "oci-layout",
                Some(to_json(&OciLayout {
                    image_layout_version: "1.0.0".into(),
                })?),
            ),
            (
                "repositories",
                (!repositories.is_empty())
                    .then(|| to_json(&repositories))
                    .transpose()?,
            ),
        ];
        for (name, bytes) in files {
            let Some(bytes) = bytes else { continue };
            let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
            tar.append_data(&mut h, name, bytes.as_slice())
                .map_err(StoreError::io("writing archive entry", name))?;
        }
        let mut out = tar
            .into_inner()
            .map_err(StoreError::io("finishing image archive", OUTPUT))?;
        out.flush()
            .map_err(StoreError::io("flushing image archive", OUTPUT))?;
        Ok(())
    }

    /// Resolves the names to images (deduplicated, first-named first) and their tags.
    fn select_for_save(&self, names: &[String]) -> Result<Vec<Selected>> {
        if names.is_empty() {
            return Err(StoreError::InvalidReference {
                reference: String::new(),
                why: "no image to save was named".into(),
            });
        }
        let mut out: Vec<Selected> = Vec::new();
        let mut push = |image: ImageRecord, tags: Vec<String>| match out
            .iter_mut()
            .find(|s| s.image.id == image.id)
        {
            Some(s) => {
                for t in tags {
                    if !s.tags.contains(&t) {
                        s.tags.push(t);
                    }
                }
            }
            None => out.push(Selected { image, tags }),
        };
        for name in names {
            let as_ref = match name.parse::<Digest>() {
                Ok(_) => None,
                Err(_) => ImageRef::parse(name).ok().filter(|r| r.digest().is_none()),
            };
            if let Some(r) = &as_ref {
                // `alpine` (no tag written) means every tag of the repository.
                let explicit_tag = name
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'));
                if !explicit_tag {
                    let repo = r.name();
                    let mut found = false;
                    for (img, tags) in self.list()? {
                        let mine: Vec<String> = tags
                            .into_iter()
                            .filter(|t| ImageRef::parse(t).is_ok_and(|tr| tr.name() == repo))
                            .collect();
                        if !mine.is_empty() {
                            found = true;
                            push(img, mine);
                        }
                    }
                    if found {
                        continue;
                    }
                }
            }
            let img = self.resolve(name)?;
            let tags = match &as_ref {
                Some(r) => {
                    let full = r.with_tag(r.tag().unwrap_or("latest")).to_string();
                    if self.tags_of(&img.id)?.contains(&full) {
                        vec![full]
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            };
            push(img, tags);
        }
        Ok(out)
    }
}

/// A header for an archive entry: owner 0:0, mtime 0 so equal images give equal archives.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Reads exactly `remaining` bytes of a blob, failing if it ends early (the tar header
/// already announced the size) and never reading past it.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("blob ended {} bytes early", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The JSON bytes of one of the archive's documents.
fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::InvalidArchive(format!("encoding JSON: {e}")))
}
