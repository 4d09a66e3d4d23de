//! The scheduling queue: pending pods in priority order then FIFO, a
//! backoff for retried pods, and a parking place for unschedulable pods
//! until the cluster changes (or kube's 5-minute flush).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// The first retry delay.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a pod stays unschedulable without a cluster change before it
/// is retried anyway (kube's `podMaxInUnschedulablePodsDuration`).
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Pod,
    priority: i32,
    attempts: u32,
    last_attempt: Option<Instant>,
    /// When the pod first entered the queue.
    added: Instant,
    state: State,
    /// Bumped on each push to the heap; stale heap items are skipped.
    generation: u64,
    /// Bumped on each timer set; stale timers are skipped.
    timer: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Ready {
    priority: i32,
    seq: u64,
    key: String,
    generation: u64,
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pending pods by `namespace/name`.
#[derive(Debug, Default)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    heap: BinaryHeap<Ready>,
    timers: BinaryHeap<Reverse<(Instant, u64, String)>>,
    parked: HashSet<String>,
    seq: u64,
}

/// The retry delay after `attempts` failed attempts.
pub fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

/// Whether an update of a pending pod may change where it fits (kube's
/// `isPodUpdated`: anything but the status and bookkeeping metadata).
fn changed(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Queue {
        Queue::default()
    }

    /// How many pods are pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pod is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is pending.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// When `key` first entered the queue, and how many attempts it had.
    pub fn first_seen(&self, key: &str) -> Option<(Instant, u32)> {
        self.entries.get(key).map(|e| (e.added, e.attempts))
    }

    /// Pending pods by where they wait: (active, backoff, unschedulable);
    /// a pod being scheduled is in none.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut out = (0, 0, 0);
        for e in self.entries.values() {
            match e.state {
                State::Active => out.0 += 1,
                State::Backoff(_) => out.1 += 1,
                State::Unschedulable(_) => out.2 += 1,
                State::InFlight => {}
            }
        }
        out
    }

    /// The keys of all pending pods.
    pub fn keys(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn activate(&mut self, key: &str) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        self.seq += 1;
        e.generation += 1;
        e.state = State::Active;
        self.parked.remove(key);
        self.heap.push(Ready {
            priority: e.priority,
            seq: self.seq,
            key: key.to_owned(),
            generation: e.generation,
        });
    }

    /// Adds a pending pod or updates it. An update that may change where
    /// it fits retries it (after its backoff).
    pub fn upsert(&mut self, key: &str, pod: Pod, priority: i32) {
        match self.entries.get_mut(key) {
            None => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        pod,
                        priority,
                        attempts: 0,
                        last_attempt: None,
                        added: Instant::now(),
                        state: State::Active,
                        generation: 0,
                        timer: 0,
                    },
                );
                self.activate(key);
            }
            Some(e) => {
                let retry = changed(&e.pod, &pod) && matches!(e.state, State::Unschedulable(_));
                e.pod = pod;
                e.priority = priority;
                if retry {
                    self.retry(key, Instant::now());
                }
            }
        }
    }

    /// Forgets a pod.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
        self.parked.remove(key);
    }

    /// Puts `key` in `state`, with a timer at `at`.
    fn wait(&mut self, key: &str, state: State, at: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.state = state;
        e.timer += 1;
        self.timers.push(Reverse((at, e.timer, key.to_owned())));
        if matches!(state, State::Unschedulable(_)) {
            self.parked.insert(key.to_owned());
        } else {
            self.parked.remove(key);
        }
    }

    /// Takes the most important ready pod.
    pub fn pop(&mut self) -> Option<(String, Pod)> {
        while let Some(r) = self.heap.pop() {
            if let Some(e) = self.entries.get_mut(&r.key)
                && e.generation == r.generation
                && e.state == State::Active
            {
                e.state = State::InFlight;
                e.attempts += 1;
                e.last_attempt = Some(Instant::now());
                return Some((r.key, e.pod.clone()));
            }
        }
        None
    }

    /// Parks a pod that did not fit until the cluster changes.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        self.wait(key, State::Unschedulable(now), now + MAX_UNSCHEDULABLE);
    }

    /// Retries a pod after its backoff (an error, not a misfit).
    pub fn retry(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let at = e.last_attempt.unwrap_or(now) + backoff(e.attempts);
        if at <= now {
            self.activate(key);
        } else {
            self.wait(key, State::Backoff(at), at);
        }
    }

    /// The cluster changed: every unschedulable pod is retried after its
    /// backoff.
    pub fn cluster_changed(&mut self, now: Instant) {
        let parked: Vec<String> = self.parked.drain().collect();
        for key in parked {
            self.retry(&key, now);
        }
    }

    /// Moves pods whose backoff ended, and pods unschedulable for longer
    /// than [`MAX_UNSCHEDULABLE`], to the active queue.
    pub fn tick(&mut self, now: Instant) {
        while let Some(Reverse((at, timer, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let timer = *timer;
            let Some(Reverse((_, _, key))) = self.timers.pop() else {
                break;
            };
            let live = self.entries.get(&key).is_some_and(|e| {
                e.timer == timer && matches!(e.state, State::Backoff(_) | State::Unschedulable(_))
            });
            if live {
                self.activate(&key);
            }
        }
    }

    /// When [`Queue::tick`] next may have something to move.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": []}}),
        )
        .expect("pod")
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = Queue::new();
        q.upsert("a", pod("a"), 0);
        q.upsert("b", pod("b"), 10);
        q.upsert("c", pod("c"), 0);
        q.upsert("d", pod("d"), 10);
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|(k, _)| k)).collect();
        assert_eq!(order, vec!["b", "d", "a", "c"]);
    }

    #[test]
    fn unschedulable_waits_for_a_change_then_backs_off() {
        let mut q = Queue::new();
        q.upsert("a", pod("a"), 0);
        let now = Instant::now();
        assert!(q.pop().is_some());
        q.unschedulable("a", now);
        assert!(q.pop().is_none());
        q.tick(now + Duration::from_secs(60));
        assert!(q.pop().is_none());
        q.cluster_changed(now);
        // One attempt: one second of backoff.
        assert!(q.pop().is_none());
        assert!(q.next_deadline().is_some());
        q.tick(now + Duration::from_secs(2));
        assert_eq!(q.pop().map(|(k, _)| k), Some("a".into()));
    }

    #[test]
    fn flushes_after_five_minutes() {
        let mut q = Queue::new();
        q.upsert("a", pod("a"), 0);
        let now = Instant::now();
        q.pop();
        q.unschedulable("a", now);
        q.tick(now + MAX_UNSCHEDULABLE);
        assert!(q.pop().is_some());
    }

    #[test]
    fn spec_updates_retry_status_updates_do_not() {
        let mut q = Queue::new();
        q.upsert("a", pod("a"), 0);
        let now = Instant::now() - Duration::from_secs(30);
        q.pop();
        q.unschedulable("a", now);
        let mut status_only = pod("a");
        status_only.status = Some(Default::default());
        q.upsert("a", status_only, 0);
        assert!(q.pop().is_none());
        let mut labelled = pod("a");
        labelled.metadata.labels = Some([("x".to_owned(), "y".to_owned())].into());
        q.upsert("a", labelled, 0);
        q.tick(Instant::now() + MAX_BACKOFF);
        assert!(q.pop().is_some());
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(50), MAX_BACKOFF);
    }
}
