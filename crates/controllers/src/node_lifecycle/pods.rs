//! Writing a pod's status as kube's controllers do: a condition set with
//! kube's UpdatePodCondition rules, read-modify-write with retries on
//! conflict.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};

/// Sets a condition on a pod status: the transition time changes only
/// with the status. Returns whether anything changed.
pub fn set_condition(
    pod: &mut Pod,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let conditions = pod
        .status
        .get_or_insert_default()
        .conditions
        .get_or_insert_default();
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) => {
            let before = c.clone();
            if c.status != status {
                c.status = status.to_owned();
                c.last_transition_time = Some(Time(now));
            }
            c.reason = (!reason.is_empty()).then(|| reason.to_owned());
            c.message = (!message.is_empty()).then(|| message.to_owned());
            *c != before
        }
        None => {
            conditions.push(PodCondition {
                type_: kind.to_owned(),
                status: status.to_owned(),
                reason: (!reason.is_empty()).then(|| reason.to_owned()),
                message: (!message.is_empty()).then(|| message.to_owned()),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
            true
        }
    }
}

/// Reads the pod, lets `change` edit it (false: nothing to write) and
/// writes its status as a merge patch guarded by the resourceVersion
/// read (kube's controllers patch pod status); retries on conflict. A pod
/// that is gone is not an error.
pub async fn update_status(
    api: &Api<Pod>,
    name: &str,
    change: impl Fn(&mut Pod) -> bool,
) -> Result<(), kube::Error> {
    for _ in 0..5 {
        let Some(mut pod) = api.get_opt(name).await? else {
            return Ok(());
        };
        if !change(&mut pod) {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": pod.status,
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes a pod; one already gone is not an error.
pub async fn delete(
    api: &Api<Pod>,
    name: &str,
    params: &kube::api::DeleteParams,
) -> Result<(), kube::Error> {
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_with_the_status_only() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_100).unwrap();
        let mut pod = Pod::default();
        assert!(set_condition(&mut pod, "Ready", "True", "", "", t0));
        assert!(!set_condition(&mut pod, "Ready", "True", "", "", t1));
        assert!(set_condition(&mut pod, "Ready", "True", "Why", "", t1));
        let c = &pod.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(c.last_transition_time, Some(Time(t0)));
        assert!(set_condition(&mut pod, "Ready", "False", "", "", t1));
        let c = &pod.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(c.last_transition_time, Some(Time(t1)));
        assert_eq!(c.reason, None);
    }
}
