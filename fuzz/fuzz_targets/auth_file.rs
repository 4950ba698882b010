//! Credential files (skiff's auth.json / Docker's config.json): `auth::lookup` on a
//! file holding the input. `DOCKER_CONFIG` points at an empty directory so only the
//! fuzzed file is read.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use skiff_image_store::auth;

struct Files {
    _dir: tempfile::TempDir,
    auth_file: PathBuf,
}

static FILES: LazyLock<Files> = LazyLock::new(|| {
    let dir = tempfile::Builder::new()
        .prefix("skiff-fuzz-auth-")
        .tempdir()
        .expect("temp dir");
    let docker = dir.path().join("docker-config");
    std::fs::create_dir(&docker).expect("docker config dir");
    // Set once, before any lookup runs; the fuzzer calls the target from one thread.
    std::env::set_var("DOCKER_CONFIG", &docker);
    Files {
        auth_file: dir.path().join("auth.json"),
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let files = &*FILES;
    std::fs::write(&files.auth_file, data).expect("writing the auth file");
    for registry in ["docker.io", "127.0.0.1:5000", "r"] {
        let _ = auth::lookup(&files.auth_file, registry);
    }
});
