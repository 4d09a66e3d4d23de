#!/usr/bin/env bash
# Builds berth and runs a container with it, from nothing but this
# checkout: a busybox image built offline, berth's default OCI spec, and
# `berth oci run`. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH_TEST_PODMAN=0 scripts/deps.sh
cargo build --release --quiet
berth=$PWD/target/release/berth
bundle=$PWD/target/demo-bundle
if [ ! -x "$bundle/rootfs/bin/busybox" ]; then
	rm -rf "$bundle"
	BERTH=$berth scripts/mk-busybox-rootfs.sh --bundle "$bundle"
fi
# The default spec runs `sh`; run a few commands that show the isolation.
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    "echo \"hello from $(hostname): I am pid $$, and I see $(ls /proc | grep -c '^[0-9]') processes\"; "
    "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
    "touch /x 2>/dev/null || echo 'the root filesystem is read-only'"]
json.dump(c, open(p, "w"), indent=2)
PY
exec "$berth" oci run --bundle "$bundle" "demo-$$"
