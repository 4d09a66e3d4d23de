//! The default ClusterRoles and ClusterRoleBindings of a Kubernetes 1.33 cluster
//! (kube-apiserver's bootstrap policy), as Kubernetes objects for the caller to create
//! or reconcile at start. Every object carries the label
//! `kubernetes.io/bootstrapping: rbac-defaults` and the annotation
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`.
//!
//! `admin`, `edit` and `view` are aggregated roles: their rules come from
//! `system:aggregate-to-*` through [`aggregate_cluster_roles`](super::aggregation::aggregate_cluster_roles).

use serde_json::{Map, Value, json};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const CONTROLLER_PREFIX: &str = "system:controller:";
const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];

const CORE: &str = "";
const APPS: &str = "apps";
const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const NODE: &str = "node.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

/// A resource rule.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": strings(verbs), "apiGroups": strings(groups), "resources": strings(resources)})
}

/// A resource rule limited to some object names.
fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    let mut r = rule(verbs, groups, resources);
    r["resourceNames"] = strings(names);
    r
}

/// A non-resource rule.
fn urls(verbs: &[&str], paths: &[&str]) -> Value {
    json!({"verbs": strings(verbs), "nonResourceURLs": strings(paths)})
}

/// Creating and updating events, in both event API groups.
fn events_rule() -> Value {
    rule(&["create", "update", "patch"], &[CORE, EVENTS], &["events"])
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = Map::new();
    l.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in labels {
        l.insert(k.to_string(), json!(v));
    }
    json!({
        "name": name,
        "labels": l,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules,
    })
}

/// A role whose rules are those of the ClusterRoles labelled `selector_label: "true"`.
fn aggregated_role(name: &str, labels: &[(&str, &str)], selector_label: &str) -> Value {
    let mut role = cluster_role(name, labels, vec![]);
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
    role
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": name})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": RBAC_GROUP, "name": name})
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

/// A ClusterRoleBinding of the ClusterRole `role` (binding named the same).
fn binding(role: &str, subjects: Vec<Value>) -> Value {
    let mut b = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
    });
    if !subjects.is_empty() {
        b["subjects"] = Value::Array(subjects);
    }
    b
}

/// The default ClusterRoles followed by the default ClusterRoleBindings.
pub fn bootstrap_policy() -> Vec<Value> {
    let mut objects = cluster_roles();
    let controllers = controller_roles();
    objects.extend(controllers.iter().cloned());
    objects.extend(cluster_role_bindings());
    objects.extend(controllers.iter().filter_map(|role| {
        let name = role["metadata"]["name"].as_str()?;
        let sa = name.strip_prefix(CONTROLLER_PREFIX)?;
        Some(binding(name, vec![service_account("kube-system", sa)]))
    }));
    objects
}

fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &[AUTHZ],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], &[AUTHN], &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        aggregated_role("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated_role("edit", &[(AGGREGATE_TO_ADMIN, "true")], AGGREGATE_TO_EDIT),
        aggregated_role("view", &[(AGGREGATE_TO_EDIT, "true")], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            vec![
                rule(&["create"], &[AUTHZ], &["localsubjectaccessreviews"]),
                rule(&rw(), &[RBAC_GROUP], &["roles", "rolebindings"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            aggregate_to_edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            aggregate_to_view_rules(),
        ),
        cluster_role("system:node", &[], node_rules()),
        cluster_role(
            "system:node-problem-detector",
            &[],
            vec![
                rule(&["get"], &[CORE], &["nodes"]),
                rule(&["patch"], &[CORE], &["nodes/status"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            &[],
            vec![
                rule(&["get", "list", "watch"], &[CORE], &["nodes"]),
                rule(&["proxy"], &[CORE], &["nodes"]),
                rule(
                    &["*"],
                    &[CORE],
                    &[
                        "nodes/proxy",
                        "nodes/metrics",
                        "nodes/spec",
                        "nodes/stats",
                        "nodes/log",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &["create", "get", "list", "watch"],
                &[CERTIFICATES],
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], &[AUTHN], &["tokenreviews"]),
                rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role(
            "system:kube-aggregator",
            &[],
            vec![rule(READ, &[CORE], &["services", "endpoints"])],
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            vec![
                events_rule(),
                rule(&["create"], &[COORDINATION], &["leases"]),
                named(
                    &["get", "update"],
                    &[COORDINATION],
                    &["leases"],
                    &["kube-controller-manager"],
                ),
                rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
                rule(&["delete"], &[CORE], &["secrets"]),
                rule(
                    &["get"],
                    &[CORE],
                    &["namespaces", "secrets", "serviceaccounts", "configmaps"],
                ),
                rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
                rule(&["create"], &[AUTHN], &["tokenreviews"]),
                rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &[CORE], &["serviceaccounts/token"]),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            &[],
            vec![rule(
                &["list", "watch"],
                &[CORE],
                &["endpoints", "services"],
            )],
        ),
        cluster_role(
            "system:persistent-volume-provisioner",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "create", "delete"],
                    &[CORE],
                    &["persistentvolumes"],
                ),
                rule(
                    &["get", "list", "watch", "update"],
                    &[CORE],
                    &["persistentvolumeclaims"],
                ),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["watch"], &[CORE], &["events"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        cluster_role(
            "system:volume-scheduler",
            &[],
            vec![
                rule(READ_UPDATE, &[CORE], &["persistentvolumes"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(READ_UPDATE, &[CORE], &["persistentvolumeclaims"]),
            ],
        ),
        signer_approver(
            "system:certificates.k8s.io:legacy-unknown-approver",
            "kubernetes.io/legacy-unknown",
        ),
        signer_approver(
            "system:certificates.k8s.io:kubelet-serving-approver",
            "kubernetes.io/kubelet-serving",
        ),
        signer_approver(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            "kubernetes.io/kube-apiserver-client",
        ),
        signer_approver(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            "kubernetes.io/kube-apiserver-client-kubelet",
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                &["get"],
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )],
        ),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule(&["list", "watch"], &[CORE], &["services", "endpoints"]),
                rule(READ, &[CORE], &["nodes"]),
                events_rule(),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
                rule(&["list", "watch"], &[NETWORKING], &["servicecidrs"]),
            ],
        ),
        cluster_role("system:kube-scheduler", &[], kube_scheduler_rules()),
        // berth's node agents enforce NetworkPolicies (as a CNI plugin's
        // node daemon does): they see every policy, pod and namespace
        cluster_role(
            "system:berth:network-policy",
            &[],
            vec![
                rule(&["list", "watch"], &[NETWORKING], &["networkpolicies"]),
                rule(&["list", "watch"], &[CORE], &["pods", "namespaces"]),
            ],
        ),
    ]
}

fn rw() -> Vec<&'static str> {
    READ.iter().chain(WRITE).copied().collect()
}

fn signer_approver(name: &str, signer: &str) -> Value {
    cluster_role(
        name,
        &[],
        vec![named(
            &["approve"],
            &[CERTIFICATES],
            &["signers"],
            &[signer],
        )],
    )
}

fn aggregate_to_edit_rules() -> Vec<Value> {
    vec![
        // Reading the escalating resources.
        rule(
            READ,
            &[CORE],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
    ]
}

fn aggregate_to_view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[CORE],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Reading namespaces at the namespace scope: reading *this* namespace.
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &[NETWORKING],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &[AUTHN], &["tokenreviews"]),
        rule(
            &["create"],
            &[AUTHZ],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[CORE], &["services"]),
        rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
        rule(&["update", "patch"], &[CORE], &["nodes/status"]),
        rule(&["update", "patch"], &[CORE], &["nodes"]),
        events_rule(),
        rule(READ, &[CORE], &["pods"]),
        rule(&["create", "delete"], &[CORE], &["pods"]),
        rule(&["update", "patch"], &[CORE], &["pods/status"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(READ, &[CORE], &["secrets", "configmaps"]),
        rule(
            &["get"],
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[CORE], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[COORDINATION],
            &["leases"],
        ),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(
            &["get", "update", "patch"],
            &[CORE],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &[STORAGE],
            &["csinodes"],
        ),
        rule(READ, &[NODE], &["runtimeclasses"]),
    ]
}

fn kube_scheduler_rules() -> Vec<Value> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(
            &["get", "update"],
            &[COORDINATION],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ, &[CORE], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        rule(READ, &[CORE], &["services", "replicationcontrollers"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[CORE],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &[AUTHN], &["tokenreviews"]),
        rule(&["create"], &[AUTHZ], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
        // Not in kube's role: kube's Priority admission plugin resolves
        // spec.priority; berth has none, so its scheduler reads the classes.
        rule(READ, &["scheduling.k8s.io"], &["priorityclasses"]),
    ]
}

/// The roles of the controllers berth runs, each bound to the ServiceAccount
/// `kube-system/<name without "system:controller:">`.
fn controller_roles() -> Vec<Value> {
    let c = |name: &str, rules: Vec<Value>| {
        cluster_role(&format!("{CONTROLLER_PREFIX}{name}"), &[], rules)
    };
    vec![
        c(
            "clusterrole-aggregation-controller",
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &[RBAC_GROUP],
                &["clusterroles"],
            )],
        ),
        c(
            "cronjob-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[BATCH], &["cronjobs"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ],
                    &[BATCH],
                    &["jobs"],
                ),
                rule(&["update"], &[BATCH], &["cronjobs/status"]),
                rule(&["update"], &[BATCH], &["cronjobs/finalizers"]),
                rule(&["list", "delete"], &[CORE], &["pods"]),
                events_rule(),
            ],
        ),
        c(
            "daemon-set-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["daemonsets"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/status"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/finalizers"]),
                rule(&["list", "watch"], &[CORE], &["nodes"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[CORE],
                    &["pods"],
                ),
                rule(&["create"], &[CORE], &["pods/binding"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                events_rule(),
            ],
        ),
        c(
            "deployment-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[EXTENSIONS, APPS],
                    &["deployments"],
                ),
                rule(&["update"], &[EXTENSIONS, APPS], &["deployments/status"]),
                rule(
                    &["update"],
                    &[EXTENSIONS, APPS],
                    &["deployments/finalizers"],
                ),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                rule(&["get", "list", "watch", "update"], &[CORE], &["pods"]),
                events_rule(),
            ],
        ),
        c(
            "endpoint-controller",
            vec![
                rule(READ, &[CORE], &["services", "pods"]),
                rule(
                    &["get", "list", "create", "update", "delete"],
                    &[CORE],
                    &["endpoints"],
                ),
                rule(&["create"], &[CORE], &["endpoints/restricted"]),
                events_rule(),
            ],
        ),
        c(
            "endpointslice-controller",
            vec![
                rule(READ, &[CORE], &["services", "pods", "nodes"]),
                rule(&["update"], &[CORE], &["services/finalizers"]),
                rule(
                    &["get", "list", "create", "update", "delete"],
                    &[DISCOVERY],
                    &["endpointslices"],
                ),
                events_rule(),
            ],
        ),
        c(
            "generic-garbage-collector",
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    &["*"],
                    &["*"],
                ),
                events_rule(),
            ],
        ),
        c(
            "job-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[BATCH],
                    &["jobs"],
                ),
                rule(&["update"], &[BATCH], &["jobs/status"]),
                rule(&["update"], &[BATCH], &["jobs/finalizers"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[CORE],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        c(
            "namespace-controller",
            vec![
                rule(
                    &["get", "list", "watch", "delete"],
                    &[CORE],
                    &["namespaces"],
                ),
                rule(
                    &["update"],
                    &[CORE],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["get", "list", "delete", "deletecollection"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        c(
            "node-controller",
            vec![
                // berth's controllers watch as themselves (kube's share the
                // controller manager's informers): hence watch and leases.
                rule(
                    &["get", "list", "watch", "update", "delete", "patch"],
                    &[CORE],
                    &["nodes"],
                ),
                rule(&["patch", "update"], &[CORE], &["nodes/status"]),
                rule(&["patch", "update"], &[CORE], &["pods/status"]),
                rule(&["list", "watch", "get", "delete"], &[CORE], &["pods"]),
                rule(READ, &[COORDINATION], &["leases"]),
                events_rule(),
            ],
        ),
        c(
            "persistent-volume-binder",
            vec![
                rule(
                    &["get", "list", "watch", "update", "create", "delete"],
                    &[CORE],
                    &["persistentvolumes"],
                ),
                rule(&["update"], &[CORE], &["persistentvolumes/status"]),
                rule(
                    &["get", "list", "watch", "update"],
                    &[CORE],
                    &["persistentvolumeclaims"],
                ),
                rule(&["update"], &[CORE], &["persistentvolumeclaims/status"]),
                rule(READ, &[CORE], &["pods"]),
                // berth's built-in local-path provisioner creates its
                // default StorageClass.
                rule(
                    &["get", "list", "watch", "create"],
                    &[STORAGE],
                    &["storageclasses"],
                ),
                rule(
                    &["get", "create", "delete"],
                    &[CORE],
                    &["endpoints", "services"],
                ),
                rule(&["get"], &[CORE], &["secrets"]),
                rule(READ, &[CORE], &["nodes"]),
                events_rule(),
            ],
        ),
        c(
            "pvc-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[CORE],
                    &["persistentvolumeclaims"],
                ),
                rule(READ, &[CORE], &["pods"]),
                events_rule(),
            ],
        ),
        c(
            "pv-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[CORE],
                    &["persistentvolumes"],
                ),
                events_rule(),
            ],
        ),
        c(
            "disruption-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["deployments"]),
                rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
                rule(READ, &[CORE], &["replicationcontrollers"]),
                rule(READ, &[POLICY], &["poddisruptionbudgets"]),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
                rule(&["get"], &["*"], &["*/scale"]),
                rule(READ, &[CORE], &["pods"]),
                rule(&["patch", "update"], &[CORE], &["pods/status"]),
                events_rule(),
            ],
        ),
        c(
            "pod-garbage-collector",
            vec![
                rule(&["list", "watch", "delete"], &[CORE], &["pods"]),
                rule(&["get", "list", "watch"], &[CORE], &["nodes"]),
                rule(&["patch"], &[CORE], &["pods/status"]),
            ],
        ),
        c(
            "replicaset-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/status"]),
                rule(
                    &["update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[CORE],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        c(
            "replication-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[CORE],
                    &["replicationcontrollers"],
                ),
                rule(&["update"], &[CORE], &["replicationcontrollers/status"]),
                rule(&["update"], &[CORE], &["replicationcontrollers/finalizers"]),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[CORE],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        c(
            "root-ca-cert-publisher",
            vec![
                rule(
                    &["get", "list", "watch", "create", "update"],
                    &[CORE],
                    &["configmaps"],
                ),
                rule(READ, &[CORE], &["namespaces"]),
                events_rule(),
            ],
        ),
        c(
            "service-account-controller",
            vec![
                rule(&["list", "watch", "create"], &[CORE], &["serviceaccounts"]),
                rule(READ, &[CORE], &["namespaces"]),
                events_rule(),
            ],
        ),
        c(
            "statefulset-controller",
            vec![
                rule(&["list", "watch"], &[CORE], &["pods"]),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(&["update"], &[APPS], &["statefulsets/status"]),
                rule(&["update"], &[APPS], &["statefulsets/finalizers"]),
                rule(
                    &["get", "create", "delete", "update", "patch"],
                    &[CORE],
                    &["pods"],
                ),
                rule(
                    &[
                        "get", "create", "delete", "update", "patch", "list", "watch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                rule(&["get", "create"], &[CORE], &["persistentvolumeclaims"]),
                rule(&["update", "delete"], &[CORE], &["persistentvolumeclaims"]),
                events_rule(),
            ],
        ),
        c(
            // berth's own: the built-in Ingress controller (berth-ingress)
            "ingress-controller",
            vec![
                rule(READ, &[NETWORKING], &["ingresses", "ingressclasses"]),
                rule(&["create"], &[NETWORKING], &["ingressclasses"]),
                rule(&["update", "patch"], &[NETWORKING], &["ingresses/status"]),
                rule(READ, &[CORE], &["services", "secrets", "nodes"]),
                events_rule(),
            ],
        ),
        c(
            "horizontal-pod-autoscaler",
            vec![
                rule(READ, &[AUTOSCALING], &["horizontalpodautoscalers"]),
                rule(
                    &["update", "patch"],
                    &[AUTOSCALING],
                    &["horizontalpodautoscalers/status"],
                ),
                rule(&["get", "update", "patch"], &["*"], &["*/scale"]),
                rule(&["list"], &[CORE], &["pods"]),
                rule(&["list"], &["metrics.k8s.io"], &["pods"]),
                events_rule(),
            ],
        ),
        c(
            "service-controller",
            vec![
                rule(&["get", "list", "watch"], &[CORE], &["services"]),
                rule(&["patch", "update"], &[CORE], &["services/status"]),
                rule(&["list", "watch"], &[CORE], &["nodes"]),
                events_rule(),
            ],
        ),
        c(
            "ttl-after-finished-controller",
            vec![
                rule(&["get", "list", "watch", "delete"], &[BATCH], &["jobs"]),
                events_rule(),
            ],
        ),
        c(
            "ttl-controller",
            vec![
                rule(&["update", "patch", "list", "watch"], &[CORE], &["nodes"]),
                events_rule(),
            ],
        ),
    ]
}

fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", vec![group("system:masters")]),
        binding("system:monitoring", vec![group("system:monitoring")]),
        binding("system:discovery", vec![group("system:authenticated")]),
        binding("system:basic-user", vec![group("system:authenticated")]),
        binding(
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        binding(
            "system:node-proxier",
            vec![user("system:kube-proxy"), group("system:nodes")],
        ),
        binding("system:berth:network-policy", vec![group("system:nodes")]),
        binding(
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        binding(
            "system:kube-dns",
            vec![service_account("kube-system", "kube-dns")],
        ),
        binding("system:kube-scheduler", vec![user("system:kube-scheduler")]),
        binding(
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        // Kubernetes keeps this without subjects since its Node authorizer;
        // berth has no Node authorizer yet, so nodes get the role by group
        // (as Kubernetes did before 1.8).
        binding("system:node", vec![group("system:nodes")]),
        binding(
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::aggregation::aggregate_cluster_roles;
    use crate::auth::authn::UserInfo;
    use crate::auth::rbac::{Attributes, RbacSnapshot};
    use std::collections::BTreeSet;

    fn of_kind(objects: &[Value], kind: &str) -> Vec<Value> {
        objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect()
    }

    /// The bootstrap policy with aggregated rules written back, as a snapshot.
    fn aggregated_snapshot(extra_bindings: Vec<Value>) -> RbacSnapshot {
        let objects = bootstrap_policy();
        let mut roles = of_kind(&objects, "ClusterRole");
        let aggregated = aggregate_cluster_roles(&roles);
        for (name, rules) in aggregated {
            for role in roles
                .iter_mut()
                .filter(|r| r["metadata"]["name"] == name.as_str())
            {
                role["rules"] = Value::Array(rules.clone());
            }
        }
        let mut bindings = of_kind(&objects, "ClusterRoleBinding");
        bindings.extend(extra_bindings);
        RbacSnapshot::from_objects(vec![], roles, vec![], bindings)
    }

    fn attrs(user: &UserInfo, verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            resource_request: true,
            ..Attributes::default()
        }
    }

    fn person(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    #[test]
    fn every_object_is_labelled_annotated_and_unique() {
        let objects = bootstrap_policy();
        let mut seen = BTreeSet::new();
        for o in &objects {
            let meta = &o["metadata"];
            assert_eq!(
                meta["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults",
                "{o}"
            );
            assert_eq!(
                meta["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
            assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
            let key = format!("{}/{}", o["kind"], meta["name"]);
            assert!(seen.insert(key.clone()), "duplicate {key}");
        }
        // Every binding refers to a role of the policy.
        let roles: BTreeSet<String> = of_kind(&objects, "ClusterRole")
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        for b in of_kind(&objects, "ClusterRoleBinding") {
            let role = b["roleRef"]["name"].as_str().unwrap();
            assert!(roles.contains(role), "binding to missing role {role}");
        }
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:node",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:node-proxier",
            "system:controller:deployment-controller",
            "system:controller:replicaset-controller",
            "system:controller:namespace-controller",
            "system:controller:generic-garbage-collector",
            "system:controller:job-controller",
            "system:controller:cronjob-controller",
            "system:controller:statefulset-controller",
            "system:controller:daemon-set-controller",
            "system:controller:endpointslice-controller",
            "system:controller:service-account-controller",
            "system:controller:node-controller",
            "system:controller:ttl-controller",
            "system:controller:persistent-volume-binder",
            "system:controller:pvc-protection-controller",
            "system:controller:pv-protection-controller",
            "system:controller:disruption-controller",
            "system:controller:root-ca-cert-publisher",
            "system:controller:pod-garbage-collector",
        ] {
            assert!(roles.contains(name), "{name} missing");
        }
    }

    #[test]
    fn admin_edit_view_aggregate_as_kubernetes() {
        let objects = bootstrap_policy();
        let rb = |role: &str, subject: &str| {
            json!({"kind": "RoleBinding", "metadata": {"name": format!("{subject}-{role}"), "namespace": "team"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": subject}]})
        };
        let snap = {
            let mut roles = of_kind(&objects, "ClusterRole");
            for (name, rules) in aggregate_cluster_roles(&roles) {
                for role in roles
                    .iter_mut()
                    .filter(|r| r["metadata"]["name"] == name.as_str())
                {
                    role["rules"] = Value::Array(rules.clone());
                }
            }
            RbacSnapshot::from_objects(
                vec![],
                roles,
                vec![rb("admin", "ann"), rb("edit", "ed"), rb("view", "vic")],
                of_kind(&objects, "ClusterRoleBinding"),
            )
        };
        let ann = person("ann", &["system:authenticated"]);
        let ed = person("ed", &["system:authenticated"]);
        let vic = person("vic", &["system:authenticated"]);

        // admin: everything edit has (through edit, through aggregate-to-edit) plus RBAC.
        assert!(
            snap.authorize(&attrs(&ann, "create", "apps", "deployments", "team"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&ann, "get", "", "secrets", "team"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&ann, "list", "", "pods", "team"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&ann, "create", RBAC_GROUP, "rolebindings", "team"))
                .allowed
        );
        assert!(
            !snap
                .authorize(&attrs(&ann, "create", "apps", "deployments", "other"))
                .allowed
        );

        // edit: writes workloads, no RBAC.
        assert!(
            snap.authorize(&attrs(&ed, "update", "apps", "deployments/scale", "team"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&ed, "create", "", "pods/exec", "team"))
                .allowed
        );
        assert!(
            !snap
                .authorize(&attrs(&ed, "create", RBAC_GROUP, "roles", "team"))
                .allowed
        );

        // view: reads, never secrets, never writes.
        assert!(
            snap.authorize(&attrs(&vic, "list", "apps", "deployments", "team"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&vic, "get", "", "pods/log", "team"))
                .allowed
        );
        let d = snap.authorize(&attrs(&vic, "get", "", "secrets", "team"));
        assert!(!d.allowed);
        assert_eq!(
            d.reason,
            r#"User "vic" cannot get resource "secrets" in API group "" in the namespace "team""#
        );
        assert!(
            !snap
                .authorize(&attrs(&vic, "create", "apps", "deployments", "team"))
                .allowed
        );
        assert!(
            !snap
                .authorize(&attrs(&vic, "create", "", "pods/exec", "team"))
                .allowed
        );

        let view = aggregate_cluster_roles(&of_kind(&objects, "ClusterRole"))
            .into_iter()
            .find(|(n, _)| n == "view")
            .unwrap()
            .1;
        assert!(!view.iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.contains(&json!("secrets")))
        }));
    }

    #[test]
    fn default_bindings_grant_what_kubernetes_grants() {
        let snap = aggregated_snapshot(vec![]);
        let anyone = person("bob", &["system:authenticated"]);
        let anon = person("system:anonymous", &["system:unauthenticated"]);
        let path = |u: &UserInfo, p: &str| Attributes {
            user: u.clone(),
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(snap.authorize(&path(&anyone, "/apis/apps/v1")).allowed);
        assert!(snap.authorize(&path(&anyone, "/version")).allowed);
        assert!(snap.authorize(&path(&anon, "/healthz")).allowed);
        assert!(snap.authorize(&path(&anon, "/version")).allowed);
        assert!(!snap.authorize(&path(&anon, "/api")).allowed);
        assert!(
            snap.authorize(&attrs(
                &anyone,
                "create",
                AUTHZ,
                "selfsubjectaccessreviews",
                ""
            ))
            .allowed
        );
        assert!(
            !snap
                .authorize(&attrs(&anyone, "list", "", "pods", "default"))
                .allowed
        );

        let gc = person(
            "system:serviceaccount:kube-system:generic-garbage-collector",
            &["system:serviceaccounts"],
        );
        assert!(
            snap.authorize(&attrs(&gc, "delete", "apps", "replicasets", "x"))
                .allowed
        );
        let rs = person(
            "system:serviceaccount:kube-system:replicaset-controller",
            &[],
        );
        assert!(
            snap.authorize(&attrs(&rs, "create", "", "pods", "x"))
                .allowed
        );
        assert!(
            snap.authorize(&attrs(&rs, "update", "apps", "replicasets/status", "x"))
                .allowed
        );
        assert!(
            !snap
                .authorize(&attrs(&rs, "delete", "", "secrets", "x"))
                .allowed
        );

        let scheduler = person("system:kube-scheduler", &["system:authenticated"]);
        assert!(
            snap.authorize(&attrs(&scheduler, "create", "", "pods/binding", "x"))
                .allowed
        );
        let mut lease = attrs(&scheduler, "update", COORDINATION, "leases", "kube-system");
        lease.name = "kube-scheduler".into();
        assert!(snap.authorize(&lease).allowed);
        lease.name = "someone-else".into();
        assert!(!snap.authorize(&lease).allowed);

        let admin = person("admin", &["system:masters", "system:authenticated"]);
        assert!(
            snap.authorize(&attrs(&admin, "delete", "", "nodes", ""))
                .allowed
        );
    }
}
