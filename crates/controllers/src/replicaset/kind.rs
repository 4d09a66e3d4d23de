//! ReplicaSets and ReplicationControllers seen alike: one controller
//! serves both, as kube's ReplicationManager wraps the ReplicaSet one.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the controller reads of a set's spec.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Wanted pods (default 1).
    pub replicas: i32,
    /// Seconds a pod must be Ready to count as available.
    pub min_ready_seconds: i32,
    /// The pods it owns.
    pub selector: LabelSelector,
    /// The pods it makes.
    pub template: PodTemplateSpec,
}

/// A kind of replica set.
pub trait ReplicaKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The controller's name: its ServiceAccount and event source.
    const CONTROLLER: &'static str;
    /// Its work queue's name in kube's metrics.
    const QUEUE: &'static str;
    /// The set's spec.
    fn spec_view(&self) -> Spec;
    /// The set's status, in ReplicaSet's shape.
    fn status_view(&self) -> ReplicaSetStatus;
    /// Replaces the status.
    fn set_status(&mut self, status: ReplicaSetStatus);
}

impl ReplicaKind for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";
    const QUEUE: &'static str = "replicaset";

    fn spec_view(&self) -> Spec {
        let spec = self.spec.clone().unwrap_or_default();
        Spec {
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            selector: spec.selector,
            template: spec.template.unwrap_or_default(),
        }
    }

    fn status_view(&self) -> ReplicaSetStatus {
        self.status.clone().unwrap_or_default()
    }

    fn set_status(&mut self, status: ReplicaSetStatus) {
        self.status = Some(status);
    }
}

impl ReplicaKind for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";
    const QUEUE: &'static str = "replicationmanager";

    fn spec_view(&self) -> Spec {
        let spec = self.spec.clone().unwrap_or_default();
        let template = spec.template.unwrap_or_default();
        // An RC without a selector selects its template's labels (the API
        // server defaults it so; this covers an older object).
        let selector = spec
            .selector
            .filter(|s| !s.is_empty())
            .or_else(|| template.metadata.as_ref().and_then(|m| m.labels.clone()));
        Spec {
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            selector: LabelSelector {
                match_labels: selector,
                match_expressions: None,
            },
            template,
        }
    }

    fn status_view(&self) -> ReplicaSetStatus {
        self.status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    fn set_status(&mut self, status: ReplicaSetStatus) {
        self.status = serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
    }
}
