//! Writing a DaemonSet's or StatefulSet's ControllerRevisions: reading
//! the owner's revisions, creating the current one (or renumbering it to
//! be the latest) and deleting the old ones beyond the history limit.

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{api, owner};

/// The revisions `list` selects that the owner with UID `owner_uid`
/// controls.
pub async fn owned(
    revs: &Api<ControllerRevision>,
    list: &ListParams,
    owner_uid: &str,
) -> Result<Vec<ControllerRevision>, kube::Error> {
    Ok(revs
        .list(list)
        .await?
        .items
        .into_iter()
        .filter(|r| owner::controlled_by(&r.metadata, owner_uid))
        .collect())
}

/// Makes the current revision the latest: creates `create` (one that
/// exists already is someone's race: fine) and sets the number of
/// `renumber` (name, revision).
pub async fn record_current(
    revs: &Api<ControllerRevision>,
    create: Option<&ControllerRevision>,
    renumber: Option<&(String, i64)>,
) -> Result<(), kube::Error> {
    if let Some(rev) = create {
        match revs.create(&PostParams::default(), rev).await {
            Ok(_) => {}
            Err(e) if api::is_conflict(&e) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some((name, number)) = renumber {
        revs.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"revision": number})),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the named revisions (one already gone is skipped).
pub async fn delete(revs: &Api<ControllerRevision>, names: &[String]) -> Result<(), kube::Error> {
    for name in names {
        match revs.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
