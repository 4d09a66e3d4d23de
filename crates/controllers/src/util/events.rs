//! Events about an object, written two ways:
//!
//! - [`Recorder`]: core/v1 Events as kube's `record.EventRecorder` writes
//!   them (what `kubectl describe` lists). A repeat of the same event
//!   (same object, type, reason and message) bumps the first one's
//!   `count` and `lastTimestamp`, as kube's event correlator does;
//! - [`reporter`] and [`publish`]: events.k8s.io Events through
//!   kube-runtime's recorder (its own series of repeats).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// `Normal` event type.
pub const NORMAL: &str = "Normal";
/// `Warning` event type.
pub const WARNING: &str = "Warning";

/// Writes events as one controller (`source.component`).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
    /// (uid, type, reason, message) → (namespace, event name, count).
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

type Key = (String, String, String, String);
/// Where an event was written, and its count.
type Seen = (String, String, i32);

/// Remembered events before the memory starts over.
const SEEN_MAX: usize = 4096;

impl Recorder {
    /// A recorder writing through `client` as `component` (e.g.
    /// `replicaset-controller`).
    pub fn new(client: kube::Client, component: &str) -> Self {
        Recorder {
            client,
            component: component.to_owned(),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records an event about the object `(api_version, kind, meta)`. A
    /// failure is logged, never returned: events are best effort.
    pub async fn record(
        &self,
        api_version: &str,
        kind: &str,
        about: &ObjectMeta,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let namespace = about
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let now = super::now();
        let key = (
            about.uid.clone().unwrap_or_default(),
            type_.to_owned(),
            reason.to_owned(),
            message.to_owned(),
        );
        let repeat = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((ns, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.remember(key, ns, name, count + 1);
                return;
            }
        }
        let nanos = now.0.as_nanosecond();
        let name = about.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{nanos:x}")),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: Some(kind.to_owned()),
                name: Some(name),
                namespace: about.namespace.clone(),
                uid: about.uid.clone(),
                resource_version: about.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(type_.to_owned()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let event_name = event.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(key, namespace, event_name, 1),
            Err(e) => {
                tracing::debug!(component = %self.component, reason, error = %e, "event not recorded")
            }
        }
    }

    fn remember(&self, key: Key, ns: String, name: String, count: i32) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        seen.insert(key, (ns, name, count));
    }
}

/// A kube-runtime event recorder reporting as `controller`
/// (`reportingController`).
pub fn reporter(client: kube::Client, controller: &str) -> kube::runtime::events::Recorder {
    kube::runtime::events::Recorder::new(
        client,
        kube::runtime::events::Reporter {
            controller: controller.to_owned(),
            instance: None,
        },
    )
}

/// Publishes an event about `regarding` through a kube-runtime recorder;
/// a failure is logged, not returned (an event is never worth failing a
/// sync for).
pub async fn publish(
    recorder: &kube::runtime::events::Recorder,
    regarding: &ObjectReference,
    warning: bool,
    reason: &str,
    action: &str,
    note: impl Into<String>,
) {
    let ev = kube::runtime::events::Event {
        type_: if warning {
            kube::runtime::events::EventType::Warning
        } else {
            kube::runtime::events::EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note.into()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, regarding).await {
        tracing::debug!(error = %e, reason, "event not published");
    }
}
