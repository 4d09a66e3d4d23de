//! Image references: parsing never panics, and what parses prints back to
//! something that parses to the same reference.
#![no_main]

use berth_types::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(r) = Reference::parse(s) else { return };
    let again = Reference::parse(&r.to_string()).expect("a printed reference parses");
    assert_eq!(r, again, "{s:?} → {r} → {again}");
    let fam = Reference::parse(&r.familiar()).expect("the familiar form parses");
    assert_eq!(fam, r, "familiar form of {r}");
    assert!(!r.path().is_empty() && !r.domain().is_empty());
});
