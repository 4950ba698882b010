//! `Platform` parsing (`os/arch[/variant]`, from `--platform`) and matching.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_image_store::platform::Platform;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = s.parse::<Platform>() else {
        return;
    };
    let printed = p.to_string();
    assert_eq!(printed, s);
    assert_eq!(printed.parse::<Platform>().ok().as_ref(), Some(&p));
    let _ = Platform::host().match_score(&p);
    let _ = p.match_score(&Platform::host());
});
