//! Table-style tests of the Job controller's pure decisions.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::core::{self, Plan};

fn now() -> Timestamp {
    "2024-01-01T00:10:00Z".parse().expect("ts")
}

fn job(spec: Value, status: Value) -> Job {
    let mut s = json!({
        "parallelism": 1, "completions": 1, "backoffLimit": 6,
        "completionMode": "NonIndexed", "suspend": false,
        "podReplacementPolicy": "TerminatingOrFailed",
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi"}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    });
    if let (Some(base), Some(over)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1"},
        "spec": s,
        "status": status,
    }))
    .expect("job")
}

/// A pod of the Job: `phase`, tracking finalizer or not, optional index,
/// exit code of `main` and finish second (minutes after 00:00).
fn pod(name: &str, phase: &str, finalizer: bool, extra: Value) -> Pod {
    let mut p = json!({
        "metadata": {
            "name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "finalizers": if finalizer { json!(["batch.kubernetes.io/job-tracking"]) } else { json!([]) },
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": "u1", "controller": true}]
        },
        "status": {"phase": phase}
    });
    if let Some(i) = extra.get("index") {
        p["metadata"]["annotations"] =
            json!({"batch.kubernetes.io/job-completion-index": i.to_string()});
    }
    if let Some(code) = extra.get("exit") {
        let finished = extra
            .get("finished")
            .and_then(Value::as_str)
            .unwrap_or("2024-01-01T00:05:00Z");
        p["status"]["containerStatuses"] = json!([{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "finishedAt": finished}}
        }]);
    }
    if extra.get("ready") == Some(&json!(true)) {
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    }
    if extra.get("deleting") == Some(&json!(true)) {
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:09:00Z");
    }
    if let Some(r) = extra.get("restarts") {
        p["status"]["containerStatuses"] = json!([{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": r
        }]);
    }
    serde_json::from_value(p).expect("pod")
}

fn conditions(p: &Plan) -> Vec<(String, String, String)> {
    p.status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn cond(t: &str, s: &str, r: &str) -> (String, String, String) {
    (t.to_owned(), s.to_owned(), r.to_owned())
}

fn events(p: &Plan) -> Vec<(bool, String, String)> {
    p.events
        .iter()
        .map(|e| (e.warning, e.reason.clone(), e.note.clone()))
        .collect()
}

#[test]
fn creates_pods_up_to_parallelism_and_remaining_completions() {
    let cases = [
        (
            json!({"parallelism": 3, "completions": 5}),
            json!({}),
            vec![],
            3,
        ),
        (
            json!({"parallelism": 3, "completions": 5}),
            json!({"succeeded": 3}),
            vec![],
            2,
        ),
        (
            json!({"parallelism": 2, "completions": null}),
            json!({}),
            vec![],
            2,
        ),
        (
            json!({"parallelism": 2, "completions": 4}),
            json!({}),
            vec![pod("a", "Running", true, json!({}))],
            1,
        ),
        // Terminating pods are replaced at once (TerminatingOrFailed)…
        (
            json!({"parallelism": 1, "completions": 2}),
            json!({}),
            vec![pod("a", "Running", true, json!({"deleting": true}))],
            1,
        ),
        // …but not with podReplacementPolicy Failed.
        (
            json!({"parallelism": 1, "completions": 2, "podReplacementPolicy": "Failed"}),
            json!({}),
            vec![pod("a", "Running", true, json!({"deleting": true}))],
            0,
        ),
    ];
    for (spec, status, pods, want) in cases {
        let p = core::plan(&job(spec.clone(), status), &pods, now());
        assert_eq!(p.create.len(), want, "{spec}");
        assert!(p.status.start_time.is_some());
        for c in &p.create {
            assert_eq!(c.metadata.generate_name.as_deref(), Some("pi-"));
            assert_eq!(
                c.metadata.finalizers.as_deref(),
                Some(&["batch.kubernetes.io/job-tracking".to_owned()][..])
            );
            let labels = c.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels
                    .get("batch.kubernetes.io/job-name")
                    .map(String::as_str),
                Some("pi")
            );
            let owner = &c.metadata.owner_references.as_deref().unwrap_or_default()[0];
            assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        }
    }
}

#[test]
fn finished_pods_are_counted_through_uncounted_and_finalizer_removal() {
    let j = job(
        json!({"parallelism": 2, "completions": 3}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let pods = [
        pod("a", "Succeeded", true, json!({"exit": 0})),
        pod("b", "Running", true, json!({"ready": true})),
        pod("c", "Succeeded", false, json!({})), // already counted
    ];
    let p = core::plan(&j, &pods, now());
    let interim = p.interim.clone().expect("interim");
    let unc = interim.uncounted_terminated_pods.expect("uncounted");
    assert_eq!(unc.succeeded, Some(vec!["uid-a".to_owned()]));
    assert_eq!(p.remove_finalizers, vec!["a".to_owned()]);
    assert_eq!(p.status.succeeded, Some(1));
    assert_eq!(p.status.active, Some(2)); // b plus one new pod
    assert_eq!(p.status.ready, Some(1));
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.status.uncounted_terminated_pods, Some(Default::default()));

    // An uncounted UID whose pod is gone is counted once.
    let j = job(
        json!({"completions": 3}),
        json!({"succeeded": 1,
        "uncountedTerminatedPods": {"succeeded": ["uid-gone"]}}),
    );
    let p = core::plan(&j, &[], now());
    assert!(p.interim.is_none());
    assert_eq!(p.status.succeeded, Some(2));
}

#[test]
fn completion_sets_success_criteria_then_complete() {
    // Reached, nothing left running: both conditions, completion time, event.
    let j = job(
        json!({"completions": 1}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let p = core::plan(
        &j,
        &[pod("a", "Succeeded", true, json!({"exit": 0}))],
        now(),
    );
    assert_eq!(
        conditions(&p),
        vec![
            cond("SuccessCriteriaMet", "True", "CompletionsReached"),
            cond("Complete", "True", "CompletionsReached"),
        ]
    );
    assert_eq!(p.status.completion_time.as_ref().map(|t| t.0), Some(now()));
    assert_eq!(
        events(&p),
        vec![(false, "Completed".to_owned(), "Job completed".to_owned())]
    );
    let msg = p.status.conditions.as_deref().unwrap_or_default()[1]
        .message
        .clone();
    assert_eq!(
        msg.as_deref(),
        Some("Reached expected number of succeeded pods")
    );

    // Reached while another pod runs (completions unset): it waits.
    let j = job(
        json!({"parallelism": 2, "completions": null}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let p = core::plan(
        &j,
        &[
            pod("a", "Succeeded", true, json!({})),
            pod("b", "Running", true, json!({})),
        ],
        now(),
    );
    assert!(conditions(&p).is_empty());
    assert!(p.create.is_empty() && p.delete.is_empty());

    // Reached with a surplus pod still running: it is deleted first.
    let j = job(
        json!({"parallelism": 2, "completions": 1}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let p = core::plan(
        &j,
        &[
            pod("a", "Succeeded", true, json!({})),
            pod("b", "Running", true, json!({})),
        ],
        now(),
    );
    assert_eq!(
        conditions(&p),
        vec![cond("SuccessCriteriaMet", "True", "CompletionsReached")]
    );
    assert_eq!(p.delete, vec!["b".to_owned()]);
    assert!(p.status.completion_time.is_none());
}

#[test]
fn failures_past_the_backoff_limit_fail_the_job() {
    let failed = |n: &str| pod(n, "Failed", true, json!({"exit": 1}));
    let j = job(
        json!({"backoffLimit": 1, "parallelism": 2, "completions": 2}),
        json!({"startTime": "2024-01-01T00:00:00Z", "failed": 1}),
    );
    // Second failure: 2 > 1; a running pod must go first.
    let p = core::plan(
        &j,
        &[failed("a"), pod("b", "Running", true, json!({}))],
        now(),
    );
    assert_eq!(
        conditions(&p),
        vec![cond("FailureTarget", "True", "BackoffLimitExceeded")]
    );
    assert_eq!(p.delete, vec!["b".to_owned()]);
    assert_eq!(p.status.failed, Some(2));
    assert!(p.create.is_empty());
    // Once nothing runs: Failed, with kube's message and a warning event.
    let mut j2 = j.clone();
    j2.status = Some(p.status.clone());
    let p = core::plan(
        &j2,
        &[pod("b", "Running", true, json!({"deleting": true}))],
        now(),
    );
    // The deleted pod is counted as failed and freed; it still terminates.
    assert_eq!(p.remove_finalizers, vec!["b".to_owned()]);
    assert_eq!(p.status.failed, Some(3));
    assert_eq!(
        conditions(&p),
        vec![cond("FailureTarget", "True", "BackoffLimitExceeded")]
    );
    let mut j3 = j2.clone();
    j3.status = Some(p.status.clone());
    let p = core::plan(&j3, &[], now());
    assert_eq!(
        conditions(&p),
        vec![
            cond("FailureTarget", "True", "BackoffLimitExceeded"),
            cond("Failed", "True", "BackoffLimitExceeded"),
        ]
    );
    assert_eq!(
        events(&p),
        vec![(
            true,
            "BackoffLimitExceeded".to_owned(),
            "Job has reached the specified backoff limit".to_owned()
        )]
    );
    assert!(p.status.completion_time.is_none());
}

#[test]
fn retries_wait_for_the_backoff_delay() {
    let j = job(
        json!({"completions": 1}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let at = |m: &str| format!("2024-01-01T00:{m}Z");
    let cases = [
        // One failure 3 s ago: wait 7 s more.
        (vec![("a", "Failed", at("09:57"))], Some(7)),
        // One failure 20 s ago: go.
        (vec![("a", "Failed", at("09:40"))], None),
        // Two consecutive failures, the last 15 s ago: 20 s delay → 5 s.
        (
            vec![("a", "Failed", at("09:00")), ("b", "Failed", at("09:45"))],
            Some(5),
        ),
        // A success after a failure resets the count.
        (
            vec![
                ("a", "Failed", at("09:58")),
                ("b", "Succeeded", at("09:59")),
            ],
            None,
        ),
    ];
    for (pods, want) in cases {
        let j = if pods.iter().any(|p| p.1 == "Succeeded") {
            job(
                json!({"completions": 2}),
                json!({"startTime": "2024-01-01T00:00:00Z", "succeeded": 1}),
            )
        } else {
            j.clone()
        };
        let list: Vec<Pod> = pods
            .iter()
            .map(|(n, ph, t)| {
                pod(
                    n,
                    ph,
                    false,
                    json!({"exit": if *ph == "Failed" {1} else {0}, "finished": t}),
                )
            })
            .collect();
        let p = core::plan(&j, &list, now());
        match want {
            Some(secs) => {
                assert!(p.create.is_empty(), "{pods:?}");
                assert_eq!(p.requeue_after, Some(Duration::from_secs(secs)), "{pods:?}");
            }
            None => assert_eq!(p.create.len(), 1, "{pods:?}"),
        }
    }
}

#[test]
fn restarts_with_on_failure_count_against_the_backoff_limit() {
    let spec = |limit: i32| json!({"backoffLimit": limit, "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "main", "image": "i"}]}}});
    let cases = [(0, 0, false), (0, 1, true), (3, 2, false), (3, 3, true)];
    for (limit, restarts, fails) in cases {
        let j = job(spec(limit), json!({"startTime": "2024-01-01T00:00:00Z"}));
        let p = core::plan(
            &j,
            &[pod("a", "Running", true, json!({"restarts": restarts}))],
            now(),
        );
        let got = conditions(&p).contains(&cond("FailureTarget", "True", "BackoffLimitExceeded"));
        assert_eq!(got, fails, "limit {limit} restarts {restarts}");
    }
}

#[test]
fn active_deadline() {
    let cases = [
        ("2024-01-01T00:00:00Z", 600, true),
        ("2024-01-01T00:00:00Z", 601, false),
        ("2024-01-01T00:09:50Z", 30, false),
    ];
    for (start, secs, exceeded) in cases {
        let j = job(
            json!({"activeDeadlineSeconds": secs}),
            json!({"startTime": start}),
        );
        let p = core::plan(&j, &[pod("a", "Running", true, json!({}))], now());
        if exceeded {
            assert_eq!(
                conditions(&p),
                vec![cond("FailureTarget", "True", "DeadlineExceeded")]
            );
            assert_eq!(p.delete, vec!["a".to_owned()]);
            let msg = p.status.conditions.as_deref().unwrap_or_default()[0]
                .message
                .clone();
            assert_eq!(
                msg.as_deref(),
                Some("Job was active longer than specified deadline")
            );
        } else {
            assert!(conditions(&p).is_empty());
            assert!(p.requeue_after.is_some());
        }
    }
}

#[test]
fn pod_failure_policy_actions() {
    let policy = json!({"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [137]}},
    ]});
    let j = job(
        json!({"podFailurePolicy": policy, "backoffLimit": 0}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    // FailJob: FailureTarget with the pod's message, then Failed.
    let p = core::plan(&j, &[pod("a", "Failed", true, json!({"exit": 42}))], now());
    assert_eq!(
        conditions(&p),
        vec![
            cond("FailureTarget", "True", "PodFailurePolicy"),
            cond("Failed", "True", "PodFailurePolicy"),
        ]
    );
    assert_eq!(events(&p), vec![(true, "PodFailurePolicy".to_owned(),
        "Container main for pod default/a failed with exit code 42 matching FailJob rule at index 0".to_owned())]);
    // Ignore: not counted, the finalizer goes, a replacement comes at once.
    let p = core::plan(&j, &[pod("a", "Failed", true, json!({"exit": 137}))], now());
    assert!(conditions(&p).is_empty());
    assert_eq!(p.status.failed, Some(0));
    assert_eq!(p.remove_finalizers, vec!["a".to_owned()]);
    assert_eq!(p.create.len(), 1);
    // Count (no rule matched): past backoffLimit 0.
    let p = core::plan(&j, &[pod("a", "Failed", true, json!({"exit": 1}))], now());
    assert_eq!(p.status.failed, Some(1));
    assert!(conditions(&p).contains(&cond("FailureTarget", "True", "BackoffLimitExceeded")));
}

#[test]
fn indexed_jobs_create_missing_indexes_and_record_completed_ones() {
    let j = job(
        json!({"completionMode": "Indexed", "completions": 5, "parallelism": 3}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let pods = [
        pod("pi-0", "Succeeded", true, json!({"index": 0})),
        pod("pi-1", "Running", true, json!({"index": 1})),
        pod("pi-1b", "Running", true, json!({"index": 1})), // duplicate
        pod("pi-3", "Succeeded", false, json!({"index": 3})),
    ];
    let p = core::plan(&j, &pods, now());
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0,3"));
    assert_eq!(p.delete, vec!["pi-1b".to_owned()]);
    let idx: Vec<String> = p.create.iter()
        .map(|c| c.metadata.annotations.clone().unwrap_or_default()["batch.kubernetes.io/job-completion-index"].clone())
        .collect();
    assert_eq!(idx, vec!["2".to_owned(), "4".to_owned()]);
    let first = &p.create[0];
    assert_eq!(first.metadata.generate_name.as_deref(), Some("pi-2-"));
    assert_eq!(
        first.spec.as_ref().and_then(|s| s.hostname.as_deref()),
        Some("pi-2")
    );
    assert_eq!(
        first.metadata.labels.clone().unwrap_or_default()["batch.kubernetes.io/job-completion-index"],
        "2"
    );

    // All indexes done: complete.
    let j = job(
        json!({"completionMode": "Indexed", "completions": 2}),
        json!({"startTime": "2024-01-01T00:00:00Z", "completedIndexes": "0"}),
    );
    let p = core::plan(
        &j,
        &[pod("pi-1", "Succeeded", true, json!({"index": 1}))],
        now(),
    );
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0-1"));
    assert!(conditions(&p).contains(&cond("Complete", "True", "CompletionsReached")));
}

#[test]
fn fail_index_and_backoff_limit_per_index() {
    let policy = json!({"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}]});
    let j = job(
        json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3,
                       "backoffLimitPerIndex": 1, "podFailurePolicy": policy}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let pods = [
        pod("pi-0", "Failed", true, json!({"index": 0, "exit": 3})), // FailIndex
        pod(
            "pi-1",
            "Failed",
            true,
            json!({"index": 1, "exit": 1, "finished": "2024-01-01T00:01:00Z"}),
        ), // 1st failure: retried
        pod("pi-2", "Running", true, json!({"index": 2})),
    ];
    let p = core::plan(&j, &pods, now());
    assert_eq!(p.status.failed_indexes.as_deref(), Some("0"));
    let created: Vec<(String, String)> = p
        .create
        .iter()
        .map(|c| {
            let a = c.metadata.annotations.clone().unwrap_or_default();
            (
                a["batch.kubernetes.io/job-completion-index"].clone(),
                a["batch.kubernetes.io/job-index-failure-count"].clone(),
            )
        })
        .collect();
    assert_eq!(created, vec![("1".to_owned(), "1".to_owned())]);
    // Every index settled with a failed one: the Job fails with FailedIndexes.
    let j = job(
        json!({"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 0}),
        json!({"startTime": "2024-01-01T00:00:00Z", "completedIndexes": "1"}),
    );
    let p = core::plan(
        &j,
        &[pod("pi-0", "Failed", true, json!({"index": 0, "exit": 1}))],
        now(),
    );
    assert_eq!(p.status.failed_indexes.as_deref(), Some("0"));
    assert!(conditions(&p).contains(&cond("Failed", "True", "FailedIndexes")));
}

#[test]
fn suspend_and_resume() {
    let j = job(
        json!({"suspend": true, "parallelism": 2, "completions": 2}),
        json!({"startTime": "2024-01-01T00:00:00Z"}),
    );
    let p = core::plan(&j, &[pod("a", "Running", true, json!({}))], now());
    assert_eq!(p.delete, vec!["a".to_owned()]);
    assert!(p.create.is_empty());
    assert_eq!(
        conditions(&p),
        vec![cond("Suspended", "True", "JobSuspended")]
    );
    assert_eq!(
        events(&p),
        vec![(false, "Suspended".to_owned(), "Job suspended".to_owned())]
    );

    // A Job created suspended never starts.
    let j = job(json!({"suspend": true}), json!({}));
    let p = core::plan(&j, &[], now());
    assert!(p.status.start_time.is_none());

    let j = job(
        json!({"suspend": false, "parallelism": 2, "completions": 2}),
        json!({
        "startTime": "2024-01-01T00:00:00Z",
        "conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}]}),
    );
    let p = core::plan(&j, &[], now());
    assert_eq!(p.create.len(), 2);
    assert_eq!(
        conditions(&p),
        vec![cond("Suspended", "False", "JobResumed")]
    );
    assert_eq!(p.status.start_time.as_ref().map(|t| t.0), Some(now()));
    assert_eq!(
        events(&p),
        vec![(false, "Resumed".to_owned(), "Job resumed".to_owned())]
    );
}

#[test]
fn finished_jobs_only_free_their_pods() {
    let j = job(
        json!({}),
        json!({"conditions": [{"type": "Complete", "status": "True"}]}),
    );
    let p = core::plan(
        &j,
        &[
            pod("a", "Succeeded", true, json!({})),
            pod("b", "Succeeded", false, json!({})),
        ],
        now(),
    );
    assert_eq!(p.remove_finalizers, vec!["a".to_owned()]);
    assert!(p.create.is_empty() && p.delete.is_empty() && p.interim.is_none());
}
