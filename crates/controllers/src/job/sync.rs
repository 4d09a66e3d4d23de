//! The Job controller's loop: watches Jobs and their pods, lists a Job's
//! pods, asks [`super::core::plan`] and carries it out; and a sweeper that
//! frees pods whose Job is gone from the tracking finalizer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use super::core::{self, TRACKING_FINALIZER};
use super::policy::BackoffRecord;
use crate::util::api;
use crate::util::controller::{self as runner, Ctx, Error};
use crate::util::pod_control::{self, Wording};
use crate::util::{adopt, owner, pods, selector};

/// The controller's ServiceAccount name.
pub const NAME: &str = "job-controller";

/// The `spec.managedBy` value naming this controller (or unset).
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";

/// The Job controller's context: the shared one and each Job's retry
/// memory (kube's backoff store), by Job UID.
struct JobCtx {
    base: Arc<Ctx>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

impl JobCtx {
    fn remembered(&self, uid: &str) -> Option<BackoffRecord> {
        self.backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(uid)
            .copied()
    }

    fn remember(&self, uid: &str, record: Option<BackoffRecord>) {
        let mut map = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match record {
            Some(r) => map.insert(uid.to_owned(), r),
            None => map.remove(uid),
        };
    }
}

fn retry(job: Arc<Job>, err: &Error, ctx: Arc<JobCtx>) -> Action {
    runner::retry(job, err, ctx.base.clone())
}

/// Runs the Job controller until the process ends.
pub async fn run(client: kube::Client) {
    let ctx = Arc::new(JobCtx {
        base: Ctx::new(client.clone(), NAME),
        backoff: Mutex::new(HashMap::new()),
    });
    tokio::spawn(free_orphans(client.clone()));
    let stream = Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client), watcher::Config::default())
        .run(reconcile, retry, ctx);
    runner::drive(stream).await;
}

/// Removes the tracking finalizer from a pod.
async fn remove_finalizer(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if api::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn reconcile(job: Arc<Job>, jctx: Arc<JobCtx>) -> Result<Action, Error> {
    let Some(job) = runner::fresh(&jctx.base.client, &*job).await? else {
        return Ok(Action::await_change());
    };
    let ctx = &jctx.base;
    let managed_by = job.spec.as_ref().and_then(|s| s.managed_by.as_deref());
    if managed_by.is_some_and(|m| m != MANAGED_BY) {
        // Another controller owns this Job's status (`spec.managedBy`).
        return Ok(Action::await_change());
    }
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let sel = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let lp = ListParams::default().labels(&selector::to_query(&sel));
    let owned: Vec<Pod> =
        adopt::adopt_pods(&pods_api, &*job, pods_api.list(&lp).await?.items).await?;
    if job.metadata.deletion_timestamp.is_some() {
        jctx.remember(&uid, None);
        for p in owned.iter().filter(|p| core::has_finalizer(p)) {
            remove_finalizer(&pods_api, pods::name(p)).await?;
        }
        return Ok(Action::await_change());
    }
    let plan = core::plan_with(&job, &owned, jctx.remembered(&uid), Timestamp::now());
    let me = job.object_ref(&());
    let mut current = (*job).clone();
    if let Some(interim) = plan.interim {
        current.status = Some(interim);
        current = jobs_api
            .replace_status(&name, &PostParams::default(), &current)
            .await?;
    }
    for pod in &plan.remove_finalizers {
        remove_finalizer(&pods_api, pod).await?;
    }
    let wording = Wording::PodControl;
    pod_control::delete_pods(ctx, &pods_api, &me, wording, &plan.delete).await?;
    pod_control::create_pods(ctx, &pods_api, &me, wording, &plan.create).await?;
    if current.status.as_ref() != Some(&plan.status) {
        current.status = Some(plan.status);
        jobs_api
            .replace_status(&name, &PostParams::default(), &current)
            .await?;
    }
    for ev in &plan.events {
        ctx.event(&me, ev.warning, &ev.reason, &ev.note).await;
    }
    let finished = current
        .status
        .as_ref()
        .is_some_and(|_| core::is_finished(&current));
    jctx.remember(&uid, (!finished).then_some(plan.backoff));
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Frees pods that carry the tracking finalizer but whose Job is gone (or
/// is not their controller any more), so they can be deleted.
async fn free_orphans(client: kube::Client) {
    let all: Api<Pod> = Api::all(client.clone());
    let mut events = watcher(all, watcher::Config::default()).boxed();
    while let Some(ev) = events.next().await {
        let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = ev else {
            continue;
        };
        if !core::has_finalizer(&pod) || !(pods::is_deleting(&pod) || pods::is_terminal(&pod)) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let job_ref = owner::controller_of(&pod.metadata)
            .filter(|r| r.kind == "Job")
            .cloned();
        let orphan = match job_ref {
            None => true,
            Some(r) => match Api::<Job>::namespaced(client.clone(), &ns)
                .get(&r.name)
                .await
            {
                Ok(j) => j.metadata.uid.as_deref() != Some(r.uid.as_str()),
                Err(e) => api::is_not_found(&e),
            },
        };
        if orphan {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            if let Err(err) = remove_finalizer(&api, pods::name(&pod)).await {
                tracing::debug!(%err, "freeing an orphaned Job pod failed");
            }
        }
    }
}
