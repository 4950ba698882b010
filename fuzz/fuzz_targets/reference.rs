//! `ImageRef::parse` on arbitrary UTF-8 (references come from users, archives'
//! `RepoTags` and annotations, and the metadata database), with a round-trip check:
//! the printed form of a parsed reference must parse back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_image_store::{ImageRef, StoreConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ImageRef::parse(s) else {
        return;
    };
    let printed = r.to_string();
    match ImageRef::parse(&printed) {
        Ok(again) => assert_eq!(
            again, r,
            "{s:?} parsed to {printed:?}, which parses to something else"
        ),
        Err(e) => panic!("{s:?} parsed to {printed:?}, which does not parse: {e}"),
    }
    // The accessors and derived forms the engine prints.
    let _ = r.familiar_name();
    let _ = r.familiar_tagged();
    let _ = r.name();
    if let Some(d) = r.digest() {
        let _ = d.short();
    }
    // The registry part then picks endpoints (mirrors, plain HTTP).
    let config = StoreConfig {
        insecure_registries: vec!["10.0.0.0/8".into(), "reg.example:5000".into(), "::1/128".into()],
        registry_mirrors: vec!["http://127.0.0.1:5000/".into()],
        ..Default::default()
    };
    let _ = config.endpoints(r.registry());
});
