//! The RBAC authorizer: a pure function of a snapshot of Roles, ClusterRoles,
//! RoleBindings and ClusterRoleBindings, with kube-apiserver's matching rules and
//! messages. Members of `system:masters` are always allowed (kube's superuser group).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::authn::UserInfo;
use super::pki::MASTERS_GROUP;
use super::tokens::service_account_username;

/// One rule of a Role or ClusterRole (`rbac.authorization.k8s.io/v1` `PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs, or `*`.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group), or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource` or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names the rule is limited to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource paths; a trailing `*` matches any suffix.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

/// A resource rule as `SelfSubjectRulesReview` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRule {
    /// Verbs, or `*`.
    pub verbs: Vec<String>,
    /// API groups, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// A non-resource rule as `SelfSubjectRulesReview` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonResourceRule {
    /// Verbs, or `*`.
    pub verbs: Vec<String>,
    /// Paths; a trailing `*` matches any suffix.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

/// What a request wants to do, as the authorizer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection, or a
    /// custom one (impersonate, bind, escalate…); for non-resource requests the
    /// lower-case HTTP method (get, post, put, delete…).
    pub verb: String,
    /// The API group (`""` for the core group).
    pub api_group: String,
    /// The resource (plural, lower-case).
    pub resource: String,
    /// The subresource, or empty.
    pub subresource: String,
    /// The namespace, or empty for cluster-scoped requests.
    pub namespace: String,
    /// The object's name, or empty.
    pub name: String,
    /// The path of a non-resource request.
    pub path: String,
    /// Whether this is a resource request (else a non-resource one, using `path`).
    pub resource_request: bool,
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why: the binding that allowed it, or kube-apiserver's 403 text, e.g.
    /// `User "bob" cannot list resource "pods" in API group "" in the namespace "default"`.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RoleObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
}

/// A subject of a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// User, Group or ServiceAccount.
    pub kind: String,
    /// The subject's API group (empty for ServiceAccount).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// The user, group or ServiceAccount name.
    pub name: String,
    /// A ServiceAccount's namespace (defaults to the binding's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// The role a binding grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `rbac.authorization.k8s.io`.
    #[serde(default)]
    pub api_group: String,
    /// Role or ClusterRole.
    pub kind: String,
    /// The role's name.
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    subjects: Option<Vec<Subject>>,
    #[serde(default)]
    role_ref: RoleRef,
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    subjects: Vec<Subject>,
    role_ref: RoleRef,
}

/// A point-in-time view of the cluster's RBAC objects, answering authorization
/// questions. Build a new one whenever the objects change.
#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    role_bindings: Vec<Binding>,
    cluster_role_bindings: Vec<Binding>,
}

impl RbacSnapshot {
    /// A snapshot from Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in
    /// their Kubernetes JSON shapes. Objects that do not parse are skipped with a warning
    /// (they grant nothing).
    pub fn from_objects(
        roles: Vec<Value>,
        cluster_roles: Vec<Value>,
        role_bindings: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
    ) -> RbacSnapshot {
        let mut snapshot = RbacSnapshot::default();
        for role in roles
            .into_iter()
            .filter_map(|v| parse::<RoleObject>(v, "Role"))
        {
            snapshot.roles.insert(
                (role.metadata.namespace, role.metadata.name),
                role.rules.unwrap_or_default(),
            );
        }
        for role in cluster_roles
            .into_iter()
            .filter_map(|v| parse::<RoleObject>(v, "ClusterRole"))
        {
            snapshot
                .cluster_roles
                .insert(role.metadata.name, role.rules.unwrap_or_default());
        }
        let binding = |b: BindingObject| Binding {
            name: b.metadata.name,
            namespace: b.metadata.namespace,
            subjects: b.subjects.unwrap_or_default(),
            role_ref: b.role_ref,
        };
        snapshot.role_bindings = role_bindings
            .into_iter()
            .filter_map(|v| parse::<BindingObject>(v, "RoleBinding"))
            .map(binding)
            .collect();
        snapshot.cluster_role_bindings = cluster_role_bindings
            .into_iter()
            .filter_map(|v| parse::<BindingObject>(v, "ClusterRoleBinding"))
            .map(binding)
            .collect();
        snapshot
    }

    /// Decides whether `attrs` is allowed: `system:masters` always; otherwise when a
    /// rule of a role bound to the user allows it — ClusterRoleBindings everywhere,
    /// RoleBindings (to a Role, or to a ClusterRole scoped to the binding's namespace)
    /// only for requests in their namespace.
    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        if attrs.user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Decision {
                allowed: true,
                reason: format!("allowed: member of the {MASTERS_GROUP} group"),
            };
        }
        for (binding, cluster, rules) in self.bindings_for(&attrs.user, &attrs.namespace) {
            if rules.iter().any(|r| rule_allows(attrs, r)) {
                let subject = binding
                    .subjects
                    .iter()
                    .find(|s| applies_to(&attrs.user, s, &binding.namespace))
                    .map(|s| describe_subject(s, &binding.namespace))
                    .unwrap_or_default();
                let what = if cluster {
                    format!("ClusterRoleBinding {:?}", binding.name)
                } else {
                    format!(
                        "RoleBinding {:?}",
                        format!("{}/{}", binding.name, binding.namespace)
                    )
                };
                return Decision {
                    allowed: true,
                    reason: format!(
                        "RBAC: allowed by {what} of {} {:?} to {subject}",
                        binding.role_ref.kind, binding.role_ref.name
                    ),
                };
            }
        }
        Decision {
            allowed: false,
            reason: forbidden_message(attrs),
        }
    }

    /// The rules `user` has in `namespace` (cluster-wide rules included; an empty
    /// namespace gives the cluster-wide rules alone), split as `SelfSubjectRulesReview`
    /// reports them: `(resource_rules, non_resource_rules)`.
    pub fn rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<ResourceRule>, Vec<NonResourceRule>) {
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        let star = || vec!["*".to_string()];
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            resource_rules.push(ResourceRule {
                verbs: star(),
                api_groups: star(),
                resources: star(),
                resource_names: vec![],
            });
            non_resource_rules.push(NonResourceRule {
                verbs: star(),
                non_resource_urls: star(),
            });
        }
        for (_, _, rules) in self.bindings_for(user, namespace) {
            for rule in rules {
                if !rule.resources.is_empty() {
                    let r = ResourceRule {
                        verbs: rule.verbs.clone(),
                        api_groups: rule.api_groups.clone(),
                        resources: rule.resources.clone(),
                        resource_names: rule.resource_names.clone(),
                    };
                    if !resource_rules.contains(&r) {
                        resource_rules.push(r);
                    }
                }
                if !rule.non_resource_urls.is_empty() {
                    let r = NonResourceRule {
                        verbs: rule.verbs.clone(),
                        non_resource_urls: rule.non_resource_urls.clone(),
                    };
                    if !non_resource_rules.contains(&r) {
                        non_resource_rules.push(r);
                    }
                }
            }
        }
        (resource_rules, non_resource_rules)
    }

    /// The bindings that apply to `user` for a request in `namespace`, with whether each
    /// is a ClusterRoleBinding and the rules of the role it grants.
    fn bindings_for<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Binding, bool, &'a [PolicyRule])> + 'a {
        let cluster = self
            .cluster_role_bindings
            .iter()
            .filter(move |b| b.role_ref.kind == "ClusterRole")
            .filter(move |b| b.subjects.iter().any(|s| applies_to(user, s, "")))
            .filter_map(move |b| {
                self.cluster_roles
                    .get(&b.role_ref.name)
                    .map(|rules| (b, true, rules.as_slice()))
            });
        let namespaced = self
            .role_bindings
            .iter()
            .filter(move |b| !namespace.is_empty() && b.namespace == namespace)
            .filter(move |b| b.subjects.iter().any(|s| applies_to(user, s, &b.namespace)))
            .filter_map(move |b| {
                let rules = match b.role_ref.kind.as_str() {
                    "Role" => self
                        .roles
                        .get(&(b.namespace.clone(), b.role_ref.name.clone())),
                    "ClusterRole" => self.cluster_roles.get(&b.role_ref.name),
                    _ => None,
                };
                rules.map(|rules| (b, false, rules.as_slice()))
            });
        cluster.chain(namespaced)
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: Value, kind: &str) -> Option<T> {
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(kind, error = %e, "RBAC object skipped: it does not parse");
            None
        }
    }
}

/// Whether `subject` names `user`; a ServiceAccount subject without a namespace is in
/// `binding_namespace`.
fn applies_to(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.username == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                subject.namespace.as_str()
            };
            !ns.is_empty() && user.username == service_account_username(ns, &subject.name)
        }
        _ => false,
    }
}

fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    if subject.kind == "ServiceAccount" {
        let ns = if subject.namespace.is_empty() {
            binding_namespace
        } else {
            subject.namespace.as_str()
        };
        format!("{} {:?}", subject.kind, format!("{}/{}", subject.name, ns))
    } else {
        format!("{} {:?}", subject.kind, subject.name)
    }
}

/// Whether `rule` allows `attrs`.
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !matches_any(&rule.verbs, &attrs.verb) {
        return false;
    }
    if !attrs.resource_request {
        return rule
            .non_resource_urls
            .iter()
            .any(|u| non_resource_url_matches(u, &attrs.path));
    }
    matches_any(&rule.api_groups, &attrs.api_group)
        && resource_matches(rule, &attrs.resource, &attrs.subresource)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&attrs.name))
}

fn matches_any(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == "*" || v == wanted)
}

fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    let combined = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

fn non_resource_url_matches(rule_url: &str, path: &str) -> bool {
    if rule_url == "*" || rule_url == path {
        return true;
    }
    rule_url
        .strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

/// kube-apiserver's 403 text for a denied request.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let user = &attrs.user.username;
    if !attrs.resource_request {
        return format!("User {user:?} cannot {} path {:?}", attrs.verb, attrs.path);
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    if attrs.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            attrs.verb, attrs.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            attrs.verb, attrs.api_group, attrs.namespace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    fn req(u: &UserInfo, verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            resource_request: true,
            ..Attributes::default()
        }
    }

    fn path_req(u: &UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            path: path.into(),
            ..Attributes::default()
        }
    }

    fn snapshot() -> RbacSnapshot {
        RbacSnapshot::from_objects(
            vec![json!({
                "kind": "Role", "metadata": {"name": "pod-reader", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
            })],
            vec![
                json!({"kind": "ClusterRole", "metadata": {"name": "deployer"}, "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
                    {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]},
                ]}),
                json!({"kind": "ClusterRole", "metadata": {"name": "cm-one"}, "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "update"]},
                ]}),
                json!({"kind": "ClusterRole", "metadata": {"name": "health"}, "rules": [
                    {"nonResourceURLs": ["/healthz", "/logs/*"], "verbs": ["get"]},
                ]}),
                json!({"kind": "ClusterRole", "metadata": {"name": "everything"}, "rules": [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                ]}),
            ],
            vec![
                json!({"kind": "RoleBinding", "metadata": {"name": "read-pods", "namespace": "default"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                    "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]}),
                json!({"kind": "RoleBinding", "metadata": {"name": "deployers", "namespace": "apps"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "deployer"},
                    "subjects": [{"kind": "ServiceAccount", "name": "ci"}]}),
                json!({"kind": "RoleBinding", "metadata": {"name": "settings", "namespace": "default"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-one"},
                    "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "other"}]}),
                json!({"kind": "RoleBinding", "metadata": {"name": "ghost", "namespace": "default"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
                    "subjects": [{"kind": "User", "name": "bob"}]}),
            ],
            vec![
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "health"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "health"},
                    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]}),
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "ops"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "everything"},
                    "subjects": [{"kind": "Group", "name": "ops"}]}),
                json!("not an object"),
            ],
        )
    }

    #[test]
    fn role_bindings_allow_in_their_namespace_only() {
        let s = snapshot();
        let bob = user("bob", &["system:authenticated"]);
        let d = s.authorize(&req(&bob, "list", "", "pods", "default"));
        assert!(d.allowed);
        assert_eq!(
            d.reason,
            r#"RBAC: allowed by RoleBinding "read-pods/default" of Role "pod-reader" to User "bob""#
        );
        assert!(
            s.authorize(&req(&bob, "get", "", "pods/log", "default"))
                .allowed
        );

        let d = s.authorize(&req(&bob, "list", "", "pods", "kube-system"));
        assert!(!d.allowed);
        assert_eq!(
            d.reason,
            r#"User "bob" cannot list resource "pods" in API group "" in the namespace "kube-system""#
        );
        let d = s.authorize(&req(&bob, "delete", "", "pods", "default"));
        assert!(!d.allowed);
        let d = s.authorize(&req(&bob, "list", "", "pods", ""));
        assert_eq!(
            d.reason,
            r#"User "bob" cannot list resource "pods" in API group "" at the cluster scope"#
        );
        let d = s.authorize(&req(&bob, "get", "", "pods/exec", "default"));
        assert_eq!(
            d.reason,
            r#"User "bob" cannot get resource "pods/exec" in API group "" in the namespace "default""#
        );
    }

    #[test]
    fn service_accounts_wildcards_and_subresources() {
        let s = snapshot();
        let ci = user("system:serviceaccount:apps:ci", &["system:serviceaccounts"]);
        let d = s.authorize(&req(&ci, "patch", "apps", "deployments", "apps"));
        assert!(d.allowed);
        assert_eq!(
            d.reason,
            r#"RBAC: allowed by RoleBinding "deployers/apps" of ClusterRole "deployer" to ServiceAccount "ci/apps""#
        );
        // A RoleBinding to a ClusterRole grants only in the binding's namespace.
        assert!(
            !s.authorize(&req(&ci, "patch", "apps", "deployments", "default"))
                .allowed
        );
        // `*/scale` matches any resource's scale subresource, but not the resource.
        assert!(
            s.authorize(&req(&ci, "update", "apps", "statefulsets/scale", "apps"))
                .allowed
        );
        assert!(
            !s.authorize(&req(&ci, "update", "apps", "statefulsets", "apps"))
                .allowed
        );
        assert!(
            !s.authorize(&req(&ci, "update", "apps", "deployments/status", "default"))
                .allowed
        );
        // The SA subject without a namespace is the binding's namespace, not any other.
        let other_ci = user("system:serviceaccount:default:ci", &[]);
        assert!(
            !s.authorize(&req(&other_ci, "get", "apps", "deployments", "apps"))
                .allowed
        );
    }

    #[test]
    fn resource_names_limit_the_rule() {
        let s = snapshot();
        let app = user("system:serviceaccount:other:app", &[]);
        let mut a = req(&app, "get", "", "configmaps", "default");
        a.name = "settings".into();
        assert!(s.authorize(&a).allowed);
        a.name = "secret-stuff".into();
        assert!(!s.authorize(&a).allowed);
        a.name = String::new();
        a.verb = "list".into();
        assert!(!s.authorize(&a).allowed);
    }

    #[test]
    fn non_resource_urls_and_groups() {
        let s = snapshot();
        let bob = user("bob", &["system:authenticated"]);
        let d = s.authorize(&path_req(&bob, "get", "/healthz"));
        assert!(d.allowed);
        assert_eq!(
            d.reason,
            r#"RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "health" to Group "system:authenticated""#
        );
        assert!(
            s.authorize(&path_req(&bob, "get", "/logs/kube.log"))
                .allowed
        );
        assert!(s.authorize(&path_req(&bob, "get", "/logs/")).allowed);
        assert!(!s.authorize(&path_req(&bob, "get", "/logs")).allowed);
        let d = s.authorize(&path_req(&bob, "post", "/healthz"));
        assert!(!d.allowed);
        assert_eq!(d.reason, r#"User "bob" cannot post path "/healthz""#);
        let d = s.authorize(&path_req(&bob, "get", "/foo"));
        assert_eq!(d.reason, r#"User "bob" cannot get path "/foo""#);

        // A resource rule never grants a path, and `*` resources grant every resource.
        let ops = user("carol", &["ops"]);
        assert!(
            s.authorize(&req(&ops, "delete", "batch", "jobs", "x"))
                .allowed
        );
        assert!(s.authorize(&req(&ops, "get", "", "nodes", "")).allowed);
        assert!(!s.authorize(&path_req(&ops, "get", "/metrics")).allowed);
    }

    #[test]
    fn system_masters_is_always_allowed() {
        let s = RbacSnapshot::default();
        let admin = user("admin", &["system:masters"]);
        assert!(
            s.authorize(&req(
                &admin,
                "escalate",
                "rbac.authorization.k8s.io",
                "clusterroles",
                ""
            ))
            .allowed
        );
        assert!(s.authorize(&path_req(&admin, "get", "/anything")).allowed);
        let nobody = user("system:anonymous", &["system:unauthenticated"]);
        assert!(
            !s.authorize(&req(&nobody, "get", "", "pods", "default"))
                .allowed
        );
    }

    #[test]
    fn rules_for_lists_what_can_i_list_shows() {
        let s = snapshot();
        let bob = user("bob", &["system:authenticated"]);
        let (resource, non_resource) = s.rules_for(&bob, "default");
        assert_eq!(
            resource,
            vec![ResourceRule {
                verbs: vec!["get".into(), "list".into()],
                api_groups: vec!["".into()],
                resources: vec!["pods".into(), "pods/log".into()],
                resource_names: vec![],
            }]
        );
        assert_eq!(non_resource.len(), 1);
        assert_eq!(
            non_resource[0].non_resource_urls,
            vec!["/healthz", "/logs/*"]
        );
        let (resource, _) = s.rules_for(&bob, "kube-system");
        assert!(resource.is_empty());

        let admin = user("admin", &["system:masters"]);
        let (resource, non_resource) = s.rules_for(&admin, "default");
        assert_eq!(resource[0].verbs, vec!["*"]);
        assert_eq!(non_resource[0].non_resource_urls, vec!["*"]);
        let json = serde_json::to_value(&non_resource[0]).unwrap();
        assert_eq!(json, json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }

    #[test]
    fn policy_rules_round_trip_kubes_json() {
        let v = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]});
        let rule: PolicyRule = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&rule).unwrap(), v);
        let v = json!({"verbs": ["get"], "nonResourceURLs": ["/x"]});
        let rule: PolicyRule = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&rule).unwrap(), v);
    }
}
