//! Node selectors (required node affinity: terms of label expressions and
//! `metadata.name` fields) matched against a node as kube matches them
//! (a DaemonSet's placement, a volume's node affinity).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement};

/// Whether a node satisfies a required node selector (any term; every
/// requirement of a term). A selector without terms matches nothing.
pub fn matches(selector: &NodeSelector, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.clone().unwrap_or_default();
    selector.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
        let fields = term.match_fields.as_deref().unwrap_or(&[]);
        if exprs.is_empty() && fields.is_empty() {
            return false;
        }
        exprs
            .iter()
            .all(|r| node_requirement(r, labels.get(&r.key)))
            && fields.iter().all(|r| {
                let value = (r.key == "metadata.name").then_some(&name);
                node_requirement(r, value)
            })
    })
}

fn node_requirement(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSelectorTerm;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn node_selectors() {
        let mut node = Node::default();
        node.metadata.name = Some("n1".into());
        node.metadata.labels = Some(labels(&[("kubernetes.io/hostname", "n1"), ("cpus", "8")]));
        let term = |key: &str, op: &str, values: &[&str], field: bool| {
            let r = NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| (*v).into()).collect()),
            };
            NodeSelector {
                node_selector_terms: vec![if field {
                    NodeSelectorTerm {
                        match_fields: Some(vec![r]),
                        ..Default::default()
                    }
                } else {
                    NodeSelectorTerm {
                        match_expressions: Some(vec![r]),
                        ..Default::default()
                    }
                }],
            }
        };
        assert!(matches(
            &term("kubernetes.io/hostname", "In", &["n1"], false),
            &node
        ));
        assert!(!matches(
            &term("kubernetes.io/hostname", "In", &["n2"], false),
            &node
        ));
        assert!(matches(&term("metadata.name", "In", &["n1"], true), &node));
        assert!(matches(&term("cpus", "Gt", &["4"], false), &node));
        assert!(!matches(&term("cpus", "Lt", &["4"], false), &node));
        assert!(!matches(
            &NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm::default()]
            },
            &node
        ));
    }
}
