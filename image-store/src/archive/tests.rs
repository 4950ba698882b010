//! Tests of save and load (run as root: stores probe overlayfs and the tests mount
//! image root filesystems to look inside).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;
use crate::config::StoreConfig;
use crate::image::ImageRecord;
use crate::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::mount;
use crate::store::ImageStore;

fn open_store(dir: &Path) -> ImageStore {
    ImageStore::open(StoreConfig {
        root: dir.to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

/// A layer tar; names ending in `/` are directories.
fn layer_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A tar of `(name, bytes)` files, names written raw (so hostile ones can be expressed).
fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        let slot = &mut h.as_old_mut().name;
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).unwrap();
}

fn symlink_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, name, target).unwrap();
}

/// The two layers every test image has: the second adds `etc/world` and deletes `etc/gone`.
fn test_layers() -> (Vec<u8>, Vec<u8>) {
    let l1 = layer_tar(&[
        ("etc/", b""),
        ("etc/hello", b"hello\n"),
        ("etc/gone", b"bye\n"),
    ]);
    let l2 = layer_tar(&[
        ("etc/", b""),
        ("etc/world", b"world\n"),
        ("etc/.wh.gone", b""),
    ]);
    (l1, l2)
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let p = Platform::host();
    serde_json::to_vec(&json!({
        "architecture": p.architecture,
        "os": p.os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(d.hex()), bytes).unwrap();
    d
}

/// Writes an OCI layout with one two-layer gzip image whose `index.json` entry (tag
/// `v1`) is an image index with this host's platform and a missing foreign one.
/// Returns the image ID and the manifest digest.
fn make_oci_layout(dir: &Path) -> (Digest, Digest) {
    let (l1, l2) = test_layers();
    let (g1, g2) = (gzip(&l1), gzip(&l2));
    let config = config_for(&[Digest::of(&l1), Digest::of(&l2)]);
    let config_d = write_blob(dir, &config);
    let layer = |g: &[u8]| json!({"mediaType": OCI_LAYER_GZIP, "digest": write_blob(dir, g).to_string(), "size": g.len()});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
        "layers": [layer(&g1), layer(&g2)],
    }))
    .unwrap();
    let manifest_d = write_blob(dir, &manifest);
    let host = Platform::host();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": Digest::of(b"elsewhere").to_string(), "size": 9,
             "platform": {"os": "linux", "architecture": "fakearch"}},
            {"mediaType": OCI_MANIFEST, "digest": manifest_d.to_string(), "size": manifest.len(), "platform": host},
        ],
    }))
    .unwrap();
    let index_d = write_blob(dir, &index);
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_INDEX, "digest": index_d.to_string(), "size": index.len(),
                       "annotations": {ANNOTATION_REF_NAME: "v1"}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (config_d, manifest_d)
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = mount::unmount(&self.0);
    }
}

/// Mounts the image's read-only root filesystem and reads the files of the test layers.
fn rootfs_files(store: &ImageStore, img: &ImageRecord) -> HashMap<&'static str, Option<Vec<u8>>> {
    let target = tempfile::tempdir().unwrap();
    store
        .rootfs_view(img)
        .unwrap()
        .mount(target.path())
        .unwrap();
    let _m = Mounted(target.path().to_path_buf());
    ["etc/hello", "etc/world", "etc/gone"]
        .into_iter()
        .map(|f| (f, std::fs::read(target.path().join(f)).ok()))
        .collect()
}

fn assert_test_rootfs(store: &ImageStore, img: &ImageRecord) {
    let files = rootfs_files(store, img);
    assert_eq!(files["etc/hello"].as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(files["etc/world"].as_deref(), Some(&b"world\n"[..]));
    assert_eq!(
        files["etc/gone"], None,
        "the whiteout of the second layer applies"
    );
}

/// The regular files of a tar, in order, with their contents.
fn tar_files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push((name, data));
    }
    out
}

#[test]
fn oci_dir_save_and_load_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (id, manifest_d) = make_oci_layout(&layout);

    let s1 = open_store(&tmp.path().join("s1"));
    let loaded = s1.load_oci_dir(&layout, Some("skifftest")).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id: id.clone(),
            tags: vec!["skifftest:v1".into()]
        }]
    );
    let img = s1.resolve("skifftest:v1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.manifest_digest, manifest_d);
    assert!(
        img.index_digest.is_some(),
        "the index the manifest was chosen from is kept"
    );
    assert_test_rootfs(&s1, &img);

    // Save under the tag: both formats, every blob once.
    let mut saved = Vec::new();
    s1.save(&["skifftest:v1".to_string()], &mut saved).unwrap();
    let files = tar_files(&saved);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let unique: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "no entry twice: {names:?}");
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/"))
            .count(),
        4,
        "config, 2 layers, manifest"
    );
    let get = |n: &str| &files.iter().find(|(f, _)| f == n).unwrap().1;
    let dm: serde_json::Value = serde_json::from_slice(get("manifest.json")).unwrap();
    assert_eq!(dm[0]["RepoTags"], json!(["skifftest:v1"]));
    assert_eq!(dm[0]["Config"], json!(format!("blobs/sha256/{}", id.hex())));
    for l in dm[0]["Layers"].as_array().unwrap() {
        let p = l.as_str().unwrap();
        assert!(names.contains(&p), "{p}");
        assert_eq!(
            Digest::of(get(p)).hex(),
            p.trim_start_matches("blobs/sha256/")
        );
    }
    let ix: serde_json::Value = serde_json::from_slice(get("index.json")).unwrap();
    assert_eq!(ix["manifests"][0]["digest"], json!(manifest_d.to_string()));
    assert_eq!(
        ix["manifests"][0]["annotations"],
        json!({ANNOTATION_IMAGE_NAME: "docker.io/library/skifftest:v1", ANNOTATION_REF_NAME: "v1"})
    );
    let repos: serde_json::Value = serde_json::from_slice(get("repositories")).unwrap();
    assert!(repos["skifftest"]["v1"].is_string());

    // Load the tarball into a fresh store: same image, same tag, same files.
    let s2 = open_store(&tmp.path().join("s2"));
    let loaded = s2.load(saved.as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id: id.clone(),
            tags: vec!["skifftest:v1".into()]
        }]
    );
    let img2 = s2.resolve("skifftest:v1").unwrap();
    assert_eq!(img2.manifest_digest, manifest_d);
    assert_eq!(img2.layers, img.layers);
    assert_test_rootfs(&s2, &img2);

    // Compressed tarballs load too.
    let s3 = open_store(&tmp.path().join("s3"));
    let zst = zstd::encode_all(saved.as_slice(), 3).unwrap();
    assert_eq!(s3.load(gzip(&saved).as_slice()).unwrap()[0].id, id);
    assert_eq!(
        s3.load(zst.as_slice()).unwrap()[0].tags,
        vec!["skifftest:v1".to_string()]
    );

    // The saved tarball, unpacked, is an OCI layout on its own (names from the annotations).
    let extracted = tmp.path().join("extracted");
    tar::Archive::new(saved.as_slice())
        .unpack(&extracted)
        .unwrap();
    let s4 = open_store(&tmp.path().join("s4"));
    let loaded = s4.load_oci_dir(&extracted, None).unwrap();
    assert_eq!(loaded[0].tags, vec!["skifftest:v1".to_string()]);

    // A repository name saves all its tags; an ID saves the image untagged.
    s1.tag("skifftest:v1", "skifftest:v2").unwrap();
    let mut both = Vec::new();
    s1.save(&["skifftest".to_string()], &mut both).unwrap();
    let s5 = open_store(&tmp.path().join("s5"));
    let mut tags = s5.load(both.as_slice()).unwrap().remove(0).tags;
    tags.sort();
    assert_eq!(
        tags,
        vec!["skifftest:v1".to_string(), "skifftest:v2".to_string()]
    );
    let mut by_id = Vec::new();
    s1.save(&[id.short().to_string()], &mut by_id).unwrap();
    let s6 = open_store(&tmp.path().join("s6"));
    assert_eq!(
        s6.load(by_id.as_slice()).unwrap(),
        vec![LoadedImage {
            id: id.clone(),
            tags: vec![]
        }]
    );
    assert!(s6.list().unwrap()[0].1.is_empty());
}

/// A docker-archive as Docker before 25 wrote it: `<hex>.json` config, `<id>/layer.tar`
/// layers, the second a symlink to the first.
fn legacy_archive(diff_ids: Option<Vec<Digest>>, with_layer: bool) -> (Vec<u8>, Digest) {
    let (l1, _) = test_layers();
    let diffs = diff_ids.unwrap_or_else(|| vec![Digest::of(&l1), Digest::of(&l1)]);
    let config = config_for(&diffs);
    let id = Digest::of(&config);
    let manifest = json!([{
        "Config": format!("{}.json", id.hex()),
        "RepoTags": ["busybox:latest"],
        "Layers": ["abc/layer.tar", "./def/layer.tar"],
    }]);
    let mut b = tar::Builder::new(Vec::new());
    if with_layer {
        file(&mut b, "abc/VERSION", b"1.0");
        file(&mut b, "abc/json", b"{}");
        file(&mut b, "abc/layer.tar", &l1);
    }
    symlink_entry(&mut b, "def/layer.tar", "../abc/layer.tar");
    file(&mut b, &format!("{}.json", id.hex()), &config);
    file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    file(&mut b, "repositories", br#"{"busybox":{"latest":"abc"}}"#);
    (b.into_inner().unwrap(), id)
}

#[test]
fn legacy_docker_archive_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, id) = legacy_archive(None, true);
    let s = open_store(&tmp.path().join("s"));
    let loaded = s.load(archive.as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id: id.clone(),
            tags: vec!["busybox:latest".into()]
        }]
    );
    let img = s.resolve("busybox").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0].media_type, OCI_LAYER_TAR);
    assert_eq!(img.layers[0].digest, img.layers[1].digest);
    assert_eq!(img.manifest_media_type, OCI_MANIFEST);
    let files = rootfs_files(&s, &img);
    assert_eq!(files["etc/hello"].as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(files["etc/gone"].as_deref(), Some(&b"bye\n"[..]));

    // Saved again and loaded elsewhere (a store of full copies, this time), it is the
    // same image with the same manifest.
    let mut saved = Vec::new();
    s.save(&["busybox:latest".to_string()], &mut saved).unwrap();
    let s2 = ImageStore::open(StoreConfig {
        root: tmp.path().join("s2"),
        snapshotter: crate::config::SnapshotterChoice::Native,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s2.load(saved.as_slice()).unwrap(), loaded);
    let img2 = s2.resolve("busybox:latest").unwrap();
    assert_eq!(img2.manifest_digest, img.manifest_digest);
    assert_eq!(rootfs_files(&s2, &img2), files);
}

#[test]
fn blob_not_matching_its_name_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open_store(&tmp.path().join("s"));
    let name = format!("blobs/sha256/{}", Digest::of(b"A").hex());
    let e = s.load(raw_tar(&[(&name, b"B")]).as_slice()).unwrap_err();
    assert!(matches!(e, StoreError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");

    // A whole saved image with one layer corrupted: nothing is recorded or tagged.
    let layout = tmp.path().join("layout");
    make_oci_layout(&layout);
    let src = open_store(&tmp.path().join("src"));
    src.load_oci_dir(&layout, Some("victim")).unwrap();
    let mut saved = Vec::new();
    src.save(&["victim:v1".to_string()], &mut saved).unwrap();
    let img = src.resolve("victim:v1").unwrap();
    let bad_layer = blob_path(&img.layers[1].digest);
    let files: Vec<(String, Vec<u8>)> = tar_files(&saved)
        .into_iter()
        .map(|(n, mut d)| {
            if n == bad_layer {
                let last = d.len() - 1;
                d[last] ^= 0xff;
            }
            (n, d)
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let e = s.load(raw_tar(&refs).as_slice()).unwrap_err();
    assert!(matches!(e, StoreError::DigestMismatch { .. }), "{e}");
    assert!(s.list().unwrap().is_empty());
    assert!(s.resolve("victim:v1").is_err());

    // Wrong diff IDs in the config: the unpack check fails and nothing is tagged.
    let (archive, _) = legacy_archive(Some(vec![Digest::of(b"x"), Digest::of(b"y")]), true);
    let e = s.load(archive.as_slice()).unwrap_err();
    assert!(matches!(e, StoreError::DigestMismatch { .. }), "{e}");
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn hostile_paths_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open_store(&tmp.path().join("s"));
    for name in ["../x", "blobs/../../x", "/etc/passwd"] {
        let e = s.load(raw_tar(&[(name, b"x")]).as_slice()).unwrap_err();
        assert!(matches!(e, StoreError::InvalidArchive(_)), "{name}: {e}");
    }
    assert!(!tmp.path().join("x").exists());
    // A symlink out of the archive cannot stand for a layer.
    let mut b = tar::Builder::new(Vec::new());
    symlink_entry(&mut b, "abc/layer.tar", "../../etc/passwd");
    file(&mut b, "c.json", &config_for(&[Digest::of(b"x")]));
    file(
        &mut b,
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#,
    );
    let e = s.load(b.into_inner().unwrap().as_slice()).unwrap_err();
    assert!(matches!(e, StoreError::InvalidArchive(_)), "{e}");
    assert!(e.to_string().contains("leads nowhere"), "{e}");
}

#[test]
fn missing_layer_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open_store(&tmp.path().join("s"));
    let (archive, _) = legacy_archive(None, false);
    let e = s.load(archive.as_slice()).unwrap_err();
    assert!(matches!(e, StoreError::InvalidArchive(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("abc/layer.tar") && msg.contains("not in the archive"),
        "{msg}"
    );
    assert!(msg.contains("busybox:latest"), "{msg}");
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn not_an_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open_store(&tmp.path().join("s"));
    for input in [&b""[..], &[b'A'; 1024][..], &gzip(b"not a tar")[..]] {
        let e = s.load(input).unwrap_err();
        assert!(matches!(e, StoreError::InvalidArchive(_)), "{e}");
    }
    let e = s
        .load(raw_tar(&[("hello.txt", b"hi")]).as_slice())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("neither manifest.json nor index.json"),
        "{e}"
    );
    let big = vec![b' '; (MAX_JSON + 1) as usize];
    let e = s
        .load(raw_tar(&[("manifest.json", &big)]).as_slice())
        .unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    let e = s.load_oci_dir(tmp.path(), None).unwrap_err();
    assert!(e.to_string().contains("no index.json"), "{e}");
}
