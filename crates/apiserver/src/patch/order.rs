//! The element order of merged lists in a strategic merge patch, by kube's rules:
//!
//! * the merged list is split into the elements the patch (or its `$setElementOrder` list)
//!   names and the elements only the server has;
//! * the patch's elements are sorted by the patch's order, the server-only elements by their
//!   order in the live list;
//! * the two are interleaved: a server-only element goes before the next patch element when
//!   both were in the live list and it came first there; patch elements new to the list go
//!   before the remaining server-only elements.

use std::collections::HashMap;

use serde_json::Value;

use super::PatchError;
use super::json_equal;

/// The kind of the elements of a list (kube refuses lists mixing kinds, and lists of lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemKind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// The common kind of the elements of `lists`, `None` when they have no element.
pub(crate) fn element_kind(lists: &[&[Value]]) -> Result<Option<ElemKind>, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = match v {
            Value::Null => ElemKind::Null,
            Value::Bool(_) => ElemKind::Bool,
            Value::Number(_) => ElemKind::Number,
            Value::String(_) => ElemKind::String,
            Value::Object(_) => ElemKind::Object,
            Value::Array(_) => {
                return Err(PatchError::Invalid(
                    "lists of lists are not supported".to_string(),
                ));
            }
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::Invalid(format!(
                    "list element types are not identical: {}",
                    lists
                        .iter()
                        .map(|l| Value::Array(l.to_vec()).to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// The error kube gives for a list element without its merge key.
pub(crate) fn no_merge_key(v: &Value, key: &str) -> PatchError {
    PatchError::Invalid(format!(
        "map: {v} does not contain declared merge key: {key}"
    ))
}

/// The value identifying a list element: its merge key's value, or the element itself.
fn identity<'a>(v: &'a Value, key: Option<&str>) -> Result<&'a Value, PatchError> {
    match key {
        None => Ok(v),
        Some(key) => match v {
            Value::Object(m) => m.get(key).ok_or_else(|| no_merge_key(v, key)),
            other => Err(PatchError::Invalid(format!(
                "expected a map, but received a {other}"
            ))),
        },
    }
}

/// A hashable rendering of an identity value (numbers compare by value, as in kube).
fn ident_string(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) => format!("n{f}"),
            None => format!("n{n}"),
        },
        Value::String(s) => format!("s{s}"),
        other => format!("o{other}"),
    }
}

/// Positions of identities in a list (the first occurrence wins, as kube's linear search).
struct Positions(HashMap<String, usize>);

impl Positions {
    fn new(order: &[Value], key: Option<&str>) -> Self {
        let mut map = HashMap::with_capacity(order.len());
        for (i, v) in order.iter().enumerate() {
            let id = match key {
                None => Some(v),
                Some(k) => v.get(k),
            };
            if let Some(id) = id {
                map.entry(ident_string(id)).or_insert(i);
            }
        }
        Positions(map)
    }

    fn of(&self, v: &Value, key: Option<&str>) -> Option<usize> {
        let id = match key {
            None => Some(v),
            Some(k) => v.get(k),
        }?;
        self.0.get(&ident_string(id)).copied()
    }
}

/// Splits `merged` into (elements `by` names, the others), keeping their order.
pub(crate) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    if let Some(key) = key {
        if let Some(bad) = by.iter().find(|v| !v.is_object()) {
            return Err(PatchError::Invalid(format!(
                "expected a map, but received a {bad}"
            )));
        }
        for v in merged {
            let id = identity(&v, Some(key))?;
            if by
                .iter()
                .any(|b| b.get(key).is_some_and(|bv| json_equal(bv, id)))
            {
                named.push(v);
            } else {
                others.push(v);
            }
        }
    } else {
        let set: std::collections::HashSet<String> = by.iter().map(ident_string).collect();
        for v in merged {
            if set.contains(&ident_string(&v)) {
                named.push(v);
            } else {
                others.push(v);
            }
        }
    }
    Ok((named, others))
}

fn is_delete_item(v: &Value) -> bool {
    v.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Sorts `to_sort` by the order of `order` (kube's `normalizeSliceOrder`).
fn sort_by_order(
    to_sort: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
    kind: ElemKind,
) -> Result<Vec<Value>, PatchError> {
    let (mut items, deletes): (Vec<Value>, Vec<Value>) = if kind == ElemKind::Object {
        let key = key.unwrap_or("");
        for v in to_sort.iter().chain(order) {
            identity(v, Some(key))?;
        }
        to_sort.into_iter().partition(|v| !is_delete_item(v))
    } else {
        (to_sort, Vec::new())
    };
    let key = if kind == ElemKind::Object { key } else { None };
    let positions = Positions::new(order, key);
    let idx: Vec<Option<usize>> = items.iter().map(|v| positions.of(v, key)).collect();
    if idx.iter().all(Option::is_some) {
        let mut paired: Vec<(Option<usize>, Value)> = idx.into_iter().zip(items).collect();
        paired.sort_by_key(|(i, _)| *i);
        items = paired.into_iter().map(|(_, v)| v).collect();
    } else {
        // kube's comparator says "less" whenever an element is not in `order`; its stable
        // sort is an insertion sort for short lists, reproduced here.
        let mut paired: Vec<(Option<usize>, Value)> = idx.into_iter().zip(items).collect();
        let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        };
        for i in 1..paired.len() {
            let mut j = i;
            while j > 0 && less(paired[j].0, paired[j - 1].0) {
                paired.swap(j, j - 1);
                j -= 1;
            }
        }
        items = paired.into_iter().map(|(_, v)| v).collect();
    }
    items.extend(deletes);
    Ok(items)
}

/// kube's `normalizeElementOrder`: sorts the patch elements by `patch_order`, the server-only
/// ones by `server_order`, then interleaves them (see the module documentation).
pub(crate) fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
    kind: ElemKind,
) -> Result<Vec<Value>, PatchError> {
    let right = sort_by_order(patch_items, patch_order, key, kind)?;
    let left = sort_by_order(server_only, server_order, key, kind)?;
    let key = if kind == ElemKind::Object { key } else { None };
    let positions = Positions::new(server_order, key);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((positions.of(l, key), positions.of(r, key)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}
