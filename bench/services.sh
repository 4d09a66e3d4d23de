#!/usr/bin/env bash
# services.sh - the service proxy's rule changes in the kernel (svcbench):
# a table of SERVICES Services x ENDPOINTS endpoints, then CHANGES changes of
# one endpoint each, as diff transactions and as whole-table rewrites.
#
# Usage:   bench/services.sh    (as root; runs in a network namespace it
#          makes and deletes, so the host's rules are never touched)
# Knobs:   SERVICES (1000) ENDPOINTS (10) CHANGES (50)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo build --release -q -p berth-bench --bin svcbench
ns=berth-svcbench-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
nsenter --net=/run/netns/"$ns" ./target/release/svcbench \
	--services "${SERVICES:-1000}" --endpoints "${ENDPOINTS:-10}" --changes "${CHANGES:-50}"
