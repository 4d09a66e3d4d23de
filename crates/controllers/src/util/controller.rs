//! What the controllers built on kube-runtime's `Controller` (Job,
//! CronJob, DaemonSet, StatefulSet, TTL-after-finished) share: their
//! context (client, event recorder), error type, retry policy, and a
//! fresh read of the object they reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;

use super::api::{is_conflict, is_not_found};
use super::events;

/// A controller's handle on the cluster.
pub struct Ctx {
    /// The client acting as the controller's ServiceAccount.
    pub client: kube::Client,
    /// Publishes events as the controller (`reportingController`).
    pub recorder: Recorder,
    /// Recent failures per object (`namespace/name`): how many, and when
    /// the last one was, for the retry backoff.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Ctx {
    /// A context for the controller `name` (its ServiceAccount name, also
    /// the events' reporting controller).
    pub fn new(client: kube::Client, name: &str) -> Arc<Ctx> {
        let recorder = events::reporter(client.clone(), name);
        Arc::new(Ctx {
            client,
            recorder,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Records an event on `regarding`; a failure to record is logged,
    /// never fatal.
    pub async fn event(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        events::publish(&self.recorder, regarding, warning, reason, reason, note).await;
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed a request.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The object cannot be acted on as it is.
    #[error("{0}")]
    Invalid(String),
}

/// The first retry delay after a failed reconcile.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// The longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Retries a failed reconcile: a conflict or a vanished object after
/// 0.1 s; other failures after 0.5 s, doubling while the object keeps
/// failing (up to 5 min), the count forgotten once the object went twice
/// its delay without failing.
pub fn retry<K: kube::Resource>(obj: Arc<K>, err: &Error, ctx: Arc<Ctx>) -> Action {
    if let Error::Kube(e) = err
        && (is_conflict(e) || is_not_found(e))
    {
        // A race with another writer: look again soon.
        return Action::requeue(Duration::from_millis(100));
    }
    let meta = obj.meta();
    let key = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    );
    let mut failures = ctx
        .failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let count = match failures.get(&key) {
        Some((n, last)) if now.duration_since(*last) <= delay(*n).saturating_mul(2) => n + 1,
        _ => 0,
    };
    failures.insert(key, (count, now));
    if failures.len() > 10_000 {
        failures.retain(|_, (n, last)| now.duration_since(*last) <= delay(*n).saturating_mul(2));
    }
    let wait = delay(count);
    tracing::debug!(%err, ?wait, "reconcile failed; retrying");
    Action::requeue(wait)
}

/// The retry delay after `n` earlier consecutive failures.
fn delay(n: u32) -> Duration {
    RETRY_BASE
        .saturating_mul(2u32.saturating_pow(n.min(20)))
        .min(RETRY_MAX)
}

/// The object as the API has it now (the watch cache may lag behind this
/// controller's own last write); `None` when it is gone.
pub async fn fresh<K>(client: &kube::Client, obj: &K) -> Result<Option<Arc<K>>, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let meta = obj.meta();
    let api: kube::Api<K> =
        kube::Api::namespaced(client.clone(), meta.namespace.as_deref().unwrap_or(""));
    match api.get(meta.name.as_deref().unwrap_or("")).await {
        Ok(o) => Ok(Some(Arc::new(o))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Drives a controller's stream of results until it ends.
pub async fn drive<S, T>(stream: S)
where
    S: futures::Stream<Item = T>,
{
    use futures::StreamExt;
    stream.for_each(|_| async {}).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_five_minutes() {
        let cases = [
            (0, 500),
            (1, 1000),
            (2, 2000),
            (5, 16_000),
            (9, 256_000),
            (10, 300_000),
            (40, 300_000),
        ];
        for (n, ms) in cases {
            assert_eq!(delay(n), Duration::from_millis(ms), "{n}");
        }
    }
}
