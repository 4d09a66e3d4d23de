//! The DaemonSet controller's loop: watches DaemonSets, their pods and
//! the nodes, asks [`super::core::plan`] and carries it out.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;

use super::core;
use crate::workloads_common::runner::{self, Ctx, Error};
use crate::workloads_common::{adopt, owner, pods, selector};

/// The controller's ServiceAccount name.
pub const NAME: &str = "daemon-set-controller";

/// Runs the DaemonSet controller until the process ends.
pub async fn run(client: kube::Client) {
    let ctx = Ctx::new(client.clone(), NAME);
    let controller = Controller::new(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    let stream = controller
        .owns(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .watches(
            Api::<Node>::all(client),
            watcher::Config::default(),
            move |_node: Node| {
                store
                    .state()
                    .iter()
                    .map(|ds| ObjectRef::from_obj(&**ds))
                    .collect::<Vec<_>>()
            },
        )
        .run(reconcile, runner::retry, ctx);
    runner::drive(stream).await;
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(ds) = runner::fresh(&ctx.client, &*ds).await? else {
        return Ok(Action::await_change());
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let spec = ds.spec.clone().unwrap_or_default();
    let lp = ListParams::default().labels(&selector::to_query(&spec.selector));
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let revs_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let owned: Vec<Pod> = adopt::adopt_pods(
        &pods_api,
        &owner::controller_ref(&*ds),
        ds.metadata.deletion_timestamp.is_some(),
        pods_api.list(&lp).await?.items,
    )
    .await?;
    let revisions: Vec<ControllerRevision> = revs_api
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|r| owner::controlled_by(&r.metadata, &uid))
        .collect();
    let plan = core::plan(&ds, &nodes, &owned, &revisions, Timestamp::now());
    let me = ds.object_ref(&());
    if let Some(rev) = &plan.create_revision {
        match revs_api.create(&PostParams::default(), rev).await {
            Ok(_) => {}
            Err(e) if runner::is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((rev, number)) = &plan.renumber_revision {
        revs_api
            .patch(
                rev,
                &PatchParams::default(),
                &Patch::Merge(json!({"revision": number})),
            )
            .await?;
    }
    for (warning, reason, note) in &plan.events {
        ctx.event(&me, *warning, reason, note).await;
    }
    for pname in &plan.delete_pods {
        match pods_api.delete(pname, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.event(
                    &me,
                    false,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pname}"),
                )
                .await;
            }
            Err(e) if runner::is_not_found(&e) => {}
            Err(e) => {
                ctx.event(&me, true, "FailedDelete", &format!("Error deleting: {e}"))
                    .await;
                return Err(e.into());
            }
        }
    }
    for pod in &plan.create_pods {
        match pods_api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let n = pods::name(&created).to_owned();
                ctx.event(&me, false, "SuccessfulCreate", &format!("Created pod: {n}"))
                    .await;
            }
            Err(e) => {
                ctx.event(&me, true, "FailedCreate", &format!("Error creating: {e}"))
                    .await;
                return Err(e.into());
            }
        }
    }
    for rev in &plan.delete_revisions {
        match revs_api.delete(rev, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if runner::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if ds.status.as_ref() != Some(&plan.status) {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        let mut updated = (*ds).clone();
        updated.status = Some(plan.status);
        api.replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    Ok(if min_ready > 0 {
        Action::requeue(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)))
    } else {
        Action::await_change()
    })
}
