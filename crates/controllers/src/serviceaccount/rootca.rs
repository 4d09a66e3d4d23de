//! kube's root-ca-cert-publisher: every active namespace has the
//! ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster CA, so pods
//! can verify the API server (the projected ServiceAccount volume mounts
//! it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// Its key.
pub const KEY: &str = "ca.crt";
/// Its description annotation.
pub const DESCRIPTION_KEY: &str = "kubernetes.io/description";
/// The description kube gives it.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What the namespace's ConfigMap needs.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// It is right.
    None,
    /// Create it.
    Create(ConfigMap),
    /// Replace it with this (data and description restored, other
    /// annotations and labels kept).
    Update(ConfigMap),
}

/// The action for a namespace whose ConfigMap is `existing`.
pub fn plan(namespace: &str, existing: Option<&ConfigMap>, ca_pem: &str) -> Action {
    let data = BTreeMap::from([(KEY.to_owned(), ca_pem.to_owned())]);
    match existing {
        None => {
            let mut cm = ConfigMap {
                data: Some(data),
                ..Default::default()
            };
            cm.metadata.name = Some(NAME.to_owned());
            cm.metadata.namespace = Some(namespace.to_owned());
            cm.metadata.annotations = Some(BTreeMap::from([(
                DESCRIPTION_KEY.to_owned(),
                DESCRIPTION.to_owned(),
            )]));
            Action::Create(cm)
        }
        Some(cm) => {
            let described = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESCRIPTION_KEY))
                .is_some_and(|d| d == DESCRIPTION);
            if cm.data.as_ref() == Some(&data) && cm.binary_data.is_none() && described {
                return Action::None;
            }
            let mut next = cm.clone();
            next.data = Some(data);
            next.binary_data = None;
            next.metadata
                .annotations
                .get_or_insert_default()
                .insert(DESCRIPTION_KEY.to_owned(), DESCRIPTION.to_owned());
            Action::Update(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_restored_or_left_alone() {
        let Action::Create(cm) = plan("team", None, "PEM") else {
            panic!("expected a create");
        };
        assert_eq!(cm.metadata.name.as_deref(), Some("kube-root-ca.crt"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(cm.data.as_ref().unwrap()["ca.crt"], "PEM");
        assert_eq!(plan("team", Some(&cm), "PEM"), Action::None);
        // Edited by someone: restored, their labels kept.
        let mut edited = cm.clone();
        edited.data = Some(BTreeMap::from([
            ("ca.crt".into(), "other".into()),
            ("x".into(), "y".into()),
        ]));
        edited.metadata.labels = Some(BTreeMap::from([("mine".into(), "yes".into())]));
        let Action::Update(fixed) = plan("team", Some(&edited), "PEM") else {
            panic!("expected an update");
        };
        assert_eq!(fixed.data, cm.data);
        assert_eq!(fixed.metadata.labels, edited.metadata.labels);
        // A new CA: updated.
        assert!(matches!(plan("team", Some(&cm), "NEW"), Action::Update(_)));
    }
}
