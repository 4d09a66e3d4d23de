//! What every controller's loop shares: its context (client, event
//! recorder), its error type and its retry policy.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// A controller's handle on the cluster.
pub struct Ctx {
    /// The client acting as the controller's ServiceAccount.
    pub client: kube::Client,
    /// Publishes events as the controller (`reportingController`).
    pub recorder: Recorder,
}

impl Ctx {
    /// A context for the controller `name` (its ServiceAccount name, also
    /// the events' reporting controller).
    pub fn new(client: kube::Client, name: &str) -> Arc<Ctx> {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: name.to_owned(),
                instance: None,
            },
        );
        Arc::new(Ctx { client, recorder })
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
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note.to_owned()),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, regarding).await {
            tracing::debug!(%err, reason, "recording an event failed");
        }
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

/// Retries a failed reconcile after a short delay (conflicts and races
/// settle on the next look).
pub fn retry<K>(_obj: Arc<K>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(%err, "reconcile failed; retrying");
    Action::requeue(Duration::from_millis(500))
}

/// Whether an API error is a 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a 409 (conflict or already exists).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

/// Drives a controller's stream of results until it ends.
pub async fn drive<S, T>(stream: S)
where
    S: futures::Stream<Item = T>,
{
    use futures::StreamExt;
    stream.for_each(|_| async {}).await;
}
