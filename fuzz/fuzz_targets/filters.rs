//! Docker's `filters` parameter: parsing never panics, and the parsed
//! filters can be checked and matched against labels.
#![no_main]

use std::collections::BTreeMap;

use berth_docker_api::model::filters::parse_filters;
use berth_engine::filter::label_matches;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(f) = parse_filters(s) else { return };
    let _ = f.check(&["label", "name", "id", "status", "until", "dangling"]);
    let _ = f.boolean("dangling");
    let labels = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("é".to_owned(), "ü".to_owned())]);
    let _ = f.labels(&labels);
    for v in f.get("label") {
        let _ = label_matches(&labels, v);
    }
});
