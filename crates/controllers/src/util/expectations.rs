//! Expectations, as kube's `ControllerExpectations`: a controller that
//! asked for N creations (or deletions) for a key does not act on that key
//! again until its cache has seen them, or until they time out (5 min),
//! so a watch that lags does not make it create twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long unseen expectations hold before a sync goes ahead anyway.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct Expected {
    adds: i64,
    /// Keys (`namespace/name`) of pods whose deletion is awaited.
    dels: HashSet<String>,
    at: Option<Instant>,
}

/// Outstanding creations/deletions per controller key; shared (clone).
#[derive(Clone, Default)]
pub struct Expectations {
    inner: Arc<Mutex<HashMap<String, Expected>>>,
}

impl Expectations {
    /// No expectations.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` may sync: nothing is awaited, or what is awaited
    /// timed out, or the key has no record.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => {
                (e.adds <= 0 && e.dels.is_empty())
                    || e.at.is_some_and(|at| at.elapsed() > EXPECTATIONS_TIMEOUT)
            }
        }
    }

    /// Records that `key` is about to create `adds` objects and delete the
    /// objects named in `dels` (replacing any previous record).
    pub fn expect(&self, key: &str, adds: i64, dels: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_owned(),
            Expected {
                adds,
                dels: dels.into_iter().collect(),
                at: Some(Instant::now()),
            },
        );
    }

    /// One awaited creation for `key` was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// The deletion of `object` (`namespace/name`) for `key` was seen (or
    /// will never happen).
    pub fn deletion_observed(&self, key: &str, object: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels.remove(object);
        }
    }

    /// Forgets `key` (its owner is gone).
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_after_all_observed() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"));
        e.expect("ns/rs", 2, ["ns/p1".to_owned()]);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/p1");
        assert!(e.satisfied("ns/rs"));
        e.delete("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
