#!/usr/bin/env bash
# Runtime-level benchmark: `berth oci run` against runc (and crun / youki
# when installed) on one OCI bundle running `true`, side by side in one run.
#
#   bench/runtime.sh                    # berth from target/release
#   BERTH=/path/to/berth RUNS=40 bench/runtime.sh
#
# The bundle is runc's `spec` defaults (read-only rootfs, no terminal) over a
# busybox rootfs built offline from Debian's busybox-static. Every `run` goes
# through a tiny launcher that starts it with SIGCHLD blocked (youki 0.7
# needs that; its cost is in every row). crun 1.8 refuses hybrid cgroup
# setups whose cgroup2 mount owns a controller, so on such hosts it runs in
# a private mount namespace without the cgroup2 mount (as the peers'
# measurements do). Needs root, hyperfine and a C compiler.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-$here/target/release/berth}
RUNS=${RUNS:-40}
WARMUP=${WARMUP:-5}
OUT=${OUT:-}

command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "build berth first: cargo build --release ($BERTH)" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
	for rt in berth runc crun youki; do
		[ -d "$work/state/$rt" ] || continue
		case $rt in berth) bin="$BERTH oci" ;; youki) bin=${YOUKI:-youki} ;; *) bin=$rt ;; esac
		$bin --root "$work/state/$rt" delete -f "bench-$rt" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

"$here/scripts/mk-busybox-rootfs.sh" "$work/bundle/rootfs" >/dev/null
if command -v runc >/dev/null; then (cd "$work/bundle" && runc spec); else (cd "$work/bundle" && "$BERTH" oci spec); fi
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/^\(\s*\)"sh"$/\1"true"/' "$work/bundle/config.json"

cat >"$work/launch.c" <<'C'
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
	sigset_t s;
	if (argc < 2) return 2;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigprocmask(SIG_BLOCK, &s, NULL);
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
C
cc -O2 -o "$work/launch" "$work/launch.c"
L=$work/launch

cmds=()
names=()
add() { names+=("$1"); cmds+=("$2"); mkdir -p "$work/state/$1"; }
add berth "$L $BERTH oci --root $work/state/berth run --bundle $work/bundle bench-berth"
command -v runc >/dev/null && add runc "$L runc --root $work/state/runc run --bundle $work/bundle bench-runc"
if command -v youki >/dev/null || [ -n "${YOUKI:-}" ]; then
	add youki "$L ${YOUKI:-youki} --root $work/state/youki run --bundle $work/bundle bench-youki"
fi

echo "# $(date -u +%F) $(uname -r), $(nproc) CPUs; berth $("$BERTH" --version | awk '{print $2}')"
for i in "${!cmds[@]}"; do
	timeout -k 1 20 ${cmds[$i]} >/dev/null || { echo "${names[$i]}: sanity run failed" >&2; exit 1; }
done
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/main.json" \
	$(for n in "${names[@]}"; do printf -- '--command-name %s ' "$n"; done) "${cmds[@]}"

if command -v crun >/dev/null; then
	crun_cmd="$L crun --root $work/state/crun run --bundle $work/bundle bench-crun"
	mkdir -p "$work/state/crun"
	hidden=0
	if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
		[ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers)" ]; then hidden=1; fi
	if [ $hidden = 1 ]; then
		echo "# crun and berth again, both in a private mount namespace without /sys/fs/cgroup/unified"
		unshare --mount --propagation private -- sh -c "umount /sys/fs/cgroup/unified && exec hyperfine -N --style basic --warmup $WARMUP --runs $RUNS --export-json $work/crun.json --command-name 'crun (unified hidden)' '$crun_cmd' --command-name 'berth (unified hidden)' '${cmds[0]}'"
	else
		hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/crun.json" \
			--command-name crun "$crun_cmd" --command-name "berth (again)" "${cmds[0]}"
	fi
fi

echo
echo "| runtime | median | mean ± sd | min … max |"
echo "|---|---:|---:|---:|"
for f in "$work/main.json" "$work/crun.json"; do
	[ -f "$f" ] || continue
	python3 - "$f" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda v: f"{v * 1000:.1f} ms"
    print(f"| {r['command']} | {ms(r['median'])} | {ms(r['mean'])} ± {ms(r['stddev'])} | {ms(r['min'])} … {ms(r['max'])} |")
PY
done

echo "# where berth's time goes (berth oci --debug run, one run):"
"$BERTH" oci --root "$work/state/berth" --debug run --bundle "$work/bundle" bench-berth 2>&1 | sed -n 's/.*msg="phases: \(.*\)"/\1/p'
