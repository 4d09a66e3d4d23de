//! The CronJob controller's loop: watches CronJobs and their Jobs, lists
//! a CronJob's Jobs, asks [`super::core::plan`] and carries it out.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::core;
use crate::util::api;
use crate::util::controller::{self as runner, Ctx, Error};
use crate::util::owner;

/// The controller's ServiceAccount name.
pub const NAME: &str = "cronjob-controller";

/// Runs the CronJob controller until the process ends.
pub async fn run(client: kube::Client) {
    let ctx = Ctx::new(client.clone(), NAME);
    let stream = Controller::new(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Job>::all(client), watcher::Config::default())
    .run(reconcile, runner::retry, ctx);
    runner::drive(stream).await;
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(cj) = runner::fresh(&ctx.client, &*cj).await? else {
        return Ok(Action::await_change());
    };
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let name = cj.metadata.name.clone().unwrap_or_default();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| owner::controlled_by(&j.metadata, &uid))
        .collect();
    let plan = core::plan(&cj, &jobs, Timestamp::now());
    let me = cj.object_ref(&());
    for job in &plan.delete {
        match jobs_api.delete(job, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if api::is_not_found(&e) => {}
            Err(e) => {
                ctx.event(&me, true, "FailedDelete", &format!("Deleted job: {e}"))
                    .await;
                return Err(e.into());
            }
        }
    }
    for ev in &plan.events {
        ctx.event(&me, ev.warning, ev.reason, &ev.note).await;
    }
    let mut status = plan.status;
    if let Some((job, _)) = plan.create {
        let job_name = job.metadata.name.clone().unwrap_or_default();
        let created = match jobs_api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                ctx.event(
                    &me,
                    false,
                    "SuccessfulCreate",
                    &format!("Created job {job_name}"),
                )
                .await;
                Some(created)
            }
            Err(e) if api::is_conflict(&e) => {
                let existing = jobs_api.get(&job_name).await?;
                owner::controlled_by(&existing.metadata, &uid).then_some(existing)
            }
            Err(e) => {
                ctx.event(
                    &me,
                    true,
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                )
                .await;
                return Err(e.into());
            }
        };
        if let Some(created) = created {
            let active = status.active.get_or_insert_with(Vec::new);
            if !active.iter().any(|r| r.uid == created.metadata.uid) {
                active.push(core::job_ref(&created));
            }
        }
    }
    if cj.status.as_ref() != Some(&status) {
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
        let mut updated = (*cj).clone();
        updated.status = Some(status);
        api.replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}
