//! Label selectors (`matchLabels` + `matchExpressions`, or a plain map as
//! a ReplicationController's) against an object's labels, and rendered
//! as a `labelSelector` query for list calls.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `selector`. An empty selector matches
/// everything (callers that must match nothing for an empty selector, as
/// ReplicaSets do, check [`is_empty`] first). An unknown operator matches
/// nothing.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    berth_types::labels::selector_matches(
        selector.match_labels.as_ref(),
        selector
            .match_expressions
            .iter()
            .flatten()
            .map(|r| berth_types::labels::Requirement {
                key: &r.key,
                operator: &r.operator,
                values: r.values.as_deref().unwrap_or_default(),
            }),
        labels,
    )
}

/// Whether a selector has no requirement at all.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

pub use berth_types::labels::map_matches;

/// The selector as a `labelSelector` query string (`k=v`, `k in (a,b)`,
/// `k notin (a)`, `k`, `!k`).
pub fn to_query(selector: &LabelSelector) -> String {
    let mut parts = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for e in selector.match_expressions.as_deref().unwrap_or_default() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("env", "NotIn", &["prod"]),
                req("x", "DoesNotExist", &[]),
            ]),
        };
        assert!(matches(&sel, &labels(&[("app", "web"), ("tier", "a")])));
        assert!(!matches(&sel, &labels(&[("app", "web"), ("tier", "c")])));
        assert!(!matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "a"), ("env", "prod")])
        ));
        assert!(!matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "a"), ("x", "")])
        ));
        assert!(!matches(&sel, &labels(&[("tier", "a")])));
        let exists = LabelSelector {
            match_expressions: Some(vec![req("k", "Exists", &[])]),
            ..Default::default()
        };
        assert!(matches(&exists, &labels(&[("k", "")])));
        assert!(!matches(&exists, &labels(&[])));
        assert!(is_empty(&LabelSelector::default()));
        assert!(!is_empty(&exists));
        assert!(matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn renders_queries() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("env", "NotIn", &["prod"]),
                req("k", "Exists", &[]),
                req("x", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            to_query(&sel),
            "app=web,tier in (a,b),env notin (prod),k,!x"
        );
        assert_eq!(to_query(&LabelSelector::default()), "");
    }
}
