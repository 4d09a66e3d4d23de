//! RFC 3339 times (image configs, registries, users): parsing never
//! panics, and a parsed time printed by berth parses back to itself.
#![no_main]

use berth_types::time::{format_rfc3339, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok((secs, nanos)) = parse_rfc3339(s) else { return };
    assert!(nanos < 1_000_000_000, "{s:?} gave {nanos} ns");
    let printed = format_rfc3339(secs, nanos);
    assert_eq!(
        parse_rfc3339(&printed),
        Ok((secs, nanos)),
        "{s:?} → {printed}"
    );
});
