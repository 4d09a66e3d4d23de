#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each with cargo-fuzz
# (nightly toolchain; `cargo install cargo-fuzz`). Corpora and crashes stay
# under fuzz/ (ignored by git); a crash fails the run.
#
#   scripts/fuzz.sh            # all targets, 60 s each
#   SECONDS_EACH=600 scripts/fuzz.sh unpack
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
each=${SECONDS_EACH:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(reference manifest tar_path unpack rfc3339 create_body filters docker_syntax dockerfile)
for t in "${targets[@]}"; do
	echo "== $t ($each s)"
	cargo +nightly fuzz run "$t" -- -max_total_time="$each" -rss_limit_mb=2048
done
