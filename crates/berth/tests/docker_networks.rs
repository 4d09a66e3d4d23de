//! Networks, volumes and the system endpoints (info, version, events,
//! prune) through `berth daemon` as the docker CLI and docker-py see them,
//! compared with dockerd's answers.

use std::path::Path;

use berth_testutil::busybox_daemon;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn a_network_is_created_through_the_daemon() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["network", "create", "n1"]);
    let out = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(out.lines().any(|l| l == "n1"), "{out}");
}
