//! The work queues' series as kube-controller-manager serves them
//! (`workqueue_*{name}`), rendered by the API server's `/metrics` in
//! `berth server`: [`QueueMetrics`] is the registry the controllers'
//! named queues ([`WorkQueue::named`](super::queue::WorkQueue::named))
//! report to.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use berth_types::prom::{self, Histogram, Kind, Source, Text};

/// One queue's figures at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Keys added (not counting a key added again while it waits).
    pub adds: u64,
    /// Keys re-queued with backoff after a failure.
    pub retries: u64,
    /// Keys waiting.
    pub depth: usize,
    /// Seconds between a key's add and a worker taking it.
    pub queue_duration: Histogram,
    /// Seconds a worker held a key.
    pub work_duration: Histogram,
    /// Seconds of work in progress, summed over the held keys.
    pub unfinished_seconds: f64,
    /// Seconds the longest-held key has been held.
    pub longest_running_seconds: f64,
}

impl Default for Stats {
    fn default() -> Self {
        // client-go's workqueue buckets: 10 ns to 10 s, by tens
        let buckets = prom::exponential_buckets(10e-9, 10.0, 10);
        Stats {
            adds: 0,
            retries: 0,
            depth: 0,
            queue_duration: Histogram::new(&buckets),
            work_duration: Histogram::new(&buckets),
            unfinished_seconds: 0.0,
            longest_running_seconds: 0.0,
        }
    }
}

/// A queue that can tell its figures.
pub trait Snapshot: Send + Sync {
    /// The figures at `now`.
    fn snapshot(&self, now: Instant) -> Stats;
}

type Queues = Vec<(String, Weak<dyn Snapshot>)>;

/// The registry of named queues (cheap to clone, shared).
#[derive(Clone, Default)]
pub struct QueueMetrics {
    queues: Arc<Mutex<Queues>>,
}

impl std::fmt::Debug for QueueMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueMetrics").finish_non_exhaustive()
    }
}

impl QueueMetrics {
    /// Adds a queue (kept only while the queue lives).
    pub(crate) fn register(&self, name: &str, queue: Weak<dyn Snapshot>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.retain(|(_, q)| q.strong_count() > 0);
        queues.push((name.to_owned(), queue));
    }

    /// Every live queue's figures, by name.
    pub fn snapshot(&self) -> Vec<(String, Stats)> {
        let now = Instant::now();
        let queues: Vec<(String, Arc<dyn Snapshot>)> = {
            let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues
                .iter()
                .filter_map(|(n, q)| Some((n.clone(), q.upgrade()?)))
                .collect()
        };
        let mut out: Vec<(String, Stats)> = queues
            .into_iter()
            .map(|(n, q)| (n, q.snapshot(now)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Source for QueueMetrics {
    fn render(&self, t: &mut Text) {
        let all = self.snapshot();
        let scalar =
            |t: &mut Text, name: &str, kind: Kind, help: &str, f: &dyn Fn(&Stats) -> f64| {
                t.family(name, kind, help);
                for (queue, s) in &all {
                    t.sample(name, &[("name", queue)], f(s));
                }
            };
        scalar(
            t,
            "workqueue_adds_total",
            Kind::Counter,
            "[ALPHA] Total number of adds handled by workqueue",
            &|s| s.adds as f64,
        );
        scalar(
            t,
            "workqueue_depth",
            Kind::Gauge,
            "[ALPHA] Current depth of workqueue",
            &|s| s.depth as f64,
        );
        scalar(
            t,
            "workqueue_retries_total",
            Kind::Counter,
            "[ALPHA] Total number of retries handled by workqueue",
            &|s| s.retries as f64,
        );
        scalar(
            t,
            "workqueue_longest_running_processor_seconds",
            Kind::Gauge,
            "[ALPHA] How many seconds has the longest running processor for workqueue been running.",
            &|s| s.longest_running_seconds,
        );
        scalar(
            t,
            "workqueue_unfinished_work_seconds",
            Kind::Gauge,
            "[ALPHA] How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
            &|s| s.unfinished_seconds,
        );
        t.family(
            "workqueue_queue_duration_seconds",
            Kind::Histogram,
            "[ALPHA] How long in seconds an item stays in workqueue before being requested.",
        );
        for (queue, s) in &all {
            t.histogram(
                "workqueue_queue_duration_seconds",
                &[("name", queue)],
                &s.queue_duration,
            );
        }
        t.family(
            "workqueue_work_duration_seconds",
            Kind::Histogram,
            "[ALPHA] How long in seconds processing an item from workqueue takes.",
        );
        for (queue, s) in &all {
            t.histogram(
                "workqueue_work_duration_seconds",
                &[("name", queue)],
                &s.work_duration,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::queue::WorkQueue;

    #[test]
    fn renders_each_live_queue_by_name() {
        let metrics = QueueMetrics::default();
        let q: WorkQueue<String> = WorkQueue::named("replicaset", &metrics);
        q.add("ns/a".to_owned());
        {
            let _gone: WorkQueue<String> = WorkQueue::named("gone", &metrics);
        }
        let mut t = Text::new();
        t.source(&metrics);
        let samples = prom::parse(&t.finish()).unwrap();
        let adds: Vec<(Option<&str>, f64)> = samples
            .iter()
            .filter(|s| s.name == "workqueue_adds_total")
            .map(|s| (s.label("name"), s.value))
            .collect();
        assert_eq!(adds, vec![(Some("replicaset"), 1.0)]);
        let depth = samples.iter().find(|s| s.name == "workqueue_depth");
        assert_eq!(depth.map(|s| s.value), Some(1.0));
        assert!(
            samples
                .iter()
                .any(|s| s.name == "workqueue_work_duration_seconds_count")
        );
    }
}
