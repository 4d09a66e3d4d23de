//! The StatefulSet controller's loop: watches StatefulSets and their
//! pods, reads a set's pods, revisions and claims, asks
//! [`super::core::plan`] and carries it out.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::core::{self, claim_name};
use crate::util::api;
use crate::util::controller::{self as runner, Ctx, Error};
use crate::util::pod_control::{self, Wording};
use crate::util::{history, pods, workload};

/// The controller's ServiceAccount name.
pub const NAME: &str = "statefulset-controller";

/// Runs the StatefulSet controller until the process ends.
pub async fn run(client: kube::Client) {
    let ctx = Ctx::new(client.clone(), NAME);
    let stream = Controller::new(
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Pod>::all(client), watcher::Config::default())
    .run(reconcile, runner::retry, ctx);
    runner::drive(stream).await;
}

async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(w) =
        workload::load(&ctx, &*set, |s| s.spec.clone().unwrap_or_default().selector).await?
    else {
        return Ok(Action::await_change());
    };
    let set = w.owner;
    let (pods_api, revs_api, owned) = (w.pods_api, w.revs_api, w.pods);
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let name = set.metadata.name.clone().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    // The claims of every ordinal in range or still present.
    let mut ordinals: Vec<i32> = core::ordinal_range(&spec).collect();
    ordinals.extend(
        owned
            .iter()
            .filter_map(|p| core::ordinal(&name, pods::name(p))),
    );
    ordinals.sort_unstable();
    ordinals.dedup();
    let mut claims = BTreeMap::new();
    for t in spec.volume_claim_templates.as_deref().unwrap_or_default() {
        for o in &ordinals {
            let cname = claim_name(t.metadata.name.as_deref().unwrap_or(""), &name, *o);
            match claims_api.get(&cname).await {
                Ok(c) => {
                    claims.insert(cname, c);
                }
                Err(e) if api::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let plan = core::plan(&set, &owned, &w.revisions, &claims, Timestamp::now());
    let me = set.object_ref(&());

    history::record_current(
        &revs_api,
        plan.create_revision.as_ref(),
        plan.renumber_revision.as_ref(),
    )
    .await?;
    for c in &plan.create_claims {
        let cname = c.metadata.name.clone().unwrap_or_default();
        match claims_api.create(&PostParams::default(), c).await {
            Ok(_) => {
                let pod = pod_of_claim(&plan, &cname);
                ctx.event(
                    &me,
                    false,
                    "SuccessfulCreate",
                    &format!("create Claim {cname} Pod {pod} in StatefulSet {name} success"),
                )
                .await;
            }
            Err(e) if api::is_conflict(&e) => {}
            Err(e) => {
                let pod = pod_of_claim(&plan, &cname);
                ctx.event(
                    &me,
                    true,
                    "FailedCreate",
                    &format!(
                        "create Claim {cname} for Pod {pod} in StatefulSet {name} failed error: {e}"
                    ),
                )
                .await;
                return Err(e.into());
            }
        }
    }
    for c in &plan.update_claims {
        let cname = c.metadata.name.clone().unwrap_or_default();
        claims_api
            .replace(&cname, &PostParams::default(), c)
            .await?;
    }
    let wording = Wording::StatefulSet(&name);
    pod_control::create_pods(&ctx, &pods_api, &me, wording, &plan.create_pods).await?;
    for (warning, reason, note) in &plan.events {
        ctx.event(&me, *warning, reason, note).await;
    }
    pod_control::delete_pods(&ctx, &pods_api, &me, wording, &plan.delete_pods).await?;
    history::delete(&revs_api, &plan.delete_revisions).await?;
    if set.status.as_ref() != Some(&plan.status) {
        let mut updated = (*set).clone();
        updated.status = Some(plan.status);
        workload::replace_status(&ctx, &updated).await?;
    }
    Ok(workload::after_min_ready(spec.min_ready_seconds))
}

/// The pod a claim belongs to (`<template>-<set>-<n>` → `<set>-<n>`).
fn pod_of_claim(plan: &core::Plan, claim: &str) -> String {
    plan.create_pods
        .iter()
        .map(|p| pods::name(p).to_owned())
        .find(|p| claim.ends_with(&format!("-{p}")))
        .unwrap_or_default()
}
