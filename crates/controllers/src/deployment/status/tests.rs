use super::*;
use crate::deployment::rolling::tests::{deployment, rs};
use k8s_openapi::api::apps::v1::{DeploymentStatus, ReplicaSetCondition};

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn with_deadline(mut d: Deployment, secs: i32, generation: i64) -> Deployment {
    if let Some(s) = d.spec.as_mut() {
        s.progress_deadline_seconds = Some(secs);
    }
    d.metadata.generation = Some(generation);
    d.metadata.name = Some("web".to_owned());
    d
}

fn reason(s: &DeploymentStatus, t: &str) -> Option<(String, String)> {
    get_condition(s, t).map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[test]
fn counts_and_availability() {
    let d = with_deadline(deployment(3, "1", "1"), 600, 2);
    let old = rs("old", 100, 1, 1);
    let new = rs("new", 1, 3, 1);
    let s = calculate_status(&d, &[&old, &new], Some(&new), now());
    assert_eq!(s.replicas, Some(4));
    assert_eq!(s.updated_replicas, Some(3));
    assert_eq!(s.available_replicas, Some(2));
    assert_eq!(s.unavailable_replicas, Some(2));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(
        reason(&s, AVAILABLE),
        Some(("True".to_owned(), MIN_AVAILABLE.to_owned()))
    );
    let low = rs("new", 1, 3, 0);
    let s = calculate_status(&d, &[&low], Some(&low), now());
    assert_eq!(
        reason(&s, AVAILABLE),
        Some(("False".to_owned(), MIN_UNAVAILABLE.to_owned()))
    );
    assert_eq!(
        get_condition(&s, AVAILABLE)
            .and_then(|c| c.message.clone())
            .as_deref(),
        Some("Deployment does not have minimum availability.")
    );
}

#[test]
fn progressing_then_complete() {
    let mut d = with_deadline(deployment(3, "1", "0"), 600, 1);
    let old = rs("old", 100, 3, 3);
    let mut new = rs("web-abc", 1, 1, 0);
    new.metadata.name = Some("web-abc".to_owned());
    let s = rollout_status(&d, &[&old, &new], Some(&new), now());
    let c = get_condition(&s, PROGRESSING)
        .cloned()
        .expect("progressing");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some(RS_UPDATED))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" is progressing.")
    );
    d.status = Some(s);
    let done = rs("web-abc", 1, 3, 3);
    let mut done = done;
    done.metadata.name = Some("web-abc".to_owned());
    let s = rollout_status(&d, &[&done], Some(&done), now());
    let c = get_condition(&s, PROGRESSING)
        .cloned()
        .expect("progressing");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some(NEW_RS_AVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has successfully progressed.")
    );
    // Complete stays complete.
    d.status = Some(s.clone());
    assert_eq!(rollout_status(&d, &[&done], Some(&done), now()), s);
    assert!(requeue_stuck(&d, &s, now()).is_none());
}

#[test]
fn no_progress_past_the_deadline_times_out() {
    let mut d = with_deadline(deployment(3, "1", "0"), 10, 1);
    let old = rs("old", 100, 3, 3);
    let new = rs("web-abc", 1, 1, 0);
    let long_ago = now() - k8s_openapi::jiff::SignedDuration::from_secs(60);
    let mut st = calculate_status(&d, &[&old, &new], Some(&new), long_ago);
    set_condition(
        &mut st,
        condition(PROGRESSING, "True", RS_UPDATED, "x".to_owned(), long_ago),
    );
    d.status = Some(st.clone());
    // Not stuck yet from the point of view of "now - 5s".
    let soon = long_ago + k8s_openapi::jiff::SignedDuration::from_secs(5);
    assert!(requeue_stuck(&d, &st, soon).is_some());
    let s = rollout_status(&d, &[&old, &new], Some(&new), now());
    assert_eq!(
        reason(&s, PROGRESSING),
        Some(("False".to_owned(), TIMED_OUT.to_owned()))
    );
    // No deadline: no Progressing condition at all.
    let mut none = deployment(3, "1", "0");
    if let Some(spec) = none.spec.as_mut() {
        spec.progress_deadline_seconds = Some(i32::MAX);
    }
    none.status = d.status.clone();
    let s = rollout_status(&none, &[&old, &new], Some(&new), now());
    assert!(get_condition(&s, PROGRESSING).is_none());
}

#[test]
fn replica_failures_surface_and_clear() {
    let d = with_deadline(deployment(3, "1", "0"), 600, 1);
    let mut new = rs("new", 1, 3, 0);
    if let Some(s) = new.status.as_mut() {
        s.conditions = Some(vec![ReplicaSetCondition {
            type_: "ReplicaFailure".to_owned(),
            status: "True".to_owned(),
            reason: Some("FailedCreate".to_owned()),
            message: Some("exceeded quota".to_owned()),
            last_transition_time: None,
        }]);
    }
    let s = rollout_status(&d, &[&new], Some(&new), now());
    assert_eq!(
        reason(&s, REPLICA_FAILURE),
        Some(("True".to_owned(), "FailedCreate".to_owned()))
    );
    let mut d2 = d.clone();
    d2.status = Some(s);
    let ok = rs("new", 1, 3, 0);
    let s = rollout_status(&d2, &[&ok], Some(&ok), now());
    assert!(get_condition(&s, REPLICA_FAILURE).is_none());
}

#[test]
fn pause_and_resume_conditions() {
    let mut d = with_deadline(deployment(3, "1", "0"), 600, 1);
    assert!(paused_condition(&d, now()).is_none());
    if let Some(s) = d.spec.as_mut() {
        s.paused = Some(true);
    }
    let c = paused_condition(&d, now()).expect("paused");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        ("Unknown", Some(PAUSED), Some("Deployment is paused"))
    );
    let mut st = DeploymentStatus::default();
    set_condition(&mut st, c);
    d.status = Some(st);
    assert!(paused_condition(&d, now()).is_none());
    if let Some(s) = d.spec.as_mut() {
        s.paused = Some(false);
    }
    let c = paused_condition(&d, now()).expect("resumed");
    assert_eq!(c.reason.as_deref(), Some(RESUMED));
}

#[test]
fn set_condition_keeps_transition_time_when_status_holds() {
    let t0 = now();
    let t1 = now() + k8s_openapi::jiff::SignedDuration::from_secs(10);
    let mut s = DeploymentStatus::default();
    set_condition(
        &mut s,
        condition(PROGRESSING, "True", NEW_RS_CREATED, "a".to_owned(), t0),
    );
    set_condition(
        &mut s,
        condition(PROGRESSING, "True", RS_UPDATED, "b".to_owned(), t1),
    );
    let c = get_condition(&s, PROGRESSING).cloned().expect("cond");
    assert_eq!(c.last_transition_time.map(|t| t.0), Some(t0));
    assert_eq!(c.last_update_time.map(|t| t.0), Some(t1));
    // Same status and reason: nothing changes (not even the message).
    set_condition(
        &mut s,
        condition(PROGRESSING, "True", RS_UPDATED, "c".to_owned(), t1),
    );
    assert_eq!(
        get_condition(&s, PROGRESSING)
            .and_then(|c| c.message.clone())
            .as_deref(),
        Some("b")
    );
}
