//! The image store against a real registry (Debian's docker-registry on 127.0.0.1):
//! pulls of every fixture kind, rootfs contents through real overlay mounts, platform
//! resolution, mirrors, auth, shared layers and concurrent pulls.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{store, store_with, Mounted};
use skiff_image_store::auth::{self, Credentials};
use skiff_image_store::platform::Platform;
use skiff_image_store::progress::no_progress;
use skiff_image_store::snapshot::SnapshotterKind;
use skiff_image_store::{PullEvent, PullOptions, SnapshotterChoice, StoreConfig, StoreError};
use skiff_tests::{fixtures, Registry};

fn opts() -> PullOptions {
    PullOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_single_layer_image_and_mounts_it() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let (_dir, s) = store();
    assert_eq!(
        s.snapshotter(),
        SnapshotterKind::Overlayfs,
        "this host supports overlayfs"
    );
    let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
    assert_eq!(img.id.to_string(), fx.config_digest);
    assert_eq!(img.manifest_digest.to_string(), fx.manifest_digest);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(
        img.repo_digests,
        vec![format!(
            "{}/{}@{}",
            reg.addr(),
            fx.repository,
            fx.manifest_digest
        )]
    );
    let m = Mounted::new(&s.rootfs_view(&img).unwrap());
    fx.verify_rootfs(m.path()).unwrap();
    // Found again by tag, by ID prefix and by digest reference.
    assert_eq!(s.resolve(&fx.reference).unwrap().id, img.id);
    assert_eq!(s.resolve(&img.id.hex()[..8]).unwrap().id, img.id);
    assert_eq!(s.resolve(&fx.digest_reference()).unwrap().id, img.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multilayer_whiteouts_opaque_dirs_and_hard_links_on_overlay_and_native() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    for choice in [SnapshotterChoice::Overlayfs, SnapshotterChoice::Native] {
        let (_dir, s) = store_with(|c| c.snapshotter = choice);
        let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
        assert_eq!(img.layers.len(), fx.layer_count());
        let m = Mounted::new(&s.rootfs_view(&img).unwrap());
        if let Err(problems) = fx.verify_rootfs(m.path()) {
            panic!("{choice:?}: rootfs differs: {problems:#?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writable_rootfs_keeps_changes_in_its_own_upper_dir() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    let (dir, s) = store();
    let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
    let rw = dir.path().join("container-1");
    let m = Mounted::new(&s.rootfs_writable(&img, &rw).unwrap());
    std::fs::write(m.path().join("new-file"), b"hi").unwrap();
    std::fs::remove_file(m.path().join("etc/passwd")).unwrap();
    drop(m);
    assert_eq!(std::fs::read(rw.join("upper/new-file")).unwrap(), b"hi");
    // The image itself is unchanged: a fresh view still has /etc/passwd.
    let view = Mounted::new(&s.rootfs_view(&img).unwrap());
    assert!(view.path().join("etc/passwd").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_and_uncompressed_layers() {
    let reg = Registry::start().unwrap();
    // Both have the busybox rootfs, so the same config and image ID: separate stores.
    for fx in [
        fixtures::zstd(&reg).unwrap(),
        fixtures::uncompressed(&reg).unwrap(),
    ] {
        let (_dir, s) = store();
        let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
        assert_eq!(img.layers[0].media_type, fx.layers[0].media_type);
        let m = Mounted::new(&s.rootfs_view(&img).unwrap());
        fx.verify_rootfs(m.path()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_resolves_to_the_host_platform_or_the_one_asked_for() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multiarch(&reg).unwrap();
    let (_dir, s) = store();
    let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
    let amd64 = fx.for_platform("amd64", None).unwrap();
    assert_eq!(
        img.id.to_string(),
        amd64.config_digest,
        "host platform is linux/amd64"
    );
    assert_eq!(
        img.index_digest.as_ref().map(|d| d.to_string()),
        Some(fx.index_digest.clone())
    );
    assert_eq!(
        img.repo_digests[0],
        format!("{}/{}@{}", reg.addr(), fx.repository, fx.index_digest)
    );
    let m = Mounted::new(&s.rootfs_view(&img).unwrap());
    amd64.verify_rootfs(m.path()).unwrap();
    drop(m);

    let arm: Platform = "linux/arm64".parse().unwrap();
    let img = s
        .pull(
            &fx.reference,
            &PullOptions {
                platform: Some(arm),
            },
            no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(
        img.id.to_string(),
        fx.for_platform("arm64", None).unwrap().config_digest
    );
    let v7: Platform = "linux/arm/v7".parse().unwrap();
    let img = s
        .pull(
            &fx.reference,
            &PullOptions { platform: Some(v7) },
            no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(
        img.id.to_string(),
        fx.for_platform("arm", Some("v7")).unwrap().config_digest
    );

    let s390x: Platform = "linux/s390x".parse().unwrap();
    let err = s
        .pull(
            &fx.reference,
            &PullOptions {
                platform: Some(s390x),
            },
            no_progress(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoMatchingPlatform { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("linux/amd64"),
        "error lists what is available: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_with_more_than_100_layers_mounts() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::many_layers(&reg).unwrap();
    let (_dir, s) = store();
    let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
    assert!(img.layers.len() > 100);
    let m = Mounted::new(&s.rootfs_view(&img).unwrap());
    fx.verify_rootfs(m.path()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_digest_sets_no_tag() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let (_dir, s) = store();
    let img = s
        .pull(&fx.digest_reference(), &opts(), no_progress())
        .await
        .unwrap();
    assert!(s.tags_of(&img.id).unwrap().is_empty());
    assert_eq!(s.resolve(&fx.digest_reference()).unwrap().id, img.id);
    assert!(matches!(
        s.resolve(&fx.reference),
        Err(StoreError::ImageNotFound(_))
    ));
}

fn recorder() -> (skiff_image_store::ProgressSink, Arc<Mutex<Vec<PullEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    (Arc::new(move |e| e2.lock().unwrap().push(e)), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_layers_are_stored_and_unpacked_once() {
    let reg = Registry::start().unwrap();
    let a = fixtures::push_busybox_as(&reg, "one/busybox", "latest").unwrap();
    let b = fixtures::push_busybox_as(&reg, "two/busybox", "v1").unwrap();
    let ml = fixtures::multilayer(&reg).unwrap();
    let (_dir, s) = store();
    s.pull(&a.reference, &opts(), no_progress()).await.unwrap();
    let (sink, events) = recorder();
    s.pull(&b.reference, &opts(), sink).await.unwrap();
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, PullEvent::AlreadyExists { .. })),
        "{ev:?}"
    );
    assert!(
        !ev.iter()
            .any(|e| matches!(e, PullEvent::Downloading { .. })),
        "nothing downloaded twice: {ev:?}"
    );
    // Same image under two names: one image, two tags.
    assert_eq!(s.list().unwrap().len(), 1);
    let img = s.pull(&ml.reference, &opts(), no_progress()).await.unwrap();
    let snapshots_before = std::fs::read_dir(s.root().join("snapshots"))
        .unwrap()
        .count();
    s.pull(&ml.reference, &opts(), no_progress()).await.unwrap();
    assert_eq!(
        std::fs::read_dir(s.root().join("snapshots"))
            .unwrap()
            .count(),
        snapshots_before
    );
    // Whether the multilayer base shares the busybox layer depends on the fixture bytes;
    // every layer is stored once either way.
    let blobs = s.content().list().unwrap();
    let unique: HashSet<_> = blobs.iter().collect();
    assert_eq!(unique.len(), blobs.len());
    assert!(img.layers.iter().all(|l| s.content().exists(&l.digest)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_download_each_blob_once() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    let (_dir, s) = store();
    let (sink1, ev1) = recorder();
    let (sink2, ev2) = recorder();
    let o = opts();
    let (r1, r2) = tokio::join!(
        s.pull(&fx.reference, &o, sink1),
        s.pull(&fx.reference, &o, sink2)
    );
    assert_eq!(r1.unwrap().id, r2.unwrap().id);
    let fetched = |ev: &Arc<Mutex<Vec<PullEvent>>>| -> HashSet<String> {
        ev.lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                PullEvent::Downloading { layer, .. } => Some(layer.to_string()),
                _ => None,
            })
            .collect()
    };
    let (f1, f2) = (fetched(&ev1), fetched(&ev2));
    assert!(
        f1.is_disjoint(&f2),
        "a blob was downloaded by both pulls: {:?}",
        f1.intersection(&f2).collect::<Vec<_>>()
    );
    // config + one GET per layer, counted from the registry's access log
    assert_eq!(
        common::blob_gets(&reg),
        fx.layer_count() + 1,
        "registry served each blob once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_serves_docker_hub_short_names() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let (_dir, s) = store_with(|c| c.registry_mirrors = vec![format!("http://{}", reg.addr())]);
    let img = s.pull("alpine", &opts(), no_progress()).await.unwrap();
    assert_eq!(img.id.to_string(), fx.config_digest);
    assert_eq!(
        s.tags_of(&img.id).unwrap(),
        vec!["docker.io/library/alpine:latest".to_string()]
    );
    assert_eq!(s.resolve("alpine").unwrap().id, img.id);
    assert_eq!(
        s.resolve("docker.io/library/alpine:latest").unwrap().id,
        img.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry_needs_credentials_from_login_or_docker_config() {
    let reg = Registry::start_with_basic_auth("skiff", "s3cret").unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let (dir, s) = store_with(|c| c.auth_file = None);
    let auth_file = dir.path().join("auth.json");
    let (_d2, s) = {
        let cfg = StoreConfig {
            auth_file: Some(auth_file.clone()),
            ..s.config().clone()
        };
        (dir, skiff_image_store::ImageStore::open(cfg).unwrap())
    };
    let err = s
        .pull(&fx.reference, &opts(), no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AuthRefused { .. }), "{err}");
    let bad = Credentials {
        username: "skiff".into(),
        password: "wrong".into(),
    };
    assert!(matches!(
        s.check_login(&reg.addr(), &bad).await,
        Err(StoreError::AuthRefused { .. })
    ));
    let good = Credentials {
        username: "skiff".into(),
        password: "s3cret".into(),
    };
    s.check_login(&reg.addr(), &good).await.unwrap();
    auth::store(&auth_file, &reg.addr(), &good).unwrap();
    let img = s.pull(&fx.reference, &opts(), no_progress()).await.unwrap();
    assert_eq!(img.id.to_string(), fx.config_digest);
}
