//! A pod's status from what runs: a pure function of the pod, the engine's
//! view of its containers and the agent's own notes (waiting reasons,
//! probe results), as the kubelet's status manager computes it.

use std::collections::BTreeMap;

use berth_engine::Status;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::names::Kind;

/// One attempt of a container, as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptState {
    /// The attempt number.
    pub attempt: u32,
    /// Init, app or ephemeral.
    pub kind: Kind,
    /// The engine's container id.
    pub id: String,
    /// Running, exited…
    pub status: Status,
    /// Exit code once exited.
    pub exit_code: i32,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Why its start failed.
    pub error: String,
    /// The image as named.
    pub image: String,
    /// The image's id (`sha256:…`).
    pub image_id: String,
    /// Its termination message.
    pub message: String,
}

impl AttemptState {
    /// Whether the process runs.
    pub fn running(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }

    /// Whether it has ended.
    pub fn exited(&self) -> bool {
        matches!(self.status, Status::Exited | Status::Dead)
            || (self.status == Status::Created && !self.error.is_empty())
    }
}

/// What the agent knows about a container beyond the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Why it is waiting (reason, message), when it is not running.
    pub waiting: Option<(String, String)>,
    /// Its readiness probe passed (or it has none).
    pub ready: bool,
    /// Its startup probe passed (or it has none).
    pub started: bool,
}

/// Everything about one container for the status.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Attempts, oldest first.
    pub attempts: Vec<AttemptState>,
    /// The agent's notes.
    pub notes: Notes,
}

fn time(rfc3339: &str) -> Option<Time> {
    if rfc3339.is_empty() || rfc3339.starts_with("0001-") {
        return None;
    }
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(Time)
}

fn container_id(a: &AttemptState) -> String {
    format!("berth://{}", a.id)
}

fn terminated(a: &AttemptState) -> ContainerState {
    let reason = if a.oom_killed {
        "OOMKilled"
    } else if !a.error.is_empty() && a.status == Status::Created {
        "StartError"
    } else if a.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let message = if !a.message.is_empty() {
        Some(a.message.clone())
    } else if !a.error.is_empty() {
        Some(a.error.clone())
    } else {
        None
    };
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: if a.status == Status::Created && a.exit_code == 0 {
                128
            } else {
                a.exit_code
            },
            reason: Some(reason.into()),
            message,
            started_at: time(&a.started_at),
            finished_at: time(&a.finished_at),
            container_id: Some(container_id(a)),
            signal: None,
        }),
        ..Default::default()
    }
}

/// A container's status.
pub fn container_status(name: &str, image: &str, o: &Observed) -> ContainerStatus {
    let last = o.attempts.last();
    let prev = o
        .attempts
        .len()
        .checked_sub(2)
        .and_then(|i| o.attempts.get(i));
    let restart_count = last.map_or(0, |a| a.attempt) as i32;
    let (state, last_state) = match (last, &o.notes.waiting) {
        (Some(a), _) if a.running() => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(&a.started_at),
                }),
                ..Default::default()
            },
            prev.map(terminated),
        ),
        (Some(a), Some((reason, message))) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: (!message.is_empty()).then(|| message.clone()),
                }),
                ..Default::default()
            },
            Some(terminated(a)),
        ),
        (Some(a), None) if a.exited() => (terminated(a), prev.map(terminated)),
        (Some(_), None) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..Default::default()
            },
            prev.map(terminated),
        ),
        (None, waiting) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(
                        waiting
                            .as_ref()
                            .map_or("ContainerCreating".to_owned(), |w| w.0.clone()),
                    ),
                    message: waiting
                        .as_ref()
                        .and_then(|w| (!w.1.is_empty()).then(|| w.1.clone())),
                }),
                ..Default::default()
            },
            None,
        ),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: name.to_owned(),
        image: image.to_owned(),
        image_id: last.map_or(String::new(), |a| a.image_id.clone()),
        container_id: last.filter(|a| a.running() || a.exited()).map(container_id),
        ready: running && o.notes.ready,
        started: Some(running && o.notes.started),
        restart_count,
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..Default::default()
    }
}

/// The node-side facts of the status.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    /// The node's address.
    pub host_ip: String,
    /// The pod's address (the node's for hostNetwork pods).
    pub pod_ip: Option<String>,
    /// When the agent first took the pod.
    pub start_time: Option<Time>,
    /// The sandbox is ready.
    pub sandbox_ready: bool,
    /// Every init container has completed (sidecars: started).
    pub initialized: bool,
    /// The pod failed for good (restartPolicy Never / OnFailure init,
    /// evicted, refused).
    pub failed: Option<(String, String)>,
    /// The kubelet ends the pod (eviction): the DisruptionTarget
    /// condition's message.
    pub disruption: Option<String>,
    /// QoS class name.
    pub qos: String,
}

fn cond(type_: &str, ok: bool, reason: Option<&str>, old: &[PodCondition]) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let prev = old.iter().find(|c| c.type_ == type_);
    let transition = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(k8s_openapi::jiff::Timestamp::now())),
    };
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_owned),
        last_transition_time: transition,
        last_probe_time: None,
        ..Default::default()
    }
}

/// The pod's whole status.
pub fn pod_status(
    pod: &Pod,
    init: &BTreeMap<String, Observed>,
    app: &BTreeMap<String, Observed>,
    ephemeral: &BTreeMap<String, Observed>,
    facts: &PodFacts,
) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let old_conds = old.conditions.clone().unwrap_or_default();
    let empty = Observed::default();
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or(""),
                init.get(&c.name).unwrap_or(&empty),
            )
        })
        .collect();
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or(""),
                app.get(&c.name).unwrap_or(&empty),
            )
        })
        .collect();
    let ephemeral_statuses: Vec<ContainerStatus> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| {
            container_status(
                &c.name,
                c.image.as_deref().unwrap_or(""),
                ephemeral.get(&c.name).unwrap_or(&empty),
            )
        })
        .collect();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let phase = if facts.failed.is_some() {
        "Failed"
    } else if !facts.initialized {
        "Pending"
    } else {
        let running = statuses
            .iter()
            .filter(|s| s.state.as_ref().is_some_and(|s| s.running.is_some()))
            .count();
        let term: Vec<i32> = statuses
            .iter()
            .filter_map(|s| {
                s.state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
            })
            .collect();
        let waiting = statuses.len() - running - term.len();
        if running > 0
            || (waiting > 0
                && statuses.iter().any(|s| {
                    s.restart_count > 0
                        || s.last_state
                            .as_ref()
                            .is_some_and(|l| l.terminated.is_some())
                }))
        {
            "Running"
        } else if waiting > 0 {
            "Pending"
        } else if term.len() == statuses.len() {
            let all_ok = term.iter().all(|c| *c == 0);
            match policy {
                "Always" => "Running",
                "OnFailure" if all_ok => "Succeeded",
                "OnFailure" => "Running",
                _ if all_ok => "Succeeded",
                _ => "Failed",
            }
        } else {
            "Pending"
        }
    };
    let containers_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let ready_reason = if containers_ready {
        None
    } else if terminal {
        Some("PodCompleted")
    } else {
        Some("ContainersNotReady")
    };
    let gates_ok = spec.readiness_gates.iter().flatten().all(|g| {
        old_conds
            .iter()
            .any(|c| c.type_ == g.condition_type && c.status == "True")
    });
    let mut conditions = vec![
        cond(
            "PodReadyToStartContainers",
            facts.sandbox_ready && !terminal,
            None,
            &old_conds,
        ),
        cond(
            "Initialized",
            facts.initialized,
            if facts.initialized {
                None
            } else {
                Some("ContainersNotInitialized")
            },
            &old_conds,
        ),
        cond(
            "Ready",
            containers_ready && gates_ok && !terminal,
            if gates_ok {
                ready_reason
            } else {
                Some("ReadinessGatesNotReady")
            },
            &old_conds,
        ),
        cond(
            "ContainersReady",
            containers_ready && !terminal,
            ready_reason,
            &old_conds,
        ),
    ];
    if terminal && facts.initialized {
        conditions[1].reason = Some("PodCompleted".into());
    }
    let with_message = |c: &mut PodCondition, statuses: &[ContainerStatus]| {
        if c.status == "False" && c.reason.as_deref() == Some("ContainersNotReady") {
            let names: Vec<&str> = statuses
                .iter()
                .filter(|s| !s.ready)
                .map(|s| s.name.as_str())
                .collect();
            c.message = Some(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
    };
    for c in conditions.iter_mut().skip(2) {
        with_message(c, &statuses);
    }
    if !facts.initialized
        && let Some(c) = conditions.get_mut(1)
    {
        let names: Vec<&str> = init_statuses
            .iter()
            .filter(|s| {
                s.state
                    .as_ref()
                    .is_none_or(|st| st.terminated.as_ref().is_none_or(|t| t.exit_code != 0))
            })
            .map(|s| s.name.as_str())
            .collect();
        c.message = Some(format!(
            "containers with incomplete status: [{}]",
            names.join(" ")
        ));
    }
    if let Some(m) = &facts.disruption {
        let mut c = cond(
            "DisruptionTarget",
            true,
            Some("TerminationByKubelet"),
            &old_conds,
        );
        c.message = Some(m.clone());
        conditions.push(c);
    }
    // keep the conditions others own (PodScheduled, readiness gates, DisruptionTarget)
    for c in &old_conds {
        if !conditions.iter().any(|n| n.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
    let (reason, message) = match &facts.failed {
        Some((r, m)) => (
            (!r.is_empty()).then(|| r.clone()),
            (!m.is_empty()).then(|| m.clone()),
        ),
        None => (None, None),
    };
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(facts.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: facts.host_ip.clone(),
        }]),
        pod_ip: facts.pod_ip.clone(),
        pod_ips: facts.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: facts.start_time.clone().or(old.start_time),
        qos_class: Some(facts.qos.clone()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral_statuses.is_empty())
            .then_some(ephemeral_statuses),
        nominated_node_name: old.nominated_node_name,
        reason,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(n: u32, status: Status, exit: i32) -> AttemptState {
        AttemptState {
            attempt: n,
            kind: Kind::Container,
            id: format!("id{n}"),
            status,
            exit_code: exit,
            started_at: "2026-12-03T10:00:00Z".into(),
            finished_at: if status == Status::Exited {
                "2026-12-03T10:00:01Z".into()
            } else {
                String::new()
            },
            oom_killed: false,
            error: String::new(),
            image: "busybox".into(),
            image_id: "sha256:ab".into(),
            message: String::new(),
        }
    }

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap()
    }

    fn facts() -> PodFacts {
        PodFacts {
            host_ip: "127.0.0.1".into(),
            pod_ip: Some("198.18.0.2".into()),
            sandbox_ready: true,
            initialized: true,
            qos: "BestEffort".into(),
            ..Default::default()
        }
    }

    #[test]
    fn running_ready_and_restarted() {
        let mut app = BTreeMap::new();
        app.insert(
            "c".to_owned(),
            Observed {
                attempts: vec![
                    attempt(0, Status::Exited, 137),
                    attempt(1, Status::Running, 0),
                ],
                notes: Notes {
                    waiting: None,
                    ready: true,
                    started: true,
                },
            },
        );
        let s = pod_status(
            &pod("Always"),
            &BTreeMap::new(),
            &app,
            &BTreeMap::new(),
            &facts(),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.restart_count, 1);
        assert!(cs.ready);
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            137
        );
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
    }

    #[test]
    fn phases_by_restart_policy() {
        for (policy, exit, phase) in [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
        ] {
            let mut app = BTreeMap::new();
            app.insert(
                "c".to_owned(),
                Observed {
                    attempts: vec![attempt(0, Status::Exited, exit)],
                    notes: Notes::default(),
                },
            );
            let s = pod_status(
                &pod(policy),
                &BTreeMap::new(),
                &app,
                &BTreeMap::new(),
                &facts(),
            );
            assert_eq!(s.phase.as_deref(), Some(phase), "{policy} {exit}");
        }
        let mut app = BTreeMap::new();
        app.insert(
            "c".to_owned(),
            Observed {
                attempts: vec![attempt(0, Status::Exited, 1)],
                notes: Notes {
                    waiting: Some((
                        "CrashLoopBackOff".into(),
                        "back-off 10s restarting failed container=c pod=p_ns(u)".into(),
                    )),
                    ..Default::default()
                },
            },
        );
        let s = pod_status(
            &pod("Always"),
            &BTreeMap::new(),
            &app,
            &BTreeMap::new(),
            &facts(),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
    }

    #[test]
    fn image_pull_errors_keep_the_pod_pending() {
        let mut app = BTreeMap::new();
        app.insert(
            "c".to_owned(),
            Observed {
                attempts: vec![],
                notes: Notes {
                    waiting: Some(("ErrImagePull".into(), "no".into())),
                    ..Default::default()
                },
            },
        );
        let s = pod_status(
            &pod("Always"),
            &BTreeMap::new(),
            &app,
            &BTreeMap::new(),
            &facts(),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
    }
}
