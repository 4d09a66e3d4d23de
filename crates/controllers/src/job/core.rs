//! The Job controller's decisions, pure: from a Job, its pods and the
//! time, which pods to create and delete, whose tracking finalizers to
//! remove, the status to write (before and after the removal), the events
//! and when to look again (kube's `syncJob`, `manageJob` and
//! `trackJobStatusAndRemoveFinalizers`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::indexes;
use super::policy::{self, Action, BackoffRecord};
use crate::util::{owner, pods};

/// The finalizer that keeps a finished pod until the Job counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label holding an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The annotation counting an index's earlier failures.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// An event to record on the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// The reason.
    pub reason: String,
    /// The message.
    pub note: String,
}

/// What one sync decides.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Written first when pods newly finished: their UIDs recorded in
    /// `uncountedTerminatedPods`, so a crash cannot count them twice.
    pub interim: Option<JobStatus>,
    /// Pods whose tracking finalizer to remove (after `interim`).
    pub remove_finalizers: Vec<String>,
    /// The status once the finalizers are gone.
    pub status: JobStatus,
    /// Pods to create.
    pub create: Vec<Pod>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Events to record.
    pub events: Vec<Ev>,
    /// When to sync again regardless of changes (backoff, deadline).
    pub requeue_after: Option<Duration>,
    /// The retry memory after this sync (kept by the loop).
    pub backoff: BackoffRecord,
}

struct Spec {
    parallelism: i32,
    completions: Option<i32>,
    indexed: bool,
    backoff_limit: i32,
    per_index_limit: Option<i32>,
    max_failed_indexes: Option<i32>,
    suspend: bool,
    only_replace_failed: bool,
    on_failure: bool,
}

fn spec_of(job: &Job) -> Spec {
    let s = job.spec.clone().unwrap_or_default();
    let restart = s
        .template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.clone())
        .unwrap_or_default();
    Spec {
        parallelism: s.parallelism.unwrap_or(1).max(0),
        completions: s.completions,
        indexed: s.completion_mode.as_deref() == Some("Indexed"),
        backoff_limit: s.backoff_limit.unwrap_or(6),
        per_index_limit: s.backoff_limit_per_index,
        max_failed_indexes: s.max_failed_indexes,
        suspend: s.suspend == Some(true),
        only_replace_failed: s.pod_replacement_policy.as_deref() == Some("Failed")
            || s.pod_failure_policy.is_some(),
        on_failure: restart == "OnFailure",
    }
}

/// Whether the pod carries the Job tracking finalizer.
pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|f| f == TRACKING_FINALIZER)
}

/// A pod's completion index, when it has a valid one.
pub fn pod_index(pod: &Pod, completions: Option<i32>) -> Option<i32> {
    let text =
        pods::annotation(pod, COMPLETION_INDEX).or_else(|| pods::label(pod, COMPLETION_INDEX))?;
    let i: i32 = text.parse().ok()?;
    (i >= 0 && completions.is_none_or(|c| i < c)).then_some(i)
}

fn condition(status: &JobStatus, type_: &str) -> Option<JobCondition> {
    status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets a condition (replacing one of the same type when its status
/// changes); returns whether anything changed.
fn set_condition(status: &mut JobStatus, c: JobCondition) -> bool {
    let list = status.conditions.get_or_insert_with(Vec::new);
    if let Some(old) = list.iter_mut().find(|o| o.type_ == c.type_) {
        if old.status == c.status {
            return false;
        }
        *old = c;
        return true;
    }
    list.push(c);
    true
}

/// The Job is finished (`Complete` or `Failed` is True).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| condition(s, "Complete").is_some() || condition(s, "Failed").is_some())
}

/// How a pod stands for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Running,
    Succeeded,
    Failed(Action),
}

fn outcome(pod: &Pod, spec: &Spec, job: &Job, finishing: bool) -> Outcome {
    match pods::phase(pod) {
        "Succeeded" => Outcome::Succeeded,
        "Failed" => Outcome::Failed(policy::evaluate(
            job.spec
                .as_ref()
                .and_then(|s| s.pod_failure_policy.as_ref()),
            pod,
        )),
        _ if pods::is_deleting(pod) && (!spec.only_replace_failed || finishing) => {
            Outcome::Failed(Action::Count)
        }
        _ => Outcome::Running,
    }
}

/// One sync of a Job over the pods it controls, without retry memory.
pub fn plan(job: &Job, all_pods: &[Pod], now: Timestamp) -> Plan {
    plan_with(job, all_pods, None, now)
}

/// One sync of a Job over the pods it controls; `prior` is the retry
/// memory of earlier syncs (rebuilt from the pods when absent).
pub fn plan_with(
    job: &Job,
    all_pods: &[Pod],
    prior: Option<BackoffRecord>,
    now: Timestamp,
) -> Plan {
    let spec = spec_of(job);
    let old = job.status.clone().unwrap_or_default();
    let mut p = Plan {
        status: old.clone(),
        ..Default::default()
    };
    if is_finished(job) {
        p.remove_finalizers = all_pods
            .iter()
            .filter(|pod| has_finalizer(pod))
            .map(|pod| pods::name(pod).to_owned())
            .collect();
        return p;
    }
    let uncounted = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let was_uncounted_s: BTreeSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let was_uncounted_f: BTreeSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();

    // First pass: the failure or success that finishes the Job, if any.
    let mut fail_job_message = None;
    let mut new_failed = 0;
    for pod in all_pods {
        let fresh = has_finalizer(pod) || was_uncounted_f.contains(pods::uid(pod));
        if let Outcome::Failed(action) = outcome(pod, &spec, job, false)
            && fresh
        {
            match action {
                Action::FailJob(m) => {
                    if fail_job_message.is_none() {
                        fail_job_message = Some(m);
                    }
                    new_failed += 1;
                }
                Action::Ignore => {}
                _ => new_failed += 1,
            }
        }
    }
    let uid_gone = |set: &BTreeSet<String>| {
        set.iter()
            .filter(|u| !all_pods.iter().any(|pod| pods::uid(pod) == u.as_str()))
            .count()
    };
    let failed_so_far = old.failed.unwrap_or(0)
        + i32::try_from(new_failed + uid_gone(&was_uncounted_f)).unwrap_or(i32::MAX);

    // Index bookkeeping (Indexed Jobs).
    let completions = spec.completions;
    let mut completed: BTreeSet<i32> = indexes::parse(
        old.completed_indexes.as_deref().unwrap_or(""),
        completions.unwrap_or(i32::MAX),
    );
    let mut failed_indexes: BTreeSet<i32> = indexes::parse(
        old.failed_indexes.as_deref().unwrap_or(""),
        completions.unwrap_or(i32::MAX),
    );
    let mut index_failures: BTreeMap<i32, i32> = BTreeMap::new();
    if spec.indexed {
        for pod in all_pods {
            let Some(i) = pod_index(pod, completions) else {
                continue;
            };
            match outcome(pod, &spec, job, false) {
                Outcome::Succeeded => {
                    completed.insert(i);
                }
                Outcome::Failed(action) if spec.per_index_limit.is_some() => {
                    let before: i32 = pods::annotation(pod, INDEX_FAILURE_COUNT)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if action == Action::Ignore {
                        continue;
                    }
                    let count = before + 1;
                    let e = index_failures.entry(i).or_insert(0);
                    *e = (*e).max(count);
                    if action == Action::FailIndex
                        || spec.per_index_limit.is_some_and(|l| count > l)
                    {
                        failed_indexes.insert(i);
                    }
                }
                _ => {}
            }
        }
        completed.retain(|i| !failed_indexes.contains(i));
    }

    let active_pods: Vec<&Pod> = all_pods.iter().filter(|pod| pods::is_active(pod)).collect();
    let mut terminating = i32::try_from(
        all_pods
            .iter()
            .filter(|pod| pods::is_terminating(pod))
            .count(),
    )
    .unwrap_or(i32::MAX);

    // Decide how the Job ends, if it does now.
    // (type of the terminal condition, interim type, reason, message)
    let mut finish: Option<(&str, &str, String, String)> = None;
    if let Some(c) = condition(&old, "FailureTarget") {
        finish = Some((
            "Failed",
            "FailureTarget",
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default(),
        ));
    } else if let Some(c) = condition(&old, "SuccessCriteriaMet") {
        finish = Some((
            "Complete",
            "SuccessCriteriaMet",
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default(),
        ));
    } else if let Some(m) = fail_job_message {
        finish = Some(("Failed", "FailureTarget", "PodFailurePolicy".into(), m));
    }
    let on_failure_restarts: i32 = all_pods
        .iter()
        .filter(|pod| matches!(pods::phase(pod), "Running" | "Pending"))
        .flat_map(|pod| {
            let s = pod.status.as_ref();
            s.and_then(|s| s.init_container_statuses.clone())
                .into_iter()
                .flatten()
                .chain(
                    s.and_then(|s| s.container_statuses.clone())
                        .into_iter()
                        .flatten(),
                )
        })
        .map(|c| c.restart_count)
        .sum();
    let past_on_failure = spec.on_failure
        && if spec.backoff_limit == 0 {
            on_failure_restarts > 0
        } else {
            on_failure_restarts >= spec.backoff_limit
        };
    let start = old.start_time.as_ref().map(|t| t.0);
    if finish.is_none() {
        let deadline = job.spec.as_ref().and_then(|s| s.active_deadline_seconds);
        if (spec.per_index_limit.is_none() && failed_so_far > spec.backoff_limit) || past_on_failure
        {
            finish = Some((
                "Failed",
                "FailureTarget",
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        } else if spec
            .max_failed_indexes
            .is_some_and(|m| i32::try_from(failed_indexes.len()).unwrap_or(i32::MAX) > m)
        {
            finish = Some((
                "Failed",
                "FailureTarget",
                "MaxFailedIndexesExceeded".into(),
                "Job has exceeded the specified maximal number of failed indexes".into(),
            ));
        } else if let (Some(secs), Some(start), false) = (deadline, start, spec.suspend) {
            let end = start.as_second() + secs;
            if end <= now.as_second() {
                finish = Some((
                    "Failed",
                    "FailureTarget",
                    "DeadlineExceeded".into(),
                    "Job was active longer than specified deadline".into(),
                ));
            } else {
                let ms = end * 1000 - now.as_millisecond();
                p.requeue_after = Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
            }
        }
    }

    // Second pass: count what finished, remove finalizers.
    let finishing = finish.is_some();
    let mut new_s: BTreeSet<String> = was_uncounted_s.clone();
    let mut new_f: BTreeSet<String> = was_uncounted_f.clone();
    for pod in all_pods {
        let uid = pods::uid(pod).to_owned();
        let fresh = has_finalizer(pod);
        let out = if finishing && pods::is_active(pod) {
            // Pods of a finishing Job are deleted now and counted later.
            Outcome::Running
        } else {
            outcome(pod, &spec, job, finishing)
        };
        match out {
            Outcome::Succeeded if fresh => {
                new_s.insert(uid);
                p.remove_finalizers.push(pods::name(pod).to_owned());
            }
            Outcome::Failed(action) if fresh => {
                if action != Action::Ignore {
                    new_f.insert(uid);
                }
                p.remove_finalizers.push(pods::name(pod).to_owned());
            }
            _ => {}
        }
    }
    // The retry memory: earlier finishes, then this sync's new ones.
    let finished_at = |pod: &Pod| policy::finish_time(pod).unwrap_or(now);
    let base = prior.unwrap_or_else(|| {
        BackoffRecord::from_history(
            all_pods
                .iter()
                .filter(|pod| !has_finalizer(pod))
                .filter_map(|pod| match outcome(pod, &spec, job, false) {
                    Outcome::Succeeded => Some((finished_at(pod), false)),
                    Outcome::Failed(a) if a != Action::Ignore => Some((finished_at(pod), true)),
                    _ => None,
                })
                .collect(),
        )
    });
    let newly = |set: &BTreeSet<String>, was: &BTreeSet<String>| -> Vec<Timestamp> {
        all_pods
            .iter()
            .filter(|pod| set.contains(pods::uid(pod)) && !was.contains(pods::uid(pod)))
            .map(finished_at)
            .collect()
    };
    p.backoff = base.update(
        newly(&new_s, &was_uncounted_s),
        newly(&new_f, &was_uncounted_f),
    );
    let mut succeeded = old.succeeded.unwrap_or(0) + i32::try_from(new_s.len()).unwrap_or(0);
    let failed = old.failed.unwrap_or(0) + i32::try_from(new_f.len()).unwrap_or(0);
    if new_s != was_uncounted_s || new_f != was_uncounted_f {
        let mut interim = old.clone();
        interim.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(new_s.iter().cloned().collect()),
            failed: Some(new_f.iter().cloned().collect()),
        });
        p.interim = Some(interim);
    }
    p.status.succeeded = Some(succeeded);
    p.status.failed = Some(failed);
    p.status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
    if spec.indexed {
        // Unset while empty, as kube leaves it.
        p.status.completed_indexes = Some(indexes::format(&completed)).filter(|s| !s.is_empty());
        succeeded = i32::try_from(completed.len()).unwrap_or(i32::MAX);
        if spec.per_index_limit.is_some() {
            p.status.failed_indexes = Some(indexes::format(&failed_indexes));
        }
    }

    // Success criteria.
    if finish.is_none() {
        let active = i32::try_from(active_pods.len()).unwrap_or(i32::MAX);
        let done = match (spec.indexed, completions) {
            (true, Some(c)) => {
                let failed_n = i32::try_from(failed_indexes.len()).unwrap_or(i32::MAX);
                if failed_n > 0 && succeeded + failed_n >= c {
                    finish = Some((
                        "Failed",
                        "FailureTarget",
                        "FailedIndexes".into(),
                        "Job has failed indexes".into(),
                    ));
                    false
                } else {
                    succeeded >= c
                }
            }
            (_, Some(c)) => succeeded >= c,
            (_, None) => succeeded > 0 && active == 0,
        };
        if done {
            finish = Some((
                "Complete",
                "SuccessCriteriaMet",
                "CompletionsReached".into(),
                "Reached expected number of succeeded pods".into(),
            ));
        }
    }

    // Suspension.
    let suspended_now = condition(&old, "Suspended").is_some();
    if finish.is_none() {
        if spec.suspend {
            if set_condition(
                &mut p.status,
                new_condition("Suspended", "True", "JobSuspended", "Job suspended", now),
            ) {
                p.events.push(Ev {
                    warning: false,
                    reason: "Suspended".into(),
                    note: "Job suspended".into(),
                });
            }
        } else if suspended_now {
            set_condition(
                &mut p.status,
                new_condition("Suspended", "False", "JobResumed", "Job resumed", now),
            );
            p.status.start_time = Some(Time(now));
            p.events.push(Ev {
                warning: false,
                reason: "Resumed".into(),
                note: "Job resumed".into(),
            });
        }
    }
    if p.status.start_time.is_none() && !spec.suspend {
        p.status.start_time = Some(Time(now));
    }

    let mut active = i32::try_from(active_pods.len()).unwrap_or(i32::MAX);
    if finishing || finish.is_some() || spec.suspend {
        for pod in &active_pods {
            p.delete.push(pods::name(pod).to_owned());
        }
    } else {
        manage(
            job,
            &spec,
            &active_pods,
            &completed,
            &failed_indexes,
            &index_failures,
            succeeded,
            terminating,
            now,
            &mut p,
        );
    }
    let deleted = i32::try_from(p.delete.len()).unwrap_or(0);
    active = active - deleted + i32::try_from(p.create.len()).unwrap_or(0);
    terminating += deleted;

    if let Some((terminal, interim_type, reason, message)) = finish {
        set_condition(
            &mut p.status,
            new_condition(interim_type, "True", &reason, &message, now),
        );
        if terminating == 0 && active == 0 {
            set_condition(
                &mut p.status,
                new_condition(terminal, "True", &reason, &message, now),
            );
            if terminal == "Complete" {
                p.status.completion_time = Some(Time(now));
                p.events.push(Ev {
                    warning: false,
                    reason: "Completed".into(),
                    note: "Job completed".into(),
                });
            } else {
                p.events.push(Ev {
                    warning: true,
                    reason,
                    note: message,
                });
            }
            p.requeue_after = None;
        }
    }
    p.status.active = Some(active.max(0));
    p.status.ready = Some(
        i32::try_from(active_pods.iter().filter(|pod| pods::is_ready(pod)).count()).unwrap_or(0),
    );
    p.status.terminating = Some(terminating);
    p
}

#[allow(clippy::too_many_arguments)]
fn manage(
    job: &Job,
    spec: &Spec,
    active_pods: &[&Pod],
    completed: &BTreeSet<i32>,
    failed_indexes: &BTreeSet<i32>,
    index_failures: &BTreeMap<i32, i32>,
    succeeded: i32,
    terminating: i32,
    now: Timestamp,
    p: &mut Plan,
) {
    let active = i32::try_from(active_pods.len()).unwrap_or(i32::MAX);
    let mut to_create: Vec<Option<i32>> = Vec::new();
    if spec.indexed {
        let completions = spec.completions.unwrap_or(0);
        let mut seen: BTreeSet<i32> = BTreeSet::new();
        let mut kept = 0;
        for pod in active_pods {
            match pod_index(pod, spec.completions) {
                Some(i)
                    if !seen.contains(&i)
                        && !completed.contains(&i)
                        && !failed_indexes.contains(&i) =>
                {
                    seen.insert(i);
                    kept += 1;
                }
                _ => p.delete.push(pods::name(pod).to_owned()),
            }
        }
        let room = (spec.parallelism - kept).max(0);
        let mut room = if spec.only_replace_failed {
            room - terminating
        } else {
            room
        };
        for i in 0..completions {
            if room <= 0 {
                break;
            }
            if seen.contains(&i) || completed.contains(&i) || failed_indexes.contains(&i) {
                continue;
            }
            // With podReplacementPolicy Failed, wait for a terminating pod of the index.
            to_create.push(Some(i));
            room -= 1;
        }
    } else {
        let want = match spec.completions {
            // Once one succeeded, whatever runs is left running.
            None if succeeded > 0 => active,
            None => spec.parallelism,
            Some(c) => (c - succeeded).clamp(0, spec.parallelism),
        };
        if active > want {
            let mut victims: Vec<&&Pod> = active_pods.iter().collect();
            // Not yet ready first, then the youngest.
            victims.sort_by_key(|pod| {
                (
                    pods::is_ready(pod),
                    std::cmp::Reverse(pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                )
            });
            for pod in victims
                .into_iter()
                .take(usize::try_from(active - want).unwrap_or(0))
            {
                p.delete.push(pods::name(pod).to_owned());
            }
        } else {
            let mut n = want - active;
            if spec.only_replace_failed {
                n -= terminating;
            }
            to_create.extend((0..n.max(0)).map(|_| None));
        }
    }
    if to_create.is_empty() {
        return;
    }
    // Backoff: consecutive failures since the last success.
    let wait = p.backoff.remaining(now);
    if !wait.is_zero() {
        p.requeue_after = Some(p.requeue_after.map_or(wait, |r| r.min(wait)));
        return;
    }
    for index in to_create {
        p.create.push(new_pod(
            job,
            index,
            index.and_then(|i| index_failures.get(&i).copied()),
        ));
    }
}

/// A pod from the Job's template, with the tracking finalizer, the
/// controller reference and, for an Indexed Job, its index.
pub fn new_pod(job: &Job, index: Option<i32>, index_failures: Option<i32>) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    let mut pod_spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            labels.insert(COMPLETION_INDEX.to_owned(), i.to_string());
            annotations.insert(COMPLETION_INDEX.to_owned(), i.to_string());
            if let Some(n) = index_failures {
                annotations.insert(INDEX_FAILURE_COUNT.to_owned(), n.to_string());
            }
            if pod_spec.hostname.as_deref().unwrap_or("").is_empty() {
                pod_spec.hostname = Some(format!("{name}-{i}"));
            }
            // kube gives every container its index as JOB_COMPLETION_INDEX
            let containers = pod_spec
                .init_containers
                .iter_mut()
                .flatten()
                .chain(pod_spec.containers.iter_mut());
            for c in containers {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    env.push(k8s_openapi::api::core::v1::EnvVar {
                        name: "JOB_COMPLETION_INDEX".to_owned(),
                        value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                            field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.to_owned());
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: if annotations.is_empty() {
                None
            } else {
                Some(annotations)
            },
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner::controller_ref_for(job)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}
