//! Bad input leaves the store as it was: unknown images, unreachable registries,
//! corrupt and truncated blobs, hostile layers, and a pull killed with SIGKILL.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{skiff_bin, store};
use skiff_image_store::progress::no_progress;
use skiff_image_store::{ImageStore, PullOptions, StoreError};
use skiff_tests::hostile::{self, HostileKind};
use skiff_tests::{fixtures, Registry};

fn opts() -> PullOptions {
    PullOptions::default()
}

/// Nothing recorded, no snapshot directory, no partial download left.
fn assert_untouched(s: &ImageStore) {
    assert!(s.list().unwrap().is_empty(), "no image recorded");
    let snaps: Vec<_> = std::fs::read_dir(s.root().join("snapshots"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "locks")
        .map(|e| e.file_name())
        .collect();
    assert!(snaps.is_empty(), "no snapshot left: {snaps:?}");
    let partial: Vec<_> = std::fs::read_dir(s.root().join("ingest"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "no partial download left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_repository_and_tag_are_not_found() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let (_d, s) = store();
    for r in [
        format!("{}/no/such:latest", reg.addr()),
        format!("{}/{}:nosuchtag", reg.addr(), fx.repository),
    ] {
        let e = s.pull(&r, &opts(), no_progress()).await.unwrap_err();
        assert!(matches!(e, StoreError::ManifestNotFound { .. }), "{r}: {e}");
        assert!(e.to_string().contains(&r), "error names the reference: {e}");
    }
    assert_untouched(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_d, s) = store();
    let e = s
        .pull(&format!("127.0.0.1:{port}/x/y:1"), &opts(), no_progress())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::RegistryUnreachable { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_untouched(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_blobs_are_refused() {
    let reg = Registry::start().unwrap();
    let corrupt = hostile::push_corrupt(&reg, "bad/corrupt", "latest").unwrap();
    let truncated = hostile::push_truncated(&reg, "bad/truncated", "latest").unwrap();
    let (_d, s) = store();
    for fx in [corrupt, truncated] {
        let e = s
            .pull(&fx.reference, &opts(), no_progress())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::DigestMismatch { .. }
                    | StoreError::RegistryUnreachable { .. }
                    | StoreError::Registry { .. }
            ),
            "{}: {e}",
            fx.reference
        );
        let text = e.to_string();
        assert!(text.contains("sha256:"), "error names the blob: {text}");
        let damaged = fx.layers.last().unwrap().digest.parse().unwrap();
        assert!(!s.content().exists(&damaged), "damaged blob not committed");
        assert!(
            text.contains(&damaged.to_string()),
            "error names the damaged blob: {text}"
        );
        assert!(s.list().unwrap().is_empty(), "no image recorded");
    }
    // The intact base layer may have been stored; collecting garbage removes it.
    s.gc(&[]).unwrap();
    assert_untouched(&s);
    assert!(s.content().list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_are_refused_and_write_nothing_outside() {
    let reg = Registry::start().unwrap();
    for kind in HostileKind::ALL {
        let fx = hostile::push_hostile(&reg, kind).unwrap();
        let (_d, s) = store();
        let e = s
            .pull(&fx.image.reference, &opts(), no_progress())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Unpack { .. }), "{kind:?}: {e}");
        let text = e.to_string();
        assert!(text.contains("sha256:"), "error names the layer: {text}");
        fx.check_host(s.root())
            .unwrap_or_else(|p| panic!("{kind:?} escaped: {p}"));
        assert!(s.list().unwrap().is_empty());
        // The failed snapshot directory is gone.
        let dirs: Vec<_> = std::fs::read_dir(s.root().join("snapshots"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "locks")
            .collect();
        assert!(dirs.is_empty(), "{kind:?}: snapshot left behind");
    }
}

#[test]
fn pull_killed_midway_then_pulled_again() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::many_layers(&reg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let pull = |extra: &[&str]| {
        let mut c = Command::new(skiff_bin());
        c.args([
            "--config",
            "/dev/null",
            "--data-root",
            root.to_str().unwrap(),
            "pull",
        ]);
        c.args(extra).arg(&fx.reference);
        c
    };
    // Kill at several points of the pull: the store must open and a new pull succeed.
    for delay_ms in [30u64, 120, 400] {
        let mut child = pull(&["-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pid = child.id() as i32;
        // SAFETY: killing the child we spawned, by its PID.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = child.wait();
    }
    let start = Instant::now();
    let out = pull(&[]).output().unwrap();
    assert!(
        out.status.success(),
        "pull after kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Digest: sha256:"), "{stdout}");
    let s = ImageStore::open(skiff_image_store::StoreConfig {
        root: root.clone(),
        ..Default::default()
    })
    .unwrap();
    let img = s.resolve(&fx.reference).unwrap();
    assert_eq!(img.layers.len(), fx.layer_count());
    // Garbage from the killed pulls is collectable and the image survives it.
    s.gc(&[]).unwrap();
    let m = common::Mounted::new(&s.rootfs_view(&img).unwrap());
    fx.verify_rootfs(m.path()).unwrap();
    let partial = std::fs::read_dir(root.join("ingest"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .count();
    assert_eq!(partial, 0);
}
