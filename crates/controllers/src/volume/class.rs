//! The default StorageClass berth ships (k3s's `local-path`), and which
//! class is the default, as the DefaultStorageClass admission chooses.

use std::collections::BTreeMap;

use k8s_openapi::api::storage::v1::StorageClass;

/// The class's name.
pub const LOCAL_PATH: &str = "local-path";
/// The annotation marking the default class.
pub const IS_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";
/// Its beta spelling, still honoured.
pub const IS_DEFAULT_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// The `local-path` class: WaitForFirstConsumer, reclaim Delete, default.
pub fn local_path(provisioner: &str) -> StorageClass {
    let mut class = StorageClass {
        provisioner: provisioner.to_owned(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..Default::default()
    };
    class.metadata.name = Some(LOCAL_PATH.into());
    class.metadata.annotations = Some(BTreeMap::from([(IS_DEFAULT.to_owned(), "true".to_owned())]));
    class
}

/// Whether a class is marked default.
pub fn is_default(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        [IS_DEFAULT, IS_DEFAULT_BETA]
            .iter()
            .any(|k| a.get(*k).map(String::as_str) == Some("true"))
    })
}

/// The default class: of several, the newest (then the first by name),
/// as kube picks.
pub fn default_class(classes: &[StorageClass]) -> Option<&StorageClass> {
    classes
        .iter()
        .filter(|c| is_default(c) && c.metadata.deletion_timestamp.is_none())
        .max_by(|a, b| {
            let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            ta.cmp(&tb)
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn class(name: &str, default: bool, created: i64) -> StorageClass {
        let mut c = local_path("p");
        c.metadata.name = Some(name.into());
        if !default {
            c.metadata.annotations = None;
        }
        c.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        c
    }

    #[test]
    fn newest_default_wins() {
        assert_eq!(default_class(&[class("a", false, 1)]), None);
        let classes = [
            class("old", true, 1),
            class("new", true, 5),
            class("plain", false, 9),
        ];
        assert_eq!(
            default_class(&classes).and_then(|c| c.metadata.name.as_deref()),
            Some("new")
        );
        let tie = [class("b", true, 1), class("a", true, 1)];
        assert_eq!(
            default_class(&tie).and_then(|c| c.metadata.name.as_deref()),
            Some("a")
        );
        let shipped = local_path("berth.dev/local-path");
        assert!(is_default(&shipped));
        assert_eq!(
            shipped.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
    }
}
