//! Credential files (skiff's auth.json / Docker's config.json): `auth::lookup` on a
//! file holding the input. `DOCKER_CONFIG` points at an empty directory so only the
//! fuzzed file is read.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use skiff_image_store::auth;

#[path = "../common/mod.rs"]
mod common;

static AUTH_FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = common::process_dir("skiff-fuzz-auth-");
    let docker = dir.join("docker-config");
    std::fs::create_dir(&docker).expect("docker config dir");
    // Set once, before any lookup runs; the fuzzer calls the target from one thread.
    std::env::set_var("DOCKER_CONFIG", &docker);
    dir.join("auth.json")
});

fuzz_target!(|data: &[u8]| {
    let auth_file = &*AUTH_FILE;
    std::fs::write(auth_file, data).expect("writing the auth file");
    for registry in ["docker.io", "127.0.0.1:5000", "r"] {
        let _ = auth::lookup(auth_file, registry);
    }
});
