//! What the loop writes through the API: bindings, the PodScheduled
//! condition, events, and preemption's evictions.

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::json;

use crate::pod_info::PodInfo;

/// The name the scheduler reports as (`reportingController`, and the
/// pods' `spec.schedulerName`).
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// The API calls of the loop.
#[derive(Clone)]
pub struct Actions {
    client: Client,
    recorder: Recorder,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Actions")
    }
}

fn pods(client: &Client, namespace: &str) -> Api<Pod> {
    Api::namespaced(client.clone(), namespace)
}

impl Actions {
    /// Writes as `client`.
    pub fn new(client: Client) -> Actions {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: SCHEDULER_NAME.to_owned(),
                instance: None,
            },
        );
        Actions { client, recorder }
    }

    /// `POST pods/{name}/binding` to `node`.
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<(), kube::Error> {
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: (!uid.is_empty()).then(|| uid.to_owned()),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                kind: Some("Node".to_owned()),
                name: Some(node.to_owned()),
                ..ObjectReference::default()
            },
        };
        pods(&self.client, namespace)
            .create_subresource::<_, serde_json::Value>(
                "binding",
                name,
                &PostParams::default(),
                &binding,
            )
            .await
            .map(|_| ())
    }

    /// Sets `PodScheduled=False` (`reason`, `message`) and, when given,
    /// `status.nominatedNodeName`, unless both are already so.
    pub async fn mark_unschedulable(
        &self,
        pod: &Pod,
        reason: &str,
        message: &str,
        nominate: Option<&str>,
    ) -> Result<(), kube::Error> {
        let status = pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same_condition = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        });
        let nominated_now = status
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        let same_nomination = nominate.is_none_or(|n| n == nominated_now);
        if same_condition && same_nomination {
            return Ok(());
        }
        let transition = match current {
            Some(c) if c.status == "False" => c.last_transition_time.clone(),
            _ => None,
        }
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
        let condition = PodCondition {
            type_: "PodScheduled".to_owned(),
            status: "False".to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_transition_time: Some(transition),
            ..PodCondition::default()
        };
        let mut body = json!({"status": {"conditions": [condition]}});
        if let Some(n) = nominate {
            body["status"]["nominatedNodeName"] = if n.is_empty() { json!(null) } else { json!(n) };
        }
        let (namespace, name) = names(pod);
        pods(&self.client, namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(body))
            .await
            .map(|_| ())
    }

    /// Records an event on `pod` (with `related`, if given).
    pub async fn event(
        &self,
        pod: &Pod,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
        related: Option<ObjectReference>,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&ev, &pod.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "scheduler: recording an event failed");
        }
    }

    /// Evicts a preemption victim as kube-scheduler does: the
    /// `DisruptionTarget` condition, the deletion, a `Preempted` event.
    pub async fn evict(
        &self,
        victim: &PodInfo,
        preemptor: &Pod,
        node: &str,
    ) -> Result<(), kube::Error> {
        let api = pods(&self.client, &victim.namespace);
        let condition = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now()),
        }]}});
        let current = api.get_opt(&victim.name).await?;
        let Some(current) = current else {
            return Ok(());
        };
        api.patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(condition),
        )
        .await?;
        match api.delete(&victim.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
        let uid = preemptor.metadata.uid.as_deref().unwrap_or("");
        self.event(
            &current,
            false,
            "Preempted",
            "Preempting",
            format!("Preempted by pod {uid} on node {node}"),
            Some(preemptor.object_ref(&())),
        )
        .await;
        Ok(())
    }

    /// Clears `status.nominatedNodeName` of a pod.
    pub async fn clear_nomination(&self, namespace: &str, name: &str) -> Result<(), kube::Error> {
        let body = json!({"status": {"nominatedNodeName": null}});
        pods(&self.client, namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
            .map(|_| ())
    }
}

/// A pod's namespace and name.
pub fn names(pod: &Pod) -> (&str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}
