use super::*;
use serde_json::json;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn pod(ns: &str, name: &str, node: &str, addr: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
            "ports": [{"name": "http", "containerPort": 8080},
                      {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]},
        "status": {"phase": "Running", "podIP": addr, "podIPs": [{"ip": addr}]},
    }))
    .unwrap()
}

fn ns(name: &str, labels: serde_json::Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn policy(ns: &str, spec: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(json!({"metadata": {"namespace": ns, "name": "p"}, "spec": spec}))
        .unwrap()
}

fn world() -> (Vec<Pod>, Vec<Namespace>) {
    (
        vec![
            pod("a", "web", "n1", "198.18.0.2", json!({"app": "web"})),
            pod("a", "client", "n1", "198.18.0.3", json!({"app": "client"})),
            pod("b", "other", "n2", "198.18.1.4", json!({"app": "client"})),
            pod("b", "db", "n2", "198.18.1.5", json!({"app": "db"})),
        ],
        vec![
            ns("a", json!({"kubernetes.io/metadata.name": "a"})),
            ns(
                "b",
                json!({"kubernetes.io/metadata.name": "b", "team": "x"}),
            ),
        ],
    )
}

fn single(a: &str) -> Vec<AddrRange> {
    vec![(ip(a), ip(a))]
}

fn tcp(first: u16, last: u16) -> PortMatch {
    PortMatch {
        protocol: Protocol::Tcp,
        ports: Some((first, last)),
    }
}

#[test]
fn unselected_pods_are_open_and_only_this_nodes_pods_appear() {
    let (pods, nss) = world();
    assert!(build::<NetworkPolicy, _, _>(&[], &pods, &nss, "n1").is_empty());
    // a policy in namespace b selects pods of node n2 only
    let pol = policy("b", json!({"podSelector": {}}));
    assert!(build(std::slice::from_ref(&pol), &pods, &nss, "n1").is_empty());
    assert_eq!(
        build(&[pol], &pods, &nss, "n2")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![ip("198.18.1.4"), ip("198.18.1.5")]
    );
}

#[test]
fn default_deny_and_allow_by_pod_selector() {
    let (pods, nss) = world();
    let deny = policy("a", json!({"podSelector": {}}));
    let allow = policy(
        "a",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                            "ports": [{"port": 80}, {"port": "http"}, {"port": "missing"}]}]}),
    );
    let p = build(&[deny, allow], &pods, &nss, "n1");
    let web = &p[&ip("198.18.0.2")];
    assert_eq!(web.name, "a/web");
    // a's client only (b's client is in another namespace); 80 and the named port
    assert_eq!(
        web.ingress.as_deref().unwrap(),
        &[Rule {
            peers: Some(single("198.18.0.3")),
            ports: Some(vec![tcp(80, 80), tcp(8080, 8080)]),
        }]
    );
    assert_eq!(web.egress, None, "no egress rules: not isolated for egress");
    // the client is selected by the default deny only
    assert_eq!(p[&ip("198.18.0.3")].ingress.as_deref(), Some(&[][..]));
}

#[test]
fn namespace_selectors_ip_blocks_and_policy_types() {
    let (pods, nss) = world();
    let pol = policy(
        "a",
        json!({"podSelector": {"matchLabels": {"app": "client"}},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"namespaceSelector": {"matchLabels": {"team": "x"}},
                     "podSelector": {"matchLabels": {"app": "db"}}}]},
            {"to": [{"ipBlock": {"cidr": "198.19.0.0/24", "except": ["198.19.0.128/25"]}}],
             "ports": [{"protocol": "UDP", "port": 53, "endPort": 60}]},
            {"to": [{"namespaceSelector": {}}], "ports": [{"port": "dns", "protocol": "UDP"}]},
        ]}),
    );
    let p = build(&[pol], &pods, &nss, "n1");
    let client = &p[&ip("198.18.0.3")];
    assert_eq!(client.ingress, None, "policyTypes without Ingress");
    let eg = client.egress.as_deref().unwrap();
    assert_eq!(
        eg[0],
        Rule {
            peers: Some(single("198.18.1.5")),
            ports: None
        }
    );
    assert_eq!(
        eg[1],
        Rule {
            peers: Some(vec![(ip("198.19.0.0"), ip("198.19.0.127"))]),
            ports: Some(vec![PortMatch {
                protocol: Protocol::Udp,
                ports: Some((53, 60))
            }]),
        }
    );
    // the named UDP port resolved on each peer pod of every namespace
    assert_eq!(eg.len(), 2 + 4);
    assert!(eg[2..].iter().all(|r| r.ports
        == Some(vec![PortMatch {
            protocol: Protocol::Udp,
            ports: Some((5353, 5353))
        }])));
}

#[test]
fn empty_from_matches_everyone_and_unknown_namespaces_have_their_name_label() {
    let (mut pods, nss) = world();
    pods.push(pod(
        "c",
        "new",
        "n2",
        "198.18.2.9",
        json!({"app": "client"}),
    ));
    let pol = policy(
        "a",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": []},
                           {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "c"}}}]}]}),
    );
    let p = build(&[pol], &pods, &nss, "n1");
    let ing = p[&ip("198.18.0.2")].ingress.as_deref().unwrap();
    assert_eq!(ing[0], Rule::default());
    assert_eq!(ing[1].peers, Some(single("198.18.2.9")));
}

#[test]
fn host_network_and_finished_pods_are_no_peers() {
    let (mut pods, nss) = world();
    pods[2].spec.as_mut().unwrap().host_network = Some(true);
    pods[3].status.as_mut().unwrap().phase = Some("Succeeded".into());
    let pol = policy(
        "a",
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
    );
    let p = build(&[pol], &pods, &nss, "n1");
    let ing = p[&ip("198.18.0.2")].ingress.as_deref().unwrap();
    assert_eq!(
        ing[0].peers,
        Some(vec![
            (ip("198.18.0.2"), ip("198.18.0.2")),
            (ip("198.18.0.3"), ip("198.18.0.3"))
        ])
    );
}
