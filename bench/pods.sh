#!/usr/bin/env bash
# pods.sh - workloads on berth server's own node, in one run:
#
#   sched   the scheduler's pure core (crates/bench, schedbench): 5,000
#           in-memory nodes, 20,000 pods placed one after another (empty
#           cluster, then with 145,000 pods already placed; then a mix with
#           topology spread and anti-affinity)
#   pods    `berth server` (release build) with its node agent (podbench):
#           node Ready after start, RSS and CPU idle, the pod startup SLI
#           (creation → every container running, observed through a watch;
#           image present) over PODS pods created at RATE/s, RSS and CPU with
#           them running, a Deployment scaled 0 → REPLICAS until all Ready
#
# Usage:   bench/pods.sh          (as root; about 3 minutes after the build)
#          SECTIONS=sched bench/pods.sh
# Knobs:   PODS (100) RATE (20) REPLICAS (100) IDLE_SECS (10)
#
# The server runs in a network namespace of its own (made and deleted here),
# so its bridge and rules never touch the host's; it is podbench's child and
# is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

SECTIONS=${SECTIONS:-"sched pods"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
log() { echo "== $(date -u +%H:%M:%S) $*"; }

export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo build --release -q -p berth -p berth-bench
BIN=$PWD/target/release

if want sched; then
	log "scheduler core: 5,000 nodes"
	"$BIN/schedbench" --nodes 5000 --pods 20000
	"$BIN/schedbench" --nodes 5000 --pods 20000 --existing 145000
	"$BIN/schedbench" --nodes 5000 --pods 20000 --spread-every 10 --affinity-every 10
fi

if want pods; then
	rootfs=$PWD/target/demo-rootfs
	if [ ! -x "$rootfs/bin/busybox" ]; then
		rm -rf "$rootfs"
		scripts/mk-busybox-rootfs.sh "$rootfs" >/dev/null
	fi
	work=$(mktemp -d /var/tmp/berth-pods-bench.XXXXXX)
	ns=berth-bench-$$
	ip netns add "$ns"
	cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
	trap cleanup EXIT
	ip netns exec "$ns" ip link set lo up
	log "berth server with its node: pod startup, Deployment scale-up, RSS and CPU"
	BUSYBOX_ROOTFS=$rootfs nsenter --net=/run/netns/"$ns" "$BIN/podbench" --berth "$BIN/berth" --dir "$work" \
		--pods "${PODS:-100}" --rate "${RATE:-20}" --replicas "${REPLICAS:-100}" --idle-secs "${IDLE_SECS:-10}"
fi
