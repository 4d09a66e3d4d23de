//! `POST /containers/create` bodies: reading one and turning it into the
//! engine's `ContainerSpec` never panics, whatever the JSON (wrong types,
//! huge numbers, multi-byte strings in every syntax-carrying field), and a
//! spec that comes out passes or fails its own validation cleanly.
#![no_main]

use berth_docker_api::model::container::CreateBody;
use berth_docker_api::model::from_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = from_json::<CreateBody>(data) else { return };
    let Ok(spec) = body.into_spec(Some("fuzz".into())) else { return };
    let _ = spec.resources.validate();
    for u in &spec.ulimits {
        let _ = u.validate();
    }
});
