//! Docker Engine API request bodies as skiffd reads them: byte 0 picks the endpoint
//! (container create, exec create, volume create), the rest is the JSON body. Decoding into the
//! bollard-stubs models and translating into engine options must give an error or
//! options, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(b) = serde_json::from_slice::<bollard_stubs::models::ContainerCreateBody>(body)
            {
                let _ = skiff_api::docker::create::create_options(Some("fuzz"), b);
            }
        }
        1 => {
            if let Ok(b) = serde_json::from_slice::<bollard_stubs::models::ExecConfig>(body) {
                let _ = skiff_api::docker::exec::exec_options(b);
            }
        }
        _ => {
            if let Ok(b) = serde_json::from_slice::<skiff_api::docker::volumes::CreateBody>(body) {
                let _ = skiff_api::docker::volumes::create_request(b);
            }
        }
    }
});
