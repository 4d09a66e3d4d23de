#!/usr/bin/env bash
# The builder side by side (bench/README): berth build (no daemon), the
# docker CLI against berth daemon, the docker CLI against dockerd's classic
# builder, and buildah bud, on one machine in one run, on a small
# two-stage Dockerfile (two RUN, three COPY): a cold build (--no-cache),
# a fully cached rebuild, and a one-step `RUN true` build.
#
#   bench/build.sh BERTH_BIN BUSYBOX_DOCKER_ARCHIVE DOCKERD_SOCK BERTH_SOCK
# Expects: BERTH_ROOT set (a root holding the image as bench/bb:1), dockerd
# and berth daemon listening on the given sockets, buildah installed.
set -euo pipefail
berth=$1 archive=$2 dsock=$3 bsock=$4
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 1 20); do printf 'file %s\n' "$i" >"$ctx/src/f$i.txt"; done
printf 'config\n' >"$ctx/app.conf"
cat >"$ctx/Dockerfile" <<'EOF'
FROM bench/bb:1 AS build
WORKDIR /src
COPY src/ ./
RUN cat *.txt > all.txt
FROM bench/bb:1
COPY app.conf /etc/app.conf
COPY --from=build /src/all.txt /all.txt
RUN wc -l /all.txt > /count
CMD ["cat", "/count"]
EOF
mkdir -p "$work/one"
printf 'FROM bench/bb:1\nRUN true\n' >"$work/one/Dockerfile"
DOCKER_HOST=unix://$dsock docker load -i "$archive" >/dev/null
DOCKER_HOST=unix://$dsock docker tag "$(DOCKER_HOST=unix://$dsock docker load -q -i "$archive" | awk '{print $NF}')" bench/bb:1
bah="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay"
# crun refuses this cgroup v1 hybrid host: buildah runs RUN steps with runc
bud="$bah bud --runtime $(command -v runc)"
$bah pull -q "docker-archive:$archive" >/dev/null
$bah tag "$($bah images -q | head -1)" bench/bb:1
export DOCKER_BUILDKIT=0
hf="hyperfine -N --style basic --warmup 1"
echo "== cold (--no-cache)"
$hf --runs 5 \
  -n "berth build" "$berth build --network none --no-cache -q $ctx" \
  -n "docker -> berth daemon" "docker -H unix://$bsock build --network none --no-cache -q $ctx" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none --no-cache -q $ctx" \
  -n "buildah bud" "$bud --network none --no-cache -q $ctx"
echo "== cached rebuild"
$hf --runs 20 \
  -n "berth build" "$berth build --network none -q $ctx" \
  -n "docker -> berth daemon" "docker -H unix://$bsock build --network none -q $ctx" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none -q $ctx" \
  -n "buildah bud" "$bud --network none --layers -q $ctx"
echo "== RUN true (one step, --no-cache)"
$hf --runs 10 \
  -n "berth build" "$berth build --network none --no-cache -q $work/one" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none --no-cache -q $work/one" \
  -n "buildah bud" "$bud --network none --no-cache -q $work/one"
$bah rmi -a -f >/dev/null 2>&1 || true
rm -rf "$work" 2>/dev/null || true
