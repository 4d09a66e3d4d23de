//! The loop: watches the cluster into the core's cache, takes pending
//! pods (`spec.schedulerName` `default-scheduler`) in priority order then
//! FIFO, binds them, and reports the ones that do not fit as
//! kube-scheduler does (PodScheduled=False, FailedScheduling events,
//! preemption).

mod actions;
pub mod metrics;
mod queue;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;
use kube::{Client, Resource};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

pub use actions::{Actions, SCHEDULER_NAME};
pub use metrics::{Outcome, SchedulerMetrics};
pub use queue::Queue;
pub use watch::Update;

use crate::preempt::{Pdb, Preemption};
use crate::schedule::Scheduler;
use crate::selectors::Selector;
use crate::status::ScheduleError;

/// The longest event note kube-scheduler writes.
const MAX_MESSAGE: usize = 1024;

/// Runs the scheduler until the task is dropped, acting as `client`
/// (which should be `system:kube-scheduler`), keeping its figures in
/// `metrics`.
pub async fn run(client: Client, metrics: SchedulerMetrics) {
    let (tx, rx) = unbounded_channel();
    // The watches end with the loop, also when its task is aborted.
    let _watches = AbortOnDrop(watch::spawn_all(&client, &tx));
    let mut l = Loop::new(client, tx, metrics);
    l.run(rx).await;
}

/// Tasks aborted when this is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Spawns [`run`] on the current runtime.
pub fn spawn(client: Client, metrics: SchedulerMetrics) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(client, metrics))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Node,
    Pod,
    Class,
    Claim,
    Volume,
    Namespace,
    Pdb,
    Service,
    ReplicaSet,
    StatefulSet,
    ReplicationController,
}

struct Loop {
    sched: Scheduler,
    queue: Queue,
    actions: Actions,
    tx: UnboundedSender<Update>,
    pdbs: HashMap<String, Pdb>,
    synced: HashSet<Kind>,
    relist: HashMap<Kind, HashSet<String>>,
    known: HashMap<Kind, HashSet<String>>,
    binding: HashSet<String>,
    metrics: SchedulerMetrics,
}

fn key_of(meta: &ObjectMeta) -> String {
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        None => meta.name.clone().unwrap_or_default(),
    }
}

/// Whether this scheduler is responsible for `pod`.
fn ours(pod: &Pod) -> bool {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("");
    name.is_empty() || name == SCHEDULER_NAME
}

/// Whether `pod` waits on `spec.schedulingGates` (kube's SchedulingGates
/// plugin keeps such pods out of the active queue).
fn gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Cuts a message to kube's event note limit.
fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut out: String = String::new();
    for c in message.chars() {
        if out.len() + c.len_utf8() > MAX_MESSAGE - 3 {
            break;
        }
        out.push(c);
    }
    out.push_str("...");
    out
}

impl Loop {
    fn new(client: Client, tx: UnboundedSender<Update>, metrics: SchedulerMetrics) -> Loop {
        Loop {
            sched: Scheduler::new(),
            queue: Queue::new(),
            actions: Actions::new(client),
            tx,
            pdbs: HashMap::new(),
            synced: HashSet::new(),
            relist: HashMap::new(),
            known: HashMap::new(),
            binding: HashSet::new(),
            metrics,
        }
    }

    async fn run(&mut self, mut rx: UnboundedReceiver<Update>) {
        let mut since_yield = 0u32;
        loop {
            while let Ok(u) = rx.try_recv() {
                self.apply(u);
            }
            self.metrics.pending(self.queue.counts());
            if self.synced.contains(&Kind::Node) && self.synced.contains(&Kind::Pod) {
                self.queue.tick(Instant::now());
                if let Some((key, pod)) = self.queue.pop() {
                    self.schedule_one(key, pod).await;
                    since_yield += 1;
                    if since_yield >= 64 {
                        since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
            }
            let wait = self
                .queue
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                u = rx.recv() => match u {
                    Some(u) => self.apply(u),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Applies a watch event (or a binding result) to the cache and queue.
    fn apply(&mut self, update: Update) {
        match update {
            Update::Node(e) => self.on_event(Kind::Node, *e, |l, n| {
                if l.sched.cache.upsert_node(n) {
                    l.queue.cluster_changed(Instant::now());
                }
            }),
            Update::Pod(e) => self.on_event(Kind::Pod, *e, Loop::pod_changed),
            Update::Class(e) => self.on_event(Kind::Class, *e, |l, c| {
                l.sched.cache.upsert_priority_class(c)
            }),
            Update::Claim(e) => {
                self.on_event(Kind::Claim, *e, |l, c| l.sched.cache.upsert_claim(c))
            }
            Update::Volume(e) => {
                self.on_event(Kind::Volume, *e, |l, v| l.sched.cache.upsert_volume(v))
            }
            Update::Namespace(e) => self.on_event(Kind::Namespace, *e, |l, n| {
                l.sched.cache.upsert_namespace(n)
            }),
            Update::Pdb(e) => self.on_event(Kind::Pdb, *e, |l, p| {
                l.pdbs.insert(key_of(p.meta()), Pdb::new(p));
            }),
            Update::Service(e) => self.on_event(Kind::Service, *e, |l, svc| {
                l.sched.cache.upsert_service(svc)
            }),
            Update::ReplicaSet(e) => self.on_event(Kind::ReplicaSet, *e, |l, rs| {
                let selector = rs.spec.as_ref().map(|s| Selector::new(Some(&s.selector)));
                l.set_controller("ReplicaSet", rs.meta(), selector);
            }),
            Update::StatefulSet(e) => self.on_event(Kind::StatefulSet, *e, |l, ss| {
                let selector = ss.spec.as_ref().map(|s| Selector::new(Some(&s.selector)));
                l.set_controller("StatefulSet", ss.meta(), selector);
            }),
            Update::ReplicationController(e) => {
                self.on_event(Kind::ReplicationController, *e, |l, rc| {
                    let selector = rc
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        .map(Selector::from_map);
                    l.set_controller("ReplicationController", rc.meta(), selector);
                })
            }
            Update::Bound { key, error } => self.bound(key, error),
        }
    }

    fn set_controller(&mut self, kind: &str, meta: &ObjectMeta, selector: Option<Selector>) {
        let namespace = meta.namespace.as_deref().unwrap_or("");
        let name = meta.name.as_deref().unwrap_or("");
        self.sched
            .cache
            .set_controller(kind, namespace, name, selector);
    }

    /// The common handling of watch events: applies and deletes, and after
    /// a relist, deletes what the relist no longer had.
    fn on_event<K>(&mut self, kind: Kind, event: Event<K>, upsert: impl Fn(&mut Loop, &K))
    where
        K: Clone + kube::Resource,
    {
        let now = Instant::now();
        match event {
            Event::Init => {
                self.relist.insert(kind, HashSet::new());
            }
            Event::InitApply(obj) => {
                let k = key_of(obj.meta());
                self.relist.entry(kind).or_default().insert(k.clone());
                self.known.entry(kind).or_default().insert(k);
                upsert(self, &obj);
            }
            Event::InitDone => {
                let seen = self.relist.remove(&kind).unwrap_or_default();
                let known = self.known.entry(kind).or_default();
                let stale: Vec<String> = known.difference(&seen).cloned().collect();
                for k in &stale {
                    known.remove(k);
                }
                for k in stale {
                    self.forget(kind, &k);
                }
                self.synced.insert(kind);
                self.queue.cluster_changed(now);
            }
            Event::Apply(obj) => {
                self.known
                    .entry(kind)
                    .or_default()
                    .insert(key_of(obj.meta()));
                upsert(self, &obj);
                if matches!(
                    kind,
                    Kind::Node | Kind::Claim | Kind::Volume | Kind::Namespace
                ) {
                    self.queue.cluster_changed(now);
                }
            }
            Event::Delete(obj) => {
                let k = key_of(obj.meta());
                self.known.entry(kind).or_default().remove(&k);
                self.forget(kind, &k);
                if matches!(
                    kind,
                    Kind::Node | Kind::Pod | Kind::Claim | Kind::Volume | Kind::Namespace
                ) {
                    self.queue.cluster_changed(now);
                }
            }
        }
    }

    /// Deletes an object a relist no longer has, by key.
    fn forget(&mut self, kind: Kind, key: &str) {
        let cache = &mut self.sched.cache;
        match kind {
            Kind::Node => cache.remove_node(key),
            Kind::Pod => {
                cache.remove_pod(key);
                self.queue.remove(key);
                self.binding.remove(key);
            }
            Kind::Class => cache.remove_priority_class(key),
            Kind::Claim => cache.remove_claim(key),
            Kind::Volume => cache.remove_volume(key),
            Kind::Namespace => cache.remove_namespace(key),
            Kind::Pdb => {
                self.pdbs.remove(key);
            }
            Kind::Service => cache.remove_service(key),
            Kind::ReplicaSet | Kind::StatefulSet | Kind::ReplicationController => {
                let (namespace, name) = key.split_once('/').unwrap_or(("", key));
                let kind = match kind {
                    Kind::ReplicaSet => "ReplicaSet",
                    Kind::StatefulSet => "StatefulSet",
                    _ => "ReplicationController",
                };
                cache.set_controller(kind, namespace, name, None);
            }
        }
    }

    fn pod_changed(&mut self, pod: &Pod) {
        let key = key_of(&pod.metadata);
        if terminal(pod) {
            self.pod_deleted(pod);
            return;
        }
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if bound {
            self.queue.remove(&key);
            let new = self.sched.cache.node_of(&key).is_none();
            self.binding.remove(&key);
            self.sched.cache.upsert_pod(pod);
            if new {
                self.queue.cluster_changed(Instant::now());
            }
            return;
        }
        if self.binding.contains(&key) {
            // Assumed on a node; this is an older view of the pod.
            return;
        }
        if !ours(pod) || gated(pod) || pod.metadata.deletion_timestamp.is_some() {
            self.queue.remove(&key);
            self.sched.cache.remove_pod(&key);
            return;
        }
        let info = self.sched.cache.pod_info(pod);
        let priority = info.priority;
        self.sched.cache.nominate(info);
        self.queue.upsert(&key, pod.clone(), priority);
    }

    /// A pod finished (Succeeded/Failed): it frees its node.
    fn pod_deleted(&mut self, pod: &Pod) {
        self.forget(Kind::Pod, &key_of(&pod.metadata));
        self.queue.cluster_changed(Instant::now());
    }

    fn bound(&mut self, key: String, error: Option<String>) {
        let Some(error) = error else {
            self.queue.remove(&key);
            return;
        };
        tracing::warn!(pod = %key, error = %error, "scheduler: binding failed");
        if self.binding.remove(&key) {
            self.sched.cache.remove_pod(&key);
        }
        self.queue.retry(&key, Instant::now());
        self.queue.cluster_changed(Instant::now());
    }

    /// One scheduling cycle for one pod.
    async fn schedule_one(&mut self, key: String, pod: Pod) {
        let started = Instant::now();
        let info = self.sched.cache.pod_info(&pod);
        let error = match self.sched.schedule_info(&info) {
            Ok(decision) => {
                let node = decision.node;
                self.sched.cache.assume(info.clone(), &node);
                self.binding.insert(key.clone());
                let actions = self.actions.clone();
                let tx = self.tx.clone();
                let metrics = self.metrics.clone();
                let queued = self.queue.first_seen(&key);
                tokio::spawn(async move {
                    let result = actions
                        .bind(&info.namespace, &info.name, &info.uid, &node)
                        .await;
                    let outcome = match result {
                        Ok(_) => Outcome::Scheduled,
                        Err(_) => Outcome::Error,
                    };
                    metrics.attempt(outcome, started.elapsed());
                    if let (Ok(_), Some((added, attempts))) = (&result, queued) {
                        metrics.scheduled_after(attempts, added.elapsed());
                    }
                    if result.is_ok() {
                        let note = format!(
                            "Successfully assigned {}/{} to {node}",
                            info.namespace, info.name
                        );
                        actions
                            .event(&pod, false, "Scheduled", "Binding", note, None)
                            .await;
                    }
                    if let Err(e) = &result {
                        let message = truncate(&format!("binding rejected: {e}"));
                        if let Err(e) = actions
                            .mark_unschedulable(&pod, "SchedulerError", &message, None)
                            .await
                        {
                            tracing::warn!(error = %e, "scheduler: updating the pod status failed");
                        }
                        actions
                            .event(&pod, true, "FailedScheduling", "Scheduling", message, None)
                            .await;
                    }
                    let _ = tx.send(Update::Bound {
                        key,
                        error: result.err().map(|e| e.to_string()),
                    });
                });
                return;
            }
            Err(e) => e,
        };
        let mut nominate = None;
        let outcome = match error {
            ScheduleError::NoNodes => Outcome::Error,
            ScheduleError::Fit(_) => Outcome::Unschedulable,
        };
        self.metrics.attempt(outcome, started.elapsed());
        let message = match error {
            ScheduleError::NoNodes => error.to_string(),
            ScheduleError::Fit(mut fit) => {
                self.metrics.preemption_attempt();
                let pdbs: Vec<Pdb> = self.pdbs.values().cloned().collect();
                match self.sched.preempt(&info, &fit, &pdbs) {
                    Ok(p) => {
                        nominate = Some(p.node.clone());
                        let mut nominated = info.clone();
                        nominated.nominated_node = p.node.clone();
                        self.sched.cache.nominate(nominated);
                        self.carry_out(&pod, p);
                    }
                    Err(msg) => fit.diagnosis.postfilter_msg = Some(msg),
                }
                fit.to_string()
            }
        };
        let message = truncate(&message);
        if let Err(e) = self
            .actions
            .mark_unschedulable(&pod, "Unschedulable", &message, nominate.as_deref())
            .await
        {
            tracing::warn!(pod = %key, error = %e, "scheduler: updating the pod status failed");
        }
        let actions = self.actions.clone();
        tokio::spawn(async move {
            actions
                .event(&pod, true, "FailedScheduling", "Scheduling", message, None)
                .await;
        });
        self.queue.unschedulable(&key, Instant::now());
    }

    /// Evicts the victims and clears lower-priority nominations on the node.
    fn carry_out(&self, preemptor: &Pod, p: Preemption) {
        let actions = self.actions.clone();
        let preemptor = Arc::new(preemptor.clone());
        tokio::spawn(async move {
            for victim in &p.victims {
                if let Err(e) = actions.evict(victim, &preemptor, &p.node).await {
                    tracing::warn!(pod = %victim.key, error = %e, "scheduler: evicting a preemption victim failed");
                }
            }
            for other in &p.lower_nominated {
                if let Err(e) = actions
                    .clear_nomination(&other.namespace, &other.name)
                    .await
                {
                    tracing::warn!(pod = %other.key, error = %e, "scheduler: clearing a nomination failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn responsibility_and_gates() {
        use serde_json::json;
        assert!(ours(&pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": []}})
        )));
        assert!(ours(&pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [], "schedulerName": "default-scheduler"}})
        )));
        assert!(!ours(&pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [], "schedulerName": "other"}})
        )));
        assert!(gated(&pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [], "schedulingGates": [{"name": "g"}]}})
        )));
        assert!(!gated(&pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [], "schedulingGates": []}})
        )));
        assert!(terminal(&pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}})
        )));
        assert!(!terminal(&pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}})
        )));
    }

    #[test]
    fn truncates_long_messages() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(1000);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE);
        assert!(t.ends_with("..."));
    }
}
