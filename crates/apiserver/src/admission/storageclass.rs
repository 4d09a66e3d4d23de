//! DefaultStorageClass: a PersistentVolumeClaim created without
//! `spec.storageClassName` (absent, not "") gets the default
//! StorageClass, the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"` (the newest of
//! several, then the first by name). Without a default class it stays
//! without one (the volume controller assigns it if one appears).

use serde_json::{Value, json};

use super::key_prefix;
use crate::api::Api;
use crate::error::ApiError;
use crate::meta;

const IS_DEFAULT: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];
/// The class annotation that predates `spec.storageClassName`.
const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn is_default(class: &Value) -> bool {
    let annotations = class.pointer("/metadata/annotations");
    IS_DEFAULT
        .iter()
        .any(|k| annotations.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"))
}

/// The default class among `classes`.
pub fn pick(classes: &[Value]) -> Option<&Value> {
    classes.iter().filter(|c| is_default(c)).max_by(|a, b| {
        meta::meta_str(a, "creationTimestamp")
            .cmp(meta::meta_str(b, "creationTimestamp"))
            .then_with(|| meta::meta_str(b, "name").cmp(meta::meta_str(a, "name")))
    })
}

/// Sets the claim's class to the default one if it names none.
pub async fn default_class(api: &Api, claim: &mut Value) -> Result<(), ApiError> {
    let named = claim
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
        || claim
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(BETA_CLASS))
            .is_some();
    if named {
        return Ok(());
    }
    let prefix = format!(
        "{}/",
        key_prefix(api, "storage.k8s.io", "storageclasses", "")
    );
    let (classes, _) = api.objects.list_all(&prefix, 0).await?;
    if let Some(name) = pick(&classes).map(|c| meta::meta_str(c, "name").to_owned())
        && let Some(spec) = claim.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("storageClassName".to_owned(), json!(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: &str, created: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created,
            "annotations": {"storageclass.kubernetes.io/is-default-class": default}}})
    }

    #[test]
    fn the_newest_default_class_wins() {
        let classes = [
            class("old", "true", "2024-01-01T00:00:00Z"),
            class("new", "true", "2025-01-01T00:00:00Z"),
            class("off", "false", "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(
            pick(&classes).map(|c| meta::meta_str(c, "name")),
            Some("new")
        );
        assert_eq!(pick(&classes[2..]), None);
    }
}
