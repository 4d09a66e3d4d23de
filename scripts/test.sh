#!/usr/bin/env bash
# Runs berth's whole test suite: formatting, lints, unit tests, and the
# privileged integration tests that start real containers (run as root;
# without root they print why they skip). This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
if ! command -v cargo >/dev/null; then
	echo "cargo is needed (the Rust toolchain)" >&2
	exit 1
fi
# a one-shot build gains nothing from incremental state (gigabytes of it)
if [ "${CI:-}" = true ]; then
	export CARGO_INCREMENTAL=0
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace "$@"
