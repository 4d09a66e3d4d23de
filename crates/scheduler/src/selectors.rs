//! Label selectors, node selector terms and tolerations, compiled once
//! per pod and matched many times.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A compiled `metav1.LabelSelector`. A missing selector (or an invalid
/// one) selects nothing; an empty one selects everything.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    nothing: bool,
    reqs: Vec<LabelReq>,
}

impl Selector {
    /// Selects nothing.
    pub fn nothing() -> Selector {
        Selector {
            nothing: true,
            reqs: Vec::new(),
        }
    }

    /// Selects everything.
    pub fn everything() -> Selector {
        Selector {
            nothing: false,
            reqs: Vec::new(),
        }
    }

    /// Compiles `selector` (`None` selects nothing).
    pub fn new(selector: Option<&LabelSelector>) -> Selector {
        let Some(s) = selector else {
            return Selector::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in s.match_labels.iter().flatten() {
            reqs.push(LabelReq::In(k.clone(), vec![v.clone()]));
        }
        for e in s.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let req = match e.operator.as_str() {
                "In" if !values.is_empty() => LabelReq::In(e.key.clone(), values),
                "NotIn" if !values.is_empty() => LabelReq::NotIn(e.key.clone(), values),
                "Exists" => LabelReq::Exists(e.key.clone()),
                "DoesNotExist" => LabelReq::DoesNotExist(e.key.clone()),
                _ => return Selector::nothing(),
            };
            reqs.push(req);
        }
        Selector {
            nothing: false,
            reqs,
        }
    }

    /// Adds `key In (value)` (a `matchLabelKeys` merge).
    pub fn require(&mut self, key: &str, value: &str) {
        self.reqs
            .push(LabelReq::In(key.to_owned(), vec![value.to_owned()]));
    }

    /// Whether `labels` are selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        if self.nothing {
            return false;
        }
        self.reqs.iter().all(|r| match r {
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Whether this selects everything (no requirement at all).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    /// Selects labels equal to every pair of `map` (a Service's or a
    /// ReplicationController's selector).
    pub fn from_map(map: &Labels) -> Selector {
        Selector {
            nothing: false,
            reqs: map
                .iter()
                .map(|(k, v)| LabelReq::In(k.clone(), vec![v.clone()]))
                .collect(),
        }
    }

    /// Adds every requirement of `other` (which must also hold).
    pub fn and(&mut self, other: &Selector) {
        self.nothing |= other.nothing;
        self.reqs.extend(other.reqs.iter().cloned());
    }
}

/// One requirement of a node selector term.
#[derive(Debug, Clone, PartialEq)]
enum NodeReq {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
    /// A requirement that can never hold (an invalid one).
    Never,
}

impl NodeReq {
    fn new(r: &NodeSelectorRequirement) -> NodeReq {
        let values = r.values.clone().unwrap_or_default();
        let key = r.key.clone();
        let single_int = || match values.as_slice() {
            [v] => v.parse::<i64>().ok(),
            _ => None,
        };
        match r.operator.as_str() {
            "In" if !values.is_empty() => NodeReq::In(key, values),
            "NotIn" if !values.is_empty() => NodeReq::NotIn(key, values),
            "Exists" if values.is_empty() => NodeReq::Exists(key),
            "DoesNotExist" if values.is_empty() => NodeReq::DoesNotExist(key),
            "Gt" => single_int().map_or(NodeReq::Never, |n| NodeReq::Gt(key, n)),
            "Lt" => single_int().map_or(NodeReq::Never, |n| NodeReq::Lt(key, n)),
            _ => NodeReq::Never,
        }
    }

    fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        match self {
            NodeReq::In(k, vs) => get(k).is_some_and(|v| vs.contains(&v)),
            NodeReq::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(&v)),
            NodeReq::Exists(k) => get(k).is_some(),
            NodeReq::DoesNotExist(k) => get(k).is_none(),
            NodeReq::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            NodeReq::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
            NodeReq::Never => false,
        }
    }
}

/// A compiled node selector term: label expressions and field
/// expressions (only `metadata.name`), all of which must hold. An empty
/// term matches no node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTerm {
    exprs: Vec<NodeReq>,
    fields: Vec<NodeReq>,
}

impl NodeTerm {
    /// Compiles a term.
    pub fn new(t: &NodeSelectorTerm) -> NodeTerm {
        let exprs = t
            .match_expressions
            .iter()
            .flatten()
            .map(NodeReq::new)
            .collect();
        let fields = t
            .match_fields
            .iter()
            .flatten()
            .map(|f| {
                if f.key == "metadata.name" {
                    NodeReq::new(f)
                } else {
                    NodeReq::Never
                }
            })
            .collect();
        NodeTerm { exprs, fields }
    }

    /// Whether a node with `labels` and `name` matches.
    pub fn matches(&self, labels: &Labels, name: &str) -> bool {
        if self.exprs.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.exprs
            .iter()
            .all(|r| r.matches(|k| labels.get(k).cloned()))
            && self
                .fields
                .iter()
                .all(|r| r.matches(|k| (k == "metadata.name").then(|| name.to_owned())))
    }

    /// The node names this term is limited to by `metadata.name In`, if any.
    pub fn name_set(&self) -> Option<Vec<String>> {
        let mut out: Option<Vec<String>> = None;
        for f in &self.fields {
            if let NodeReq::In(k, vs) = f
                && k == "metadata.name"
            {
                out = Some(match out {
                    None => vs.clone(),
                    Some(prev) => prev.into_iter().filter(|n| vs.contains(n)).collect(),
                });
            }
        }
        out
    }
}

/// Node selector terms, ORed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeTerms(pub Vec<NodeTerm>);

impl NodeTerms {
    /// Compiles terms.
    pub fn new(terms: &[NodeSelectorTerm]) -> NodeTerms {
        NodeTerms(terms.iter().map(NodeTerm::new).collect())
    }

    /// Whether any term matches.
    pub fn matches(&self, labels: &Labels, name: &str) -> bool {
        self.0.iter().any(|t| t.matches(labels, name))
    }
}

/// A pod's required node placement: `spec.nodeSelector` and the required
/// node affinity, both of which must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequiredNodeAffinity {
    /// `spec.nodeSelector`.
    pub node_selector: Labels,
    /// `requiredDuringSchedulingIgnoredDuringExecution`, if set.
    pub terms: Option<NodeTerms>,
}

impl RequiredNodeAffinity {
    /// Whether a node with `labels` and `name` satisfies both.
    pub fn matches(&self, labels: &Labels, name: &str) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.terms.as_ref().is_none_or(|t| t.matches(labels, name))
    }

    /// Whether nothing is required.
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.terms.is_none()
    }
}

/// Whether toleration `t` tolerates `taint` (kube's `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = t.key.as_deref()
        && !key.is_empty()
        && key != taint.key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sel(v: serde_json::Value) -> Selector {
        Selector::new(Some(&serde_json::from_value(v).expect("selector")))
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(sel(json!({})).matches(&l));
        assert!(!Selector::new(None).matches(&l));
        assert!(sel(json!({"matchLabels": {"app": "web"}})).matches(&l));
        assert!(!sel(json!({"matchLabels": {"app": "db"}})).matches(&l));
        let e = |op: &str, vals: &[&str]| {
            sel(json!({"matchExpressions": [{"key": "tier", "operator": op, "values": vals}]}))
        };
        assert!(e("In", &["front", "back"]).matches(&l));
        assert!(!e("NotIn", &["front"]).matches(&l));
        assert!(e("NotIn", &["x"]).matches(&l));
        assert!(e("Exists", &[]).matches(&l));
        assert!(!e("DoesNotExist", &[]).matches(&l));
        assert!(!e("Bogus", &[]).matches(&l));
        assert!(!e("In", &[]).matches(&l));
    }

    fn term(v: serde_json::Value) -> NodeTerm {
        NodeTerm::new(&serde_json::from_value(v).expect("term"))
    }

    #[test]
    fn node_terms() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let e = |op: &str, key: &str, vals: &[&str]| {
            term(json!({"matchExpressions": [{"key": key, "operator": op, "values": vals}]}))
        };
        assert!(e("In", "zone", &["a"]).matches(&l, "n1"));
        assert!(e("NotIn", "zone", &["b"]).matches(&l, "n1"));
        assert!(e("NotIn", "missing", &["b"]).matches(&l, "n1"));
        assert!(e("Exists", "zone", &[]).matches(&l, "n1"));
        assert!(e("DoesNotExist", "gpu", &[]).matches(&l, "n1"));
        assert!(e("Gt", "cores", &["4"]).matches(&l, "n1"));
        assert!(!e("Gt", "cores", &["8"]).matches(&l, "n1"));
        assert!(e("Lt", "cores", &["9"]).matches(&l, "n1"));
        assert!(!e("Lt", "zone", &["9"]).matches(&l, "n1"));
        assert!(!e("Gt", "cores", &["x"]).matches(&l, "n1"));
        assert!(!term(json!({})).matches(&l, "n1"));
        let f = term(
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
        );
        assert!(f.matches(&l, "n1"));
        assert!(!f.matches(&l, "n2"));
        assert_eq!(f.name_set(), Some(vec!["n1".to_owned()]));
    }

    #[test]
    fn tolerations() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
                .expect("taint");
        let t =
            |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("toleration") };
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(
            &t(json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(tolerates(
            &t(json!({"key": "k", "operator": "Exists"})),
            &taint
        ));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
