//! Writes small, valid seed inputs for every fuzz target into `fuzz/seeds/<target>/`.
//! Deterministic: running it again rewrites the same bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", sha(b))
}

struct Seeds(PathBuf);

impl Seeds {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.0.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A small layer with one entry of every kind the unpacker handles, whiteouts included.
fn layer_tar(with_pax: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, kind, path: &str, data: &[u8], mode| {
        let mut h = header(kind, data.len() as u64, mode);
        b.append_data(&mut h, path, data).unwrap();
    };
    add(&mut b, tar::EntryType::Directory, "etc/", b"", 0o755);
    add(&mut b, tar::EntryType::Regular, "etc/hostname", b"skiff\n", 0o644);
    add(&mut b, tar::EntryType::Directory, "var/", b"", 0o755);
    add(&mut b, tar::EntryType::Regular, "var/.wh..wh..opq", b"", 0o644);
    add(&mut b, tar::EntryType::Regular, "var/kept", b"x", 0o600);
    add(&mut b, tar::EntryType::Regular, "etc/.wh.old", b"", 0o644);
    add(&mut b, tar::EntryType::Fifo, "run/fifo", b"", 0o644);
    let link = |b: &mut tar::Builder<Vec<u8>>, kind, path: &str, target: &str| {
        let mut h = header(kind, 0, 0o777);
        b.append_link(&mut h, path, target).unwrap();
    };
    link(&mut b, tar::EntryType::Symlink, "etc/link", "hostname");
    link(&mut b, tar::EntryType::Link, "etc/hard", "etc/hostname");
    if with_pax {
        b.append_pax_extensions([
            ("SCHILY.xattr.user.skiff", b"fuzz".as_slice()),
            ("mtime", b"1700000000.5".as_slice()),
            ("uid", b"1000".as_slice()),
        ])
        .unwrap();
        add(&mut b, tar::EntryType::Regular, "home/user/file", b"data", 0o4755);
    }
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 19).unwrap()
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// A tar archive of `(path, bytes)` files.
fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A minimal layer for archives: one file.
fn tiny_layer() -> Vec<u8> {
    archive(&[("hello".to_string(), b"hello from skiff\n".to_vec())])
}

fn image_config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let _ = fs::remove_dir_all(&root);
    let s = Seeds(root);
    let hex_a = "a".repeat(64);
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    // reference
    for (i, r) in [
        "alpine".to_string(),
        "alpine:3.20".to_string(),
        "user/app:1".to_string(),
        format!("127.0.0.1:5000/a/b:c@sha256:{empty}"),
        "localhost/foo".to_string(),
        "[::1]:5000/x".to_string(),
        "index.docker.io/library/busybox".to_string(),
        format!("ghcr.io/owner/repo@sha256:{hex_a}"),
        "a.b-c.d/e__f/g-h:v1.0-rc_1".to_string(),
        "Registry.Example:443/x---y/z".to_string(),
    ]
    .iter()
    .enumerate()
    {
        s.write("reference", &format!("ref-{i}"), r.as_bytes());
    }

    // digest
    s.write("digest", "valid", format!("sha256:{empty}").as_bytes());
    s.write("digest", "upper", format!("sha256:{}", empty.to_uppercase()).as_bytes());
    s.write("digest", "sha512", format!("sha512:{empty}{empty}").as_bytes());

    // platform
    for (i, p) in ["linux/amd64", "linux/arm/v7", "linux/arm64/v8", "windows/amd64"]
        .iter()
        .enumerate()
    {
        s.write("platform", &format!("platform-{i}"), p.as_bytes());
    }

    // manifest (and configs: the target feeds every input to both parsers)
    let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let oci_manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": d('c'), "size": 123},
        "layers": [
            {"mediaType": OCI_LAYER_GZIP, "digest": d('1'), "size": 1000},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": d('2'), "size": 2000},
            {"mediaType": OCI_LAYER_TAR, "digest": d('3'), "size": 3000},
        ],
    });
    let docker_manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": d('c'), "size": 123},
        "layers": [{"mediaType": DOCKER_LAYER, "digest": d('1'), "size": 1000}],
    });
    let oci_index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d('a'), "size": 500,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": d('b'), "size": 500,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": d('d'), "size": 500,
             "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"mediaType": "application/vnd.in-toto+json", "digest": d('e'), "size": 50,
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    });
    let docker_list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": d('a'), "size": 500,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": DOCKER_MANIFEST, "digest": d('b'), "size": 500,
             "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        ],
    });
    let config = image_config(&[d('1'), d('2')]);
    for (name, v) in [
        ("oci-manifest.json", &oci_manifest),
        ("docker-manifest.json", &docker_manifest),
        ("oci-index.json", &oci_index),
        ("docker-list.json", &docker_list),
    ] {
        s.write("manifest", name, &serde_json::to_vec_pretty(v).unwrap());
    }
    s.write("manifest", "config.json", &config);

    // auth_file
    let auths = [
        ("docker-hub.json", json!({"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}}})),
        ("user-password.json", json!({"auths": {"127.0.0.1:5000": {"username": "u", "password": "p:w"}}})),
        ("helpers.json", json!({"auths": {"r": {"auth": "dTpw", "email": "x@y"}}, "credHelpers": {"gcr.io": "gcr"}, "credsStore": "desktop"})),
        ("bad-base64.json", json!({"auths": {"r": {"auth": "!!!"}}})),
    ];
    for (name, v) in auths {
        s.write("auth_file", name, &serde_json::to_vec_pretty(&v).unwrap());
    }

    // layer: byte 0 = compression (0 none, 1 gzip, 2 zstd), byte 1 = mode (0 overlay, 1 native)
    let plain = layer_tar(false);
    let pax = layer_tar(true);
    s.write("layer", "tar-overlay", &cat(&[0, 0], &plain));
    s.write("layer", "tar-native", &cat(&[0, 1], &plain));
    s.write("layer", "pax-native", &cat(&[0, 1], &pax));
    s.write("layer", "gzip-overlay", &cat(&[1, 0], &gzip(&plain)));
    s.write("layer", "zstd-native", &cat(&[2, 1], &zstd(&pax)));

    // archive_load
    let layer = tiny_layer();
    let layer_gz = gzip(&layer);
    let diff_id = digest(&layer);
    let config = image_config(std::slice::from_ref(&diff_id));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": digest(&layer_gz), "size": layer_gz.len()}],
    }))
    .unwrap();
    let blob = |b: &[u8]| (format!("blobs/sha256/{}", sha(b)), b.to_vec());
    let oci_layout = ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": digest(&manifest), "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": "docker.io/library/hello:latest",
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    }))
    .unwrap();
    // OCI image layout, as `skopeo copy ... oci-archive:` writes it.
    let oci = archive(&[
        oci_layout.clone(),
        ("index.json".to_string(), index.clone()),
        blob(&manifest),
        blob(&config),
        blob(&layer_gz),
    ]);
    s.write("archive_load", "oci-layout.tar", &oci);
    // Docker 25+ `docker save`: both layouts in one, gzip-compressed as a whole.
    let docker_manifest_json = serde_json::to_vec(&json!([{
        "Config": format!("blobs/sha256/{}", sha(&config)),
        "RepoTags": ["hello:latest", "127.0.0.1:5000/hello:v1"],
        "Layers": [format!("blobs/sha256/{}", sha(&layer_gz))],
    }]))
    .unwrap();
    let docker25 = archive(&[
        oci_layout,
        ("index.json".to_string(), index),
        ("manifest.json".to_string(), docker_manifest_json),
        ("repositories".to_string(), br#"{"hello":{"latest":"x"}}"#.to_vec()),
        blob(&manifest),
        blob(&config),
        blob(&layer_gz),
    ]);
    s.write("archive_load", "docker25.tar.gz", &gzip(&docker25));
    // Legacy docker-archive: `<id>.json` config, `<id>/layer.tar` layers.
    let legacy_config = image_config(std::slice::from_ref(&diff_id));
    let layer_id = "0123456789abcdef".repeat(4);
    let legacy = archive(&[
        (format!("{}.json", sha(&legacy_config)), legacy_config.clone()),
        (format!("{layer_id}/VERSION"), b"1.0".to_vec()),
        (format!("{layer_id}/json"), b"{}".to_vec()),
        (format!("{layer_id}/layer.tar"), layer.clone()),
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&json!([{
                "Config": format!("{}.json", sha(&legacy_config)),
                "RepoTags": ["legacy:1"],
                "Layers": [format!("{layer_id}/layer.tar")],
            }]))
            .unwrap(),
        ),
    ]);
    s.write("archive_load", "legacy.tar.zst", &zstd(&legacy));
}
