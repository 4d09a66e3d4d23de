//! DefaultPreemption: victims, candidates and kube's messages.

use serde_json::json;

use super::*;
use crate::preempt::Pdb;
use crate::status::FitError;
use crate::status::ScheduleError;

fn prio(p: serde_json::Value, priority: i32) -> serde_json::Value {
    set(p, "spec/priority", json!(priority))
}

fn started(p: serde_json::Value, at: &str) -> serde_json::Value {
    set(p, "status/startTime", json!(at))
}

/// Schedules `p`, expecting failure, then preempts.
fn preempt(
    s: &mut Scheduler,
    p: serde_json::Value,
    pdbs: &[Pdb],
) -> (FitError, Result<crate::preempt::Preemption, String>) {
    let pod = as_pod(p);
    let e = match s.schedule(&pod) {
        Err(ScheduleError::Fit(e)) => e,
        other => panic!("expected a FitError, got {other:?}"),
    };
    let info = s.cache.pod_info(&pod);
    let r = s.preempt(&info, &e, pdbs);
    (e, r)
}

fn victims(r: &Result<crate::preempt::Preemption, String>) -> Vec<String> {
    r.as_ref()
        .expect("preemption")
        .victims
        .iter()
        .map(|v| v.name.clone())
        .collect()
}

#[test]
fn evicts_the_lower_priority_pod() {
    let mut s = cluster(
        vec![node("n1", "2", "4Gi")],
        vec![on(prio(pod("low", "1500m", "1Gi"), 10), "n1")],
    );
    let (e, r) = preempt(&mut s, prio(pod("high", "1", "1Gi"), 100), &[]);
    assert_eq!(
        e.to_string(),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    assert_eq!(r.as_ref().map(|p| p.node.clone()), Ok("n1".into()));
    assert_eq!(victims(&r), vec!["low"]);
}

#[test]
fn minimal_victims_lowest_priority_first() {
    let mut s = cluster(
        vec![node("n1", "3", "8Gi")],
        vec![
            on(prio(pod("p10", "1", "1Gi"), 10), "n1"),
            on(prio(pod("p20", "1", "1Gi"), 20), "n1"),
            on(prio(pod("p30", "1", "1Gi"), 30), "n1"),
        ],
    );
    // Needs 1 cpu: evicting p10 alone is enough; p20/p30 are reprieved.
    let (_, r) = preempt(&mut s, prio(pod("hi", "1", "1Gi"), 100), &[]);
    assert_eq!(victims(&r), vec!["p10"]);
    // Needs 2 cpus: p10 and p20 go, most important first.
    let (_, r) = preempt(&mut s, prio(pod("hi", "2", "1Gi"), 100), &[]);
    assert_eq!(victims(&r), vec!["p20", "p10"]);
}

#[test]
fn never_evicts_equal_or_higher_priority() {
    let mut s = cluster(
        vec![node("n1", "2", "4Gi")],
        vec![on(prio(pod("same", "2", "1Gi"), 100), "n1")],
    );
    let (e, r) = preempt(&mut s, prio(pod("hi", "1", "1Gi"), 100), &[]);
    let mut e = e;
    e.diagnosis.postfilter_msg = r.err();
    assert_eq!(
        e.to_string(),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
    );
}

#[test]
fn not_helpful_for_unresolvable_nodes() {
    let tainted = set(
        node("n1", "4", "4Gi"),
        "spec/taints",
        json!([{"key": "node-role", "value": "x", "effect": "NoSchedule"}]),
    );
    let mut s = cluster(vec![tainted, node("n2", "1", "4Gi")], vec![]);
    let (mut e, r) = preempt(&mut s, prio(pod("hi", "2", "1Gi"), 100), &[]);
    e.diagnosis.postfilter_msg = r.err();
    // n2 lacks the cpu altogether (more than allocatable): unresolvable too.
    assert_eq!(
        e.to_string(),
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role: x}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
    );
}

#[test]
fn still_no_fit_after_removing_victims() {
    let mut s = cluster(
        vec![node("n1", "2", "4Gi")],
        vec![
            on(prio(pod("same", "1", "1Gi"), 100), "n1"),
            on(prio(pod("low", "500m", "1Gi"), 1), "n1"),
        ],
    );
    let (mut e, r) = preempt(&mut s, prio(pod("hi", "1500m", "1Gi"), 100), &[]);
    e.diagnosis.postfilter_msg = r.err();
    assert_eq!(
        e.to_string(),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Insufficient cpu.."
    );
}

#[test]
fn preemption_policy_never() {
    let mut s = cluster(
        vec![node("n1", "2", "4Gi")],
        vec![on(prio(pod("low", "2", "1Gi"), 1), "n1")],
    );
    let p = set(
        prio(pod("hi", "1", "1Gi"), 100),
        "spec/preemptionPolicy",
        json!("Never"),
    );
    let (_, r) = preempt(&mut s, p, &[]);
    assert_eq!(
        r.err(),
        Some("preemption: not eligible due to preemptionPolicy=Never.".into())
    );
}

#[test]
fn picks_the_node_with_the_lowest_victims() {
    let mut s = cluster(
        vec![node("a", "2", "4Gi"), node("b", "2", "4Gi")],
        vec![
            on(prio(pod("a50", "2", "1Gi"), 50), "a"),
            on(prio(pod("b10", "2", "1Gi"), 10), "b"),
        ],
    );
    let (_, r) = preempt(&mut s, prio(pod("hi", "1", "1Gi"), 100), &[]);
    assert_eq!(r.as_ref().map(|p| p.node.clone()), Ok("b".into()));
    // Equal highest priority: fewer victims win.
    let mut s = cluster(
        vec![node("a", "2", "4Gi"), node("b", "2", "4Gi")],
        vec![
            on(prio(pod("a1", "1", "1Gi"), 10), "a"),
            on(prio(pod("a2", "1", "1Gi"), 10), "a"),
            on(prio(pod("b1", "2", "1Gi"), 10), "b"),
        ],
    );
    let (_, r) = preempt(&mut s, prio(pod("hi", "2", "1Gi"), 100), &[]);
    assert_eq!(r.as_ref().map(|p| p.node.clone()), Ok("b".into()));
}

#[test]
fn latest_start_time_breaks_ties() {
    let mut s = cluster(
        vec![node("a", "1", "4Gi"), node("b", "1", "4Gi")],
        vec![
            on(
                started(prio(pod("old", "1", "1Gi"), 10), "2026-01-01T00:00:00Z"),
                "a",
            ),
            on(
                started(prio(pod("young", "1", "1Gi"), 10), "2026-06-01T00:00:00Z"),
                "b",
            ),
        ],
    );
    let (_, r) = preempt(&mut s, prio(pod("hi", "1", "1Gi"), 100), &[]);
    assert_eq!(victims(&r), vec!["young"]);
}

#[test]
fn avoids_pdb_violations() {
    let guarded = |name: &str| {
        set(
            prio(pod(name, "2", "1Gi"), 10),
            "metadata/labels",
            json!({"app": "db"}),
        )
    };
    let mut s = cluster(
        vec![node("a", "2", "4Gi"), node("b", "2", "4Gi")],
        vec![
            on(guarded("db"), "a"),
            on(prio(pod("batch", "2", "1Gi"), 20), "b"),
        ],
    );
    let pdb = Pdb::new(
        &serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0,
            "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}))
        .expect("pdb"),
    );
    let (_, r) = preempt(
        &mut s,
        prio(pod("hi", "1", "1Gi"), 100),
        std::slice::from_ref(&pdb),
    );
    assert_eq!(victims(&r), vec!["batch"]);
    // Without the budget the lower-priority db pod goes.
    let (_, r) = preempt(&mut s, prio(pod("hi", "1", "1Gi"), 100), &[]);
    assert_eq!(victims(&r), vec!["db"]);
}

#[test]
fn nominated_pods_hold_their_room() {
    let mut s = cluster(vec![node("n1", "2", "4Gi")], vec![]);
    let mut nominated = s.cache.pod_info(&as_pod(prio(pod("hi", "2", "1Gi"), 100)));
    nominated.nominated_node = "n1".into();
    s.cache.nominate(nominated);
    assert_eq!(
        place(&mut s, prio(pod("low", "1", "1Gi"), 1)),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
    // The nominated pod itself fits there.
    let mut hi = prio(pod("hi", "2", "1Gi"), 100);
    hi["status"] = json!({"nominatedNodeName": "n1"});
    assert_eq!(place(&mut s, hi), Ok("n1".into()));
}

#[test]
fn terminating_victim_on_nominated_node_waits() {
    let mut low = on(prio(pod("low", "2", "1Gi"), 1), "n1");
    low["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    let mut s = cluster(vec![node("n1", "2", "4Gi")], vec![low]);
    let mut hi = prio(pod("hi", "1", "1Gi"), 100);
    hi["status"] = json!({"nominatedNodeName": "n1"});
    let (_, r) = preempt(&mut s, hi, &[]);
    assert_eq!(
        r.err(),
        Some("preemption: not eligible due to a terminating pod on the nominated node.".into())
    );
}

#[test]
fn priority_classes_resolve() {
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    let mut s = cluster(vec![node("n1", "2", "4Gi")], vec![]);
    let pc: PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000})).expect("pc");
    s.cache.upsert_priority_class(&pc);
    let p = as_pod(set(
        pod("p", "", ""),
        "spec/priorityClassName",
        json!("high"),
    ));
    assert_eq!(s.cache.priority_of(&p), 1000);
    let p = as_pod(set(
        pod("p", "", ""),
        "spec/priorityClassName",
        json!("system-node-critical"),
    ));
    assert_eq!(s.cache.priority_of(&p), crate::cache::SYSTEM_NODE_CRITICAL);
    let d: PriorityClass = serde_json::from_value(
        json!({"metadata": {"name": "def"}, "value": 7, "globalDefault": true}),
    )
    .expect("pc");
    s.cache.upsert_priority_class(&d);
    assert_eq!(s.cache.priority_of(&as_pod(pod("p", "", ""))), 7);
    assert_eq!(s.cache.priority_of(&as_pod(prio(pod("p", "", ""), 3))), 3);
}
