//! The namespace controller: empties a Terminating namespace through the
//! API (every namespaced resource discovery lists, CRDs included), keeps
//! kube's deletion conditions on it, then removes its `kubernetes`
//! finalizer through `namespaces/{name}/finalize` so the API server
//! deletes it, as kube's NamespaceController.

pub mod conditions;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

use crate::Clients;
use crate::util::api as apierr;
use crate::util::discovery::{Served, resources};
use crate::util::informer::Informer;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::{Next, spawn_workers};
use conditions::Totals;

/// The controller's name (its ServiceAccount).
pub const CONTROLLER: &str = "namespace-controller";

/// The finalizer this controller serves.
pub const FINALIZER: &str = "kubernetes";

/// Errors of one pass.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

struct Ctl {
    client: kube::Client,
}

/// Starts the namespace controller (as `namespace-controller`).
/// `queues`: where its work queue (`namespace`) reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    let client = clients(CONTROLLER);
    let queue: WorkQueue<String> = WorkQueue::named("namespace", queues);
    let informer = {
        let queue = queue.clone();
        Informer::<Namespace>::spawn(
            Api::all(client.clone()),
            Arc::new(move |_old: Option<&Namespace>, new: Option<&Namespace>| {
                if let Some(ns) = new
                    && ns.metadata.deletion_timestamp.is_some()
                {
                    queue.add(ns.name_any());
                }
            }),
        )
    };
    let ctl = Arc::new(Ctl { client });
    tokio::spawn(async move {
        informer.ready().await;
        spawn_workers(CONTROLLER, queue, 5, move |name: String| {
            let ctl = ctl.clone();
            async move { ctl.sync(&name).await }
        });
        // The informer lives as long as the controller.
        let _keep = informer;
        std::future::pending::<()>().await;
    });
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

impl Ctl {
    async fn sync(&self, name: &str) -> Result<Next, SyncError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            return Ok(Next::Done);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Next::Done);
        }
        if !has_finalizer(&ns) {
            // Finalized already, but another finalizer (the garbage
            // collector's foregroundDeletion) held it then: once none is
            // left, finalizing again lets the API server delete it.
            let spec_left = ns
                .spec
                .as_ref()
                .and_then(|s| s.finalizers.as_ref())
                .is_some_and(|f| !f.is_empty());
            let meta_left = ns
                .metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty());
            if !spec_left && !meta_left {
                return self.finalize(&api, ns).await;
            }
            return Ok(Next::Done);
        }
        let (totals, retry) = self.delete_content(name).await;
        let ns = self.write_conditions(&api, ns, &totals).await?;
        if !totals.remaining.is_empty()
            || !totals.delete_failures.is_empty()
            || !totals.discovery_failures.is_empty()
        {
            return Ok(Next::After(retry));
        }
        self.finalize(&api, ns).await
    }

    /// Removes the `kubernetes` finalizer through `finalize`; the API
    /// server deletes the namespace once no finalizer is left.
    async fn finalize(&self, api: &Api<Namespace>, ns: Namespace) -> Result<Next, SyncError> {
        let name = ns.name_any();
        let mut done = ns;
        if let Some(spec) = done.spec.as_mut() {
            spec.finalizers = Some(
                spec.finalizers
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f != FINALIZER)
                    .collect(),
            );
        }
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &done)
            .await
        {
            Ok(_) => Ok(Next::Done),
            Err(e) if apierr::is_not_found(&e) => Ok(Next::Done),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes everything in the namespace (Background propagation) and
    /// counts what is left; also when to look again.
    async fn delete_content(&self, ns: &str) -> (Totals, Duration) {
        let mut totals = Totals::default();
        let mut retry = Duration::from_secs(1);
        let served = match resources(&self.client).await {
            Ok(s) => s,
            Err(e) => {
                totals.discovery_failures.push(e.to_string());
                return (totals, Duration::from_secs(2));
            }
        };
        let deletable: Vec<Served> = served
            .into_iter()
            .filter(|s| s.namespaced && s.supports(&["delete", "list"]))
            .collect();
        for s in deletable {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &s.resource);
            let params = DeleteParams::background();
            if s.supports(&["deletecollection"]) {
                if let Err(e) = api.delete_collection(&params, &ListParams::default()).await
                    && !apierr::is_not_found(&e)
                {
                    totals.delete_failures.push(format!(
                        "{}: {}",
                        s.group_resource(),
                        apierr::message(&e)
                    ));
                }
            } else {
                match api.list(&ListParams::default()).await {
                    Ok(list) => {
                        for item in list
                            .items
                            .iter()
                            .filter(|i| i.metadata.deletion_timestamp.is_none())
                        {
                            if let Err(e) = api.delete(&item.name_any(), &params).await
                                && !apierr::is_not_found(&e)
                            {
                                totals.delete_failures.push(format!(
                                    "{}: {}",
                                    s.group_resource(),
                                    apierr::message(&e)
                                ));
                            }
                        }
                    }
                    Err(e) => totals.delete_failures.push(format!(
                        "{}: {}",
                        s.group_resource(),
                        apierr::message(&e)
                    )),
                }
            }
            // What is left: terminating pods (graceful), objects held by
            // finalizers.
            let Ok(left) = api.list(&ListParams::default()).await else {
                continue;
            };
            if left.items.is_empty() {
                continue;
            }
            totals
                .remaining
                .insert(s.group_resource(), left.items.len());
            for item in &left.items {
                for f in item.metadata.finalizers.iter().flatten() {
                    *totals.finalizers.entry(f.clone()).or_default() += 1;
                }
                if let Some(grace) = item.metadata.deletion_grace_period_seconds {
                    let wait = Duration::from_secs(u64::try_from(grace).unwrap_or(0).clamp(1, 15));
                    retry = retry.max(wait.min(Duration::from_secs(5)));
                }
            }
        }
        (totals, retry)
    }

    /// Writes the deletion conditions (and phase Terminating) when they
    /// changed; returns the namespace as stored.
    async fn write_conditions(
        &self,
        api: &Api<Namespace>,
        mut ns: Namespace,
        totals: &Totals,
    ) -> Result<Namespace, SyncError> {
        let status = ns.status.clone().unwrap_or_default();
        let current = status.conditions.clone().unwrap_or_default();
        let (merged, changed) =
            conditions::merge(&current, conditions::conditions(totals), Timestamp::now());
        let terminating = status.phase.as_deref() == Some("Terminating");
        if !changed && terminating {
            return Ok(ns);
        }
        ns.status = Some(NamespaceStatus {
            phase: Some("Terminating".to_owned()),
            conditions: Some(merged),
        });
        match api
            .replace_status(&ns.name_any(), &PostParams::default(), &ns)
            .await
        {
            Ok(stored) => Ok(stored),
            Err(e) => Err(e.into()),
        }
    }
}
