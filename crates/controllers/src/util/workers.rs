//! Workers over a [`WorkQueue`]: each takes a key, reconciles it, and on
//! failure queues it again with backoff, as kube's `processNextWorkItem`.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::queue::WorkQueue;

/// What a reconcile asks of the runner after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Next {
    /// Nothing: wait for the next change.
    #[default]
    Done,
    /// Look again after this long (e.g. when minReadySeconds elapse).
    After(Duration),
}

/// Starts `workers` tasks that reconcile keys from `queue` until the
/// process ends. An `Err` is logged and the key retried with backoff; an
/// `Ok` resets the key's backoff.
pub fn spawn_workers<K, E, F, Fut>(
    name: &'static str,
    queue: WorkQueue<K>,
    workers: usize,
    reconcile: F,
) where
    K: Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Next, E>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tokio::spawn(async move {
            loop {
                let key = queue.get().await;
                match reconcile(key.clone()).await {
                    Ok(next) => {
                        queue.forget(&key);
                        if let Next::After(delay) = next {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(e) => {
                        tracing::info!(controller = name, key = %key, error = %e, "sync failed, retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}
