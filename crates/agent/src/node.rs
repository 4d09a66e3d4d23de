//! The node: what it is (capacity, addresses, system info) registered as
//! a Node object, its conditions, and the Lease it renews every 10 s.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::Config;
use crate::eviction::NodePressure;

/// How often the lease is renewed (the kubelet's default).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The lease's duration (the kubelet's default).
pub const LEASE_SECONDS: i32 = 40;
/// Pods this node runs at most (the kubelet's default).
pub const MAX_PODS: i64 = 110;

/// The host's memory in bytes (`MemTotal`).
pub fn memory_bytes() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// The host's CPUs.
pub fn cpus() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

fn disk_bytes(path: &std::path::Path) -> i64 {
    rustix::fs::statvfs(path)
        .map(|s| (s.f_blocks.saturating_mul(s.f_frsize)) as i64)
        .unwrap_or(0)
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now()),
        last_transition_time: Some(now()),
    }
}

/// The node's conditions as the kubelet reports them under `pressure`.
pub fn conditions(pressure: &NodePressure) -> Vec<NodeCondition> {
    vec![
        if pressure.memory {
            condition(
                "MemoryPressure",
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if pressure.disk {
            condition(
                "DiskPressure",
                "True",
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if pressure.pid {
            condition(
                "PIDPressure",
                "True",
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// The node's images (`status.images`), for the scheduler's ImageLocality.
pub fn images(engine: &berth_engine::Engine) -> Vec<ContainerImage> {
    let Ok(list) = engine.images().list() else {
        return Vec::new();
    };
    list.into_iter()
        .filter(|i| !i.tags.is_empty())
        .map(|i| ContainerImage {
            names: Some(i.tags.clone()),
            size_bytes: Some(i.record.size as i64),
        })
        .collect()
}

/// The Node object this agent registers.
pub fn node_object(cfg: &Config, engine: &berth_engine::Engine) -> Node {
    let mut resources = BTreeMap::new();
    resources.insert("cpu".to_owned(), Quantity(cpus().to_string()));
    resources.insert(
        "memory".to_owned(),
        Quantity(format!("{}Ki", memory_bytes() / 1024)),
    );
    resources.insert("pods".to_owned(), Quantity(MAX_PODS.to_string()));
    resources.insert(
        "ephemeral-storage".to_owned(),
        Quantity(format!("{}Ki", disk_bytes(&cfg.root) / 1024)),
    );
    resources.insert("hugepages-2Mi".to_owned(), Quantity("0".into()));
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), cfg.node_name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), arch().to_owned()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("beta.kubernetes.io/arch".to_owned(), arch().to_owned()),
    ]);
    labels.extend(cfg.labels.clone());
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some(cfg.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_owned(),
                "0".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cfg.pod_cidr.clone(),
            pod_cidrs: cfg.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(conditions(&NodePressure::default())),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: cfg.node_ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: cfg.node_name.clone(),
                },
            ]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: i32::from(cfg.kubelet_port),
                }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: arch().into(),
                boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
                container_runtime_version: format!("berth://{}", env!("CARGO_PKG_VERSION")),
                kernel_version: read_trim("/proc/sys/kernel/osrelease"),
                kube_proxy_version: String::new(),
                kubelet_version: crate::KUBELET_VERSION.into(),
                machine_id: read_trim("/etc/machine-id"),
                operating_system: "linux".into(),
                os_image: os_image(),
                system_uuid: read_trim("/sys/class/dmi/id/product_uuid"),
                ..Default::default()
            }),
            images: Some(images(engine)),
            phase: None,
            ..Default::default()
        }),
    }
}

/// Registers the node (or takes over the existing object, updating its
/// status), as the kubelet's registration does.
pub async fn register(
    client: &kube::Client,
    cfg: &Config,
    engine: &berth_engine::Engine,
) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = node_object(cfg, engine);
    let made = match nodes.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let mut patch = serde_json::json!({"metadata": {"labels": node.metadata.labels}});
            if let Some(spec) = &node.spec
                && spec.pod_cidr.is_some()
            {
                patch["spec"] =
                    serde_json::json!({"podCIDR": spec.pod_cidr, "podCIDRs": spec.pod_cidrs});
            }
            nodes
                .patch(
                    &cfg.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?
        }
        Err(e) => return Err(e),
    };
    let status = serde_json::json!({"status": node.status});
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await?;
    Ok(made)
}

/// Updates the node's conditions' heartbeats and its images.
pub async fn heartbeat(
    client: &kube::Client,
    cfg: &Config,
    engine: &berth_engine::Engine,
    pressure: &NodePressure,
) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let current = nodes.get(&cfg.node_name).await?;
    let old = current
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let conds: Vec<NodeCondition> = conditions(pressure)
        .into_iter()
        .map(|mut c| {
            if let Some(prev) = old.iter().find(|o| o.type_ == c.type_)
                && prev.status == c.status
            {
                c.last_transition_time = prev.last_transition_time.clone();
            }
            c
        })
        .collect();
    let patch = serde_json::json!({"status": {"conditions": conds, "images": images(engine)}});
    nodes
        .patch_status(
            &cfg.node_name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await?;
    Ok(())
}

/// Renews (or creates) the node's Lease in `kube-node-lease`.
pub async fn renew_lease(
    client: &kube::Client,
    cfg: &Config,
    node_uid: Option<&str>,
) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let renew = MicroTime(k8s_openapi::jiff::Timestamp::now());
    match leases.get_opt(&cfg.node_name).await? {
        Some(mut l) => {
            let spec = l.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(renew);
            spec.holder_identity = Some(cfg.node_name.clone());
            spec.lease_duration_seconds = Some(LEASE_SECONDS);
            leases
                .replace(&cfg.node_name, &PostParams::default(), &l)
                .await?;
        }
        None => {
            let l = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some(cfg.node_name.clone()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: node_uid.map(|uid| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: cfg.node_name.clone(),
                            uid: uid.to_owned(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(cfg.node_name.clone()),
                    lease_duration_seconds: Some(LEASE_SECONDS),
                    renew_time: Some(renew),
                    ..Default::default()
                }),
            };
            leases.create(&PostParams::default(), &l).await?;
        }
    }
    Ok(())
}
