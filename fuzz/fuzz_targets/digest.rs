//! `Digest` parsing (`sha256:<64 lowercase hex>`): what every blob, manifest and
//! archive entry name is checked with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_image_store::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = s.parse::<Digest>() else {
        return;
    };
    // Only the canonical spelling is accepted, so printing gives the input back.
    assert_eq!(d.to_string(), s);
    assert_eq!(d.hex().len(), 64);
    let _ = d.short();
});
