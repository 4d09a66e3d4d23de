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
# ONLY=large runs only the larger case
if [ "${ONLY:-all}" != large ]; then
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
echo "== per step: 10 x RUN true minus none (--no-cache)"
mkdir -p "$work/ten" "$work/zero"
{ echo 'FROM bench/bb:1'; for i in $(seq 1 10); do echo "RUN true # $i"; done; } >"$work/ten/Dockerfile"
printf 'FROM bench/bb:1\nENV A=1\n' >"$work/zero/Dockerfile"
$hf --runs 10 \
  -n "berth build 10 RUN" "$berth build --network none --no-cache -q $work/ten" \
  -n "berth build 0 RUN" "$berth build --network none --no-cache -q $work/zero" \
  -n "docker -> dockerd 10 RUN" "docker -H unix://$dsock build --network none --no-cache -q $work/ten" \
  -n "docker -> dockerd 0 RUN" "docker -H unix://$dsock build --network none --no-cache -q $work/zero"

fi

echo "== larger: 5 stages, a 50 MB / 5,000-file context"
big=$work/big
mkdir -p "$big/src/a" "$big/src/b"
python3 - "$big/src" <<'EOF'
import os, sys
for d in ("a", "b"):
    for i in range(1, 2501):
        with open(os.path.join(sys.argv[1], d, f"f{i}"), "wb") as f:
            f.write(os.urandom(10000))
EOF
cat >"$big/Dockerfile" <<'EOF'
FROM bench/bb:1 AS base
RUN mkdir -p /opt && echo base > /opt/base
FROM base AS deps
COPY src/a /src/a
RUN cat /src/a/* | wc -c > /opt/deps
FROM base AS assets
COPY src/b /src/b
RUN ls /src/b | wc -l > /opt/assets
FROM base AS tools
RUN echo tools > /opt/tools
FROM bench/bb:1
COPY --from=deps /opt/deps /opt/
COPY --from=assets /opt/assets /opt/
COPY --from=tools /opt/tools /opt/
COPY src /app/src
CMD ["cat", "/opt/deps"]
EOF
mkdir -p "$work/ctxonly"
cp -r "$big/src" "$work/ctxonly/"
printf 'FROM bench/bb:1\n' >"$work/ctxonly/Dockerfile"
echo "-- cold"
hyperfine -N --style basic --runs 3 \
  -n "berth build" "$berth build --network none --no-cache -q $big" \
  -n "docker -> berth daemon" "docker -H unix://$bsock build --network none --no-cache -q $big" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none --no-cache -q $big" \
  -n "buildah bud" "$bud --network none --no-cache -q $big"
echo "-- cached"
$hf --runs 5 \
  -n "berth build" "$berth build --network none -q $big" \
  -n "docker -> berth daemon" "docker -H unix://$bsock build --network none -q $big" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none -q $big" \
  -n "buildah bud" "$bud --network none --layers -q $big"
echo "-- one source file changed (each run changes it again)"
hyperfine -N --style basic --runs 3 \
  --prepare "sh -c 'head -c 10000 /dev/urandom > $big/src/b/f7'" \
  -n "berth build" "$berth build --network none -q $big" \
  -n "docker -> berth daemon" "docker -H unix://$bsock build --network none -q $big" \
  -n "docker -> dockerd" "docker -H unix://$dsock build --network none -q $big" \
  -n "buildah bud" "$bud --network none --layers -q $big"
echo "-- context transfer only (FROM alone, 50 MB context)"
$hf --runs 3 \
  -n "docker -> berth daemon" "docker -H unix://$bsock build -q $work/ctxonly" \
  -n "docker -> dockerd" "docker -H unix://$dsock build -q $work/ctxonly"
$bah rmi -a -f >/dev/null 2>&1 || true
rm -rf "$work" 2>/dev/null || true
