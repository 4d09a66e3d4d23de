//! Controller references: the one `ownerReferences` entry with
//! `controller: true`, and the claim rules of kube's
//! `ControllerRefManager` (adopt matching orphans, release owned objects
//! that stopped matching).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to an owner (`controller` and
/// `blockOwnerDeletion` true), as a controller puts on what it creates.
pub fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// [`controller_ref`] to a typed owner (its kind and API version from
/// its type).
pub fn controller_ref_for<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    controller_ref(&K::api_version(&()), &K::kind(&()), owner.meta())
}

/// Whether the object's controller is the object with this UID.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// What a controller does with an object its selector may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours, and it matches: count it.
    Owned,
    /// An orphan that matches: adopt it (then count it).
    Adopt,
    /// Ours but no longer matching: release it (do not count it).
    Release,
    /// Not ours to touch.
    Ignore,
}

/// Kube's claim rules for one object. `owner_deleting`: the owner has a
/// deletionTimestamp (it then adopts and releases nothing).
pub fn claim(owner: &ObjectMeta, owner_deleting: bool, matches: bool, obj: &ObjectMeta) -> Claim {
    let owner_uid = owner.uid.as_deref().unwrap_or_default();
    match controller_of(obj) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None => {
            if owner_deleting
                || !matches
                || obj.deletion_timestamp.is_some()
                || obj.namespace != owner.namespace
            {
                Claim::Ignore
            } else {
                Claim::Adopt
            }
        }
    }
}

/// A JSON merge patch that adds `owner` as controller of `obj`, guarded by
/// `obj`'s resourceVersion (a conflict means: look again).
pub fn adopt_patch(obj: &ObjectMeta, owner: &OwnerReference) -> Value {
    let mut refs: Vec<OwnerReference> = obj.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner.uid);
    refs.push(owner.clone());
    json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.resource_version}})
}

/// A JSON merge patch that removes the reference to `owner_uid` from
/// `obj`, guarded by `obj`'s resourceVersion.
pub fn release_patch(obj: &ObjectMeta, owner_uid: &str) -> Value {
    let refs: Vec<OwnerReference> = obj
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        json!(refs)
    };
    json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.resource_version}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: &str, owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(uid.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(uid.to_owned()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    uid: o.to_owned(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn claim_rules() {
        let rs = meta("rs", None);
        assert_eq!(
            claim(&rs, false, true, &meta("p", Some("rs"))),
            Claim::Owned
        );
        assert_eq!(
            claim(&rs, false, false, &meta("p", Some("rs"))),
            Claim::Release
        );
        assert_eq!(
            claim(&rs, true, false, &meta("p", Some("rs"))),
            Claim::Ignore
        );
        assert_eq!(
            claim(&rs, false, true, &meta("p", Some("other"))),
            Claim::Ignore
        );
        assert_eq!(claim(&rs, false, true, &meta("p", None)), Claim::Adopt);
        assert_eq!(claim(&rs, true, true, &meta("p", None)), Claim::Ignore);
        assert_eq!(claim(&rs, false, false, &meta("p", None)), Claim::Ignore);
        let mut other_ns = meta("p", None);
        other_ns.namespace = Some("x".to_owned());
        assert_eq!(claim(&rs, false, true, &other_ns), Claim::Ignore);
    }

    #[test]
    fn patches() {
        let rs = meta("rs", None);
        let r = controller_ref("apps/v1", "ReplicaSet", &rs);
        assert_eq!(r.block_owner_deletion, Some(true));
        let p = adopt_patch(&meta("p", None), &r);
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "rs");
        let p = release_patch(&meta("p", Some("rs")), "rs");
        assert!(p["metadata"]["ownerReferences"].is_null());
    }
}
