//! The CronJob controller's decisions, pure: from a CronJob, the Jobs it
//! controls and the time, what to create, delete, record and write back,
//! and when to look again (kube's `syncCronJob` and its history cleanup).

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::schedule::Schedule;
use crate::util::owner;

/// The annotation holding a Job's scheduled time (RFC 3339, in the
/// CronJob's time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// How far after a scheduled time the controller looks again.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// An event to record on the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// The reason (kube's exact word).
    pub reason: &'static str,
    /// The message.
    pub note: String,
}

fn normal(reason: &'static str, note: String) -> Ev {
    Ev {
        warning: false,
        reason,
        note,
    }
}

fn warning(reason: &'static str, note: String) -> Ev {
    Ev {
        warning: true,
        reason,
        note,
    }
}

/// What one sync decides.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The status to write (compared with the current one by the loop).
    pub status: CronJobStatus,
    /// Jobs to delete (Background propagation), each with its event.
    pub delete: Vec<String>,
    /// A Job to create for `scheduled`, then add to `status.active`.
    pub create: Option<(Job, Timestamp)>,
    /// Events to record.
    pub events: Vec<Ev>,
    /// When to sync again.
    pub requeue_after: Option<Duration>,
}

/// How many scheduled times went by unmet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// At most one.
    None,
    /// A few (2..=100).
    Few,
    /// More than 100: kube warns `TooManyMissedTimes`.
    Many,
}

/// kube's `mostRecentScheduleTime`: the earliest time considered (last
/// schedule, creation or the starting deadline), the most recent
/// scheduled time not after `now`, and how many were missed.
pub fn most_recent(
    sched: &Schedule,
    tz: &TimeZone,
    creation: Timestamp,
    last_schedule: Option<Timestamp>,
    starting_deadline: Option<i64>,
    now: Timestamp,
) -> Result<(Timestamp, Option<Timestamp>, Missed), String> {
    let mut earliest = last_schedule.unwrap_or(creation);
    if let Some(secs) = starting_deadline {
        let deadline = Timestamp::from_second(now.as_second().saturating_sub(secs))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let too_close = || "time difference between two schedules is less than 1 second".to_owned();
    let Some(t1) = sched.next(earliest, tz) else {
        return Err(too_close());
    };
    if now < t1 {
        return Ok((earliest, None, Missed::None));
    }
    let Some(t2) = sched.next(t1, tz) else {
        return Err(too_close());
    };
    if now < t2 {
        return Ok((earliest, Some(t1), Missed::None));
    }
    let between = t2.as_second() - t1.as_second();
    if between < 1 {
        return Err(too_close());
    }
    let elapsed = now.as_second() - t1.as_second();
    let missed = elapsed / between + 1;
    let potential = Timestamp::from_second(t1.as_second() + (missed - 2) * between)
        .map_err(|e| e.to_string())?;
    let mut most_recent = None;
    let mut t = sched.next(potential, tz);
    while let Some(at) = t {
        if at > now {
            break;
        }
        most_recent = Some(at);
        t = sched.next(at, tz);
    }
    let kind = if missed > 100 {
        Missed::Many
    } else if missed > 1 {
        Missed::Few
    } else {
        Missed::None
    };
    Ok((earliest, most_recent, kind))
}

/// The condition (`Complete` or `Failed`) that finished the Job, if any.
pub fn finished(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// `<cronjob>-<minutes since the epoch of the scheduled time>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// A Job's reference as CronJob status lists it.
pub fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_owned()),
        kind: Some("Job".to_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// The Job kube makes from the template for one scheduled time.
pub fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj.spec.as_ref().map(|s| &s.job_template);
    let tmeta = template.and_then(|t| t.metadata.as_ref());
    let mut annotations = tmeta
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_owned(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(
                cj.metadata.name.as_deref().unwrap_or(""),
                scheduled,
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.and_then(|m| m.labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner::controller_ref_for(cj)]),
            ..Default::default()
        },
        spec: template.and_then(|t| t.spec.clone()),
        status: None,
    }
}

/// Go's `time.RFC1123Z` in UTC.
pub(crate) fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

fn start_time(job: &Job) -> Option<Timestamp> {
    job.status.as_ref()?.start_time.as_ref().map(|t| t.0)
}

/// One sync of a CronJob over the Jobs it controls.
pub fn plan(cj: &CronJob, jobs: &[Job], now: Timestamp) -> Plan {
    let mut p = Plan {
        status: cj.status.clone().unwrap_or_default(),
        ..Default::default()
    };
    let spec = cj.spec.clone().unwrap_or_default();
    let mut active = p.status.active.take().unwrap_or_default();
    let in_active = |active: &[ObjectReference], uid: Option<&String>| {
        active.iter().any(|r| r.uid.as_ref() == uid)
    };
    for j in jobs {
        let uid = j.metadata.uid.as_ref();
        let name = j.metadata.name.clone().unwrap_or_default();
        let found = in_active(&active, uid);
        match finished(j) {
            None if !found => p.events.push(warning(
                "UnexpectedJob",
                format!("Saw a job that the controller did not create or forgot: {name}"),
            )),
            Some(cond) if found => {
                active.retain(|r| r.uid.as_ref() != uid);
                p.events.push(normal(
                    "SawCompletedJob",
                    format!("Saw completed job: {name}, condition: {cond}"),
                ));
            }
            _ => {}
        }
        if finished(j) == Some("Complete") {
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if let Some(done) = done {
                let later = p
                    .status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|t| done.0 > t.0);
                if later {
                    p.status.last_successful_time = Some(done);
                }
            }
        }
    }
    active.retain(|r| {
        let exists = jobs.iter().any(|j| j.metadata.uid == r.uid);
        if !exists {
            p.events.push(normal(
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    r.name.as_deref().unwrap_or("")
                ),
            ));
        }
        exists
    });

    if cj.metadata.deletion_timestamp.is_none() {
        schedule(cj, &spec, &mut active, &mut p, now);
    }
    cleanup_history(&spec, jobs, &mut active, &mut p);
    p.status.active = if active.is_empty() {
        None
    } else {
        Some(active)
    };
    p
}

fn schedule(
    cj: &CronJob,
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    active: &mut Vec<ObjectReference>,
    p: &mut Plan,
    now: Timestamp,
) {
    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(name) => match TimeZone::get(name) {
            Ok(tz) => tz,
            Err(_) => {
                p.events.push(warning(
                    "UnknownTimeZone",
                    format!("invalid timeZone: {name:?}: unknown time zone {name}"),
                ));
                return;
            }
        },
    };
    if spec.suspend == Some(true) {
        return;
    }
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(err) => {
            p.events.push(warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {err}", spec.schedule),
            ));
            return;
        }
    };
    let creation = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let last = p.status.last_schedule_time.as_ref().map(|t| t.0);
    let deadline = spec.starting_deadline_seconds;
    let next_after = |last: Option<Timestamp>| -> Option<Duration> {
        let (earliest, recent, _) = most_recent(&sched, &tz, creation, last, None, now).ok()?;
        let next = sched.next(recent.unwrap_or(earliest), &tz)?;
        let wait = u64::try_from(next.as_millisecond() - now.as_millisecond()).unwrap_or(0);
        Some(Duration::from_millis(wait) + NEXT_SCHEDULE_DELTA)
    };
    let scheduled = match most_recent(&sched, &tz, creation, last, deadline, now) {
        Err(err) => {
            p.events.push(warning(
                "InvalidSchedule",
                format!("invalid schedule: {} : {err}", spec.schedule),
            ));
            return;
        }
        Ok((_, None, _)) => {
            p.requeue_after = next_after(last);
            return;
        }
        Ok((_, Some(t), missed)) => {
            if missed == Missed::Many {
                p.events.push(warning(
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_owned(),
                ));
            }
            t
        }
    };
    p.requeue_after = next_after(last);
    if let Some(secs) = deadline
        && scheduled.as_second() + secs < now.as_second()
    {
        p.events.push(warning(
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                rfc1123z(scheduled)
            ),
        ));
        return;
    }
    let name = job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled);
    if active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || last == Some(scheduled)
    {
        return;
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        p.events.push(normal(
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .to_owned(),
        ));
        return;
    }
    if policy == "Replace" {
        for r in active.drain(..) {
            let n = r.name.unwrap_or_default();
            p.events
                .push(normal("SuccessfulDelete", format!("Deleted job {n}")));
            p.delete.push(n);
        }
    }
    p.create = Some((job_for(cj, scheduled, &tz), scheduled));
    p.status.last_schedule_time = Some(Time(scheduled));
    p.requeue_after = next_after(Some(scheduled));
}

/// Deletes the oldest finished Jobs beyond the history limits.
fn cleanup_history(
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    jobs: &[Job],
    active: &mut Vec<ObjectReference>,
    p: &mut Plan,
) {
    let limits = [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ];
    for (cond, limit) in limits {
        let mut done: Vec<&Job> = jobs.iter().filter(|j| finished(j) == Some(cond)).collect();
        let limit = usize::try_from(limit).unwrap_or(0);
        if done.len() <= limit {
            continue;
        }
        // Oldest first; Jobs without a start time last, names break ties.
        done.sort_by(|a, b| match (start_time(a), start_time(b)) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => a.metadata.name.cmp(&b.metadata.name),
        });
        let excess = done.len() - limit;
        for j in done.into_iter().take(excess) {
            let n = j.metadata.name.clone().unwrap_or_default();
            if p.delete.contains(&n) {
                continue;
            }
            active.retain(|r| r.uid != j.metadata.uid);
            p.events
                .push(normal("SuccessfulDelete", format!("Deleted job {n}")));
            p.delete.push(n);
        }
    }
}
