//! The CronJob controller against the in-process API server.

mod support;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{event_reasons, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_creates_due_jobs_and_tracks_them() {
    let (_plane, admin) = support::start_all().await;
    let cjs: Api<CronJob> = Api::namespaced(admin.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"metadata": {"labels": {"from": "tick"}},
                                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                    "containers": [{"name": "main", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    cjs.create(&PostParams::default(), &cj)
        .await
        .expect("create");
    // Pretend the last run was two minutes ago: this minute's run is due.
    let now = jiff::Timestamp::now();
    let last = jiff::Timestamp::from_second(now.as_second() - 120).expect("ts");
    cjs.patch_status(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"lastScheduleTime": last.to_string()}})),
    )
    .await
    .expect("status");
    // This minute's run (or the next one's, should the minute turn).
    let minute = now.as_second() - now.as_second().rem_euclid(60);
    let (due, job) = until(10, "the due Job", || async {
        for due in [minute, minute + 60] {
            if let Ok(j) = jobs.get(&format!("tick-{}", due / 60)).await {
                return Some((due, j));
            }
        }
        None
    })
    .await;
    let name = format!("tick-{}", due / 60);
    let ann = job.metadata.annotations.clone().unwrap_or_default();
    let stamp = jiff::Timestamp::from_second(due)
        .expect("ts")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(
        ann.get("batch.kubernetes.io/cronjob-scheduled-timestamp"),
        Some(&stamp)
    );
    assert_eq!(
        job.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get("from")
            .map(String::as_str),
        Some("tick")
    );
    let cj = until(10, "status.active", || async {
        let c = cjs.get("tick").await.ok()?;
        (c.status.as_ref()?.active.as_ref()?.len() == 1).then_some(c)
    })
    .await;
    let st = cj.status.clone().unwrap_or_default();
    assert_eq!(st.last_schedule_time.map(|t| t.0.as_second()), Some(due));
    assert_eq!(
        st.active.unwrap_or_default()[0].name.as_deref(),
        Some(name.as_str())
    );

    // The Job finishes: it leaves `active`, lastSuccessfulTime is set.
    jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {
        "startTime": now.to_string(),
        "completionTime": now.to_string(),
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]
    }}))).await.expect("complete");
    let cj = until(10, "active emptied", || async {
        let c = cjs.get("tick").await.ok()?;
        let s = c.status.clone()?;
        (s.active.is_none_or(|a| a.is_empty()) && s.last_successful_time.is_some()).then_some(c)
    })
    .await;
    assert!(cj.status.is_some());
    let reasons = until(10, "events", || async {
        let r = event_reasons(&admin, "default", "tick").await;
        r.contains(&"SawCompletedJob".to_owned()).then_some(r)
    })
    .await;
    assert!(
        reasons.contains(&"SuccessfulCreate".to_owned()),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_zone_in_the_schedule_is_refused() {
    let plane = support::Plane::start().await;
    let cjs: Api<CronJob> = Api::namespaced(plane.admin(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tz"},
        "spec": {"schedule": "TZ=Europe/Paris 0 * * * *",
                 "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    let err = cjs
        .create(&PostParams::default(), &cj)
        .await
        .expect_err("refused");
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{}",
        status.message
    );
}
