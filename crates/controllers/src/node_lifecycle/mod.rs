//! The node lifecycle controller (kube's `node-lifecycle-controller` and
//! `taint-eviction-controller`), acting as `kube-system/node-controller`:
//! watches nodes and their Leases in `kube-node-lease`; a node unheard of
//! for the grace period gets Ready (and the pressures) Unknown; taints
//! follow the conditions; pods on nodes with NoExecute taints they do not
//! tolerate are deleted, at once or after their `tolerationSeconds`.

pub mod eviction;
pub mod health;
pub mod pods;
pub mod taints;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::Notify;

use crate::Clients;
use crate::util::{cache, events};
use eviction::Verdict;
use health::Heard;
use kube::Resource;

/// The ServiceAccount the controller acts as.
pub const ACCOUNT: &str = "node-controller";
/// The namespace of the nodes' Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Timing of the node lifecycle controller (kube's flags of the same
/// names), shortened in tests.
#[derive(Clone, Debug)]
pub struct NodeLifecycleConfig {
    /// `--node-monitor-grace-period`: silence before Unknown (40 s).
    pub grace_period: Duration,
    /// `--node-startup-grace-period`: the same for a node that never
    /// posted Ready (60 s).
    pub startup_grace_period: Duration,
    /// `--node-monitor-period`: how often nodes are checked (5 s).
    pub monitor_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            monitor_period: Duration::from_secs(5),
        }
    }
}

/// Starts the controller; it runs until the process ends.
pub fn spawn(clients: &Clients, config: NodeLifecycleConfig) {
    let client = clients(ACCOUNT);
    tokio::spawn(async move { run(client, config).await });
}

struct Caches {
    nodes: kube::runtime::reflector::Store<Node>,
    leases: kube::runtime::reflector::Store<Lease>,
    pods: kube::runtime::reflector::Store<Pod>,
}

/// What the loop remembers between passes.
#[derive(Default)]
struct State {
    heard: HashMap<String, Heard>,
    /// Pods under NoExecute taints: uid → when first seen so, and the
    /// taints then (a new set restarts the clock).
    scheduled: HashMap<String, (Timestamp, Vec<(String, String)>)>,
}

async fn run(client: kube::Client, config: NodeLifecycleConfig) {
    let wake = Arc::new(Notify::new());
    let caches = Caches {
        nodes: cache::cache(Api::<Node>::all(client.clone()), wake.clone()),
        leases: cache::cache(
            Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
            wake.clone(),
        ),
        pods: cache::cache(Api::<Pod>::all(client.clone()), wake.clone()),
    };
    let limit = Duration::from_secs(10);
    cache::ready(&[&caches.nodes], limit).await;
    cache::ready(&[&caches.leases], limit).await;
    cache::ready(&[&caches.pods], limit).await;
    let recorder = events::reporter(client.clone(), "taint-eviction-controller");
    let node_recorder = events::reporter(client.clone(), "node-controller");
    let mut state = State::default();
    loop {
        let next = pass(
            &client,
            &recorder,
            &node_recorder,
            &caches,
            &config,
            &mut state,
        )
        .await;
        let mut sleep = config.monitor_period;
        if let Some(at) = next {
            let until = at.duration_since(Timestamp::now());
            sleep = sleep.min(
                Duration::try_from(until).unwrap_or(Duration::ZERO) + Duration::from_millis(10),
            );
        }
        cache::wait(&wake, sleep).await;
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// One pass over every node; returns the next scheduled eviction time.
async fn pass(
    client: &kube::Client,
    recorder: &kube::runtime::events::Recorder,
    node_recorder: &kube::runtime::events::Recorder,
    caches: &Caches,
    config: &NodeLifecycleConfig,
    state: &mut State,
) -> Option<Timestamp> {
    let now = Timestamp::now();
    let nodes_api = Api::<Node>::all(client.clone());
    let leases: HashMap<String, Lease> = cache::all(&caches.leases)
        .into_iter()
        .filter_map(|l| l.metadata.name.clone().map(|n| (n, l)))
        .collect();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for mut node in cache::all(&caches.nodes) {
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        let heard = health::observe(state.heard.get(&name), &node, leases.get(&name), now);
        let late = health::overdue(
            &heard,
            &node,
            now,
            signed(config.grace_period),
            signed(config.startup_grace_period),
        );
        state.heard.insert(name.clone(), heard);
        if late && let Some(conditions) = health::mark_unknown(&node, now) {
            let was_ready = ready_status(&node).as_deref() == Some("True");
            let mut next = node.clone();
            next.status.get_or_insert_default().conditions = Some(conditions);
            match nodes_api
                .replace_status(&name, &PostParams::default(), &next)
                .await
            {
                Ok(written) => {
                    tracing::info!(node = %name, "node stopped posting status: conditions Unknown");
                    if was_ready {
                        events::publish(
                            node_recorder,
                            &written.object_ref(&()),
                            false,
                            "NodeNotReady",
                            "NodeStatusChange",
                            format!("Node {name} status is now: NodeNotReady"),
                        )
                        .await;
                    }
                    node = written;
                }
                Err(e) => {
                    // Retried next pass; what was heard is kept.
                    tracing::debug!(node = %name, error = %e, "marking node Unknown");
                    nodes.insert(name, node);
                    continue;
                }
            }
        }
        if let Some(taints) = taints::reconcile(&node, now) {
            let mut next = node.clone();
            next.spec.get_or_insert_default().taints = Some(taints);
            match nodes_api
                .replace(&name, &PostParams::default(), &next)
                .await
            {
                Ok(written) => node = written,
                Err(e) => tracing::debug!(node = %name, error = %e, "updating node taints"),
            }
        }
        nodes.insert(name, node);
    }
    state.heard.retain(|name, _| nodes.contains_key(name));
    evict(client, node_recorder, recorder, caches, &nodes, state, now).await
}

fn taint_keys(taints: &[Taint]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = taints
        .iter()
        .map(|t| (t.key.clone(), t.value.clone().unwrap_or_default()))
        .collect();
    keys.sort();
    keys
}

fn ready_status(node: &Node) -> Option<String> {
    health::condition(node, "Ready").map(|c| c.status.clone())
}

/// Taint eviction over the pods on known nodes; pods of an unreachable
/// node are also marked not Ready (its agent cannot say so).
async fn evict(
    client: &kube::Client,
    node_recorder: &kube::runtime::events::Recorder,
    recorder: &kube::runtime::events::Recorder,
    caches: &Caches,
    nodes: &BTreeMap<String, Node>,
    state: &mut State,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut next: Option<Timestamp> = None;
    let mut seen = Vec::new();
    for pod in cache::all(&caches.pods) {
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let (Some(node), Some(uid), Some(name), Some(ns)) = (
            nodes.get(&node_name),
            pod.metadata.uid.clone(),
            pod.metadata.name.clone(),
            pod.metadata.namespace.clone(),
        ) else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let pods_api = Api::<Pod>::namespaced(client.clone(), &ns);
        if ready_status(node).as_deref() == Some("Unknown") && pod_ready(&pod) {
            // kube's MarkPodsNotReady: the status turns, reason and
            // message stay.
            let result = pods::update_status(&pods_api, &name, |p| {
                let Some(c) = p
                    .status
                    .as_mut()
                    .and_then(|s| s.conditions.as_mut())
                    .and_then(|c| {
                        c.iter_mut()
                            .find(|c| c.type_ == "Ready" && c.status == "True")
                    })
                else {
                    return false;
                };
                c.status = "False".to_owned();
                c.last_transition_time =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
                true
            })
            .await;
            match result {
                Ok(()) => {
                    events::publish(
                        node_recorder,
                        &pod.object_ref(&()),
                        true,
                        "NodeNotReady",
                        "MarkNotReady",
                        "Node is not ready".to_owned(),
                    )
                    .await;
                }
                Err(e) => tracing::debug!(pod = %name, error = %e, "marking pod not ready"),
            }
        }
        let taints = eviction::no_execute(
            node.spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]),
        );
        let keys = taint_keys(&taints);
        let since = match state.scheduled.get(&uid) {
            Some((since, k)) if *k == keys => *since,
            _ => now,
        };
        let verdict = eviction::verdict(&pod, &taints, since);
        match verdict {
            Verdict::Keep => {
                if state
                    .scheduled
                    .remove(&uid)
                    .is_some_and(|(_, k)| !k.is_empty())
                {
                    events::publish(
                        recorder,
                        &pod.object_ref(&()),
                        false,
                        eviction::EVENT_REASON,
                        "Cancel",
                        format!("Cancelling deletion of Pod {ns}/{name}"),
                    )
                    .await;
                }
                continue;
            }
            Verdict::At(at) if at > now => {
                state.scheduled.insert(uid.clone(), (since, keys));
                seen.push(uid);
                next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
                continue;
            }
            Verdict::Now | Verdict::At(_) => {}
        }
        state.scheduled.remove(&uid);
        events::publish(
            recorder,
            &pod.object_ref(&()),
            false,
            eviction::EVENT_REASON,
            "Delete",
            format!("Marking for deletion Pod {ns}/{name}"),
        )
        .await;
        let result = pods::update_status(&pods_api, &name, |p| {
            pods::set_condition(
                p,
                "DisruptionTarget",
                "True",
                eviction::CONDITION_REASON,
                eviction::CONDITION_MESSAGE,
                now,
            )
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(pod = %name, error = %e, "DisruptionTarget condition");
        }
        match pods::delete(&pods_api, &name, &DeleteParams::default()).await {
            Ok(()) => {
                tracing::info!(pod = %name, namespace = %ns, node = %node_name, "evicted by NoExecute taint")
            }
            Err(e) => tracing::warn!(pod = %name, error = %e, "taint eviction"),
        }
    }
    state.scheduled.retain(|uid, _| seen.contains(uid));
    next
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}
