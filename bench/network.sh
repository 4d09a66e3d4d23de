#!/usr/bin/env bash
# network.sh - service networking on berth server's own node, each section
# with a server of its own in a network namespace of its own:
#
#   clusterip  cipbench: HTTP requests/s and latency (a new connection per
#              request) from the node to 3 busybox httpd pods: one pod IP,
#              the 3 pod IPs round-robin, the ClusterIP, the NodePort
#   dns        dnsbench: UDP queries/s and latency to the node's cluster DNS
#              at the pods' gateway and through 198.19.0.10 (Service names,
#              a headless name, NXDOMAIN)
#   agent      agentbench: SERVICES Services x ENDPOINTS endpoints: RSS and
#              CPU idle before and after, time until every rule is in the
#              kernel, CPU during CHURN_RATE endpoint changes/s for CHURN_SECS
#
# Usage:   bench/network.sh               (as root; about 6 minutes after the build)
#          SECTIONS=dns bench/network.sh
# Knobs:   SECS (10) ROUNDS (2) CONCURRENCY (16,64) IN_FLIGHT (1,64)
#          SERVICES (1000) ENDPOINTS (10) CHURN_RATE (10) CHURN_SECS (30)
#
# Each server is its benchmark's child, stopped by its PID; the namespace
# (bridge, rules, routes) is deleted here.
set -euo pipefail
cd "$(dirname "$0")/.."

SECTIONS=${SECTIONS:-"clusterip dns agent"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
log() { echo "== $(date -u +%H:%M:%S) $*"; }

export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo build --release -q -p berth -p berth-bench
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
rootfs=$BIN/../demo-rootfs
if [ ! -x "$rootfs/bin/busybox" ]; then
	rm -rf "$rootfs"
	scripts/mk-busybox-rootfs.sh "$rootfs" >/dev/null
fi
export BUSYBOX_ROOTFS=$rootfs

ns=berth-netbench-$$
work=$(mktemp -d /var/tmp/berth-net-bench.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# runs a benchmark in a fresh namespace (lo up) with a fresh directory
section() {
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip netns exec "$ns" ip link set lo up
	rm -rf "$work"/* && mkdir -p "$work/run"
	nsenter --net=/run/netns/"$ns" "$@" --berth "$BIN/berth" --dir "$work/run"
}

if want clusterip; then
	log "ClusterIP and NodePort against pod IPs (cipbench)"
	section "$BIN/cipbench" --secs "${SECS:-10}" --rounds "${ROUNDS:-2}" --concurrency "${CONCURRENCY:-16,64}"
fi
if want dns; then
	log "cluster DNS queries/s (dnsbench)"
	section "$BIN/dnsbench" --secs "${SECS:-10}" --rounds "${ROUNDS:-2}" --in-flight "${IN_FLIGHT:-1,64}"
fi
if want agent; then
	log "the agent with ${SERVICES:-1000} Services x ${ENDPOINTS:-10} endpoints (agentbench)"
	section "$BIN/agentbench" --services "${SERVICES:-1000}" --endpoints "${ENDPOINTS:-10}" \
		--churn-rate "${CHURN_RATE:-10}" --churn-secs "${CHURN_SECS:-30}"
fi
