//! The resources the server serves: built-in kinds and, added at run time,
//! custom resources. Discovery, routing, storage keys and RBAC all read
//! this table.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A subresource of a resource (`pods/status`, `deployments/scale`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    /// `status`, `scale`, `log`…
    pub name: String,
    /// The kind its requests and answers carry.
    pub group: String,
    /// Its version.
    pub version: String,
    /// Its kind (`Scale`, `Pod`, `Eviction`…).
    pub kind: String,
    /// Its verbs.
    pub verbs: Vec<String>,
}

/// One served resource at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group (`""` for core).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// The plural, the URL's resource name (`deployments`).
    pub plural: String,
    /// The singular (`deployment`).
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// The verbs.
    pub verbs: Vec<String>,
    /// Subresources.
    pub subresources: Vec<Subresource>,
    /// Where its objects live in the store: `/registry/<prefix>/`.
    pub key_prefix: String,
    /// Whether this version is the group's storage (and preferred) version.
    pub storage_version: bool,
    /// Only `create` makes sense (review APIs); nothing is stored.
    pub virtual_only: bool,
}

impl Resource {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The subresource called `name`.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource has a status subresource (then the main
    /// resource's writes leave status alone and vice versa).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The store key of an object (`/registry/pods/default/web`), or of
    /// the collection when `name` is empty (`/registry/pods/default/`).
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("/registry/{}/{namespace}/{name}", self.key_prefix)
        } else {
            format!("/registry/{}/{name}", self.key_prefix)
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn verbs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Subresource shorthands for the table below.
fn sub(name: &str, gvk: (&str, &str, &str), verbs_list: &[&str]) -> Subresource {
    Subresource {
        name: name.to_owned(),
        group: gvk.0.to_owned(),
        version: gvk.1.to_owned(),
        kind: gvk.2.to_owned(),
        verbs: verbs(verbs_list),
    }
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const SCALE: (&str, &str, &str) = ("autoscaling", "v1", "Scale");

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    key_prefix: &'static str,
}

/// The built-in resources: (group, version, kind, plural, namespaced,
/// short names, categories, store prefix as kube-apiserver lays it out).
const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &[],
        "namespaces",
    ),
    b("", "v1", "Pod", "pods", true, &["po"], &["all"], "pods"),
    b(
        "",
        "v1",
        "Service",
        "services",
        true,
        &["svc"],
        &["all"],
        "services/specs",
    ),
    b(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        "services/endpoints",
    ),
    b(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        &[],
        "configmaps",
    ),
    b("", "v1", "Secret", "secrets", true, &[], &[], "secrets"),
    b(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
        "serviceaccounts",
    ),
    b("", "v1", "Node", "nodes", false, &["no"], &[], "minions"),
    b("", "v1", "Event", "events", true, &["ev"], &[], "events"),
    b(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
        &[],
        "persistentvolumes",
    ),
    b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        &[],
        "persistentvolumeclaims",
    ),
    b(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
        &[],
        "resourcequotas",
    ),
    b(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
        &[],
        "limitranges",
    ),
    b(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        true,
        &[],
        &[],
        "podtemplates",
    ),
    b(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
        &["rc"],
        &["all"],
        "controllers",
    ),
    b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        &["all"],
        "deployments",
    ),
    b(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        &["all"],
        "replicasets",
    ),
    b(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["all"],
        "statefulsets",
    ),
    b(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["all"],
        "daemonsets",
    ),
    b(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
        &[],
        "controllerrevisions",
    ),
    b("batch", "v1", "Job", "jobs", true, &[], &["all"], "jobs"),
    b(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["cj"],
        &["all"],
        "cronjobs",
    ),
    b(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        &["all"],
        "horizontalpodautoscalers",
    ),
    b(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        &["all"],
        "horizontalpodautoscalers",
    ),
    b(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &[],
        "poddisruptionbudgets",
    ),
    b(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        &[],
        "networkpolicies",
    ),
    b(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        &[],
        "ingress",
    ),
    b(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
        &[],
        "ingressclasses",
    ),
    b(
        "networking.k8s.io",
        "v1",
        "IPAddress",
        "ipaddresses",
        false,
        &["ip"],
        &[],
        "ipaddresses",
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        "servicecidrs",
        false,
        &[],
        &[],
        "servicecidrs",
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        &[],
        "endpointslices",
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        &[],
        "leases",
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        &[],
        "roles",
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        &[],
        "rolebindings",
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        &[],
        "clusterroles",
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        &[],
        "clusterrolebindings",
    ),
    b(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
        &[],
        "storageclasses",
    ),
    b(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        false,
        &[],
        &[],
        "csidrivers",
    ),
    b(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        false,
        &[],
        &[],
        "csinodes",
    ),
    b(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        false,
        &[],
        &[],
        "volumeattachments",
    ),
    b(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        &[],
        "events",
    ),
    b(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
        &[],
        "priorityclasses",
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &[],
        "apiextensions.k8s.io/customresourcedefinitions",
    ),
];

#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    key_prefix: &'static str,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        categories,
        key_prefix,
    }
}

/// The subresources of a built-in resource.
fn builtin_subresources(group: &str, version: &str, plural: &str, kind: &str) -> Vec<Subresource> {
    let own = (group, version, kind);
    let status = || sub("status", own, STATUS_VERBS);
    match (group, plural) {
        ("", "namespaces") => vec![status(), sub("finalize", own, &["update"])],
        ("", "pods") => vec![
            sub("attach", ("", "v1", "PodAttachOptions"), &["create", "get"]),
            sub("binding", ("", "v1", "Binding"), &["create"]),
            sub("ephemeralcontainers", own, STATUS_VERBS),
            sub("eviction", ("policy", "v1", "Eviction"), &["create"]),
            sub("exec", ("", "v1", "PodExecOptions"), &["create", "get"]),
            sub("log", own, &["get"]),
            sub(
                "portforward",
                ("", "v1", "PodPortForwardOptions"),
                &["create", "get"],
            ),
            status(),
        ],
        ("", "nodes") => vec![
            sub(
                "proxy",
                ("", "v1", "NodeProxyOptions"),
                &["create", "delete", "get", "patch", "update"],
            ),
            status(),
        ],
        ("", "services")
        | ("", "persistentvolumes")
        | ("", "persistentvolumeclaims")
        | ("", "resourcequotas")
        | ("batch", _)
        | ("policy", _)
        | ("apps", "daemonsets")
        | ("networking.k8s.io", "ingresses")
        | ("networking.k8s.io", "servicecidrs")
        | ("apiextensions.k8s.io", _)
        | ("autoscaling", _) => {
            vec![status()]
        }
        ("", "serviceaccounts") => vec![sub(
            "token",
            ("authentication.k8s.io", "v1", "TokenRequest"),
            &["create"],
        )],
        ("", "replicationcontrollers")
        | ("apps", "deployments")
        | ("apps", "replicasets")
        | ("apps", "statefulsets") => {
            vec![sub("scale", SCALE, STATUS_VERBS), status()]
        }
        _ => Vec::new(),
    }
}

/// The review APIs: create-only, answered at once, never stored.
const REVIEWS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        false,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
    ),
];

/// Lowercase singular of a kind (`Deployment` → `deployment`).
fn singular(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

/// Every built-in resource.
pub fn builtins() -> Vec<Resource> {
    let mut all: Vec<Resource> = BUILTINS
        .iter()
        .map(|r| Resource {
            group: r.group.to_owned(),
            version: r.version.to_owned(),
            kind: r.kind.to_owned(),
            plural: r.plural.to_owned(),
            singular: singular(r.kind),
            namespaced: r.namespaced,
            short_names: verbs(r.short),
            categories: verbs(r.categories),
            verbs: verbs(ALL_VERBS),
            subresources: builtin_subresources(r.group, r.version, r.plural, r.kind),
            key_prefix: r.key_prefix.to_owned(),
            // autoscaling/v1 HPAs are stored as v2 (conversion.rs).
            storage_version: !(r.group == "autoscaling" && r.version == "v1"),
            virtual_only: false,
        })
        .collect();
    // metrics.k8s.io: read from the kubelets, never stored
    for (kind, plural, namespaced) in [
        ("NodeMetrics", "nodes", false),
        ("PodMetrics", "pods", true),
    ] {
        all.push(Resource {
            group: "metrics.k8s.io".to_owned(),
            version: "v1beta1".to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: String::new(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: verbs(&["get", "list"]),
            subresources: Vec::new(),
            key_prefix: String::new(),
            storage_version: true,
            virtual_only: true,
        });
    }
    for (group, version, kind, plural, namespaced) in REVIEWS {
        all.push(Resource {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
            kind: (*kind).to_owned(),
            plural: (*plural).to_owned(),
            singular: singular(kind),
            namespaced: *namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: verbs(&["create"]),
            subresources: Vec::new(),
            key_prefix: String::new(),
            storage_version: true,
            virtual_only: true,
        });
    }
    all
}

/// The served resources, looked up by group, version and plural.
#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// In discovery order.
    list: Vec<Arc<Resource>>,
    by_path: HashMap<(String, String, String), Arc<Resource>>,
}

impl Registry {
    /// A registry of the built-in resources.
    pub fn with_builtins() -> Registry {
        let registry = Registry::default();
        for resource in builtins() {
            registry.add(resource);
        }
        registry
    }

    /// Adds (or replaces) a resource.
    pub fn add(&self, resource: Resource) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.plural.clone(),
        );
        let resource = Arc::new(resource);
        inner.list.retain(|r| {
            (r.group.as_str(), r.version.as_str(), r.plural.as_str())
                != (key.0.as_str(), key.1.as_str(), key.2.as_str())
        });
        inner.list.push(resource.clone());
        inner.by_path.insert(key, resource);
    }

    /// Removes the resources of a group and plural (every version).
    pub fn remove(&self, group: &str, plural: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner
            .list
            .retain(|r| !(r.group == group && r.plural == plural));
        inner
            .by_path
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    /// The resource at `/apis/<group>/<version>/<plural>`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// The resource of a kind at a group and version.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .list
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// Every resource, in discovery order.
    pub fn all(&self) -> Vec<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.list.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_as_kube_apiserver_lays_them() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(pods.key("default", ""), "/registry/pods/default/");
        let nodes = registry.get("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("", "n1"), "/registry/minions/n1");
        let services = registry.get("", "v1", "services").unwrap();
        assert_eq!(services.key("ns", "s"), "/registry/services/specs/ns/s");
        let deployments = registry.get("apps", "v1", "deployments").unwrap();
        assert_eq!(deployments.subresource("scale").unwrap().kind, "Scale");
        assert!(registry.get("apps", "v1", "nosuch").is_none());
    }
}
