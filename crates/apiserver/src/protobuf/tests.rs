//! Tests of the protobuf decoder: bodies recorded from kubectl 1.33, and
//! bodies encoded with independently generated typed messages.

#[path = "tests_built.rs"]
mod built;

use std::path::Path;

use serde_json::Value;

/// Every body recorded from kubectl 1.33 (`testdata/*.pb`, request bodies
/// of `kubectl create …`, `auth whoami|can-i`, `create token`, `drain
/// --disable-eviction`, `autoscale`, `certificate approve`) decodes to the
/// JSON in `testdata/expected.json`.
#[test]
fn kubectl_bodies_decode_to_the_expected_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/testdata");
    let expected: Value = match std::fs::read(dir.join("expected.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => panic!("testdata/expected.json is missing or invalid"),
    };
    let Some(expected) = expected.as_object() else {
        panic!("expected.json is not an object");
    };
    assert!(expected.len() >= 36, "{} fixtures", expected.len());
    for (file, want) in expected {
        let body = match std::fs::read(dir.join(file)) {
            Ok(b) => b,
            Err(e) => panic!("{file}: {e}"),
        };
        match super::decode(&body) {
            Ok(got) => assert_eq!(&got, want, "{file}"),
            Err(e) => panic!("{file}: {e}"),
        }
    }
}
