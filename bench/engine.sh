#!/usr/bin/env bash
# engine.sh - berth's engine against the peer engines, side by side in one run:
#
#   run     `docker run --rm --network none IMG true` through `berth daemon`,
#           through dockerd (Debian's docker.io, started here on its own data
#           root), `berth run --rm --network none IMG true` (no daemon), and
#           `podman --runtime runc run --rm --network none IMG true`
#   memory  N_MEM detached `sleep 3600` containers started by berth: RSS/PSS
#           of the `berth monitor` that holds each; `berth daemon` RSS idle
#           and with them running
#   tput    N_TPUT detached containers started sequentially and PAR-way
#           parallel: berth run, docker CLI -> berth daemon, docker CLI ->
#           dockerd, podman
#   bridge  `run --rm IMG true` on each engine's own default bridge, next to
#           the same with `--network none`: berth run, docker CLI -> berth
#           daemon, docker CLI -> dockerd (bridge 198.19.248.0/24 via --bip),
#           podman (CNI bridge on 198.19.249.0/24); BERTH_BEFORE=/path/berth
#           adds an older berth binary (own root and bridge) for a
#           before/after in the same run
#
# Usage:   sudo bench/engine.sh            (all sections; about 7 minutes)
#          SECTIONS="run" bench/engine.sh
#          ip netns add bench; nsenter --net=/run/netns/bench bench/engine.sh
# Knobs:   RUNS N_MEM N_TPUT PAR DOCKER (docker CLI, default from PATH)
#          BERTH_BEFORE
#
# dockerd runs with --iptables=false and, unless the bridge section runs,
# --bridge=none, so it changes no firewall rule and makes no bridge. The
# bridge section gives dockerd its docker0 and podman its CNI bridge (whose
# plugins add iptables rules): it runs them only inside a network namespace
# of its own (not the host's), where those are private and go away with it.
# berth uses its own table, bridges and subnets (net.json) anywhere.
# podman gets a private store and containers.conf. Everything lives in a
# temporary work dir and is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
N_MEM=${N_MEM:-20}
N_TPUT=${N_TPUT:-50}
PAR=${PAR:-4}
SECTIONS=${SECTIONS:-"run memory tput bridge"}
DOCKER=${DOCKER:-docker}
IMG=bench/busybox:bench

want() { [[ " $SECTIONS " == *" $1 "* ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
log() { echo "== $*" >&2; }
now() { date +%s.%N; }
kb() { awk -v f="$2" '$1 == f":" {print $2; exit}' "/proc/$1/${3:-smaps_rollup}" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k/1024}'; }

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
have hyperfine || { echo "hyperfine is needed" >&2; exit 1; }

cargo build --release -q -p berth
BERTH=$PWD/target/release/berth
WORK=$(mktemp -d /tmp/berth-engine-bench.XXXXXX)
DPID="" BPID="" DOCKER_BRIDGE=0 PODMAN_NET=""
# dockerd's and podman's bridges only in a network namespace of our own
PRIVATE_NETNS=0
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] && PRIVATE_NETNS=1
cleanup() {
	set +e
	if [ -n "$BPID" ]; then
		"$BERTH" --root "$WORK/berth" ps -aq | xargs -r "$BERTH" --root "$WORK/berth" rm -f >/dev/null
		kill "$BPID"
	fi
	if [ -n "$DPID" ]; then
		ids=$(DOCKER_HOST=unix://$WORK/docker.sock $DOCKER ps -aq)
		[ -n "$ids" ] && DOCKER_HOST=unix://$WORK/docker.sock $DOCKER rm -f $ids >/dev/null
		kill "$DPID"
		for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.2; done
	fi
	if [ -n "${PODMAN:-}" ]; then
		$PODMAN rm -af -t 0 >/dev/null 2>&1
		$PODMAN rmi -af >/dev/null 2>&1
	fi
	"$BERTH" --root "$WORK/berth" network ls >/dev/null 2>&1
	awk -v w="$WORK/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
	nft delete table ip berth_bench 2>/dev/null
	ip link del bbench0 2>/dev/null
	if [ -d "$WORK/berth-before" ]; then
		nft delete table ip berth_bench_before 2>/dev/null
		ip link del bbench1 2>/dev/null
	fi
	[ "$DOCKER_BRIDGE" = 1 ] && ip link del docker0 2>/dev/null
	if [ -n "$PODMAN_NET" ]; then
		ip link del cni-podman0 2>/dev/null
		rm -rf "/var/lib/cni/networks/$PODMAN_NET"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# the image: Debian's static busybox, as bench/peers.sh builds it
bb=$(command -v busybox)
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp}
cp "$bb" "$ROOTFS/bin/busybox"
for a in sh true sleep cat echo ls ps; do ln -s busybox "$ROOTFS/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/busybox.tar" .

# berth: its own root, bridge names and table (never the defaults)
mkdir -p "$WORK/berth"
echo '{"table":"berth_bench","default_bridge":"bbench0","default_subnet":"198.18.249.0/24","pool":"198.19.244.0/22"}' >"$WORK/berth/net.json"
"$BERTH" --root "$WORK/berth" import "$WORK/busybox.tar" "$IMG" >/dev/null
"$BERTH" --root "$WORK/berth" daemon -H "unix://$WORK/berth.sock" >"$WORK/berth-daemon.log" 2>&1 &
BPID=$!
for _ in $(seq 100); do [ -S "$WORK/berth.sock" ] && break; sleep 0.05; done
BD="env DOCKER_HOST=unix://$WORK/berth.sock $DOCKER"

# an older berth for a before/after: its own root, table, bridge and subnet
if want bridge && [ -n "${BERTH_BEFORE:-}" ]; then
	mkdir -p "$WORK/berth-before"
	echo '{"table":"berth_bench_before","default_bridge":"bbench1","default_subnet":"198.18.250.0/24","pool":"198.19.236.0/22"}' >"$WORK/berth-before/net.json"
	"$BERTH_BEFORE" --root "$WORK/berth-before" import "$WORK/busybox.tar" "$IMG" >/dev/null
fi

# dockerd: its own data root, no iptables; a bridge (docker0 on
# 198.19.248.0/24) only for the bridge section in a private netns
HAVE_DOCKERD=0
if have dockerd; then
	bridge_opt=(--bridge=none)
	if want bridge && [ "$PRIVATE_NETNS" = 1 ] && ! ip link show docker0 >/dev/null 2>&1; then
		bridge_opt=(--bip 198.19.248.1/24)
		DOCKER_BRIDGE=1
	fi
	dockerd --data-root "$WORK/docker" --exec-root "$WORK/docker-exec" -H "unix://$WORK/docker.sock" \
		--pidfile "$WORK/docker.pid" "${bridge_opt[@]}" --iptables=false --ip6tables=false \
		>"$WORK/dockerd.log" 2>&1 &
	DPID=$!
	for _ in $(seq 200); do
		DOCKER_HOST=unix://$WORK/docker.sock $DOCKER info >/dev/null 2>&1 && { HAVE_DOCKERD=1; break; }
		sleep 0.1
	done
	DD="env DOCKER_HOST=unix://$WORK/docker.sock $DOCKER"
	[ "$HAVE_DOCKERD" = 1 ] && $DD import "$WORK/busybox.tar" "$IMG" >/dev/null
fi
[ "$HAVE_DOCKERD" = 1 ] || log "dockerd: not available, skipped (apt-get install docker.io)"

# podman: a private store and containers.conf (ulimits the caller may set)
HAVE_PODMAN=0
if have podman; then
	nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
	[ "$nproc" = unlimited ] && nproc=32768
	[ "$nproc" -gt 32768 ] && nproc=32768
	mkdir -p "$WORK/podman"/{root,run,tmp}
	# its default network: a private CNI config dir, a name of its own
	# (host-local keeps addresses in /var/lib/cni/networks/NAME) and a
	# 198.19.249.0/24 subnet instead of 10.88/16
	mkdir -p "$WORK/podman/cni"
	PODMAN_NET=berth-bench-$$
	cat >"$WORK/podman/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		tmp_dir = "$WORK/podman/tmp"
		[network]
		network_backend = "cni"
		network_config_dir = "$WORK/podman/cni"
		default_network = "$PODMAN_NET"
		default_subnet = "198.19.249.0/24"
	EOF
	export CONTAINERS_CONF=$WORK/podman/containers.conf
	PODMAN="podman --root $WORK/podman/root --runroot $WORK/podman/run --storage-driver overlay --runtime runc"
	$PODMAN import -q "$WORK/busybox.tar" "$IMG" >/dev/null && HAVE_PODMAN=1
fi

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, $(uname -r); docker CLI $($DOCKER --version | awk '{print $3}' | tr -d ,)"

if want run; then
	log "run --rm --network none IMG true"
	cmds=(-n "docker CLI -> berth daemon" "$BD run --rm --network none $IMG true"
		-n "berth run (no daemon)" "$BERTH --root $WORK/berth run --rm --network none $IMG true")
	[ "$HAVE_DOCKERD" = 1 ] && cmds+=(-n "docker CLI -> dockerd (runc)" "$DD run --rm --network none $IMG true")
	[ "$HAVE_PODMAN" = 1 ] && cmds+=(-n "podman run (runc)" "$PODMAN run --rm --network none $IMG true")
	hyperfine -N --warmup 3 --runs "$RUNS" --export-markdown "$WORK/run.md" "${cmds[@]}" >&2
	cat "$WORK/run.md"
	echo
fi

if want memory; then
	log "memory: $N_MEM detached sleep 3600 (berth run -d)"
	d0=$(kb "$BPID" VmRSS status)
	for i in $(seq "$N_MEM"); do
		"$BERTH" --root "$WORK/berth" run -d --network none "$IMG" sleep 3600 >/dev/null
	done
	sleep 2
	n=0 rss=0 pss=0 crss=0
	for id in $("$BERTH" --root "$WORK/berth" ps -q --no-trunc); do
		cpid=$("$BERTH" --root "$WORK/berth" inspect -f '{{.State.Pid}}' "$id")
		mpid=$(awk '{print $4}' "/proc/$cpid/stat")
		grep -q monitor "/proc/$mpid/cmdline" || { log "parent of $cpid is not a monitor"; continue; }
		rss=$((rss + $(kb "$mpid" Rss))); pss=$((pss + $(kb "$mpid" Pss)))
		crss=$((crss + $(kb "$cpid" Rss)))
		n=$((n + 1))
	done
	$BD ps -q >/dev/null # the daemon serves a request with them running
	d1=$(kb "$BPID" VmRSS status)
	echo "| memory (berth, $n containers) | value |"
	echo "|---|---|"
	echo "| berth monitor RSS per container | $(mib $((rss / n))) MiB |"
	echo "| berth monitor PSS per container | $(mib $((pss / n))) MiB |"
	echo "| container process (busybox sleep) RSS | $(mib $((crss / n))) MiB |"
	echo "| berth daemon RSS idle -> after ps with $n running | $(mib "$d0") -> $(mib "$d1") MiB |"
	"$BERTH" --root "$WORK/berth" ps -aq | xargs -r "$BERTH" --root "$WORK/berth" rm -f >/dev/null
	echo
fi

tput_one() { # LABEL MODE CLI...
	local tag=$1 mode=$2
	shift 2
	local t0 t1
	t0=$(now)
	if [ "$mode" = seq ]; then
		for _ in $(seq "$N_TPUT"); do "$@" run -d --network none "$IMG" sleep 3600 >/dev/null; done
	else
		seq "$N_TPUT" | xargs -P "$PAR" -I{} "$@" run -d --network none "$IMG" sleep 3600 >/dev/null
	fi
	t1=$(now)
	local n
	n=$("$@" ps -q | grep -c .)
	echo "| $tag | $([ "$mode" = seq ] && echo sequential || echo "$PAR-way parallel") | $(awk -v a="$t0" -v b="$t1" -v n="$N_TPUT" 'BEGIN{printf "%.2f s (%.1f/s)", b-a, n/(b-a)}') | $n |"
	local ids
	ids=$("$@" ps -q)
	if [ "$1" = podman ]; then "$@" rm -f -t 0 $ids >/dev/null; else "$@" rm -f $ids >/dev/null; fi
}

if want bridge; then
	log "bridge: run --rm IMG true on each engine's default bridge, and with --network none"
	cmds=(-n "berth run, --network none" "$BERTH --root $WORK/berth run --rm --network none $IMG true"
		-n "berth run, bridge" "$BERTH --root $WORK/berth run --rm $IMG true"
		-n "docker CLI -> berth daemon, --network none" "$BD run --rm --network none $IMG true"
		-n "docker CLI -> berth daemon, bridge" "$BD run --rm $IMG true")
	if [ -n "${BERTH_BEFORE:-}" ]; then
		cmds+=(-n "berth run (before), --network none" "$BERTH_BEFORE --root $WORK/berth-before run --rm --network none $IMG true"
			-n "berth run (before), bridge" "$BERTH_BEFORE --root $WORK/berth-before run --rm $IMG true")
	fi
	if [ "$HAVE_DOCKERD" = 1 ] && [ "$DOCKER_BRIDGE" = 1 ]; then
		cmds+=(-n "docker CLI -> dockerd (runc), --network none" "$DD run --rm --network none $IMG true"
			-n "docker CLI -> dockerd (runc), bridge" "$DD run --rm $IMG true")
	else
		log "dockerd: bridge run skipped (needs dockerd and a network namespace of its own without docker0)"
	fi
	if [ "$HAVE_PODMAN" = 1 ] && [ "$PRIVATE_NETNS" = 1 ]; then
		cmds+=(-n "podman run (runc), --network none" "$PODMAN run --rm --network none $IMG true"
			-n "podman run (runc), bridge" "$PODMAN run --rm $IMG true")
	else
		log "podman: bridge run skipped (needs podman and a network namespace of its own)"
	fi
	hyperfine -N --warmup 3 --runs "$RUNS" --export-markdown "$WORK/bridge.md" "${cmds[@]}" >&2
	cat "$WORK/bridge.md"
	echo
fi

if want tput; then
	log "throughput: $N_TPUT detached containers"
	echo "| engine | mode | $N_TPUT started | running after |"
	echo "|---|---|---|---|"
	for m in seq par; do
		tput_one "berth run -d" $m "$BERTH" --root "$WORK/berth"
		tput_one "docker CLI -> berth daemon" $m $BD
		[ "$HAVE_DOCKERD" = 1 ] && tput_one "docker CLI -> dockerd (runc)" $m $DD
		[ "$HAVE_PODMAN" = 1 ] && tput_one "podman (runc)" $m $PODMAN
	done
	echo
fi
