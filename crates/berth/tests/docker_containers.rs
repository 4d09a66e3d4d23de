//! Containers, exec and stats through `berth daemon` as the docker CLI and
//! docker-py see them, compared with dockerd's answers.

use std::path::Path;

use berth_testutil::busybox_daemon;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn a_container_runs_through_the_daemon() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    assert_eq!(d.ok(&["run", "--rm", "bb:1", "echo", "hi"]), "hi\n");
}
