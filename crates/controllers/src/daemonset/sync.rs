//! The DaemonSet controller's loop: watches DaemonSets, their pods and
//! the nodes, asks [`super::core::plan`] and carries it out.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Resource;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::core;
use crate::util::controller::{self as runner, Ctx, Error};
use crate::util::pod_control::{self, Wording};
use crate::util::{history, workload};

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
    let Some(w) =
        workload::load(&ctx, &*ds, |d| d.spec.clone().unwrap_or_default().selector).await?
    else {
        return Ok(Action::await_change());
    };
    let ds = w.owner;
    let (pods_api, revs_api) = (w.pods_api, w.revs_api);
    let spec = ds.spec.clone().unwrap_or_default();
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let plan = core::plan(&ds, &nodes, &w.pods, &w.revisions, Timestamp::now());
    let me = ds.object_ref(&());
    history::record_current(
        &revs_api,
        plan.create_revision.as_ref(),
        plan.renumber_revision.as_ref(),
    )
    .await?;
    for (warning, reason, note) in &plan.events {
        ctx.event(&me, *warning, reason, note).await;
    }
    let wording = Wording::PodControl;
    pod_control::delete_pods(&ctx, &pods_api, &me, wording, &plan.delete_pods).await?;
    pod_control::create_pods(&ctx, &pods_api, &me, wording, &plan.create_pods).await?;
    history::delete(&revs_api, &plan.delete_revisions).await?;
    if ds.status.as_ref() != Some(&plan.status) {
        let mut updated = (*ds).clone();
        updated.status = Some(plan.status);
        workload::replace_status(&ctx, &updated).await?;
    }
    Ok(workload::after_min_ready(spec.min_ready_seconds))
}
