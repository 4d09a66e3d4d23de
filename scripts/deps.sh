#!/usr/bin/env bash
# Installs the Debian packages berth's build and tests need, when missing.
# As root it runs apt-get; otherwise it only says what is missing.
set -euo pipefail

need=()
have_static_busybox() {
	local bb
	bb=$(command -v busybox 2>/dev/null) || return 1
	! ldd "$bb" >/dev/null 2>&1
}
have_static_busybox || need+=(busybox-static)
command -v ps >/dev/null || need+=(procps)
command -v cc >/dev/null || need+=(gcc)
# berth-init (--init) is linked static: libc.a
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v hyperfine >/dev/null || need+=(hyperfine)
if [ "${BERTH_TEST_PODMAN:-1}" = 1 ]; then
	command -v podman >/dev/null || need+=(podman)
fi
command -v tar >/dev/null || need+=(tar)
# the builder's tests make contexts in every compression docker accepts
command -v bzip2 >/dev/null || need+=(bzip2)
command -v xz >/dev/null || need+=(xz-utils)
command -v gzip >/dev/null || need+=(gzip)
# bridge networking: nftables rules, ip/nsenter in the network tests
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
# NetworkPolicies between pods of one bridge: modprobe br_netfilter where
# it is a module not loaded yet
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
	command -v modprobe >/dev/null || [ -x /sbin/modprobe ] || need+=(kmod)
fi
command -v python3 >/dev/null || need+=(python3)
# the etcd client crate compiles etcd's protocol files at build time
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
# image and registry interop: the reference registry, skopeo, htpasswd (bcrypt)
if [ "${BERTH_TEST_INTEROP:-1}" = 1 ]; then
	command -v docker-registry >/dev/null || need+=(docker-registry)
	command -v skopeo >/dev/null || need+=(skopeo)
	command -v htpasswd >/dev/null || need+=(apache2-utils)
	# the Docker API tests: docker-py, the docker CLI (Debian ships it in
	# docker.io; its dockerd is never started, see below), docker-compose v1
	python3 -c 'import docker' 2>/dev/null || need+=(python3-docker)
	command -v docker >/dev/null || need+=(docker.io)
	command -v docker-compose >/dev/null || need+=(docker-compose)
	# the cluster store's etcd backend is tested against Debian's etcd 3.4
	command -v etcd >/dev/null || need+=(etcd-server)
	command -v etcdctl >/dev/null || need+=(etcd-client)
fi

# the Python kubernetes client (PyPI) in its own directory (it needs
# urllib3 2, which breaks Debian's docker-py 5); the tests set PYTHONPATH
kube_py=${BERTH_KUBE_PYTHONPATH:-/opt/berth-python-kubernetes}
if [ "${BERTH_TEST_INTEROP:-1}" = 1 ] && ! PYTHONPATH=$kube_py python3 -c 'import kubernetes' 2>/dev/null; then
	if [ "$(id -u)" = 0 ] && python3 -m pip --version >/dev/null 2>&1; then
		python3 -m pip install -q --target "$kube_py" kubernetes==37.0.2
	else
		need+=(python3-pip)
	fi
fi

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages (install as root): ${need[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# docker.io brings dockerd, which its package would start (making docker0
# in 172.17/16): no service starts while these packages install
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
	apt-get update >/dev/null
	apt-get install -y --no-install-recommends "${need[@]}"
}
