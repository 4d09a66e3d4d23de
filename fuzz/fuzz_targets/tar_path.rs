//! Layer entry names: the normalised path never climbs out of the layer,
//! is never absolute and has no empty, `.` or `..` components.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(p) = berth_image::unpack::normalize(data) else { return };
    for c in p.components() {
        assert!(matches!(c, Component::Normal(_)), "{p:?} from {data:?}");
    }
    assert!(!p.is_absolute());
});
