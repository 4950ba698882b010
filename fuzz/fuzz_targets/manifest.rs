//! Registry and archive JSON documents: `parse_manifest` (image manifests, indexes and
//! manifest lists), `parse_config` (image configs), and `choose_platform` on the
//! entries of an index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_image_store::manifest::{self, Manifest};
use skiff_image_store::platform::Platform;

fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
    Platform {
        os: os.into(),
        architecture: arch.into(),
        variant: variant.map(str::to_string),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Manifest::Index(entries)) = manifest::parse_manifest(data, None) {
        for want in [
            Platform::host(),
            platform("linux", "amd64", None),
            platform("linux", "arm64", Some("v8")),
            platform("linux", "arm", Some("v7")),
            platform("linux", "arm", None),
        ] {
            if let Ok(d) = manifest::choose_platform(&entries, &want) {
                assert!(entries.iter().any(|e| std::ptr::eq(e, d)));
            }
        }
    }
    // What the transport may have said about the same body.
    for content_type in [manifest::OCI_INDEX, manifest::DOCKER_MANIFEST] {
        let _ = manifest::parse_manifest(data, Some(content_type));
    }
    let _ = manifest::parse_config(data);
});
