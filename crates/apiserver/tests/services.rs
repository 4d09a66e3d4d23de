//! Service cluster IP and node port allocation through the API, as
//! kube-apiserver 1.33 answers: dynamic addresses from the upper band,
//! requests honoured, kube's errors for conflicts and ranges, release on
//! delete and type change, headless and ExternalName Services, dryRun,
//! concurrent creates, the `kubernetes` Service and the repair at start.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use berth_apiserver::Api;
use berth_apiserver::auth::authn::UserInfo;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Plane {
    _dir: tempfile::TempDir,
    plane: berth_apiserver::ControlPlane,
}

async fn start(store: Arc<dyn berth_kv::Store>) -> Plane {
    start_with(store, Default::default(), Default::default()).await
}

async fn start_with(
    store: Arc<dyn berth_kv::Store>,
    cidr: berth_apiserver::alloc::ServiceCidr,
    node_ports: berth_apiserver::alloc::PortRange,
) -> Plane {
    let dir = tempfile::tempdir().unwrap();
    let plane = berth_apiserver::start(
        store,
        berth_apiserver::Config {
            dir: dir.path().join("server"),
            bind: "127.0.0.1:0".parse().unwrap(),
            tls_sans: Vec::new(),
            kubeconfig: None,
            token_file: None,
            compaction_interval: None,
            service_cluster_ip_range: cidr,
            service_node_port_range: node_ports,
            advertise_address: None,
        },
    )
    .await
    .unwrap();
    Plane { _dir: dir, plane }
}

fn memory() -> Arc<dyn berth_kv::Store> {
    Arc::new(berth_kv::memory::MemoryStore::new())
}

async fn call(api: &Arc<Api>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let user = UserInfo {
        username: "system:admin".to_owned(),
        groups: vec![
            "system:masters".to_owned(),
            "system:authenticated".to_owned(),
        ],
        ..Default::default()
    };
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let response = berth_apiserver::server::in_process(api.clone(), user)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const SERVICES: &str = "/api/v1/namespaces/default/services";

fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

async fn create(api: &Arc<Api>, name: &str, spec: Value) -> (u16, Value) {
    call(api, "POST", SERVICES, Some(svc(name, spec))).await
}

async fn created(api: &Arc<Api>, name: &str, spec: Value) -> Value {
    let (code, body) = create(api, name, spec).await;
    assert_eq!(code, 201, "{body}");
    body
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("")
}

async fn ip_addresses(api: &Arc<Api>) -> BTreeSet<String> {
    let (code, list) = call(api, "GET", "/apis/networking.k8s.io/v1/ipaddresses", None).await;
    assert_eq!(code, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn node_port_taken(api: &Arc<Api>, port: u16) -> bool {
    let key = berth_apiserver::alloc::port_key(port);
    api.objects.store().get(&key, 0).await.unwrap().1.is_some()
}

fn cluster_ip(body: &Value) -> Ipv4Addr {
    body["spec"]["clusterIP"].as_str().unwrap().parse().unwrap()
}

fn node_port(body: &Value, i: usize) -> u16 {
    u16::try_from(body["spec"]["ports"][i]["nodePort"].as_i64().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ips_are_allocated_honoured_and_refused() {
    let p = start(memory()).await;
    let api = &p.plane.api;

    let web = created(
        api,
        "web",
        json!({"ports": [{"port": 80, "targetPort": 8080}]}),
    )
    .await;
    let ip = cluster_ip(&web);
    // The upper band first: 198.19.1.1 – 198.19.15.254.
    assert!(
        ip >= Ipv4Addr::new(198, 19, 1, 1) && ip <= Ipv4Addr::new(198, 19, 15, 254),
        "{ip}"
    );
    let spec = &web["spec"];
    assert_eq!(spec["clusterIPs"], json!([ip.to_string()]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["type"], "ClusterIP");
    assert!(spec.get("externalTrafficPolicy").is_none());

    // Its IPAddress names the Service.
    let (code, addr) = call(
        api,
        "GET",
        &format!("/apis/networking.k8s.io/v1/ipaddresses/{ip}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{addr}");
    assert_eq!(
        addr["spec"]["parentRef"],
        json!({"group": "", "resource": "services", "namespace": "default", "name": "web"})
    );
    assert_eq!(
        addr["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"],
        "ipallocator.k8s.io"
    );

    // A request is honoured.
    let fixed = created(
        api,
        "fixed",
        json!({"clusterIP": "198.19.0.10", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(fixed["spec"]["clusterIP"], "198.19.0.10");
    assert_eq!(fixed["spec"]["clusterIPs"], json!(["198.19.0.10"]));

    let before = ip_addresses(api).await;
    // Taken, out of range, and the kubernetes Service's own.
    let (code, body) = create(
        api,
        "dup",
        json!({"clusterIP": "198.19.0.10", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: []string{\"198.19.0.10\"}: failed to allocate IP 198.19.0.10: provided IP is already allocated"
    );
    let (code, body) = create(
        api,
        "out",
        json!({"clusterIP": "198.18.0.5", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"out\" is invalid: spec.clusterIPs: Invalid value: []string{\"198.18.0.5\"}: failed to allocate IP 198.18.0.5: the provided IP (198.18.0.5) is not in the valid range. The range of valid IPs is 198.19.0.0/20"
    );
    let (code, body) = create(
        api,
        "first",
        json!({"clusterIP": "198.19.0.1", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        message(&body).ends_with("provided IP is already allocated"),
        "{body}"
    );
    // A refused create that got past allocation (name taken) releases it.
    let (code, _) = create(
        api,
        "web",
        json!({"clusterIP": "198.19.0.11", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(ip_addresses(api).await, before);

    // A PUT without the address keeps it; changing it is refused.
    let (_, mut current) = call(api, "GET", &format!("{SERVICES}/web"), None).await;
    current["spec"].as_object_mut().unwrap().remove("clusterIP");
    current["spec"]
        .as_object_mut()
        .unwrap()
        .remove("clusterIPs");
    let (code, put) = call(api, "PUT", &format!("{SERVICES}/web"), Some(current)).await;
    assert_eq!(code, 200, "{put}");
    assert_eq!(cluster_ip(&put), ip);
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/web"),
        Some(json!({"spec": {"clusterIP": "198.19.0.77", "clusterIPs": ["198.19.0.77"]}})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: \"198.19.0.77\": may not change once set"
    );
    assert_eq!(ip_addresses(api).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_releases_for_reuse() {
    let p = start(memory()).await;
    let api = &p.plane.api;
    created(
        api,
        "a",
        json!({"type": "NodePort", "clusterIP": "198.19.0.20", "ports": [{"port": 80, "nodePort": 30080}]}),
    )
    .await;
    assert!(ip_addresses(api).await.contains("198.19.0.20"));
    assert!(node_port_taken(api, 30080).await);
    let (code, _) = call(api, "DELETE", &format!("{SERVICES}/a"), None).await;
    assert_eq!(code, 200);
    assert!(!ip_addresses(api).await.contains("198.19.0.20"));
    assert!(!node_port_taken(api, 30080).await);
    let b = created(
        api,
        "b",
        json!({"type": "NodePort", "clusterIP": "198.19.0.20", "ports": [{"port": 80, "nodePort": 30080}]}),
    )
    .await;
    assert_eq!(b["spec"]["clusterIP"], "198.19.0.20");
    assert_eq!(node_port(&b, 0), 30080);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_follow_kube() {
    let p = start(memory()).await;
    let api = &p.plane.api;

    let np = created(
        api,
        "np",
        json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}),
    )
    .await;
    let dynamic = node_port(&np, 0);
    // The upper band first: 30086 – 32767.
    assert!((30086..=32767).contains(&dynamic), "{dynamic}");
    assert_eq!(node_port(&np, 1), 30443);
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert!(np["spec"].get("allocateLoadBalancerNodePorts").is_none());
    assert!(node_port_taken(api, dynamic).await && node_port_taken(api, 30443).await);

    // One port number over two protocols shares its node port.
    let dns = created(
        api,
        "dns",
        json!({"type": "NodePort", "ports": [
            {"name": "tcp", "port": 53, "protocol": "TCP"},
            {"name": "udp", "port": 53, "protocol": "UDP"}]}),
    )
    .await;
    assert_eq!(node_port(&dns, 0), node_port(&dns, 1));

    let (code, body) = create(
        api,
        "taken",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30443}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"taken\" is invalid: spec.ports[0].nodePort: Invalid value: 30443: provided port is already allocated"
    );
    let (code, body) = create(
        api,
        "low",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 29999}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    let (code, body) = create(
        api,
        "twice",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30090}, {"port": 81, "nodePort": 30090}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"twice\" is invalid: spec.ports[1].nodePort: Duplicate value: 30090"
    );
    let (code, body) = create(
        api,
        "plain",
        json!({"ports": [{"port": 80, "nodePort": 30091}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        message(&body),
        "Service \"plain\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    );
    assert!(!node_port_taken(api, 30090).await && !node_port_taken(api, 30091).await);

    // LoadBalancer: node ports by default, a health check port for Local.
    let lb = created(
        api,
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    let hc = u16::try_from(lb["spec"]["healthCheckNodePort"].as_i64().unwrap()).unwrap();
    assert!(node_port_taken(api, hc).await);
    assert_ne!(hc, node_port(&lb, 0));
    let quiet = created(
        api,
        "quiet",
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    )
    .await;
    assert!(quiet["spec"]["ports"][0].get("nodePort").is_none());

    // NodePort → ClusterIP releases; ClusterIP → NodePort allocates.
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/np"),
        Some(json!({"spec": {"type": "ClusterIP"}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["spec"]["ports"][0].get("nodePort").is_none());
    assert!(body["spec"].get("externalTrafficPolicy").is_none());
    assert_eq!(cluster_ip(&body), cluster_ip(&np));
    assert!(!node_port_taken(api, dynamic).await && !node_port_taken(api, 30443).await);
    created(
        api,
        "reuse",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30443}]}),
    )
    .await;
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/np"),
        Some(json!({"spec": {"type": "NodePort"}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let again = node_port(&body, 0);
    assert!(node_port_taken(api, again).await);
    assert_ne!(node_port(&body, 0), node_port(&body, 1));
    // Local → Cluster frees the health check port.
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/lb"),
        Some(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["spec"].get("healthCheckNodePort").is_none());
    assert!(!node_port_taken(api, hc).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_and_external_name_get_no_address() {
    let p = start(memory()).await;
    let api = &p.plane.api;
    let before = ip_addresses(api).await;
    let headless = created(
        api,
        "db",
        json!({"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}),
    )
    .await;
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4"]));
    // Headless without a selector: kube's RequireDualStack default.
    let bare = created(api, "bare", json!({"clusterIP": "None"})).await;
    assert_eq!(bare["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(bare["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

    let ext = created(
        api,
        "ext",
        json!({"type": "ExternalName", "externalName": "example.com"}),
    )
    .await;
    let spec = ext["spec"].as_object().unwrap();
    for field in [
        "clusterIP",
        "clusterIPs",
        "ipFamilies",
        "ipFamilyPolicy",
        "internalTrafficPolicy",
    ] {
        assert!(!spec.contains_key(field), "{field}: {ext}");
    }
    assert_eq!(ip_addresses(api).await, before);

    // ExternalName → ClusterIP allocates; back releases.
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/ext"),
        Some(json!({"spec": {"type": "ClusterIP", "externalName": null, "ports": [{"port": 80}]}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let ip = cluster_ip(&body);
    assert!(ip_addresses(api).await.contains(&ip.to_string()));
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/ext"),
        Some(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["spec"].get("clusterIP").is_none(), "{body}");
    assert_eq!(ip_addresses(api).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_allocates_nothing() {
    let p = start(memory()).await;
    let api = &p.plane.api;
    let before = ip_addresses(api).await;
    let (code, body) = call(
        api,
        "POST",
        &format!("{SERVICES}?dryRun=All"),
        Some(svc(
            "dry",
            json!({"type": "NodePort", "ports": [{"port": 80}]}),
        )),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // kube's dry-run allocator shows the range's network address.
    assert_eq!(body["spec"]["clusterIP"], "198.19.0.0");
    let port = node_port(&body, 0);
    assert!(!node_port_taken(api, port).await);
    let (code, body) = call(
        api,
        "POST",
        &format!("{SERVICES}?dryRun=All"),
        Some(svc(
            "dry",
            json!({"clusterIP": "198.19.0.30", "ports": [{"port": 80}]}),
        )),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["clusterIP"], "198.19.0.30");
    let (code, body) = call(
        api,
        "POST",
        &format!("{SERVICES}?dryRun=All"),
        Some(svc(
            "dry",
            json!({"clusterIP": "198.18.0.30", "ports": [{"port": 80}]}),
        )),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(ip_addresses(api).await, before);
    let (code, _) = call(api, "GET", &format!("{SERVICES}/dry"), None).await;
    assert_eq!(code, 404);

    // A dry-run type change keeps what is held.
    let real = created(
        api,
        "real",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .await;
    let held = node_port(&real, 0);
    let (code, body) = call(
        api,
        "PATCH",
        &format!("{SERVICES}/real?dryRun=All"),
        Some(json!({"spec": {"type": "ClusterIP"}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(node_port_taken(api, held).await);
    let (_, real) = call(api, "GET", &format!("{SERVICES}/real"), None).await;
    assert_eq!(node_port(&real, 0), held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_addresses() {
    let p = start(memory()).await;
    let api = p.plane.api.clone();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let (code, body) = create(
                &api,
                &format!("s{i}"),
                json!({"type": "NodePort", "ports": [{"port": 80}]}),
            )
            .await;
            assert_eq!(code, 201, "{body}");
            (cluster_ip(&body), node_port(&body, 0))
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for t in tasks {
        let (ip, port) = t.await.unwrap();
        ips.insert(ip);
        ports.insert(port);
    }
    assert_eq!(ips.len(), 50);
    assert_eq!(ports.len(), 50);
    // One IPAddress each, plus the kubernetes Service's.
    assert_eq!(ip_addresses(&api).await.len(), 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_service_and_its_endpoints() {
    let p = start(memory()).await;
    let api = &p.plane.api;
    let port = p.plane.addr.port();
    let (code, k) = call(api, "GET", &format!("{SERVICES}/kubernetes"), None).await;
    assert_eq!(code, 200, "{k}");
    assert_eq!(k["spec"]["clusterIP"], "198.19.0.1");
    assert_eq!(k["spec"]["type"], "ClusterIP");
    assert_eq!(
        k["spec"]["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}])
    );
    assert_eq!(k["metadata"]["labels"]["component"], "apiserver");
    let (code, ep) = call(
        api,
        "GET",
        "/api/v1/namespaces/default/endpoints/kubernetes",
        None,
    )
    .await;
    assert_eq!(code, 200, "{ep}");
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}])
    );
    let (code, slice) = call(
        api,
        "GET",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes",
        None,
    )
    .await;
    assert_eq!(code, 200, "{slice}");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "kubernetes"
    );
    assert_eq!(slice["endpoints"][0]["addresses"], json!(["127.0.0.1"]));
    assert_eq!(slice["ports"][0]["port"], json!(port));
    let (code, cidr) = call(
        api,
        "GET",
        "/apis/networking.k8s.io/v1/servicecidrs/kubernetes",
        None,
    )
    .await;
    assert_eq!(code, 200, "{cidr}");
    assert_eq!(cidr["spec"]["cidrs"], json!(["198.19.0.0/20"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_repairs_allocations() {
    let store = memory();
    let first = start(store.clone()).await;
    let api = &first.plane.api;
    let a = created(
        api,
        "a",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .await;
    let a_ip = cluster_ip(&a);
    let a_port = node_port(&a, 0);
    // A crash lost a's records, and left records of Services never
    // written: one long ago, one just now (a create in flight elsewhere).
    store
        .delete(&berth_apiserver::alloc::ip_key(a_ip), None)
        .await
        .unwrap();
    store
        .delete(&berth_apiserver::alloc::port_key(a_port), None)
        .await
        .unwrap();
    let ghost = berth_apiserver::alloc::Owner {
        namespace: "default".to_owned(),
        name: "ghost".to_owned(),
    };
    let mut old = berth_apiserver::alloc::ip_address_object(Ipv4Addr::new(198, 19, 9, 9), &ghost);
    old["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
    store
        .create(
            &berth_apiserver::alloc::ip_key(Ipv4Addr::new(198, 19, 9, 9)),
            serde_json::to_vec(&old).unwrap().into(),
            None,
        )
        .await
        .unwrap();
    let young = Ipv4Addr::new(198, 19, 9, 10);
    assert!(
        berth_apiserver::alloc::take_ip(api, young, &ghost)
            .await
            .unwrap()
    );
    store
        .create(
            &berth_apiserver::alloc::port_key(31999),
            serde_json::to_vec(&json!({"namespace": "default", "name": "ghost", "created": 0}))
                .unwrap()
                .into(),
            None,
        )
        .await
        .unwrap();
    drop(first);

    let second = start(store.clone()).await;
    let api = &second.plane.api;
    let ips = ip_addresses(api).await;
    assert!(ips.contains(&a_ip.to_string()), "{ips:?}");
    assert!(!ips.contains("198.19.9.9"), "{ips:?}");
    assert!(ips.contains("198.19.9.10"), "{ips:?}");
    assert!(node_port_taken(api, a_port).await);
    assert!(!node_port_taken(api, 31999).await);
    // The recorded address is a's again: nobody else gets it.
    let (code, body) = create(
        api,
        "b",
        json!({"clusterIP": a_ip.to_string(), "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let (_, list) = call(api, "GET", SERVICES, None).await;
    let kubernetes = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metadata"]["name"] == "kubernetes")
        .count();
    assert_eq!(kubernetes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_servers_on_one_store_never_share_a_value() {
    let store = memory();
    let one = start(store.clone()).await;
    let two = start(store.clone()).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let api = if i % 2 == 0 {
            one.plane.api.clone()
        } else {
            two.plane.api.clone()
        };
        tasks.push(tokio::spawn(async move {
            let (code, body) = create(
                &api,
                &format!("s{i}"),
                json!({"type": "NodePort", "ports": [{"port": 80}]}),
            )
            .await;
            assert_eq!(code, 201, "{body}");
            (cluster_ip(&body), node_port(&body, 0))
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for t in tasks {
        let (ip, port) = t.await.unwrap();
        ips.insert(ip);
        ports.insert(port);
    }
    assert_eq!((ips.len(), ports.len()), (40, 40));
    // Both see every allocation; one kubernetes Service.
    assert_eq!(ip_addresses(&one.plane.api).await.len(), 41);
    assert_eq!(ip_addresses(&two.plane.api).await.len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_ranges_are_used_and_named_in_errors() {
    let p = start_with(
        memory(),
        "198.18.128.0/28".parse().unwrap(),
        "31000-31002".parse().unwrap(),
    )
    .await;
    let api = &p.plane.api;
    let (_, k) = call(api, "GET", &format!("{SERVICES}/kubernetes"), None).await;
    assert_eq!(k["spec"]["clusterIP"], "198.18.128.1");
    let (code, body) = create(
        api,
        "out",
        json!({"clusterIP": "198.19.0.5", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        message(&body).ends_with("the provided IP (198.19.0.5) is not in the valid range. The range of valid IPs is 198.18.128.0/28"),
        "{body}"
    );
    // 13 addresses left (a /28 has no static band); then the range is full.
    for i in 0..13 {
        let s = created(api, &format!("s{i}"), json!({"ports": [{"port": 80}]})).await;
        let ip = cluster_ip(&s);
        assert!(
            ip > Ipv4Addr::new(198, 18, 128, 1) && ip < Ipv4Addr::new(198, 18, 128, 15),
            "{ip}"
        );
    }
    let (code, body) = create(api, "full", json!({"ports": [{"port": 80}]})).await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        message(&body),
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    // Node ports: three, then full.
    let np = created(
        api,
        "np",
        json!({"type": "NodePort", "clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 1}, {"port": 2}, {"port": 3}]}),
    )
    .await;
    let mut got: Vec<u16> = (0..3).map(|i| node_port(&np, i)).collect();
    got.sort_unstable();
    assert_eq!(got, vec![31000, 31001, 31002]);
    let (code, body) = create(
        api,
        "more",
        json!({"type": "NodePort", "clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 1}]}),
    )
    .await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        message(&body),
        "Internal error occurred: failed to allocate a nodePort: range is full"
    );
    let (code, body) = create(
        api,
        "high",
        json!({"type": "NodePort", "clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 1, "nodePort": 30000}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        message(&body).ends_with(
            "provided port is not in the valid range. The range of valid ports is 31000-31002"
        ),
        "{body}"
    );
}
