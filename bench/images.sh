#!/usr/bin/env bash
# Image benchmarks, berth beside the peers on the same machine in one run:
#   unpack   a ~LAYER_MB MB, ~7,500-file layer (text, shared libraries and
#            random data, as ../shared/bench/peers.sh makes it), plain, gzip -6
#            and zstd -3: `berth load` of a docker-archive holding it and
#            `berth import` of the tar, against `tar -x`, `gzip -dc | tar -x`,
#            `zstd -dc | tar -x`, `podman load` (and `docker load` when a
#            dockerd is running) — on the root filesystem and on tmpfs.
#   pull     a 5-layer image from a loopback registry (Debian's docker-registry):
#            `berth pull` against `skopeo copy` to an OCI directory.
#   disk     10 images sharing one base: bytes used under berth's root.
#
#   bench/images.sh                  # berth from target/release
#   RUNS=5 LAYER_MB=200 SECTIONS="unpack pull disk" bench/images.sh
#
# Every engine's data root sits on the same filesystem as the `tar -x`
# reference. Before each run the previous copy is removed and the page cache
# of the inputs stays warm. Needs root, hyperfine, busybox-static, zstd;
# podman, skopeo and docker-registry for their rows.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-$here/target/release/berth}
RUNS=${RUNS:-5}
LAYER_MB=${LAYER_MB:-200}
SECTIONS=${SECTIONS:-unpack pull disk}
WHERE=${WHERE:-disk tmpfs} # where the unpack section writes
WORKBASE=${WORKBASE:-/var/tmp}

command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "build berth first: cargo build --release ($BERTH)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

work=$(mktemp -d "$WORKBASE/berth-bench-images.XXXXXX")
reg_pid=
cleanup() {
	[ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
	if mountpoint -q "$work/tmpfs"; then umount -R "$work/tmpfs"; fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "# berth image benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), work dir on $(df -T "$work" | awk 'NR==2{print $2" ("$1")"}')"
echo "# berth $("$BERTH" --version | cut -d' ' -f2), load average $(cut -d' ' -f1-3 /proc/loadavg)"

make_layer() {
	local d=$work/layer budget=$((LAYER_MB * 1000 * 1000))
	mkdir -p "$d/stage/rand"
	list_up_to() { # DIR BYTES: file paths under DIR (relative to /), sorted, summing to at most BYTES
		(cd / && find "$1" -type f -printf '%s\t%p\n' 2>/dev/null | sort -t$'\t' -k2 |
			awk -F'\t' -v max="$2" '{t += $1; if (t > max) exit; print $2}') || true # (SIGPIPE upstream of awk)
	}
	{ list_up_to usr/include $((budget * 55 / 100)); list_up_to usr/lib/x86_64-linux-gnu $((budget * 30 / 100)); } >"$d/list"
	local n=$((budget * 15 / 100 / 262144)) i
	for i in $(seq "$n"); do head -c 262144 /dev/urandom >"$d/stage/rand/r$i"; done
	tar --numeric-owner -C / -cf "$d/layer.tar" -T "$d/list"
	tar --numeric-owner -C "$d/stage" -rf "$d/layer.tar" rand
	gzip -6 -c "$d/layer.tar" >"$d/layer.tar.gz"
	zstd -q -3 -c "$d/layer.tar" >"$d/layer.tar.zst"
	local diff cfg
	diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
	for kind in tar tar.gz tar.zst; do
		local a=$d/archive-$kind
		mkdir -p "$a"
		ln "$d/layer.$kind" "$a/layer.$kind"
		printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"bench"}]}' "$diff" >"$a/config.json"
		cfg=$(sha256sum "$a/config.json" | cut -d' ' -f1)
		mv "$a/config.json" "$a/$cfg.json"
		printf '[{"Config":"%s.json","RepoTags":["bench/layer:%s"],"Layers":["layer.%s"]}]' "$cfg" "${kind//./-}" "$kind" >"$a/manifest.json"
		tar -C "$a" -cf "$d/image-$kind.tar" manifest.json "$cfg.json" "layer.$kind"
		rm -rf "$a"
	done
	rm -rf "$d/stage"
	cat "$d"/*.tar* >/dev/null
	echo "# layer: $(($(stat -c %s "$d/layer.tar") / 1000000)) MB, $(tar -tf "$d/layer.tar" | grep -vc '/$') files; gzip -6 $(($(stat -c %s "$d/layer.tar.gz") / 1000000)) MB, zstd -3 $(($(stat -c %s "$d/layer.tar.zst") / 1000000)) MB"
}

hf() { # NAME PREPARE COMMAND
	hyperfine -N --runs "$RUNS" --warmup 1 --style basic --export-json "$work/hf.json" --prepare "$2" -n "$1" "$3" >/dev/null 2>"$work/hf.err" ||
		{ # rerun once outside hyperfine to show why
			eval "$2" >/dev/null 2>&1 || true
			echo "| ${1//|/\\|} | failed: $(eval "$3" 2>&1 >/dev/null | tail -1) |"
			return
		}
	python3 - "$work/hf.json" "$LAYER_BYTES" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
b = int(sys.argv[2])
f = lambda x: f"{x*1000:.0f} ms" if x < 10 else f"{x:.2f} s"
print(f"| {r['command'].replace('|', chr(92) + '|')} | {f(r['median'])} | {f(r['mean'])} ± {f(r['stddev'])} | {f(r['min'])} … {f(r['max'])} | {b/1e6/r['median']:.0f} MB/s |")
PY
}

section_unpack() {
	make_layer
	local d=$work/layer
	LAYER_BYTES=$(stat -c %s "$d/layer.tar")
	for where in $WHERE; do
		local base=$work/$where
		if [ "$where" = tmpfs ]; then
			mkdir -p "$base"
			mount -t tmpfs -o size=$((LAYER_MB * 6))m berth-bench "$base" || { echo "(no tmpfs: skipped)"; continue; }
		fi
		mkdir -p "$base"
		echo
		echo "### unpack to $where ($(df -T "$base" | awk 'NR==2{print $2}'))"
		echo
		echo "| command | median | mean ± sd | min … max | layer MB/s |"
		echo "|---|---:|---:|---:|---:|"
		local clean="sh -c 'rm -rf $base/x; mkdir $base/x; sync'"
		hf "tar -x" "$clean" "tar -C $base/x -xf $d/layer.tar"
		# berth syncs the filesystem once a pull/load has unpacked (the
		# layers are durable before an image names them); this row is tar
		# with the same guarantee
		hf "tar -x; sync" "$clean" "sh -c 'tar -C $base/x -xf $d/layer.tar && sync'"
		hf "gzip -dc | tar -x" "$clean" "sh -c 'gzip -dc $d/layer.tar.gz | tar -C $base/x -xf -'"
		hf "zstd -dc | tar -x" "$clean" "sh -c 'zstd -dcq $d/layer.tar.zst | tar -C $base/x -xf -'"
		rm -rf "$base/x"
		local broot=$base/berth-root
		local bclean="sh -c 'rm -rf $broot; sync'"
		for kind in tar tar.gz tar.zst; do
			hf "berth load ($kind layer)" "$bclean" "env BERTH_ROOT=$broot $BERTH load -q -i $d/image-$kind.tar"
		done
		hf "berth import layer.tar.gz" "$bclean" "env BERTH_ROOT=$broot $BERTH import $d/layer.tar.gz bench/import:1"
		rm -rf "$broot"
		if have podman; then
			# (podman refuses a runroot longer than 50 characters)
			local p="podman --root $base/podman --runroot /run/berth-bench-podman"
			# podman leaves its overlay directory bind-mounted on itself
			local pclean="sh -c 'umount -R $base/podman/overlay 2>/dev/null; rm -rf $base/podman /run/berth-bench-podman; sync'"
			hf "podman load (tar layer)" "$pclean" "$p load -q -i $d/image-tar.tar"
			hf "podman load (tar.gz layer)" "$pclean" "$p load -q -i $d/image-tar.gz.tar"
			umount -R "$base/podman/overlay" 2>/dev/null || true
			rm -rf "$base/podman" /run/berth-bench-podman
		fi
		if have docker && docker info >/dev/null 2>&1; then
			local drmi="sh -c 'docker rmi -f bench/layer:tar bench/layer:tar-gz >/dev/null 2>&1; sync'"
			hf "docker load (tar layer; its data root)" "$drmi" "docker load -q -i $d/image-tar.tar"
		fi
		if [ "$where" = tmpfs ]; then umount -R "$base"; fi
	done
	rm -rf "$work/layer"
}

start_registry() {
	have docker-registry || { echo "(docker-registry not installed: pull skipped)"; return 1; }
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$work/registry"
	printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/registry/data" "$port" >"$work/registry/config.yml"
	docker-registry serve "$work/registry/config.yml" >/dev/null 2>&1 &
	reg_pid=$!
	for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

section_pull() {
	start_registry || return 0
	local img=127.0.0.1:$port/bench/multi:1 src=$work/pull-src
	# five layers: the busybox rootfs and four slices of /usr (about 120 MB in all)
	mkdir -p "$src"
	"$here/scripts/mk-busybox-rootfs.sh" "$src/rootfs" >/dev/null
	local i=0 layers=() dirs=(usr/include usr/share/doc usr/lib/python3 usr/share/perl)
	tar -C "$src/rootfs" -czf "$src/l0.tar.gz" .
	for dir in "${dirs[@]}"; do
		i=$((i + 1))
		[ -d "/$dir" ] || dir=usr/share/man
		tar -C / -czf "$src/l$i.tar.gz" "$dir" 2>/dev/null || true
	done
	local broot=$work/pull-root
	# a docker-archive of the five layers, loaded and pushed by berth
	python3 - "$src" <<'PY'
import gzip, hashlib, json, os, sys, tarfile
src = sys.argv[1]
layers = [f"l{i}.tar.gz" for i in range(5)]
diff = ["sha256:" + hashlib.sha256(gzip.open(os.path.join(src, l)).read()).hexdigest() for l in layers]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff}}).encode()
name = hashlib.sha256(cfg).hexdigest() + ".json"
open(os.path.join(src, name), "wb").write(cfg)
json.dump([{"Config": name, "RepoTags": ["bench/multi:1"], "Layers": layers}], open(os.path.join(src, "manifest.json"), "w"))
with tarfile.open(os.path.join(src, "image.tar"), "w") as t:
    for f in ["manifest.json", name] + layers:
        t.add(os.path.join(src, f), arcname=f)
PY
	BERTH_ROOT=$broot "$BERTH" load -q -i "$src/image.tar" >/dev/null
	BERTH_ROOT=$broot "$BERTH" tag bench/multi:1 "$img"
	BERTH_ROOT=$broot "$BERTH" push -q "$img" >/dev/null
	rm -rf "$broot"
	echo
	echo "### pull of a 5-layer image ($(du -sm "$work/registry/data" | cut -f1) MB in the registry) from a loopback registry"
	echo
	echo "| command | median | mean ± sd | min … max | |"
	echo "|---|---:|---:|---:|---:|"
	LAYER_BYTES=$(du -sb "$work/registry/data" | cut -f1)
	hf "berth pull (download, verify, unpack)" "sh -c 'rm -rf $broot; sync'" "env BERTH_ROOT=$broot $BERTH pull -q $img"
	if have skopeo; then
		hf "skopeo copy to an OCI dir (download, verify; no unpack)" "sh -c 'rm -rf $work/oci; sync'" \
			"skopeo copy -q --src-tls-verify=false docker://$img oci:$work/oci:1"
	fi
	if have podman; then
		local p="podman --root $work/pm --runroot $work/pm-run"
		hf "podman pull (download, verify, unpack)" "sh -c 'rm -rf $work/pm $work/pm-run; sync'" "$p pull -q --tls-verify=false $img"
	fi
	rm -rf "$broot" "$work/oci" "$work/pm" "$work/pm-run" "$src"
}

section_disk() {
	local broot=$work/disk-root src=$work/disk-src
	mkdir -p "$src"
	"$here/scripts/mk-busybox-rootfs.sh" "$src/base" >/dev/null
	cp -a /usr/include "$src/base/include"
	tar -C "$src/base" -cf "$src/base.tar" .
	BERTH_ROOT=$broot "$BERTH" import "$src/base.tar" bench/base:1 >/dev/null
	local base_du
	base_du=$(du -sb "$broot" | cut -f1)
	# ten images = the base + one small layer each, through save/load
	python3 - "$src" <<'PY'
import hashlib, io, json, os, sys, tarfile
src = sys.argv[1]
base = open(os.path.join(src, "base.tar"), "rb").read()
bid = hashlib.sha256(base).hexdigest()
files = {f"{bid}.tar": base}
manifest = []
for i in range(10):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(256 * 1024)
        info = tarfile.TarInfo(f"app/{i}.bin"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    layer = buf.getvalue(); lid = hashlib.sha256(layer).hexdigest()
    files[f"{lid}.tar"] = layer
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
          "diff_ids": [f"sha256:{bid}", f"sha256:{lid}"]}}).encode()
    cid = hashlib.sha256(cfg).hexdigest(); files[f"{cid}.json"] = cfg
    manifest.append({"Config": f"{cid}.json", "RepoTags": [f"bench/app:{i}"], "Layers": [f"{bid}.tar", f"{lid}.tar"]})
files["manifest.json"] = json.dumps(manifest).encode()
with tarfile.open(os.path.join(src, "apps.tar"), "w") as t:
    for n, b in files.items():
        info = tarfile.TarInfo(n); info.size = len(b); t.addfile(info, io.BytesIO(b))
PY
	BERTH_ROOT=$broot "$BERTH" load -q -i "$src/apps.tar" >/dev/null
	local all_du snaps
	all_du=$(du -sb "$broot" | cut -f1)
	snaps=$(ls "$broot/snapshots" | grep -vc tmp)
	echo
	echo "### disk: 10 images sharing one base"
	echo
	echo "| what | bytes under berth's root |"
	echo "|---|---:|"
	echo "| the base image alone ($(du -sm "$src/base" | cut -f1) MB of files) | $((base_du / 1000000)) MB |"
	echo "| base + 10 images of base + 256 kB each ($snaps snapshots) | $((all_du / 1000000)) MB (+$(((all_du - base_du) / 1000)) kB) |"
	echo "| the same 11 images as independent copies would take | ~$(((base_du * 11) / 1000000)) MB |"
	rm -rf "$broot" "$src"
}

for s in $SECTIONS; do "section_$s"; done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
