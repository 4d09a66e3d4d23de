//! Images through `berth daemon` as the docker CLI and docker-py see them
//! (list filters, history, inspect, import/commit changes, load, pull,
//! login, image events), compared with dockerd's answers.

use std::path::Path;

use berth_testutil::busybox_daemon;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn the_daemon_lists_the_imported_image() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let out = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), "bb:1");
}
