//! Patch metadata: how each field of a kind merges (the `patchStrategy`/`patchMergeKey` struct
//! tags of k8s.io/api, plus the `listType`/`mapType`/`structType` markers server-side apply uses).
//!
//! A field is named by its path of field names from the object root, list elements being
//! transparent: the `env` of a Deployment's containers is
//! `["spec", "template", "spec", "containers", "env"]`.

/// How one field merges. The default (`FieldMeta::default()`) is what an untagged field does:
/// lists are replaced (atomic for apply), maps merge key by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMeta {
    /// `patchStrategy` includes `merge`: a list merges instead of being replaced: lists of
    /// objects by [`merge_key`](Self::merge_key), lists of primitives as sets (e.g.
    /// `metadata.finalizers`). For apply: an associative list (with a key) or a set.
    pub merge: bool,
    /// `patchMergeKey`: the field identifying an element of a merging list of objects.
    pub merge_key: Option<String>,
    /// `patchStrategy` includes `retainKeys` (e.g. `volumes`, Deployment `spec.strategy`).
    /// Only patch generation uses it; applying honours the `$retainKeys` directive wherever it is.
    pub retain_keys: bool,
    /// `patchStrategy: replace` on a map: the patch's map replaces the whole map.
    pub replace: bool,
    /// For apply: the map or struct is atomic (`mapType=atomic`/`structType=atomic`), owned as one field.
    pub atomic: bool,
}

/// Answers the patch metadata of every field of one kind.
pub trait PatchMeta {
    /// The metadata of the field at `path` (field names from the object root; list elements
    /// are transparent). Unknown fields answer `FieldMeta::default()`.
    fn field(&self, path: &[String]) -> FieldMeta;
}

/// Patch metadata that knows no field: every list is replaced (atomic), every map merges.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMeta;

impl PatchMeta for NoMeta {
    fn field(&self, _path: &[String]) -> FieldMeta {
        FieldMeta::default()
    }
}

/// One compiled-in rule: the field at `path` (relative to where the table applies).
struct Rule {
    path: &'static [&'static str],
    key: Option<&'static str>,
    merge: bool,
    retain_keys: bool,
    replace: bool,
    atomic: bool,
}

impl Rule {
    const fn keyed(path: &'static [&'static str], key: &'static str) -> Rule {
        Rule {
            path,
            key: Some(key),
            merge: true,
            retain_keys: false,
            replace: false,
            atomic: false,
        }
    }
    const fn keyed_retain(path: &'static [&'static str], key: &'static str) -> Rule {
        Rule {
            retain_keys: true,
            ..Rule::keyed(path, key)
        }
    }
    const fn set(path: &'static [&'static str]) -> Rule {
        Rule {
            path,
            key: None,
            merge: true,
            retain_keys: false,
            replace: false,
            atomic: false,
        }
    }
    const fn atomic(path: &'static [&'static str]) -> Rule {
        Rule {
            path,
            key: None,
            merge: false,
            retain_keys: false,
            replace: false,
            atomic: true,
        }
    }
    const fn retain(path: &'static [&'static str]) -> Rule {
        Rule {
            path,
            key: None,
            merge: false,
            retain_keys: true,
            replace: false,
            atomic: false,
        }
    }
    fn meta(&self) -> FieldMeta {
        FieldMeta {
            merge: self.merge,
            merge_key: self.key.map(str::to_string),
            retain_keys: self.retain_keys,
            replace: self.replace,
            atomic: self.atomic,
        }
    }
}

/// The fields of ObjectMeta (`metadata`, and the metadata of pod templates).
const OBJECT_META: &[Rule] = &[
    Rule::keyed(&["ownerReferences"], "uid"),
    Rule::set(&["finalizers"]),
];

/// The containers of a PodSpec (Container and EphemeralContainer share their tagged lists).
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The fields of a Container, relative to the container.
const CONTAINER: &[Rule] = &[
    Rule::keyed(&["ports"], "containerPort"),
    Rule::keyed(&["env"], "name"),
    Rule::keyed(&["volumeMounts"], "mountPath"),
    Rule::keyed(&["volumeDevices"], "devicePath"),
];

/// The fields of a PodSpec, relative to the PodSpec.
const POD_SPEC: &[Rule] = &[
    Rule::keyed(&["containers"], "name"),
    Rule::keyed(&["initContainers"], "name"),
    Rule::keyed(&["ephemeralContainers"], "name"),
    Rule::keyed_retain(&["volumes"], "name"),
    Rule::keyed(&["imagePullSecrets"], "name"),
    Rule::keyed(&["hostAliases"], "ip"),
    Rule::keyed(&["topologySpreadConstraints"], "topologyKey"),
    Rule::keyed(&["schedulingGates"], "name"),
    Rule::keyed_retain(&["resourceClaims"], "name"),
    Rule::atomic(&["nodeSelector"]),
    Rule::atomic(&[
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ]),
];

const CONDITIONS_BY_TYPE: &[Rule] = &[Rule::keyed(&["status", "conditions"], "type")];
const NONE: &[Rule] = &[];

const POD: &[Rule] = &[
    Rule::keyed(&["status", "conditions"], "type"),
    Rule::keyed(&["status", "podIPs"], "ip"),
    Rule::keyed(&["status", "hostIPs"], "ip"),
    Rule::keyed_retain(&["status", "resourceClaimStatuses"], "name"),
];
const WORKLOAD: &[Rule] = &[
    Rule::keyed(&["status", "conditions"], "type"),
    Rule::atomic(&["spec", "selector"]),
];
const DEPLOYMENT: &[Rule] = &[
    Rule::keyed(&["status", "conditions"], "type"),
    Rule::atomic(&["spec", "selector"]),
    Rule::retain(&["spec", "strategy"]),
];
const SERVICE: &[Rule] = &[
    Rule::keyed(&["spec", "ports"], "port"),
    Rule::atomic(&["spec", "selector"]),
    Rule::keyed(&["status", "conditions"], "type"),
];
const NODE: &[Rule] = &[
    Rule::set(&["spec", "podCIDRs"]),
    Rule::keyed(&["status", "conditions"], "type"),
    Rule::keyed(&["status", "addresses"], "type"),
];
const SERVICE_ACCOUNT: &[Rule] = &[Rule::keyed(&["secrets"], "name")];
const COMPONENT_STATUS: &[Rule] = &[Rule::keyed(&["conditions"], "type")];
const PDB: &[Rule] = &[
    Rule {
        replace: true,
        ..Rule::atomic(&["spec", "selector"])
    },
    Rule::keyed(&["status", "conditions"], "type"),
];
const CSI_NODE: &[Rule] = &[Rule::keyed(&["spec", "drivers"], "name")];
const WEBHOOKS: &[Rule] = &[
    Rule::keyed(&["webhooks"], "name"),
    Rule::keyed(&["webhooks", "matchConditions"], "name"),
];
const ADMISSION_POLICY: &[Rule] = &[
    Rule::keyed(&["spec", "matchConditions"], "name"),
    Rule::keyed(&["spec", "variables"], "name"),
];

const POD_ROOT: &[&[&str]] = &[&["spec"]];
const TEMPLATE_ROOT: &[&[&str]] = &[&["spec", "template", "spec"]];
const POD_TEMPLATE_ROOT: &[&[&str]] = &[&["template", "spec"]];
const CRONJOB_ROOT: &[&[&str]] = &[&["spec", "jobTemplate", "spec", "template", "spec"]];
const NO_ROOT: &[&[&str]] = &[];

/// The compiled-in patch metadata of one built-in kind.
struct KindMeta {
    /// Where a PodSpec appears.
    pod_specs: &'static [&'static [&'static str]],
    /// The kind's other tagged fields, from the object root.
    rules: &'static [Rule],
}

/// The built-in kinds: (group, kind, where PodSpecs are, other rules).
type KindRow = (
    &'static str,
    &'static str,
    &'static [&'static [&'static str]],
    &'static [Rule],
);
const KINDS: &[KindRow] = &[
    ("", "Pod", POD_ROOT, POD),
    ("", "PodTemplate", POD_TEMPLATE_ROOT, NONE),
    ("", "ReplicationController", TEMPLATE_ROOT, WORKLOAD),
    ("", "Service", NO_ROOT, SERVICE),
    ("", "Node", NO_ROOT, NODE),
    ("", "Namespace", NO_ROOT, CONDITIONS_BY_TYPE),
    ("", "PersistentVolumeClaim", NO_ROOT, CONDITIONS_BY_TYPE),
    ("", "PersistentVolume", NO_ROOT, NONE),
    ("", "ServiceAccount", NO_ROOT, SERVICE_ACCOUNT),
    ("", "ComponentStatus", NO_ROOT, COMPONENT_STATUS),
    ("", "ConfigMap", NO_ROOT, NONE),
    ("", "Secret", NO_ROOT, NONE),
    ("", "Endpoints", NO_ROOT, NONE),
    ("", "Event", NO_ROOT, NONE),
    ("", "LimitRange", NO_ROOT, NONE),
    ("", "ResourceQuota", NO_ROOT, NONE),
    ("", "Binding", NO_ROOT, NONE),
    ("apps", "Deployment", TEMPLATE_ROOT, DEPLOYMENT),
    ("apps", "ReplicaSet", TEMPLATE_ROOT, WORKLOAD),
    ("apps", "StatefulSet", TEMPLATE_ROOT, WORKLOAD),
    ("apps", "DaemonSet", TEMPLATE_ROOT, WORKLOAD),
    ("apps", "ControllerRevision", NO_ROOT, NONE),
    ("batch", "Job", TEMPLATE_ROOT, WORKLOAD),
    ("batch", "CronJob", CRONJOB_ROOT, NONE),
    ("autoscaling", "HorizontalPodAutoscaler", NO_ROOT, NONE),
    ("autoscaling", "Scale", NO_ROOT, NONE),
    ("policy", "PodDisruptionBudget", NO_ROOT, PDB),
    ("networking.k8s.io", "Ingress", NO_ROOT, NONE),
    ("networking.k8s.io", "IngressClass", NO_ROOT, NONE),
    ("networking.k8s.io", "NetworkPolicy", NO_ROOT, NONE),
    ("networking.k8s.io", "IPAddress", NO_ROOT, NONE),
    (
        "networking.k8s.io",
        "ServiceCIDR",
        NO_ROOT,
        CONDITIONS_BY_TYPE,
    ),
    ("discovery.k8s.io", "EndpointSlice", NO_ROOT, NONE),
    ("rbac.authorization.k8s.io", "Role", NO_ROOT, NONE),
    ("rbac.authorization.k8s.io", "ClusterRole", NO_ROOT, NONE),
    ("rbac.authorization.k8s.io", "RoleBinding", NO_ROOT, NONE),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        NO_ROOT,
        NONE,
    ),
    ("storage.k8s.io", "StorageClass", NO_ROOT, NONE),
    ("storage.k8s.io", "CSIDriver", NO_ROOT, NONE),
    ("storage.k8s.io", "CSINode", NO_ROOT, CSI_NODE),
    ("storage.k8s.io", "VolumeAttachment", NO_ROOT, NONE),
    ("coordination.k8s.io", "Lease", NO_ROOT, NONE),
    ("events.k8s.io", "Event", NO_ROOT, NONE),
    ("scheduling.k8s.io", "PriorityClass", NO_ROOT, NONE),
    ("node.k8s.io", "RuntimeClass", NO_ROOT, NONE),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        NO_ROOT,
        CONDITIONS_BY_TYPE,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        NO_ROOT,
        CONDITIONS_BY_TYPE,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        NO_ROOT,
        CONDITIONS_BY_TYPE,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        NO_ROOT,
        WEBHOOKS,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        NO_ROOT,
        WEBHOOKS,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        NO_ROOT,
        ADMISSION_POLICY,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        NO_ROOT,
        NONE,
    ),
    (
        "apiregistration.k8s.io",
        "APIService",
        NO_ROOT,
        CONDITIONS_BY_TYPE,
    ),
];

/// The compiled-in patch metadata of the built-in kind `kind` of API group `group` (`""` for
/// the core group), or `None` for kinds it does not know, custom resources included: those
/// take no strategic merge patch (kube-apiserver answers 415, see
/// [`PatchError::StrategicMergeUnsupported`](super::PatchError::StrategicMergeUnsupported)).
///
/// The metadata covers ObjectMeta (`ownerReferences` by `uid`, `finalizers` as a set) at
/// `metadata` and in every pod template, every PodSpec (containers, volumes, ...) wherever the
/// kind embeds one (`spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`,
/// `template.spec`), and the kind's own tagged fields (conditions by `type`, Service ports by
/// `port`, ...).
pub fn builtin_meta(group: &str, kind: &str) -> Option<Box<dyn PatchMeta + Send + Sync>> {
    KINDS
        .iter()
        .find(|(g, k, _, _)| *g == group && *k == kind)
        .map(|&(_, _, pod_specs, rules)| {
            Box::new(KindMeta { pod_specs, rules }) as Box<dyn PatchMeta + Send + Sync>
        })
}

fn matches(rule: &[&str], path: &[String]) -> bool {
    rule.len() == path.len() && rule.iter().zip(path).all(|(r, p)| *r == p.as_str())
}

fn lookup(rules: &[Rule], path: &[String]) -> Option<FieldMeta> {
    rules.iter().find(|r| matches(r.path, path)).map(Rule::meta)
}

/// The metadata of a field relative to a PodSpec.
fn pod_spec_field(rel: &[String]) -> Option<FieldMeta> {
    if let Some(m) = lookup(POD_SPEC, rel) {
        return Some(m);
    }
    match rel.split_first() {
        Some((first, rest)) if CONTAINER_LISTS.contains(&first.as_str()) => lookup(CONTAINER, rest),
        _ => None,
    }
}

impl PatchMeta for KindMeta {
    fn field(&self, path: &[String]) -> FieldMeta {
        if let Some(m) = lookup(self.rules, path) {
            return m;
        }
        if let Some((first, rel)) = path.split_first()
            && first == "metadata"
            && let Some(m) = lookup(OBJECT_META, rel)
        {
            return m;
        }
        for root in self.pod_specs {
            if path.len() < root.len() || !matches(root, &path[..root.len()]) {
                continue;
            }
            let rel = &path[root.len()..];
            if let Some(m) = pod_spec_field(rel) {
                return m;
            }
        }
        // The metadata of pod templates: `<root minus its last "spec">/metadata`.
        for root in self.pod_specs {
            let Some((_, template)) = root.split_last() else {
                continue;
            };
            let depth = template.len() + 1;
            if path.len() > depth
                && matches(template, &path[..template.len()])
                && path[template.len()] == "metadata"
                && let Some(m) = lookup(OBJECT_META, &path[depth..])
            {
                return m;
            }
        }
        FieldMeta::default()
    }
}
