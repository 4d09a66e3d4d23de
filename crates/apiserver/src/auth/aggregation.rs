//! ClusterRole aggregation: a ClusterRole with `aggregationRule.clusterRoleSelectors`
//! holds the union of the rules of the ClusterRoles whose labels match a selector, as
//! kube-controller-manager's clusterrole-aggregation controller keeps it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::rbac::PolicyRule;

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements, all of which must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// In, NotIn, Exists or DoesNotExist.
    pub operator: String,
    /// The values for In and NotIn.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector. An empty selector matches everything; an
    /// unknown operator matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterRoleView {
    #[serde(default)]
    metadata: MetaView,
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
    #[serde(default)]
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Debug, Default, Deserialize)]
struct MetaView {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregationRule {
    #[serde(default)]
    cluster_role_selectors: Option<Vec<LabelSelector>>,
}

/// A ClusterRole's labels and its aggregation selectors, if it aggregates.
type RoleLabels = (BTreeMap<String, String>, Option<Vec<LabelSelector>>);

/// For each ClusterRole with `aggregationRule.clusterRoleSelectors`, its aggregated
/// rules: the rules of every other ClusterRole whose labels match one of the selectors,
/// in name order, each rule once. Aggregated roles that are themselves selected
/// contribute their aggregated rules (e.g. `edit` into `admin`): the result is the fixed
/// point the controller reaches. Returns `(name, rules as JSON)` for every aggregating
/// role, sorted by name; the caller writes back those whose stored rules differ.
pub fn aggregate_cluster_roles(cluster_roles: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut roles: BTreeMap<String, RoleLabels> = BTreeMap::new();
    let mut rules: BTreeMap<String, Vec<PolicyRule>> = BTreeMap::new();
    for value in cluster_roles {
        let view: ClusterRoleView = match serde_json::from_value(value.clone()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "ClusterRole skipped in aggregation: it does not parse");
                continue;
            }
        };
        let name = view.metadata.name;
        let selectors = view.aggregation_rule.and_then(|a| a.cluster_role_selectors);
        rules.insert(name.clone(), view.rules.unwrap_or_default());
        roles.insert(name, (view.metadata.labels.unwrap_or_default(), selectors));
    }

    let aggregating: Vec<String> = roles
        .iter()
        .filter(|(_, (_, selectors))| selectors.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    // Each pass lets aggregated rules travel one more level; a chain is at most as long
    // as the number of aggregating roles.
    for _ in 0..=aggregating.len() {
        let mut changed = false;
        for name in &aggregating {
            let Some((_, Some(selectors))) = roles.get(name) else {
                continue;
            };
            let mut union: Vec<PolicyRule> = Vec::new();
            for selector in selectors {
                for (other, (labels, _)) in &roles {
                    if other == name || !selector.matches(labels) {
                        continue;
                    }
                    for rule in rules.get(other).into_iter().flatten() {
                        if !union.contains(rule) {
                            union.push(rule.clone());
                        }
                    }
                }
            }
            if rules.get(name) != Some(&union) {
                rules.insert(name.clone(), union);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    aggregating
        .into_iter()
        .map(|name| {
            let out = rules
                .get(&name)
                .into_iter()
                .flatten()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect();
            (name, out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let l = labels(&[("tier", "web"), ("env", "prod")]);
        assert!(selector(json!({})).matches(&l));
        assert!(selector(json!({"matchLabels": {"tier": "web"}})).matches(&l));
        assert!(!selector(json!({"matchLabels": {"tier": "db"}})).matches(&l));
        let expr = |op: &str, values: &[&str]| {
            selector(
                json!({"matchExpressions": [{"key": "env", "operator": op, "values": values}]}),
            )
        };
        assert!(expr("In", &["prod", "dev"]).matches(&l));
        assert!(!expr("In", &["dev"]).matches(&l));
        assert!(expr("NotIn", &["dev"]).matches(&l));
        assert!(!expr("NotIn", &["prod"]).matches(&l));
        assert!(expr("NotIn", &["prod"]).matches(&labels(&[])));
        assert!(expr("Exists", &[]).matches(&l));
        assert!(!expr("DoesNotExist", &[]).matches(&l));
        assert!(expr("DoesNotExist", &[]).matches(&labels(&[])));
        assert!(!expr("Bogus", &[]).matches(&l));
    }

    #[test]
    fn aggregates_unions_without_duplicates_and_through_chains() {
        let read = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
        let write = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]});
        let roles = vec![
            json!({"metadata": {"name": "top"}, "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"to-top": "true"}}]}}),
            json!({"metadata": {"name": "middle", "labels": {"to-top": "true"}},
                "aggregationRule": {"clusterRoleSelectors": [
                    {"matchExpressions": [{"key": "to-middle", "operator": "Exists"}]}]},
                "rules": []}),
            json!({"metadata": {"name": "b-part", "labels": {"to-middle": "x"}}, "rules": [read.clone(), write.clone()]}),
            json!({"metadata": {"name": "a-part", "labels": {"to-middle": "y"}}, "rules": [read.clone()]}),
            json!({"metadata": {"name": "unrelated"}, "rules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}),
        ];
        let out = aggregate_cluster_roles(&roles);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["middle", "top"]);
        // Name order: a-part's read first, then b-part's write (its read is a duplicate).
        assert_eq!(out[0].1, vec![read.clone(), write.clone()]);
        assert_eq!(out[1].1, vec![read, write]);
    }
}
