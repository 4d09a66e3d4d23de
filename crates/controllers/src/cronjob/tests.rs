//! Table-style tests of the CronJob controller's pure decisions.
#![allow(clippy::type_complexity)]

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{Value, json};

use super::core::{self, Missed};
use super::schedule::Schedule;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("ts")
}

#[test]
fn most_recent_schedule_times_and_missed_counts() {
    let cases: [(
        &str,
        &str,
        Option<&str>,
        Option<i64>,
        &str,
        Option<&str>,
        Missed,
    ); 8] = [
        // Created 10:00:30, now 10:00:50: nothing due yet.
        (
            "* * * * *",
            "2024-01-01T10:00:30Z",
            None,
            None,
            "2024-01-01T10:00:50Z",
            None,
            Missed::None,
        ),
        // One due.
        (
            "* * * * *",
            "2024-01-01T10:00:30Z",
            None,
            None,
            "2024-01-01T10:01:10Z",
            Some("2024-01-01T10:01:00Z"),
            Missed::None,
        ),
        // A few missed: the latest is returned.
        (
            "* * * * *",
            "2024-01-01T10:00:30Z",
            None,
            None,
            "2024-01-01T10:05:10Z",
            Some("2024-01-01T10:05:00Z"),
            Missed::Few,
        ),
        // From the last schedule time rather than the creation.
        (
            "*/10 * * * *",
            "2024-01-01T00:00:00Z",
            Some("2024-01-01T10:00:00Z"),
            None,
            "2024-01-01T10:15:00Z",
            Some("2024-01-01T10:10:00Z"),
            Missed::None,
        ),
        // More than 100 missed.
        (
            "* * * * *",
            "2024-01-01T00:00:00Z",
            None,
            None,
            "2024-01-01T03:00:00Z",
            Some("2024-01-01T03:00:00Z"),
            Missed::Many,
        ),
        // The starting deadline bounds how far back to look: not "many".
        (
            "* * * * *",
            "2024-01-01T00:00:00Z",
            None,
            Some(200),
            "2024-01-01T03:00:30Z",
            Some("2024-01-01T03:00:00Z"),
            Missed::Few,
        ),
        // Irregular schedule (weekdays 06:30-16:30 every 4 h).
        (
            "30 6-16/4 * * 1-5",
            "2024-01-05T00:00:00Z",
            None,
            None,
            "2024-01-08T07:00:00Z",
            Some("2024-01-08T06:30:00Z"),
            Missed::Few,
        ),
        (
            "@hourly",
            "2024-01-01T10:00:00Z",
            Some("2024-01-01T10:00:00Z"),
            None,
            "2024-01-01T10:59:59Z",
            None,
            Missed::None,
        ),
    ];
    for (spec, created, last, deadline, now, want, missed) in cases {
        let s = Schedule::parse(spec).expect(spec);
        let got = core::most_recent(
            &s,
            &TimeZone::UTC,
            ts(created),
            last.map(ts),
            deadline,
            ts(now),
        )
        .expect("schedule");
        assert_eq!((got.1, got.2), (want.map(ts), missed), "{spec} now {now}");
    }
    let never = Schedule::parse("0 0 30 2 *").expect("parse");
    assert_eq!(
        core::most_recent(
            &never,
            &TimeZone::UTC,
            ts("2024-01-01T00:00:00Z"),
            None,
            None,
            ts("2024-03-01T00:00:00Z")
        )
        .err()
        .as_deref(),
        Some("time difference between two schedules is less than 1 second")
    );
}

fn cronjob(spec: Value, status: Value) -> CronJob {
    let mut s = json!({
        "schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
        "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    });
    if let (Some(base), Some(over)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": "hello", "namespace": "default", "uid": "cj1", "creationTimestamp": "2024-01-01T09:00:00Z"},
        "spec": s, "status": status
    }))
    .expect("cronjob")
}

fn child(name: &str, cond: Option<&str>, start: &str) -> Job {
    let mut status = json!({"startTime": start});
    if let Some(c) = cond {
        status["conditions"] = json!([{"type": c, "status": "True"}]);
        status["completionTime"] = json!("2024-01-01T10:01:00Z");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"template": {}},
        "status": status
    }))
    .expect("job")
}

fn active_ref(name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": "default", "uid": format!("uid-{name}")})
}

fn reasons(p: &core::Plan) -> Vec<&str> {
    p.events.iter().map(|e| e.reason).collect()
}

#[test]
fn creates_the_job_for_the_due_time() {
    let cj = cronjob(
        json!({}),
        json!({"lastScheduleTime": "2024-01-01T10:00:00Z"}),
    );
    let p = core::plan(&cj, &[], ts("2024-01-01T10:05:02Z"));
    let (job, at) = p.create.clone().expect("a job");
    assert_eq!(at, ts("2024-01-01T10:05:00Z"));
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("hello-{}", at.as_second() / 60).as_str())
    );
    assert_eq!(job.metadata.name.as_deref(), Some("hello-28401725"));
    let ann = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        "2024-01-01T10:05:00Z"
    );
    assert_eq!(job.metadata.labels.clone().unwrap_or_default()["team"], "a");
    let owner = &job.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("CronJob", "cj1", Some(true))
    );
    assert_eq!(p.status.last_schedule_time.as_ref().map(|t| t.0), Some(at));
    // Next look: just after 10:10.
    assert_eq!(
        p.requeue_after,
        Some(Duration::from_millis(4 * 60_000 + 58_000 + 100))
    );
}

#[test]
fn scheduled_timestamp_is_written_in_the_time_zone() {
    let cj = cronjob(
        json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}),
        json!({}),
    );
    let p = core::plan(&cj, &[], ts("2024-01-02T00:00:05Z"));
    let (job, at) = p.create.expect("a job");
    assert_eq!(at, ts("2024-01-02T00:00:00Z"));
    assert_eq!(
        job.metadata.annotations.unwrap_or_default()["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        "2024-01-02T09:00:00+09:00"
    );
}

#[test]
fn policies_deadlines_and_refusals() {
    let now = ts("2024-01-01T10:05:02Z");
    let last =
        json!({"lastScheduleTime": "2024-01-01T10:00:00Z", "active": [active_ref("hello-1")]});
    let running = [child("hello-1", None, "2024-01-01T10:00:01Z")];
    let cases: [(Value, Value, Vec<&str>, bool, Vec<&str>); 8] = [
        // Allow: runs alongside.
        (json!({}), last.clone(), vec![], true, vec![]),
        // Forbid: skipped with an event.
        (
            json!({"concurrencyPolicy": "Forbid"}),
            last.clone(),
            vec!["JobAlreadyActive"],
            false,
            vec![],
        ),
        // Replace: the running one is deleted.
        (
            json!({"concurrencyPolicy": "Replace"}),
            last.clone(),
            vec!["SuccessfulDelete"],
            true,
            vec!["hello-1"],
        ),
        // Suspended: nothing.
        (
            json!({"suspend": true}),
            last.clone(),
            vec![],
            false,
            vec![],
        ),
        // Too late for the starting deadline: as in kube, the deadline
        // bounds the look-back, so the missed time is simply not due.
        (
            json!({"startingDeadlineSeconds": 1}),
            last.clone(),
            vec![],
            false,
            vec![],
        ),
        // Within it.
        (
            json!({"startingDeadlineSeconds": 10}),
            last.clone(),
            vec![],
            true,
            vec![],
        ),
        (
            json!({"timeZone": "Mars/Olympus"}),
            last.clone(),
            vec!["UnknownTimeZone"],
            false,
            vec![],
        ),
        (
            json!({"schedule": "TZ=UTC */5 * * * *"}),
            last.clone(),
            vec!["UnparseableSchedule"],
            false,
            vec![],
        ),
    ];
    for (spec, status, want_events, creates, deletes) in cases {
        let cj = cronjob(spec.clone(), status);
        let p = core::plan(&cj, &running, now);
        assert_eq!(reasons(&p), want_events, "{spec}");
        assert_eq!(p.create.is_some(), creates, "{spec}");
        assert_eq!(p.delete, deletes, "{spec}");
    }
    assert_eq!(
        core::rfc1123z(ts("2024-01-01T10:05:00Z")),
        "Mon, 01 Jan 2024 10:05:00 +0000"
    );
    drop(last);
    let cj = cronjob(json!({"schedule": "TZ=UTC */5 * * * *"}), json!({}));
    let p = core::plan(&cj, &[], now);
    assert_eq!(
        p.events[0].note,
        "unparseable schedule: \"TZ=UTC */5 * * * *\" : cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    );
}

#[test]
fn finished_jobs_leave_active_and_old_ones_are_deleted() {
    let cj = cronjob(
        json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}),
        json!({"lastScheduleTime": "2024-01-01T10:05:00Z", "active": [active_ref("hello-3"), active_ref("gone")]}),
    );
    let jobs = [
        child("hello-1", Some("Complete"), "2024-01-01T09:50:00Z"),
        child("hello-2", Some("Complete"), "2024-01-01T09:55:00Z"),
        child("hello-3", Some("Complete"), "2024-01-01T10:00:00Z"),
        child("hello-4", Some("Failed"), "2024-01-01T09:40:00Z"),
        child("hello-5", Some("Failed"), "2024-01-01T09:45:00Z"),
    ];
    let p = core::plan(&cj, &jobs, ts("2024-01-01T10:06:00Z"));
    assert!(p.status.active.is_none());
    assert_eq!(
        p.status.last_successful_time.as_ref().map(|t| t.0),
        Some(ts("2024-01-01T10:01:00Z"))
    );
    assert_eq!(p.delete, vec!["hello-1", "hello-2", "hello-4"]);
    assert_eq!(
        reasons(&p),
        vec![
            "SawCompletedJob",
            "MissingJob",
            "SuccessfulDelete",
            "SuccessfulDelete",
            "SuccessfulDelete"
        ]
    );
    assert_eq!(
        p.events[0].note,
        "Saw completed job: hello-3, condition: Complete"
    );
    assert_eq!(p.events[1].note, "Active job went missing: gone");
    assert_eq!(p.events[2].note, "Deleted job hello-1");
    assert!(p.create.is_none());
}
