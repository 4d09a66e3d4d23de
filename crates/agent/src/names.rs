//! How the agent names what it makes in the engine, so that it (or the
//! next agent after a restart, or `berth ps`) can find a pod's sandbox and
//! containers again: kubelet's dockershim scheme.
//!
//! - one sandbox per pod, named `<namespace>_<pod>_<uid>`;
//! - one container per *attempt* of a pod's container (a restart makes a
//!   new one; the previous is kept for `kubectl logs -p`), named
//!   `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.

use std::collections::BTreeMap;

/// Label: the pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Label: the pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label: the pod's uid.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Label: the container's name in the pod.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label: the attempt (0 first).
pub const CONTAINER_ATTEMPT: &str = "io.kubernetes.container.restartCount";
/// Label: `init`, `container` or `ephemeral`.
pub const CONTAINER_KIND: &str = "berth.dev/container-kind";

/// What a pod's container is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An init container (restartable ones are sidecars).
    Init,
    /// An app container.
    Container,
    /// An ephemeral (debug) container.
    Ephemeral,
}

impl Kind {
    /// The label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Container => "container",
            Kind::Ephemeral => "ephemeral",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Init, Kind::Container, Kind::Ephemeral]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The identity of a pod on this node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid.
    pub uid: String,
}

impl PodKey {
    /// The sandbox's name.
    pub fn sandbox_name(&self) -> String {
        format!("{}_{}_{}", self.namespace, self.name, self.uid)
    }

    /// The engine name of attempt `attempt` of container `container`.
    pub fn container_name(&self, container: &str, attempt: u32) -> String {
        format!(
            "k8s_{container}_{}_{}_{}_{attempt}",
            self.name, self.namespace, self.uid
        )
    }

    /// The labels every object of the pod carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (POD_NAME.to_owned(), self.name.clone()),
            (POD_NAMESPACE.to_owned(), self.namespace.clone()),
            (POD_UID.to_owned(), self.uid.clone()),
        ])
    }

    /// The labels of one container attempt.
    pub fn container_labels(
        &self,
        container: &str,
        kind: Kind,
        attempt: u32,
    ) -> BTreeMap<String, String> {
        let mut l = self.labels();
        l.insert(CONTAINER_NAME.to_owned(), container.to_owned());
        l.insert(CONTAINER_ATTEMPT.to_owned(), attempt.to_string());
        l.insert(CONTAINER_KIND.to_owned(), kind.as_str().to_owned());
        l
    }

    /// The pod a set of labels names, if they name one.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<PodKey> {
        Some(PodKey {
            namespace: labels.get(POD_NAMESPACE)?.clone(),
            name: labels.get(POD_NAME)?.clone(),
            uid: labels.get(POD_UID)?.clone(),
        })
    }
}

/// A container attempt, read back from its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The container's name in the pod.
    pub container: String,
    /// Its kind.
    pub kind: Kind,
    /// The attempt.
    pub attempt: u32,
}

impl Attempt {
    /// Reads the container labels.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Attempt> {
        Some(Attempt {
            container: labels.get(CONTAINER_NAME)?.clone(),
            kind: Kind::parse(labels.get(CONTAINER_KIND)?)?,
            attempt: labels.get(CONTAINER_ATTEMPT)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_round_trip() {
        let k = PodKey {
            namespace: "ns".into(),
            name: "web-1".into(),
            uid: "u-1".into(),
        };
        assert_eq!(k.sandbox_name(), "ns_web-1_u-1");
        assert_eq!(k.container_name("app", 3), "k8s_app_web-1_ns_u-1_3");
        let l = k.container_labels("app", Kind::Init, 3);
        assert_eq!(PodKey::from_labels(&l), Some(k));
        assert_eq!(
            Attempt::from_labels(&l),
            Some(Attempt {
                container: "app".into(),
                kind: Kind::Init,
                attempt: 3
            })
        );
        assert_eq!(PodKey::from_labels(&BTreeMap::new()), None);
    }
}
