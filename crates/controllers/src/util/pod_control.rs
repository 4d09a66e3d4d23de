//! Creating and deleting a controller's pods with the events kube's
//! controllers record for each (`SuccessfulCreate`, `FailedCreate`,
//! `SuccessfulDelete`, `FailedDelete`), in the wording of the controller:
//! kube's `RealPodControl` (DaemonSet, Job) or its StatefulSet pod control.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};

use super::controller::Ctx;
use super::{api, pods};

/// Whose wording the events use, and what counts as a failure.
#[derive(Debug, Clone, Copy)]
pub enum Wording<'a> {
    /// kube's `RealPodControl`: `Created pod: <pod>`, `Error creating:
    /// <err>`, `Deleted pod: <pod>`, `Error deleting: <err>`.
    PodControl,
    /// kube's StatefulSet pod control, for the named set: `create Pod
    /// <pod> in StatefulSet <set> successful`, `… failed error: <err>`,
    /// likewise `delete`. A pod whose name exists already is not a
    /// failure (a StatefulSet's pod names are fixed; the next sync sees it).
    StatefulSet(&'a str),
}

impl Wording<'_> {
    fn created(self, pod: &str) -> String {
        match self {
            Wording::PodControl => format!("Created pod: {pod}"),
            Wording::StatefulSet(set) => {
                format!("create Pod {pod} in StatefulSet {set} successful")
            }
        }
    }

    fn create_failed(self, pod: &str, err: &kube::Error) -> String {
        match self {
            Wording::PodControl => format!("Error creating: {err}"),
            Wording::StatefulSet(set) => {
                format!("create Pod {pod} in StatefulSet {set} failed error: {err}")
            }
        }
    }

    fn deleted(self, pod: &str) -> String {
        match self {
            Wording::PodControl => format!("Deleted pod: {pod}"),
            Wording::StatefulSet(set) => {
                format!("delete Pod {pod} in StatefulSet {set} successful")
            }
        }
    }

    fn delete_failed(self, pod: &str, err: &kube::Error) -> String {
        match self {
            Wording::PodControl => format!("Error deleting: {err}"),
            Wording::StatefulSet(set) => {
                format!("delete Pod {pod} in StatefulSet {set} failed error: {err}")
            }
        }
    }
}

/// Creates `pods` in order, recording an event on `owner` for each; stops
/// at the first failure (after its `FailedCreate` event) and returns it.
pub async fn create_pods(
    ctx: &Ctx,
    api: &Api<Pod>,
    owner: &ObjectReference,
    wording: Wording<'_>,
    pods: &[Pod],
) -> Result<(), kube::Error> {
    for pod in pods {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let note = wording.created(pods::name(&created));
                ctx.event(owner, false, "SuccessfulCreate", &note).await;
            }
            Err(e) if matches!(wording, Wording::StatefulSet(_)) && api::is_conflict(&e) => {}
            Err(e) => {
                let note = wording.create_failed(pods::name(pod), &e);
                ctx.event(owner, true, "FailedCreate", &note).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Deletes the pods named in `names` in order, recording an event on
/// `owner` for each; a pod already gone is skipped silently. Stops at the
/// first failure (after its `FailedDelete` event) and returns it.
pub async fn delete_pods(
    ctx: &Ctx,
    api: &Api<Pod>,
    owner: &ObjectReference,
    wording: Wording<'_>,
    names: &[String],
) -> Result<(), kube::Error> {
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                let note = wording.deleted(name);
                ctx.event(owner, false, "SuccessfulDelete", &note).await;
            }
            Err(e) if api::is_not_found(&e) => {}
            Err(e) => {
                let note = wording.delete_failed(name, &e);
                ctx.event(owner, true, "FailedDelete", &note).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code: 403,
            message: "forbidden".to_owned(),
            ..Default::default()
        }))
    }

    #[test]
    fn kubes_wording_per_controller() {
        let e = err();
        let rpc = Wording::PodControl;
        assert_eq!(rpc.created("p-1"), "Created pod: p-1");
        assert_eq!(rpc.deleted("p-1"), "Deleted pod: p-1");
        assert_eq!(rpc.create_failed("p-1", &e), format!("Error creating: {e}"));
        assert_eq!(rpc.delete_failed("p-1", &e), format!("Error deleting: {e}"));
        let ss = Wording::StatefulSet("web");
        assert_eq!(
            ss.created("web-0"),
            "create Pod web-0 in StatefulSet web successful"
        );
        assert_eq!(
            ss.deleted("web-0"),
            "delete Pod web-0 in StatefulSet web successful"
        );
        assert_eq!(
            ss.create_failed("web-0", &e),
            format!("create Pod web-0 in StatefulSet web failed error: {e}")
        );
        assert_eq!(
            ss.delete_failed("web-0", &e),
            format!("delete Pod web-0 in StatefulSet web failed error: {e}")
        );
    }
}
