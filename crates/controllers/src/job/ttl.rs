//! The TTL-after-finished controller (`ttl-after-finished-controller`):
//! deletes a finished Job (Background propagation) once
//! `ttlSecondsAfterFinished` passed since it finished.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::util::api;
use crate::util::controller::{self as runner, Ctx, Error};

/// The controller's ServiceAccount name.
pub const NAME: &str = "ttl-after-finished-controller";

/// When the Job may be deleted: its finish time plus the TTL; `None`
/// when it has no TTL, is not finished or is already being deleted.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let finished = status
        .conditions
        .as_deref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let at = status
        .completion_time
        .as_ref()
        .filter(|_| finished.type_ == "Complete")
        .or(finished.last_transition_time.as_ref())?
        .0;
    Timestamp::from_second(at.as_second() + i64::from(ttl)).ok()
}

/// Runs the controller until the process ends.
pub async fn run(client: kube::Client) {
    let ctx = Ctx::new(client.clone(), NAME);
    let stream = Controller::new(Api::<Job>::all(client), watcher::Config::default()).run(
        reconcile,
        runner::retry,
        ctx,
    );
    runner::drive(stream).await;
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(at) = expires_at(&job) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if at > now {
        let ms = at.as_millisecond() - now.as_millisecond();
        return Ok(Action::requeue(Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        )));
    }
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // Look again: the TTL or the finish may have changed meanwhile.
    let fresh = match api.get(&name).await {
        Ok(j) => j,
        Err(e) if api::is_not_found(&e) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    };
    if expires_at(&fresh).is_none_or(|at| at > now) {
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let dp = DeleteParams::background().preconditions(Preconditions {
        uid: fresh.metadata.uid.clone(),
        resource_version: fresh.metadata.resource_version.clone(),
    });
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(Action::await_change()),
        Err(e) if api::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_follows_finish_and_ttl() {
        let job = |ttl: serde_json::Value, cond: &str, deleting: bool| -> Job {
            let mut meta = json!({"name": "j"});
            if deleting {
                meta["deletionTimestamp"] = json!("2024-01-01T00:10:00Z");
            }
            serde_json::from_value(json!({
                "metadata": meta,
                "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
                "status": {
                    "completionTime": "2024-01-01T00:00:00Z",
                    "conditions": [{"type": cond, "status": "True",
                                    "lastTransitionTime": "2024-01-01T00:00:05Z"}]
                }
            }))
            .expect("job")
        };
        let ts = |s: &str| -> Timestamp { s.parse().expect("ts") };
        let cases = [
            (
                job(json!(60), "Complete", false),
                Some(ts("2024-01-01T00:01:00Z")),
            ),
            (
                job(json!(0), "Complete", false),
                Some(ts("2024-01-01T00:00:00Z")),
            ),
            (
                job(json!(60), "Failed", false),
                Some(ts("2024-01-01T00:01:05Z")),
            ),
            (job(json!(null), "Complete", false), None),
            (job(json!(60), "Suspended", false), None),
            (job(json!(60), "Complete", true), None),
        ];
        for (j, want) in cases {
            assert_eq!(expires_at(&j), want);
        }
    }
}
