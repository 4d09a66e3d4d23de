//! Label selectors evaluated against an object's labels: the one
//! implementation of `matchLabels` + `matchExpressions` semantics that the
//! controllers and the node agent share (each hands over the parts of its
//! own selector type).

use std::collections::BTreeMap;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// One `matchExpressions` entry: key, operator (`In`, `NotIn`, `Exists`,
/// `DoesNotExist`) and values.
#[derive(Clone, Copy, Debug)]
pub struct Requirement<'a> {
    /// The label's key.
    pub key: &'a str,
    /// The operator.
    pub operator: &'a str,
    /// The values (`In`/`NotIn`).
    pub values: &'a [String],
}

/// Whether `labels` satisfy `match_labels` and every requirement. No
/// requirement at all matches everything; an unknown operator matches
/// nothing.
pub fn selector_matches<'a>(
    match_labels: Option<&Labels>,
    requirements: impl IntoIterator<Item = Requirement<'a>>,
    labels: &Labels,
) -> bool {
    if let Some(ml) = match_labels
        && !map_matches(ml, labels)
    {
        return false;
    }
    requirements.into_iter().all(|r| {
        let value = labels.get(r.key);
        match r.operator {
            "In" => value.is_some_and(|v| r.values.contains(v)),
            "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// Whether every `key=value` of `selector` is in `labels` (a map selector;
/// empty matches everything).
pub fn map_matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn operators() {
        let ab = vec!["a".to_owned(), "b".to_owned()];
        let req = |key, operator| Requirement {
            key,
            operator,
            values: &ab,
        };
        let l = labels(&[("k", "a"), ("e", "")]);
        assert!(selector_matches(None, [req("k", "In")], &l));
        assert!(!selector_matches(None, [req("k", "NotIn")], &l));
        assert!(selector_matches(None, [req("x", "NotIn")], &l));
        assert!(selector_matches(None, [req("e", "Exists")], &l));
        assert!(selector_matches(None, [req("x", "DoesNotExist")], &l));
        assert!(!selector_matches(None, [req("k", "Gt")], &l));
        assert!(selector_matches(None, [], &l));
        assert!(selector_matches(Some(&labels(&[("k", "a")])), [], &l));
        assert!(!selector_matches(Some(&labels(&[("k", "b")])), [], &l));
    }
}
