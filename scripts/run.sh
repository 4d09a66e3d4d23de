#!/usr/bin/env bash
# Builds berth and shows its main job from nothing but this checkout: a
# busybox image built offline and imported, pushed to berth's own registry,
# pulled back, and run as a container (namespaces, cgroups, seccomp, a
# copy-on-write root filesystem over the image's layers), then a web server
# on the default bridge with a published port, a volume and an exec. Run as root.
# State goes to target/demo-root (BERTH_ROOT to change it).
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH_TEST_PODMAN=0 BERTH_TEST_INTEROP=0 scripts/deps.sh
cargo build --release --quiet
target=${CARGO_TARGET_DIR:-$PWD/target}
berth=$target/release/berth
export BERTH_ROOT=${BERTH_ROOT:-$PWD/target/demo-root}
export BERTH_CONFIG=$BERTH_ROOT/daemon.json DOCKER_CONFIG=$BERTH_ROOT/docker
mkdir -p "$BERTH_ROOT"

rootfs=$target/demo-rootfs
if [ ! -x "$rootfs/bin/busybox" ]; then
	rm -rf "$rootfs"
	scripts/mk-busybox-rootfs.sh "$rootfs" >/dev/null
fi
echo "== import a busybox root filesystem as an image"
tar -C "$rootfs" -c . | "$berth" import -c 'CMD ["sh"]' - demo/busybox:latest
"$berth" images

echo "== berth build: a two-stage Dockerfile, then again from the cache"
ctx=$BERTH_ROOT/demo-build
mkdir -p "$ctx"
printf 'hello from a berth build\n' >"$ctx/greet.txt"
printf '%s\n' 'FROM demo/busybox AS build' 'WORKDIR /src' 'COPY greet.txt .' \
	'RUN tr a-z A-Z < greet.txt > out.txt' 'FROM demo/busybox' \
	'COPY --from=build /src/out.txt /' 'CMD ["cat", "/out.txt"]' >"$ctx/Dockerfile"
"$berth" build --network none -t demo/greet:1 "$ctx"
"$berth" build --network none -q -t demo/greet:1 "$ctx"
"$berth" run --rm --network none demo/greet:1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== berth registry serve on 127.0.0.1:$port; push, remove, pull"
"$berth" registry serve --addr "127.0.0.1:$port" &
registry=$!
trap 'kill $registry 2>/dev/null; wait $registry 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
name=127.0.0.1:$port/demo/busybox:latest
"$berth" tag demo/busybox:latest "$name"
"$berth" push "$name"
"$berth" rmi "$name" demo/busybox:latest
"$berth" pull "$name"

echo "== berth run $name"
"$berth" run --rm --network none "$name" sh -c \
	"echo \"hello from $(printf '$(hostname)'): I am pid \$\$, and I see \$(ls /proc | grep -c '^[0-9]') processes\"; \
	grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
	echo changed > /etc/motd && echo 'my changes stay in my copy-on-write layer'"
"$berth" run --rm --network none "$name" sh -c 'test -s /etc/motd || echo "the next container starts from the untouched image"'

echo "== a web server on the default bridge (berth0, 198.18.0.0/24), its port published, a named volume"
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$berth" rm -f demo-web >/dev/null 2>&1 || true
"$berth" run --rm -v demo-site:/site "$name" sh -c 'echo "hello over the bridge" > /site/index.html'
"$berth" run -d --name demo-web -p "127.0.0.1:$web_port:80" -v demo-site:/site "$name" httpd -f -p 80 -h /site >/dev/null
"$berth" ps
for _ in $(seq 50); do
	python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$web_port/').read().decode(), end='')" 2>/dev/null && break
	sleep 0.1
done
"$berth" exec demo-web sh -c 'echo "exec: inside demo-web, eth0 has $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
"$berth" rm -f -v demo-web >/dev/null
"$berth" volume rm demo-site >/dev/null

echo "== berth server: the Kubernetes API, scheduler, controllers and this host's node agent, with kubectl"
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$berth" server --https-port "$api_port" --node-ip 127.0.0.1 &
server=$!
trap 'kill $registry $server 2>/dev/null; wait $registry $server 2>/dev/null || true' EXIT
export KUBECONFIG=$BERTH_ROOT/server/admin.kubeconfig
for _ in $(seq 100); do
	[ -s "$KUBECONFIG" ] && python3 -c "import ssl,urllib.request; urllib.request.urlopen('https://127.0.0.1:$api_port/readyz', context=ssl._create_unverified_context())" 2>/dev/null && break
	sleep 0.1
done
if command -v kubectl >/dev/null; then
	kubectl wait --for=condition=Ready node --all --timeout=30s
	kubectl get nodes -o wide
	echo "== SparklingSoDA: the same analysis environment for each of three members (examples/sparklingsoda.yaml)"
	"$berth" tag "$name" demo/busybox:latest # the example's image, already on this node
	kubectl apply -f examples/sparklingsoda.yaml
	kubectl -n sparklingsoda rollout status statefulset/workspace --timeout=120s
	kubectl -n sparklingsoda get pods,pvc,services -o wide
	echo "-- members find each other by name: the cluster DNS (198.19.0.10), the headless Service \`workspace\` and the Service \`results\`"
	kubectl -n sparklingsoda exec workspace-0 -- nslookup results.sparklingsoda.svc.cluster.local
	kubectl -n sparklingsoda exec workspace-0 -- nslookup workspace-1.workspace.sparklingsoda.svc.cluster.local
	echo "-- workspace-0 asks workspace-1 by its stable name, then the Service \`results\` a few times (spread over the members)"
	get='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5'
	kubectl -n sparklingsoda exec workspace-0 -- sh -c "$get workspace-1.workspace.sparklingsoda.svc.cluster.local 8080 | tail -n 1"
	kubectl -n sparklingsoda exec workspace-0 -- sh -c "for i in 1 2 3 4 5 6; do $get results 80 | tail -n 1; done"
	cluster_ip=$(kubectl -n sparklingsoda get service results -o jsonpath='{.spec.clusterIP}')
	node_port=$(kubectl -n sparklingsoda get service results -o jsonpath='{.spec.ports[0].nodePort}')
	echo "-- from this host: results' ClusterIP ($cluster_ip:80) and its node port (127.0.0.1:$node_port)"
	for url in "http://$cluster_ip/" "http://127.0.0.1:$node_port/"; do
		python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')" "$url"
	done
	echo "-- workspace-1 reads the project's shared data and saves its work in its own volume"
	kubectl -n sparklingsoda exec workspace-1 -- sh -c 'head -3 /data/sales.csv; echo "north grows" > /work/result.txt'
	echo "-- workspace-1's pod is deleted; its StatefulSet brings it back with its work intact"
	kubectl -n sparklingsoda delete pod workspace-1
	kubectl -n sparklingsoda wait --for=condition=Ready pod/workspace-1 --timeout=60s
	kubectl -n sparklingsoda exec workspace-1 -- cat /work/result.txt
	kubectl -n sparklingsoda logs workspace-0 -c seed
	kubectl delete namespace sparklingsoda --timeout=120s
else
	echo "kubectl is not installed: the API is at https://127.0.0.1:$api_port (kubeconfig $KUBECONFIG)"
fi
