//! A work queue of keys, as kube's `workqueue.RateLimitingInterface`:
//! a key added several times before a worker takes it is handed out once;
//! a key added while a worker holds it is handed out again after the
//! worker calls [`WorkQueue::done`]; no two workers hold the same key.
//!
//! Each queue keeps kube's workqueue figures (adds, retries, time queued,
//! time worked, work in progress); a queue made with [`WorkQueue::named`]
//! is rendered by its [`QueueMetrics`] under kube's series names.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::queue_metrics::{QueueMetrics, Snapshot, Stats};

/// The first retry delay of a failing key ([`WorkQueue::add_rate_limited`]).
pub const BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest retry delay of a failing key.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    /// When each waiting key was added (for the time queued).
    added_at: HashMap<K, Instant>,
    /// When each held key was handed out (for the time worked).
    started_at: HashMap<K, Instant>,
    stats: Stats,
}

impl<K: Send> Snapshot for Mutex<State<K>> {
    fn snapshot(&self, now: Instant) -> Stats {
        let s = self.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = s.stats.clone();
        stats.depth = s.queue.len();
        for at in s.started_at.values() {
            let secs = now.saturating_duration_since(*at).as_secs_f64();
            stats.unfinished_seconds += secs;
            stats.longest_running_seconds = stats.longest_running_seconds.max(secs);
        }
        stats
    }
}

/// A de-duplicating queue of keys, cheap to clone (shared).
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    notify: Arc<Notify>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            state: self.state.clone(),
            notify: self.notify.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> WorkQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                added_at: HashMap::new(),
                started_at: HashMap::new(),
                stats: Stats::default(),
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    /// An empty queue whose figures `metrics` renders as `name` (kube's
    /// queue name, e.g. `deployment`).
    pub fn named(name: &str, metrics: &QueueMetrics) -> Self {
        let queue = Self::new();
        let state: Arc<dyn Snapshot> = queue.state.clone();
        metrics.register(name, Arc::downgrade(&state));
        queue
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A poisoned lock only means a holder panicked mid-update of plain
        // collections; the data stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` now (once, however often it is added).
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if !s.dirty.insert(key.clone()) {
            return;
        }
        s.stats.adds += 1;
        s.added_at.entry(key.clone()).or_insert_with(Instant::now);
        if s.processing.contains(&key) {
            return;
        }
        s.queue.push_back(key);
        drop(s);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` after its backoff (5 ms, doubling per failure since the
    /// last [`forget`](Self::forget), up to 60 s).
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut s = self.lock();
            s.stats.retries += 1;
            let n = s.failures.entry(key.clone()).or_insert(0);
            let exp = (*n).min(20);
            *n = n.saturating_add(1);
            BASE_DELAY.saturating_mul(1u32 << exp).min(MAX_DELAY)
        };
        self.add_after(key, delay);
    }

    /// Resets `key`'s backoff (after a success).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// How often `key` failed since its last [`forget`](Self::forget).
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for the next key; the caller holds it until [`done`](Self::done).
    pub async fn get(&self) -> K {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    let now = Instant::now();
                    if let Some(at) = s.added_at.remove(&key) {
                        let waited = now.saturating_duration_since(at).as_secs_f64();
                        s.stats.queue_duration.observe(waited);
                    }
                    s.started_at.insert(key.clone(), now);
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Releases `key`; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if let Some(at) = s.started_at.remove(key) {
            s.stats.work_duration.observe(at.elapsed().as_secs_f64());
        }
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Keys waiting (not those held by workers).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupes_and_requeues_after_done() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let a = q.get().await;
        assert_eq!(a, "a");
        q.add("a"); // while held: not handed out again yet
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await, "a");
        q.done(&"a");
        q.done(&"b");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn backoff_grows_and_forget_resets() {
        let q: WorkQueue<&str> = WorkQueue::new();
        q.add_rate_limited("x");
        q.add_rate_limited("x");
        assert_eq!(q.failures(&"x"), 2);
        q.forget(&"x");
        assert_eq!(q.failures(&"x"), 0);
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.ok(), Some("x"));
    }

    #[tokio::test]
    async fn figures_follow_kubes_workqueue() {
        let metrics = QueueMetrics::default();
        let q = WorkQueue::named("deployment", &metrics);
        q.add("a".to_owned());
        q.add("a".to_owned()); // already waiting: not an add
        q.add("b".to_owned());
        q.add_rate_limited("c".to_owned());
        let now = Instant::now();
        let state: &Mutex<State<String>> = &q.state;
        let s = state.snapshot(now);
        assert_eq!((s.adds, s.retries, s.depth), (2, 1, 2));
        let a = q.get().await;
        let s = state.snapshot(Instant::now() + Duration::from_secs(3));
        assert_eq!(s.queue_duration.count(), 1);
        assert!(s.longest_running_seconds >= 3.0 && s.unfinished_seconds >= 3.0);
        q.done(&a);
        let s = state.snapshot(Instant::now());
        assert_eq!((s.work_duration.count(), s.depth), (1, 1));
        assert_eq!(s.longest_running_seconds, 0.0);
    }
}
