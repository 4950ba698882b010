//! Tests of the harness itself: the registry starts and answers, every fixture
//! pushes and reads back with skopeo as built, an independent unpacker (umoci)
//! agrees with the fixtures' expected rootfs, hostile names survive the trip,
//! damaged blobs are served damaged, auth is enforced, and the detached fixture
//! registry outlives its starter.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_tests::hostile::{self, HostileKind};
use skiff_tests::oci_layout::{sha256_digest, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD};
use skiff_tests::{
    fixtures, require_root_tools, require_tool, FixtureImage, LayerFacts, Registry, RegistryOptions,
};

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("running skopeo")
}

/// `skopeo inspect --tls-verify=false [extra...] docker://REFERENCE` as JSON.
fn inspect(reference: &str, extra: &[&str]) -> Value {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&target);
    let out = skopeo(&args);
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

/// Checks what skopeo reads back from the registry against the fixture's facts.
fn assert_served_as_built(image: &FixtureImage) {
    let info = inspect(&image.reference, &[]);
    assert_eq!(info["Digest"], image.manifest_digest.as_str());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    let layers: Vec<&str> = info["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let built: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(layers, built);

    let config = inspect(&image.reference, &["--config"]);
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(config["config"]["Env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let built: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(diff_ids, built);

    let raw = inspect(&image.reference, &["--raw"]);
    assert_eq!(raw["mediaType"], image.manifest_media_type.as_str());
    assert_eq!(raw["config"]["digest"], image.config_digest.as_str());
    for (served, built) in raw["layers"].as_array().unwrap().iter().zip(&image.layers) {
        assert_eq!(served["mediaType"], built.media_type.as_str());
        assert_eq!(served["size"], built.size);
    }
}

/// Fetches a layer blob and checks its digest and, decompressed, its diff_id.
fn assert_blob_matches(registry: &Registry, repository: &str, layer: &LayerFacts) -> Vec<u8> {
    let response = registry.get_blob(repository, &layer.digest).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(sha256_digest(&response.body), layer.digest);
    let tar = decompress(&layer.media_type, &response.body);
    assert_eq!(sha256_digest(&tar), layer.diff_id);
    tar
}

fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    match media_type {
        MEDIA_TYPE_LAYER_TAR => tar.extend_from_slice(blob),
        MEDIA_TYPE_LAYER_ZSTD => tar = zstd::stream::decode_all(blob).unwrap(),
        _ => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut tar)
                .unwrap();
        }
    }
    tar
}

/// Raw header names of a tar, as bytes.
fn tar_names(tar: &[u8]) -> Vec<Vec<u8>> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Copies `reference` from the registry into an OCI layout with skopeo and
/// unpacks it with umoci (an unpacker independent of skiff); returns the rootfs.
fn umoci_unpack(reference: &str, work: &Path) -> std::path::PathBuf {
    let layout = work.join("layout");
    let out = skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:t", layout.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = work.join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; a zombie has exited.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

#[test]
fn registry_starts_answers_v2_and_cleans_up() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    assert!(registry.addr().starts_with("127.0.0.1:"));
    let response = registry.get("/v2/").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert!(registry.storage_dir().is_dir());
    let log = std::fs::read_to_string(registry.log_path()).unwrap();
    assert!(log.contains("listening on"), "registry log: {log}");

    let (pid, dir) = (registry.pid(), registry.dir().to_path_buf());
    assert!(pid_alive(pid));
    drop(registry);
    assert!(!pid_alive(pid), "registry pid {pid} still runs after drop");
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
}

#[test]
fn two_registries_run_side_by_side() {
    require_root_tools();
    let a = Registry::start().unwrap();
    let b = Registry::start().unwrap();
    assert_ne!(a.addr(), b.addr());
    assert_eq!(a.get("/v2/").unwrap().status, 200);
    assert_eq!(b.get("/v2/").unwrap().status, 200);
}

#[test]
fn a_taken_port_fails_instead_of_passing_for_the_other_registry() {
    require_root_tools();
    let first = Registry::start().unwrap();
    let second = Registry::start_with(RegistryOptions {
        port: Some(first.port()),
        ..RegistryOptions::default()
    });
    let err = second.unwrap_err().to_string();
    assert!(err.contains("exited"), "{err}");
    assert!(err.contains("address already in use"), "{err}");
}

#[test]
fn fixtures_are_deterministic() {
    require_root_tools();
    let a = fixtures::build_multilayer().unwrap();
    let b = fixtures::build_multilayer().unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.manifest, b.manifest);
    let a = fixtures::build_multiarch().unwrap();
    let b = fixtures::build_multiarch().unwrap();
    assert_eq!(a.index_digest, b.index_digest);
    // Same rootfs, different compression: same diff_id, different blob.
    let gzip = fixtures::build_busybox().unwrap();
    let zstd = fixtures::build_zstd().unwrap();
    let plain = fixtures::build_uncompressed().unwrap();
    assert_eq!(gzip.layers[0].facts.diff_id, zstd.layers[0].facts.diff_id);
    assert_eq!(gzip.layers[0].facts.diff_id, plain.layers[0].facts.diff_id);
    assert_ne!(gzip.layers[0].facts.digest, zstd.layers[0].facts.digest);
    assert_eq!(plain.layers[0].facts.digest, plain.layers[0].facts.diff_id);
}

#[test]
fn busybox_fixture_pushes_and_reads_back() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let image = fixtures::busybox(&registry).unwrap();
    assert_eq!(image.layer_count(), 1);
    assert_eq!(
        image.reference,
        format!("{}/fixtures/busybox:latest", registry.addr())
    );
    assert_served_as_built(&image);
    let tar = assert_blob_matches(&registry, &image.repository, &image.layers[0]);
    let names = tar_names(&tar);
    for name in ["bin/busybox", "bin/sh", "etc/passwd", "tmp/", "root/"] {
        assert!(names.iter().any(|n| n == name.as_bytes()), "{name} missing");
    }
    // By digest too.
    assert_eq!(
        inspect(&image.digest_reference(), &[])["Digest"],
        image.manifest_digest.as_str()
    );
}

#[test]
fn busybox_serves_as_a_docker_io_mirror() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let image = fixtures::push_busybox_as(&registry, "library/alpine", "latest").unwrap();
    assert_eq!(
        image.reference,
        format!("{}/library/alpine:latest", registry.addr())
    );
    let response = registry.get_manifest("library/alpine", "latest").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(image.manifest_digest.as_str())
    );
}

#[test]
fn multilayer_fixture_pushes_and_umoci_agrees_with_its_expectations() {
    require_root_tools();
    require_tool("umoci", "umoci");
    let registry = Registry::start().unwrap();
    let image = fixtures::multilayer(&registry).unwrap();
    assert_eq!(image.layer_count(), 4);
    assert_served_as_built(&image);

    let layer3 = assert_blob_matches(&registry, &image.repository, &image.layers[2]);
    let names = tar_names(&layer3);
    assert!(names.iter().any(|n| n == b"data/.wh.gone.txt"));
    assert!(names.iter().any(|n| n == b"opq/.wh..wh..opq"));

    if !is_root() {
        eprintln!("not root: skipping the umoci unpack (ownership needs root)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let rootfs = umoci_unpack(&image.reference, work.path());
    if let Err(problems) = image.verify_rootfs(&rootfs) {
        panic!(
            "umoci's rootfs differs from the expectations:\n{}",
            problems.join("\n")
        );
    }
    // The checker can fail: the busybox-only rootfs lacks the later layers.
    let busybox = fixtures::busybox(&registry).unwrap();
    let work = tempfile::tempdir().unwrap();
    let rootfs = umoci_unpack(&busybox.reference, work.path());
    busybox.verify_rootfs(&rootfs).unwrap();
    let problems = image.verify_rootfs(&rootfs).unwrap_err();
    assert!(
        problems.iter().any(|p| p.starts_with("/data/keep.txt")),
        "{problems:?}"
    );
}

#[test]
fn zstd_fixture_keeps_its_zstd_layer() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let image = fixtures::zstd(&registry).unwrap();
    assert_eq!(image.layer_count(), 1);
    assert_eq!(image.layers[0].media_type, MEDIA_TYPE_LAYER_ZSTD);
    assert_served_as_built(&image);
    assert_blob_matches(&registry, &image.repository, &image.layers[0]);
}

#[test]
fn uncompressed_fixture_keeps_its_plain_tar_layer() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let image = fixtures::uncompressed(&registry).unwrap();
    assert_eq!(image.layers[0].media_type, MEDIA_TYPE_LAYER_TAR);
    assert_eq!(image.layers[0].digest, image.layers[0].diff_id);
    assert_served_as_built(&image);
    assert_blob_matches(&registry, &image.repository, &image.layers[0]);
}

#[test]
fn multiarch_fixture_lists_arm64_first_and_resolves_amd64() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let index = fixtures::multiarch(&registry).unwrap();
    let raw = inspect(&index.reference, &["--raw"]);
    assert_eq!(raw["mediaType"], index.index_media_type.as_str());
    let manifests = raw["manifests"].as_array().unwrap();
    assert!(manifests.len() >= 2, "{raw}");
    assert_eq!(manifests[0]["platform"]["architecture"], "arm64");
    assert_eq!(manifests[1]["platform"]["architecture"], "amd64");
    assert_eq!(manifests[2]["platform"]["variant"], "v7");
    for (served, member) in manifests.iter().zip(&index.manifests) {
        assert_eq!(served["digest"], member.manifest_digest.as_str());
    }
    assert_eq!(
        sha256_digest(
            &registry
                .get_manifest(&index.repository, &index.tag)
                .unwrap()
                .body
        ),
        index.index_digest
    );

    // skopeo resolves the index for a platform; its Digest is the index's.
    for arch in ["amd64", "arm64"] {
        let member = index.for_platform(arch, None).unwrap();
        let resolved = inspect(&index.reference, &["--override-arch", arch]);
        assert_eq!(resolved["Digest"], index.index_digest.as_str());
        assert_eq!(resolved["Architecture"], arch);
        let layers: Vec<&str> = member.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(resolved["Layers"], serde_json::json!(layers));
        let by_digest = inspect(&member.digest_reference(), &[]);
        assert_eq!(by_digest["Digest"], member.manifest_digest.as_str());
    }

    let amd64 = index.for_platform("amd64", None).unwrap();
    let tar = assert_blob_matches(&registry, &index.repository, &amd64.layers[1]);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut content = String::new();
    entry.read_to_string(&mut content).unwrap();
    assert_eq!(content, "amd64\n");
}

#[test]
fn many_layers_fixture_has_over_100_layers() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    let image = fixtures::many_layers(&registry).unwrap();
    assert_eq!(image.layer_count(), 1 + fixtures::MANY_LAYERS);
    assert!(image.layer_count() > 100);
    let info = inspect(&image.reference, &[]);
    assert_eq!(
        info["Layers"].as_array().unwrap().len(),
        image.layer_count()
    );
    assert_eq!(info["Digest"], image.manifest_digest.as_str());
    let last = assert_blob_matches(&registry, &image.repository, image.layers.last().unwrap());
    assert_eq!(
        tar_names(&last),
        [b"layers/".to_vec(), b"layers/104".to_vec()]
    );
}

#[test]
fn hostile_fixtures_keep_their_hostile_names() {
    require_root_tools();
    let registry = Registry::start().unwrap();
    for kind in HostileKind::ALL {
        let hostile = hostile::push_hostile(&registry, kind).unwrap();
        let image = &hostile.image;
        assert_eq!(
            inspect(&image.reference, &[])["Digest"],
            image.manifest_digest.as_str()
        );
        let tar = assert_blob_matches(&registry, &image.repository, &image.layers[0]);
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name_bytes().map(|l| l.into_owned());
                (e.path_bytes().into_owned(), link)
            })
            .collect();
        let has = |name: &[u8]| entries.iter().any(|(n, _)| n == name);
        match kind {
            HostileKind::DotDot => assert!(has(b"../escape")),
            HostileKind::Absolute => assert!(has(b"/abs-escape")),
            HostileKind::SymlinkEscape => {
                assert!(entries.contains(&(b"evil".to_vec(), Some(b"/tmp".to_vec()))));
                assert!(has(b"evil/pwned"));
            }
            HostileKind::HardlinkEscape => {
                let link = Some(b"../../etc/hostname".to_vec());
                assert!(entries.contains(&(b"link".to_vec(), link)));
            }
        }
        // Nothing was unpacked, so nothing escaped.
        let root = tempfile::tempdir().unwrap();
        hostile.check_host(root.path()).unwrap();
    }
}

#[test]
fn hostile_check_host_sees_an_escape() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    hostile::check_host(HostileKind::DotDot, &root).unwrap();
    std::fs::write(parent.path().join("escape"), "x").unwrap();
    assert!(hostile::check_host(HostileKind::DotDot, &root).is_err());

    let root = tempfile::tempdir().unwrap();
    if std::fs::hard_link(hostile::HARDLINK_TARGET, root.path().join("link")).is_ok() {
        assert!(hostile::check_host(HostileKind::HardlinkEscape, root.path()).is_err());
    }
}

#[test]
fn corrupt_and_truncated_blobs_are_served_damaged() {
    require_root_tools();
    let registry = Registry::start().unwrap();

    let image = hostile::push_corrupt(&registry, "damaged/corrupt", "latest").unwrap();
    let layer = &image.layers[1];
    let response = registry.get_blob(&image.repository, &layer.digest).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len() as u64, layer.size);
    assert_ne!(sha256_digest(&response.body), layer.digest);
    // The manifest, config and shared base layer are intact.
    assert_eq!(
        inspect(&image.reference, &[])["Digest"],
        image.manifest_digest.as_str()
    );
    assert_blob_matches(&registry, &image.repository, &image.layers[0]);

    let image = hostile::push_truncated(&registry, "damaged/truncated", "latest").unwrap();
    let layer = &image.layers[1];
    let response = registry.get_blob(&image.repository, &layer.digest).unwrap();
    assert!(
        (response.body.len() as u64) < layer.size,
        "status {} with {} of {} bytes",
        response.status,
        response.body.len(),
        layer.size
    );
    assert_ne!(sha256_digest(&response.body), layer.digest);
}

#[test]
fn auth_registry_refuses_anonymous_and_accepts_credentials() {
    require_root_tools();
    let registry = Registry::start_with_basic_auth("skiff", "s3cret-pass").unwrap();
    assert_eq!(registry.credentials(), Some(("skiff", "s3cret-pass")));
    let anonymous = registry.get_anonymous("/v2/").unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(anonymous
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(registry.get("/v2/").unwrap().status, 200);
    let wrong = skiff_tests::http::request(
        &registry.addr(),
        "GET",
        "/v2/",
        &[(
            "Authorization",
            &skiff_tests::http::basic_auth("skiff", "wrong"),
        )],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(wrong.status, 401);

    // Pushing uses the credentials.
    let image = fixtures::busybox(&registry).unwrap();
    let target = format!("docker://{}", image.reference);
    let out = skopeo(&["inspect", "--tls-verify=false", "--no-creds", &target]);
    assert!(!out.status.success(), "anonymous inspect succeeded");
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds=skiff:s3cret-pass",
        &target,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], image.manifest_digest.as_str());
}

#[test]
fn fixture_registry_binary_leaves_a_registry_running() {
    require_root_tools();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("registry.pid");
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-fixture-registry"))
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir.path().join("registry"))
        .arg("--pidfile")
        .arg(&pidfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(addr, format!("127.0.0.1:{port}"));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stopper = StopOnDrop(pid);
    assert!(pid_alive(pid), "registry pid {pid} is not running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(String::from_utf8_lossy(&cmdline).contains("docker-registry"));

    let alpine = inspect(&format!("{addr}/library/alpine:latest"), &[]);
    let busybox = inspect(&format!("{addr}/library/busybox:latest"), &[]);
    let multilayer = inspect(&format!("{addr}/test/multilayer:latest"), &[]);
    assert_eq!(alpine["Digest"], busybox["Digest"]);
    assert_eq!(alpine["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(multilayer["Layers"].as_array().unwrap().len(), 4);

    drop(stopper);
    assert!(!pid_alive(pid), "registry pid {pid} survived SIGTERM");
}

/// Stops the detached registry (by its pid) when the test ends, pass or fail.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.0) else {
            return;
        };
        // SAFETY: kill(2) on the registry the binary started for this test.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(self.0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
