//! Finding a pod's containers by the labels the agent gives them: the
//! current attempt of a container is the highest
//! `io.kubernetes.container.restartCount`, the previous one the next below.
//! When a pod of the same name was recreated, the newest pod (uid) wins.

use berth_engine::{Container, PodRuntime};

pub use crate::names::{
    CONTAINER_ATTEMPT as RESTART_COUNT, CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID,
};

/// A container of a pod, as asked for in a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container's name in the pod.
    pub container: String,
}

impl Target {
    /// A target from path parts.
    pub fn new(namespace: &str, pod: &str, container: &str) -> Target {
        Target {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            container: container.to_owned(),
        }
    }
}

/// One engine container of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The engine's container id.
    pub id: String,
    /// The pod's uid.
    pub uid: String,
    /// The container's name in the pod.
    pub name: String,
    /// The attempt (restart count).
    pub attempt: u32,
    /// When the engine created it (RFC 3339).
    pub created: String,
    /// Its process runs.
    pub running: bool,
}

/// Why no container was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Nothing of the pod is on this node.
    Pod,
    /// The pod has no container of that name (yet).
    Container,
    /// `previous` asked for, and there is no earlier attempt.
    Previous,
}

impl Missing {
    /// kubelet's answer: status code and text.
    pub fn failure(&self, target: &Target) -> (u16, String) {
        match self {
            Missing::Pod => (404, format!("pod {:?} does not exist", target.pod)),
            Missing::Container => (
                400,
                format!(
                    "container {:?} in pod {:?} is not available",
                    target.container, target.pod
                ),
            ),
            Missing::Previous => (
                400,
                format!(
                    "previous terminated container {:?} in pod {:?} not found",
                    target.container, target.pod
                ),
            ),
        }
    }
}

/// The pod's containers among `all` (every container of the engine).
pub fn attempts_of(all: &[Container], namespace: &str, pod: &str) -> Vec<Attempt> {
    all.iter()
        .filter(|c| {
            let l = &c.record.labels;
            l.get(POD_NAMESPACE).is_some_and(|v| v == namespace)
                && l.get(POD_NAME).is_some_and(|v| v == pod)
        })
        .map(|c| {
            let l = &c.record.labels;
            Attempt {
                id: c.record.id.clone(),
                uid: l.get(POD_UID).cloned().unwrap_or_default(),
                name: l.get(CONTAINER_NAME).cloned().unwrap_or_default(),
                attempt: l
                    .get(RESTART_COUNT)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                created: c.record.created.clone(),
                running: c.state.status == berth_engine::Status::Running && c.state.is_active(),
            }
        })
        .collect()
}

/// The current (or, with `previous`, the previous) attempt of `container`.
pub fn pick<'a>(
    attempts: &'a [Attempt],
    container: &str,
    previous: bool,
) -> Result<&'a Attempt, Missing> {
    let newest_uid = attempts
        .iter()
        .max_by(|a, b| a.created.cmp(&b.created))
        .map(|a| a.uid.as_str())
        .ok_or(Missing::Pod)?;
    let mut mine: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.uid == newest_uid && a.name == container)
        .collect();
    mine.sort_by_key(|a| (a.attempt, a.created.clone()));
    let current = mine.pop().ok_or(Missing::Container)?;
    if !previous {
        return Ok(current);
    }
    mine.into_iter()
        .rev()
        .find(|a| a.attempt < current.attempt)
        .ok_or(Missing::Previous)
}

/// Finds a container attempt through the engine (blocking).
pub fn find(
    engine: &berth_engine::Engine,
    target: &Target,
    previous: bool,
) -> Result<Attempt, (u16, String)> {
    let attempts = attempts_of(&engine.list(), &target.namespace, &target.pod);
    let pod_known =
        !attempts.is_empty() || sandbox_of(engine, &target.namespace, &target.pod).is_some();
    match pick(&attempts, &target.container, previous) {
        Ok(a) => Ok(a.clone()),
        Err(Missing::Pod) if pod_known => Err(Missing::Container.failure(target)),
        Err(m) => Err(m.failure(target)),
    }
}

/// The pod's newest sandbox (blocking).
pub fn sandbox_of(
    engine: &berth_engine::Engine,
    namespace: &str,
    pod: &str,
) -> Option<berth_engine::sandbox::Sandbox> {
    engine
        .sandboxes()
        .into_iter()
        .filter(|s| {
            s.labels.get(POD_NAMESPACE).is_some_and(|v| v == namespace)
                && s.labels.get(POD_NAME).is_some_and(|v| v == pod)
        })
        .max_by(|a, b| {
            let ready = |s: &berth_engine::sandbox::Sandbox| {
                s.state == berth_engine::sandbox::SandboxState::Ready
            };
            (ready(a), &a.created).cmp(&(ready(b), &b.created))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, uid: &str, name: &str, attempt: u32, created: &str) -> Attempt {
        Attempt {
            id: id.into(),
            uid: uid.into(),
            name: name.into(),
            attempt,
            created: created.into(),
            running: false,
        }
    }

    fn target() -> Target {
        Target::new("ns", "p", "c")
    }

    #[test]
    fn the_current_attempt_is_the_highest_and_previous_the_one_below() {
        let list = vec![
            a("x0", "u", "c", 0, "2026-01-01T00:00:00Z"),
            a("x2", "u", "c", 2, "2026-01-01T00:00:02Z"),
            a("x1", "u", "c", 1, "2026-01-01T00:00:01Z"),
            a("y0", "u", "side", 0, "2026-01-01T00:00:03Z"),
        ];
        assert_eq!(pick(&list, "c", false).unwrap().id, "x2");
        assert_eq!(pick(&list, "c", true).unwrap().id, "x1");
        assert_eq!(pick(&list, "side", false).unwrap().id, "y0");
        assert_eq!(pick(&list, "side", true), Err(Missing::Previous));
        assert_eq!(pick(&list, "nope", false), Err(Missing::Container));
        assert_eq!(pick(&[], "c", false), Err(Missing::Pod));
    }

    #[test]
    fn a_recreated_pod_of_the_same_name_wins_over_the_old_one() {
        let list = vec![
            a("old", "u1", "c", 3, "2026-01-01T00:00:00Z"),
            a("new", "u2", "c", 0, "2026-01-02T00:00:00Z"),
        ];
        assert_eq!(pick(&list, "c", false).unwrap().id, "new");
        assert_eq!(pick(&list, "c", true), Err(Missing::Previous));
    }

    #[test]
    fn errors_read_as_kubelet_s() {
        assert_eq!(
            Missing::Previous.failure(&target()),
            (
                400,
                "previous terminated container \"c\" in pod \"p\" not found".to_owned()
            )
        );
        assert_eq!(
            Missing::Container.failure(&target()),
            (
                400,
                "container \"c\" in pod \"p\" is not available".to_owned()
            )
        );
        assert_eq!(
            Missing::Pod.failure(&target()),
            (404, "pod \"p\" does not exist".to_owned())
        );
    }
}
