//! ControllerRevisions: the template history of DaemonSets and
//! StatefulSets that `kubectl rollout history/undo` reads (which revision
//! is current, which to prune), and the template hash kube names them by.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

/// The label naming a pod's (or revision's) template hash.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// The FNV-1a 32-bit offset basis (the hash of no bytes).
pub const FNV32_OFFSET: u32 = 0x811c_9dc5;

/// 32-bit FNV-1a, the hash kube uses for revisions and pod-template
/// hashes.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    fnv32a_extend(FNV32_OFFSET, bytes)
}

/// Continues an FNV-1a 32-bit hash `hash` over more `bytes` (kube writes
/// a template, then a collision count, into one hasher).
pub fn fnv32a_extend(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// kube's `rand.SafeEncodeString`: each character mapped into an
/// alphabet without vowels or look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// The hash of a revision's data and the owner's collision count.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// The revision data of a pod template: a strategic merge patch that
/// replaces the owner's template (what `kubectl rollout undo` applies).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".to_owned(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// A revision's data as JSON.
pub fn data(rev: &ControllerRevision) -> Value {
    rev.data
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or(Value::Null)
}

/// A new revision `<owner>-<hash>` of the template data, labelled with
/// the template's labels and the hash.
pub fn new_revision(
    owner: OwnerReference,
    namespace: &str,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let h = hash(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.to_owned(), h.clone());
    let prefix: String = owner.name.chars().take(223).collect();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{h}")),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// The hash label of a revision.
pub fn hash_of(rev: &ControllerRevision) -> &str {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

/// The highest revision number plus one (1 when there are none).
pub fn next_number(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// The revision for the owner's current template, and what the history
/// needs for it (kube's `getStatefulSetRevisions`/`constructHistory`).
#[derive(Debug, Clone)]
pub struct Current {
    /// The revision of the current template.
    pub revision: ControllerRevision,
    /// It is new: create it.
    pub create: bool,
    /// It existed with a lower number: renumber it to `revision.revision`.
    pub renumber: bool,
    /// The owner's collision count after naming it.
    pub collision_count: Option<i32>,
}

/// Finds the revision whose data equals the template's (renumbered to be
/// the latest when it is not) or makes a new one, bumping the collision
/// count while its name is taken by a different revision.
pub fn current(
    owner: OwnerReference,
    namespace: &str,
    template: &PodTemplateSpec,
    revisions: &[ControllerRevision],
    collision_count: Option<i32>,
) -> Current {
    let data = template_patch(template);
    let latest = next_number(revisions) - 1;
    let mut sorted: Vec<&ControllerRevision> = revisions.iter().collect();
    sorted.sort_by_key(|r| r.revision);
    if let Some(existing) = sorted.iter().rev().find(|r| self::data(r) == data) {
        let mut revision = (*existing).clone();
        let renumber = revision.revision < latest;
        if renumber {
            revision.revision = latest + 1;
        }
        return Current {
            revision,
            create: false,
            renumber,
            collision_count,
        };
    }
    let mut collision = collision_count;
    loop {
        let revision = new_revision(
            owner.clone(),
            namespace,
            template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            data.clone(),
            latest + 1,
            collision,
        );
        if !revisions
            .iter()
            .any(|o| o.metadata.name == revision.metadata.name)
        {
            return Current {
                revision,
                create: true,
                renumber: false,
                collision_count: collision,
            };
        }
        collision = Some(collision.unwrap_or(0) + 1);
    }
}

/// The oldest revisions beyond `limit` that `live` does not name (by
/// revision name or hash), to delete.
pub fn to_prune(revisions: &[ControllerRevision], live: &[String], limit: i32) -> Vec<String> {
    let mut old: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| {
            let name = r.metadata.name.clone().unwrap_or_default();
            !live.iter().any(|l| *l == name || l == hash_of(r))
        })
        .collect();
    old.sort_by_key(|r| r.revision);
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    let excess = old.len().saturating_sub(limit);
    old.iter()
        .take(excess)
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_values() {
        // Reference values of FNV-1a 32.
        let cases: [(&[u8], u32); 3] = [
            (b"", 0x811c_9dc5),
            (b"a", 0xe40c_292c),
            (b"foobar", 0xbf9c_f968),
        ];
        for (input, want) in cases {
            assert_eq!(fnv32a(input), want);
        }
    }

    #[test]
    fn hashes_are_safe_and_change_with_collisions() {
        let d = json!({"spec": {"template": {"x": 1}}});
        let a = hash(&d, None);
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(a, hash(&d, None));
        assert_ne!(a, hash(&d, Some(1)));
    }
}
