//! Whole layers: whatever the bytes, unpacking writes nothing outside its
//! target (a sibling directory and a file beside the target stay
//! untouched) and never panics.
#![no_main]

use std::io::Cursor;

use berth_image::unpack::{UnpackOptions, unpack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("layer");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&target).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(dir.path().join("victim"), b"intact").unwrap();
    let opts = UnpackOptions {
        max_bytes: 16 << 20,
        max_trailing: 1 << 16,
        unprivileged: true,
        ..UnpackOptions::default()
    };
    let budget = opts.budget("fuzz", data.len() as u64, None);
    let _ = unpack(Cursor::new(data.to_vec()), &target, None, &opts, &budget);
    assert_eq!(std::fs::read(dir.path().join("victim")).unwrap(), b"intact");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "something was written outside the layer");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 3, "new entries beside the layer: {names:?}");
});
