//! Filter outcomes and kube's "0/N nodes are available: ..." error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Why a node was rejected: merely now (preemption might help) or for
/// good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `Unschedulable`: removing pods might make it fit.
    Unschedulable,
    /// `UnschedulableAndUnresolvable`: no preemption can help.
    UnschedulableAndUnresolvable,
}

/// A filter's rejection of a node, with kube's reason strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// How final the rejection is.
    pub code: Code,
    /// The reasons, as kube words them.
    pub reasons: Vec<Cow<'static, str>>,
}

impl Status {
    /// `Unschedulable` with one reason.
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }

    /// `UnschedulableAndUnresolvable` with one reason.
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }

    /// The reasons joined as kube's `Status.Message()` joins them.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Why each node was rejected in one scheduling attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The rejected nodes and why.
    pub statuses: Vec<(String, Status)>,
    /// The status of every node not in `statuses` (set when a pre-filter
    /// rejected the pod outright).
    pub absent: Option<Status>,
    /// A pre-filter's rejection message, which replaces the per-node reasons.
    pub prefilter_msg: Option<String>,
    /// What preemption reported ("preemption: ..."), if it was tried.
    pub postfilter_msg: Option<String>,
}

impl Diagnosis {
    /// The status of `node`.
    pub fn status_of(&self, node: &str) -> Option<&Status> {
        self.statuses
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, s)| s)
            .or(self.absent.as_ref())
    }
}

/// No node fits the pod. Displays as kube's `FitError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes there were.
    pub num_all_nodes: usize,
    /// Why they were rejected.
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if let Some(msg) = &self.diagnosis.prefilter_msg {
            write!(f, " {msg}.")?;
        } else {
            let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, status) in &self.diagnosis.statuses {
                for r in &status.reasons {
                    *histogram.entry(r.as_ref()).or_insert(0) += 1;
                }
            }
            let absent = self
                .num_all_nodes
                .saturating_sub(self.diagnosis.statuses.len());
            if absent > 0
                && let Some(status) = &self.diagnosis.absent
            {
                for r in &status.reasons {
                    *histogram.entry(r.as_ref()).or_insert(0) += absent;
                }
            }
            // kube sorts the "<count> <reason>" strings themselves.
            let mut parts: Vec<String> =
                histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                write!(f, " {}.", parts.join(", "))?;
            }
        }
        if let Some(msg) = &self.diagnosis.postfilter_msg {
            write!(f, " {msg}.")?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Why a pod could not be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// There are no nodes at all.
    #[error("no nodes available to schedule pods")]
    NoNodes,
    /// No node fits.
    #[error("{0}")]
    Fit(FitError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(statuses: Vec<(&str, Status)>, n: usize) -> FitError {
        FitError {
            num_all_nodes: n,
            diagnosis: Diagnosis {
                statuses: statuses
                    .into_iter()
                    .map(|(n, s)| (n.to_owned(), s))
                    .collect(),
                ..Diagnosis::default()
            },
        }
    }

    #[test]
    fn kube_fit_error_text() {
        let e = fit(vec![("n1", Status::unschedulable("Insufficient cpu"))], 1);
        assert_eq!(
            e.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu."
        );
        let e = fit(
            vec![
                ("a", Status::unschedulable("Insufficient memory")),
                (
                    "b",
                    Status::unresolvable("node(s) had untolerated taint {node-role: x}"),
                ),
                ("c", Status::unschedulable("Insufficient memory")),
            ],
            3,
        );
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role: x}, 2 Insufficient memory."
        );
        // Several reasons of one node each count; the strings sort as text.
        let both = Status {
            code: Code::Unschedulable,
            reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        };
        let e = fit(
            vec![
                ("a", both.clone()),
                ("b", both),
                ("c", Status::unschedulable("Too many pods")),
            ],
            12,
        );
        assert_eq!(
            e.to_string(),
            "0/12 nodes are available: 1 Too many pods, 2 Insufficient cpu, 2 Insufficient memory."
        );
    }

    #[test]
    fn prefilter_and_postfilter_messages() {
        let mut e = fit(vec![], 2);
        e.diagnosis.prefilter_msg = Some("pod has unbound immediate PersistentVolumeClaims".into());
        e.diagnosis.absent = Some(Status::unresolvable(
            "pod has unbound immediate PersistentVolumeClaims",
        ));
        e.diagnosis.postfilter_msg = Some(
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                .into(),
        );
        assert_eq!(
            e.to_string(),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
        );
        assert_eq!(
            ScheduleError::NoNodes.to_string(),
            "no nodes available to schedule pods"
        );
    }
}
