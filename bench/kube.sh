#!/usr/bin/env bash
# kube.sh - berth's control plane, side by side in one run:
#
#   store   the cluster store's backends through the same berth_kv::Store
#           code (crates/bench, storebench): creates of 1 KiB values with 1
#           and 64 concurrent writers, a list of 10,000 keys under a prefix;
#           kv-sqlite (WAL, synchronous=FULL, group commit) against etcd 3.4
#           (its default: fsync per commit), both under one directory of the
#           root filesystem
#   api     `berth server` (release build, embedded kv-sqlite) from a client
#           on loopback (kubebench): start to /readyz 200 cold and warm, idle
#           RSS, create rate, get and list p50/p99 with 10,000 and 100,000
#           ConfigMaps in a namespace, a list of 10,000 pods, 1,000 watchers
#           receiving an update (delay from the write's acknowledgement), RSS
#           with 100,000 objects, a warm start with them
#
# Usage:   bench/kube.sh                  (both sections; about 3 minutes after the build)
#          SECTIONS=store bench/kube.sh
# Knobs:   WORKDIR (default a new directory under /var/tmp, on the root
#          filesystem; not a tmpfs), SECONDS_PER_RUN ROUNDS (store),
#          SMALL LARGE PODS WATCHERS CONCURRENCY (api)
#
# Everything listens on 127.0.0.1 only. etcd and each `berth server` are
# children of the bench programs, which kill them by PID; if this script is
# interrupted it kills the bench program and its children by PID, and removes
# the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

SECTIONS=${SECTIONS:-"store api"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
log() { echo "== $(date -u +%H:%M:%S) $*"; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo build --release -q -p berth -p berth-bench
BIN=$PWD/target/release

WORK=${WORKDIR:-$(mktemp -d /var/tmp/berth-kube-bench.XXXXXX)}
mkdir -p "$WORK"
RUNNING=""
cleanup() {
	set +e
	for pid in $RUNNING; do
		kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
		kill "$pid" $kids 2>/dev/null
	done
	[ -z "${WORKDIR:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Runs a bench program in the background (so that the trap knows its PID)
# and waits for it.
run() {
	"$@" &
	RUNNING=$!
	wait "$RUNNING"
	RUNNING=""
}

log "$(uname -sr), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "berth $(git rev-parse --short HEAD 2>/dev/null || echo '?'), work dir $WORK ($(stat -f -c %T "$WORK"))"
log "etcd: $(etcd --version 2>/dev/null | head -1)"

if want store; then
	log "store: kv-sqlite vs etcd (load $(cut -d' ' -f1 /proc/loadavg))"
	mkdir -p "$WORK/store"
	TMPDIR=$WORK/store run "$BIN/storebench" --dir "$WORK/store" \
		--seconds "${SECONDS_PER_RUN:-5}" --rounds "${ROUNDS:-2}"
	rm -rf "$WORK/store"
fi

if want api; then
	log "api: berth server (load $(cut -d' ' -f1 /proc/loadavg))"
	run "$BIN/kubebench" --berth "$BIN/berth" --dir "$WORK/api" \
		--small "${SMALL:-10000}" --large "${LARGE:-100000}" --pods "${PODS:-10000}" \
		--watchers "${WATCHERS:-1000}" --concurrency "${CONCURRENCY:-32}"
	du -sh "$WORK/api/root/server/db" 2>/dev/null | sed 's/^/== store size: /'
fi
log "done (load $(cut -d' ' -f1 /proc/loadavg))"
