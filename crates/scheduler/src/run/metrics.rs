//! kube-scheduler's series (`scheduler_*`), kept by the loop and rendered
//! by the API server's `/metrics` in `berth server`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_types::prom::{self, Histogram, Kind, Source, Text};

use super::SCHEDULER_NAME;

/// How a scheduling attempt ended (kube's `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Bound to a node.
    Scheduled,
    /// No node fits.
    Unschedulable,
    /// Something else failed (no nodes, a binding refused).
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Scheduled => "scheduled",
            Outcome::Unschedulable => "unschedulable",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug)]
struct Inner {
    attempts: BTreeMap<Outcome, Histogram>,
    /// Queue entry to bound, by the number of attempts it took.
    sli: BTreeMap<u32, Histogram>,
    preemption_attempts: u64,
    pending: (usize, usize, usize),
}

/// The scheduler's figures (cheap to clone, shared).
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    inner: Arc<Mutex<Inner>>,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            inner: Arc::new(Mutex::new(Inner {
                attempts: BTreeMap::new(),
                sli: BTreeMap::new(),
                preemption_attempts: 0,
                pending: (0, 0, 0),
            })),
        }
    }
}

impl SchedulerMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt that ended as `outcome` after `took`.
    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        self.lock()
            .attempts
            .entry(outcome)
            .or_insert_with(|| Histogram::new(&prom::exponential_buckets(0.001, 2.0, 15)))
            .observe(took.as_secs_f64());
    }

    /// A pod was bound `took` after it entered the queue, in `attempts`.
    pub fn scheduled_after(&self, attempts: u32, took: Duration) {
        self.lock()
            .sli
            .entry(attempts)
            .or_insert_with(|| Histogram::new(&prom::exponential_buckets(0.01, 2.0, 20)))
            .observe(took.as_secs_f64());
    }

    /// Counts a preemption attempt.
    pub fn preemption_attempt(&self) {
        self.lock().preemption_attempts += 1;
    }

    /// The pending pods: (active, backoff, unschedulable).
    pub fn pending(&self, counts: (usize, usize, usize)) {
        self.lock().pending = counts;
    }
}

impl Source for SchedulerMetrics {
    fn render(&self, t: &mut Text) {
        let m = self.lock();
        let profile = ("profile", SCHEDULER_NAME);
        t.family(
            "scheduler_schedule_attempts_total",
            Kind::Counter,
            "[STABLE] Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
        );
        for (outcome, h) in &m.attempts {
            let labels = [profile, ("result", outcome.as_str())];
            t.sample(
                "scheduler_schedule_attempts_total",
                &labels,
                h.count() as f64,
            );
        }
        t.family(
            "scheduler_scheduling_attempt_duration_seconds",
            Kind::Histogram,
            "[STABLE] Scheduling attempt latency in seconds (scheduling algorithm + binding)",
        );
        for (outcome, h) in &m.attempts {
            let labels = [profile, ("result", outcome.as_str())];
            t.histogram("scheduler_scheduling_attempt_duration_seconds", &labels, h);
        }
        t.family(
            "scheduler_pending_pods",
            Kind::Gauge,
            "[STABLE] Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods.",
        );
        let (active, backoff, unschedulable) = m.pending;
        t.sample(
            "scheduler_pending_pods",
            &[("queue", "active")],
            active as f64,
        );
        t.sample(
            "scheduler_pending_pods",
            &[("queue", "backoff")],
            backoff as f64,
        );
        t.sample(
            "scheduler_pending_pods",
            &[("queue", "unschedulable")],
            unschedulable as f64,
        );
        t.family(
            "scheduler_preemption_attempts_total",
            Kind::Counter,
            "[STABLE] Total preemption attempts in the cluster till now",
        );
        t.sample(
            "scheduler_preemption_attempts_total",
            &[],
            m.preemption_attempts as f64,
        );
        t.family(
            "scheduler_pod_scheduling_sli_duration_seconds",
            Kind::Histogram,
            "[BETA] E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
        );
        for (attempts, h) in &m.sli {
            let attempts = attempts.to_string();
            t.histogram(
                "scheduler_pod_scheduling_sli_duration_seconds",
                &[("attempts", &attempts)],
                h,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_by_result_and_profile() {
        let m = SchedulerMetrics::default();
        m.attempt(Outcome::Scheduled, Duration::from_millis(3));
        m.attempt(Outcome::Scheduled, Duration::from_millis(5));
        m.attempt(Outcome::Unschedulable, Duration::from_millis(1));
        m.preemption_attempt();
        m.pending((1, 2, 3));
        m.scheduled_after(1, Duration::from_millis(20));
        let mut t = Text::new();
        t.source(&m);
        let s = prom::parse(&t.finish()).unwrap();
        let value = |name: &str, key: &str, v: &str| {
            s.iter()
                .find(|x| x.name == name && x.label(key) == Some(v))
                .map(|x| x.value)
        };
        assert_eq!(
            value("scheduler_schedule_attempts_total", "result", "scheduled"),
            Some(2.0)
        );
        assert_eq!(
            value(
                "scheduler_schedule_attempts_total",
                "profile",
                "default-scheduler"
            ),
            Some(2.0)
        );
        assert_eq!(
            value("scheduler_pending_pods", "queue", "unschedulable"),
            Some(3.0)
        );
        assert_eq!(
            value(
                "scheduler_pod_scheduling_sli_duration_seconds_count",
                "attempts",
                "1"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "scheduler_scheduling_attempt_duration_seconds_bucket",
                "le",
                "0.004"
            ),
            Some(1.0)
        );
    }
}
