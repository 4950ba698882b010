//! Layer unpacking: `unpack::apply_layer` on arbitrary bytes.
//!
//! Input: byte 0 picks the compression (None, Gzip, Zstd: value % 3), byte 1 the
//! whiteout mode (Overlay if even, Native if odd), the rest is the layer stream.
//! Every run unpacks into a fresh `TMP/root` and then checks that nothing appeared in
//! `TMP` besides `root`: a layer must never write outside its destination.
//! Errors are fine; a panic or a failed check is a bug.
#![no_main]

use std::io::Cursor;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use skiff_image_store::unpack::{apply_layer, Compression, WhiteoutMode};

/// `SKIFF_FUZZ_VERBOSE=1` prints what each run returned (for checking seeds).
fn verbose() -> bool {
    static V: LazyLock<bool> = LazyLock::new(|| std::env::var_os("SKIFF_FUZZ_VERBOSE").is_some());
    *V
}

fuzz_target!(|data: &[u8]| {
    let [c, m, layer @ ..] = data else {
        return;
    };
    let compression = match c % 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        _ => Compression::Zstd,
    };
    let mode = if m % 2 == 0 {
        WhiteoutMode::Overlay
    } else {
        WhiteoutMode::Native
    };
    let tmp = tempfile::Builder::new()
        .prefix("skiff-fuzz-layer-")
        .tempdir()
        .expect("temp dir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("creating the destination");

    let result = apply_layer(Cursor::new(layer), compression, &root, mode);
    if verbose() {
        eprintln!("{compression:?} {mode:?}: {result:?}");
    }

    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("listing the temp dir")
        .map(|e| e.expect("temp dir entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("root")],
        "the layer created something outside its destination"
    );
    let meta = std::fs::symlink_metadata(&root).expect("destination still there");
    assert!(
        meta.is_dir(),
        "the destination was replaced by something else"
    );
});
