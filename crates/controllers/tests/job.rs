//! The Job and TTL-after-finished controllers against the in-process API
//! server; the test plays the kubelet.

mod support;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::{event_reasons, pods, set_all_status, set_pod_status, terminated, until};

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut s = json!({
        "template": {"spec": {"restartPolicy": "Never",
                              "containers": [{"name": "main", "image": "busybox"}]}}
    });
    if let (Some(base), Some(over)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": s})).expect("job")
}

fn cond(job: &Job, t: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_to_completion_and_ttl_deletes_it() {
    let (_plane, admin) = support::start_all().await;
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "pi",
            json!({"completions": 2, "parallelism": 2, "ttlSecondsAfterFinished": 1}),
        ),
    )
    .await
    .expect("create job");
    let sel = "batch.kubernetes.io/job-name=pi";
    let created = until(10, "two pods", || async {
        let p = pods(&admin, "default", sel).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &created {
        let fins = p.metadata.finalizers.clone().unwrap_or_default();
        assert!(fins.contains(&"batch.kubernetes.io/job-tracking".to_owned()));
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        assert!(labels.contains_key("batch.kubernetes.io/controller-uid"));
    }
    let j = until(10, "active 2", || async {
        let j = jobs.get("pi").await.ok()?;
        (j.status.as_ref()?.active == Some(2)).then_some(j)
    })
    .await;
    assert!(
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_some()
    );
    set_all_status(&admin, &created, terminated(0)).await;
    let done = until(30, "Complete", || async {
        let j = jobs.get("pi").await.ok()?;
        cond(&j, "Complete").is_some().then_some(j)
    })
    .await;
    let st = done.status.clone().unwrap_or_default();
    assert_eq!(st.succeeded, Some(2));
    assert_eq!(st.active, Some(0));
    assert!(st.completion_time.is_some());
    assert_eq!(
        cond(&done, "SuccessCriteriaMet"),
        Some((
            "CompletionsReached".into(),
            "Reached expected number of succeeded pods".into()
        ))
    );
    // Finalizers are gone from the finished pods.
    let left = pods(&admin, "default", sel).await;
    assert!(
        left.iter()
            .all(|p| p.metadata.finalizers.clone().unwrap_or_default().is_empty())
    );
    let reasons = until(10, "events", || async {
        let r = event_reasons(&admin, "default", "pi").await;
        r.contains(&"Completed".to_owned()).then_some(r)
    })
    .await;
    assert!(
        reasons.contains(&"SuccessfulCreate".to_owned()),
        "{reasons:?}"
    );
    // The TTL controller deletes it a second later.
    until(10, "Job deleted by TTL", || async {
        jobs.get("pi").await.is_err().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_fails_past_backoff_limit_and_by_failure_policy() {
    let (_plane, admin) = support::start_all().await;
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("flaky", json!({"backoffLimit": 0})),
    )
    .await
    .expect("create job");
    let sel = "batch.kubernetes.io/job-name=flaky";
    let p = until(10, "a pod", || async {
        pods(&admin, "default", sel).await.into_iter().next()
    })
    .await;
    set_pod_status(
        &admin,
        "default",
        p.metadata.name.as_deref().unwrap_or(""),
        terminated(1),
    )
    .await;
    let failed = until(10, "Failed", || async {
        let j = jobs.get("flaky").await.ok()?;
        cond(&j, "Failed").map(|c| (c, j))
    })
    .await;
    assert_eq!(
        failed.0,
        (
            "BackoffLimitExceeded".to_owned(),
            "Job has reached the specified backoff limit".to_owned()
        )
    );
    assert_eq!(failed.1.status.as_ref().and_then(|s| s.failed), Some(1));
    assert!(cond(&failed.1, "FailureTarget").is_some());

    let policy = json!({"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]});
    jobs.create(
        &PostParams::default(),
        &job(
            "strict",
            json!({"podFailurePolicy": policy, "parallelism": 2, "completions": 4}),
        ),
    )
    .await
    .expect("create job");
    let sel = "batch.kubernetes.io/job-name=strict";
    let ps = until(10, "two pods", || async {
        let p = pods(&admin, "default", sel).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let victim = ps[0].metadata.name.clone().unwrap_or_default();
    set_pod_status(&admin, "default", &victim, terminated(42)).await;
    let (reason, message) = until(10, "Failed by policy", || async {
        cond(&jobs.get("strict").await.ok()?, "Failed")
    })
    .await;
    assert_eq!(reason, "PodFailurePolicy");
    assert_eq!(
        message,
        format!(
            "Container main for pod default/{victim} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_sets_indexes_and_completed_indexes() {
    let (_plane, admin) = support::start_all().await;
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "idx",
            json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3}),
        ),
    )
    .await
    .expect("create job");
    let sel = "batch.kubernetes.io/job-name=idx";
    let ps = until(10, "three pods", || async {
        let p = pods(&admin, "default", sel).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    let mut seen: Vec<String> = ps.iter().map(|p| {
        let idx = p.metadata.annotations.clone().unwrap_or_default()["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(p.spec.as_ref().and_then(|s| s.hostname.clone()), Some(format!("idx-{idx}")));
        idx
    }).collect();
    seen.sort();
    assert_eq!(seen, vec!["0", "1", "2"]);
    set_all_status(&admin, &ps, terminated(0)).await;
    let j = until(30, "Complete", || async {
        let j = jobs.get("idx").await.ok()?;
        cond(&j, "Complete").is_some().then_some(j)
    })
    .await;
    assert_eq!(
        j.status.and_then(|s| s.completed_indexes).as_deref(),
        Some("0-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pods_count_as_failed_and_orphans_are_freed() {
    let (_plane, admin) = support::start_all().await;
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    let pods_api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(admin.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("victim", json!({"backoffLimit": 3})),
    )
    .await
    .expect("create job");
    let sel = "batch.kubernetes.io/job-name=victim";
    let first = until(10, "a pod", || async {
        pods(&admin, "default", sel).await.into_iter().next()
    })
    .await;
    let first_name = first.metadata.name.clone().unwrap_or_default();
    // Deleting a running pod: it terminates (finalizer), is counted as
    // failed, freed, and replaced.
    pods_api
        .delete(&first_name, &kube::api::DeleteParams::default())
        .await
        .expect("delete pod");
    // Counted at once; the replacement comes after the 10 s backoff.
    until(10, "failed 1", || async {
        let st = jobs.get("victim").await.ok()?.status?;
        (st.failed == Some(1) && st.active == Some(0)).then_some(())
    })
    .await;
    until(10, "the deleted pod gone", || async {
        pods_api.get(&first_name).await.is_err().then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    until(20, "a replacement", || async {
        let st = jobs.get("victim").await.ok()?.status?;
        (st.active == Some(1) && pods(&admin, "default", sel).await.len() == 1).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "backoff before the replacement"
    );
    // The Job goes (no garbage collector here): its pod stays, and once
    // deleted it is freed of the finalizer and disappears.
    jobs.delete("victim", &kube::api::DeleteParams::default())
        .await
        .expect("delete job");
    until(10, "job gone", || async {
        jobs.get("victim").await.is_err().then_some(())
    })
    .await;
    let orphan = pods(&admin, "default", sel)
        .await
        .into_iter()
        .next()
        .expect("orphan pod");
    let orphan_name = orphan.metadata.name.clone().unwrap_or_default();
    pods_api
        .delete(&orphan_name, &kube::api::DeleteParams::default())
        .await
        .expect("delete orphan");
    until(10, "orphan freed and gone", || async {
        pods_api.get(&orphan_name).await.is_err().then_some(())
    })
    .await;
}
