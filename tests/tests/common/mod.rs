//! Helpers shared by the image-store integration tests: an isolated store per test,
//! a mount guard that always unmounts, the `skiff` binary, and registry log counts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use skiff_image_store::mount::{self, Mount};
use skiff_image_store::{ImageStore, StoreConfig};
use skiff_tests::Registry;
use tempfile::TempDir;

/// A fresh store in its own temp dir (credentials file inside it too).
pub fn store() -> (TempDir, ImageStore) {
    store_with(|_| {})
}

/// A fresh store with settings adjusted by `f`.
pub fn store_with(f: impl FnOnce(&mut StoreConfig)) -> (TempDir, ImageStore) {
    let dir = tempfile::Builder::new()
        .prefix("skiff-it-")
        .tempdir()
        .expect("tempdir");
    let mut c = StoreConfig {
        root: dir.path().join("root"),
        auth_file: Some(dir.path().join("auth.json")),
        ..Default::default()
    };
    f(&mut c);
    let s = ImageStore::open(c).expect("open store");
    (dir, s)
}

/// A mount on a temp dir, unmounted when dropped (even when the test fails).
pub struct Mounted {
    dir: TempDir,
}

impl Mounted {
    /// Mounts `m` on a new temp dir.
    pub fn new(m: &Mount) -> Mounted {
        let dir = tempfile::Builder::new()
            .prefix("skiff-mnt-")
            .tempdir()
            .expect("tempdir");
        m.mount(dir.path()).expect("mount");
        Mounted { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = mount::unmount(self.dir.path());
    }
}

/// The `skiff` binary built by this `cargo test` run (next to the test's deps dir).
pub fn skiff_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("skiff");
    assert!(
        bin.exists(),
        "{} not built (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// How many blob GETs the registry has served (from its access log).
pub fn blob_gets(reg: &Registry) -> usize {
    let log = std::fs::read_to_string(reg.log_path()).unwrap_or_default();
    log.lines()
        .filter(|l| {
            l.contains("\"GET /v2/") && l.contains("/blobs/sha256:") && l.contains("\" 200 ")
        })
        .count()
}
