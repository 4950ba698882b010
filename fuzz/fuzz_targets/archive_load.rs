//! Image archives (`skiff load`): `ImageStore::load` on arbitrary bytes (docker-archive,
//! OCI layout; plain, gzip or zstd compressed). One store is opened per process, with
//! the native snapshotter under a process-lifetime temp dir; after each run every image
//! is removed and unreferenced blobs and snapshots are collected, so runs do not see
//! each other's content. Errors are fine; a panic is a bug.
#![no_main]

use std::io::Cursor;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use skiff_image_store::{ImageStore, SnapshotterChoice, StoreConfig};

#[path = "../common/mod.rs"]
mod common;

static STORE: LazyLock<ImageStore> = LazyLock::new(|| {
    ImageStore::open(StoreConfig {
        root: common::process_dir("skiff-fuzz-store-").join("store"),
        snapshotter: SnapshotterChoice::Native,
        ..Default::default()
    })
    .expect("opening the store")
});

/// `SKIFF_FUZZ_VERBOSE=1` prints what each run returned (for checking seeds).
fn verbose() -> bool {
    static V: LazyLock<bool> = LazyLock::new(|| std::env::var_os("SKIFF_FUZZ_VERBOSE").is_some());
    *V
}

fuzz_target!(|data: &[u8]| {
    let store = &*STORE;
    let loaded = store.load(Cursor::new(data));
    if verbose() {
        eprintln!("load: {loaded:?}");
    }
    if let Ok(images) = &loaded {
        for img in images {
            // Everything load returns must be resolvable by ID.
            store
                .resolve(&img.id.to_string())
                .expect("a loaded image resolves by its ID");
        }
    }
    // Back to an empty store, so runs do not see each other's content. These are the
    // store's own operations: a panic in them is a bug too, and an error would leave
    // state behind, so it fails the run. A load that stored images is undone with
    // prune; a failed one tags and records no image, so at most blobs (and snapshots,
    // which need blobs) are left, which gc removes. The metadata database is opened
    // on every call, so the (slow) cleanup runs only when there is something to clean.
    if loaded.is_ok() {
        store
            .prune(true, &|_| false)
            .expect("removing the loaded images");
    } else if !store.content().list().expect("listing blobs").is_empty() {
        store.gc(&[]).expect("collecting the blobs of a failed load");
    }
});
