//! Walking objects by the shape their patch metadata gives them: field sets, comparisons,
//! structured-merge-diff's merge, and pruning.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::fieldset::{Set, field_pe, key_pe, value_pe};
use super::managed::strip_server_fields;
use super::{FieldMeta, PatchMeta, json_equal};

/// The shape of a value at a field, per the field's metadata.
enum Shape<'a> {
    /// A granular map or struct.
    Granular(&'a Map<String, Value>),
    /// An associative list: (path element, element) in order; the elements are objects.
    Assoc(Vec<(String, &'a Value)>),
    /// A set of primitives: (path element, value) in order.
    Set(Vec<(String, &'a Value)>),
    /// An atomic value.
    Leaf,
}

fn shape<'a>(v: &'a Value, fm: &FieldMeta) -> Shape<'a> {
    match v {
        Value::Object(m) if !fm.atomic => Shape::Granular(m),
        Value::Array(a) if fm.merge => {
            let mut seen = std::collections::HashSet::new();
            match &fm.merge_key {
                Some(key) => {
                    let mut items = Vec::with_capacity(a.len());
                    for e in a {
                        let Some(m) = e.as_object() else {
                            return Shape::Leaf;
                        };
                        let Some(k) = m.get(key) else {
                            return Shape::Leaf;
                        };
                        let pe = key_pe(key, k);
                        if !seen.insert(pe.clone()) {
                            return Shape::Leaf;
                        }
                        items.push((pe, e));
                    }
                    Shape::Assoc(items)
                }
                None => {
                    let mut items = Vec::with_capacity(a.len());
                    for e in a {
                        if e.is_object() || e.is_array() {
                            return Shape::Leaf;
                        }
                        let pe = value_pe(e);
                        if seen.insert(pe.clone()) {
                            items.push((pe, e));
                        }
                    }
                    Shape::Set(items)
                }
            }
        }
        _ => Shape::Leaf,
    }
}

/// Added, modified and removed paths between two objects.
#[derive(Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    pub fn strip(&mut self) {
        strip_server_fields(&mut self.added);
        strip_server_fields(&mut self.modified);
        strip_server_fields(&mut self.removed);
    }
}

pub(crate) struct Walker<'m> {
    meta: &'m dyn PatchMeta,
    /// Field names from the root (list elements are transparent).
    fpath: Vec<String>,
    /// Path elements from the root.
    epath: Vec<String>,
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

impl<'m> Walker<'m> {
    pub fn new(meta: &'m dyn PatchMeta) -> Self {
        Walker {
            meta,
            fpath: Vec::new(),
            epath: Vec::new(),
        }
    }

    fn child_meta(&mut self, field: &str) -> FieldMeta {
        self.fpath.push(field.to_string());
        let m = self.meta.field(&self.fpath);
        self.fpath.pop();
        m
    }

    /// The field set of `v`, relative to where `v` is.
    pub fn set_of(&mut self, v: &Value, fm: &FieldMeta) -> Set {
        match shape(v, fm) {
            Shape::Granular(m) => self.set_of_map(m),
            Shape::Assoc(items) => {
                let mut set = Set::default();
                for (pe, e) in items {
                    let mut item = self.set_of_element(e);
                    item.member = true;
                    set.add_child(pe, item);
                }
                set
            }
            Shape::Set(items) => {
                let mut set = Set::default();
                for (pe, _) in items {
                    set.add_child(pe, Set::leaf());
                }
                set
            }
            Shape::Leaf => Set::leaf(),
        }
    }

    fn set_of_element(&mut self, e: &Value) -> Set {
        match e {
            Value::Object(m) => self.set_of_map(m),
            _ => Set::default(),
        }
    }

    fn set_of_map(&mut self, m: &Map<String, Value>) -> Set {
        let mut set = Set::default();
        for (k, v) in m {
            if v.is_null() {
                continue;
            }
            let fm = self.child_meta(k);
            self.fpath.push(k.clone());
            let child = self.set_of(v, &fm);
            self.fpath.pop();
            set.add_child(field_pe(k), child);
        }
        set
    }

    pub fn compare(&mut self, old: &Value, new: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare_value(Some(old), Some(new), &FieldMeta::default(), &mut out);
        out
    }

    fn compare_value(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        fm: &FieldMeta,
        out: &mut Comparison,
    ) {
        match (present(old), present(new)) {
            (None, None) => {}
            (None, Some(n)) => {
                let s = self.set_of(n, fm);
                out.added.graft(&self.epath, s);
            }
            (Some(o), None) => {
                let s = self.set_of(o, fm);
                out.removed.graft(&self.epath, s);
            }
            (Some(o), Some(n)) => match (shape(o, fm), shape(n, fm)) {
                (Shape::Granular(om), Shape::Granular(nm)) => self.compare_maps(om, nm, out),
                (Shape::Assoc(oi), Shape::Assoc(ni)) => {
                    let old_items: HashMap<&str, &Value> =
                        oi.iter().map(|(pe, e)| (pe.as_str(), *e)).collect();
                    let new_items: HashMap<&str, &Value> =
                        ni.iter().map(|(pe, e)| (pe.as_str(), *e)).collect();
                    for (pe, ne) in &ni {
                        self.epath.push(pe.clone());
                        match old_items.get(pe.as_str()) {
                            Some(oe) => {
                                if let (Value::Object(om), Value::Object(nm)) = (oe, ne) {
                                    self.compare_maps(om, nm, out);
                                }
                            }
                            None => {
                                let mut s = self.set_of_element(ne);
                                s.member = true;
                                out.added.graft(&self.epath, s);
                            }
                        }
                        self.epath.pop();
                    }
                    for (pe, oe) in &oi {
                        if !new_items.contains_key(pe.as_str()) {
                            self.epath.push(pe.clone());
                            let mut s = self.set_of_element(oe);
                            s.member = true;
                            out.removed.graft(&self.epath, s);
                            self.epath.pop();
                        }
                    }
                }
                (Shape::Set(os), Shape::Set(ns)) => {
                    for (pe, _) in &ns {
                        if !os.iter().any(|(o, _)| o == pe) {
                            self.epath.push(pe.clone());
                            out.added.graft(&self.epath, Set::leaf());
                            self.epath.pop();
                        }
                    }
                    for (pe, _) in &os {
                        if !ns.iter().any(|(n, _)| n == pe) {
                            self.epath.push(pe.clone());
                            out.removed.graft(&self.epath, Set::leaf());
                            self.epath.pop();
                        }
                    }
                }
                (Shape::Leaf, Shape::Leaf) => {
                    if !json_equal(o, n) {
                        out.modified.graft(&self.epath, Set::leaf());
                    }
                }
                _ => {
                    let removed = self.set_of(o, fm);
                    let added = self.set_of(n, fm);
                    out.removed.graft(&self.epath, removed);
                    out.added.graft(&self.epath, added);
                }
            },
        }
    }

    fn compare_maps(
        &mut self,
        om: &Map<String, Value>,
        nm: &Map<String, Value>,
        out: &mut Comparison,
    ) {
        let keys: std::collections::BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
        for k in keys {
            let fm = self.child_meta(k);
            self.fpath.push(k.clone());
            self.epath.push(field_pe(k));
            self.compare_value(om.get(k), nm.get(k), &fm, out);
            self.epath.pop();
            self.fpath.pop();
        }
    }

    /// structured-merge-diff's merge: `config` over `live`, granular maps key by key,
    /// associative lists and sets element by element, everything else replaced.
    pub fn merge(&mut self, live: Option<Value>, config: &Value, fm: &FieldMeta) -> Value {
        let live = live.filter(|v| !v.is_null());
        match (shape(config, fm), live) {
            (Shape::Granular(cm), live) => {
                let lm = match live {
                    Some(Value::Object(lm)) if !fm.atomic => lm,
                    _ => Map::new(),
                };
                Value::Object(self.merge_maps(lm, cm))
            }
            (Shape::Assoc(citems), Some(Value::Array(la))) => {
                let lv = Value::Array(la);
                let live_pes: Option<Vec<String>> = match shape(&lv, fm) {
                    Shape::Assoc(items) => Some(items.into_iter().map(|(pe, _)| pe).collect()),
                    _ => None,
                };
                let (Some(live_pes), Value::Array(la)) = (live_pes, lv) else {
                    return self.merge_new_list(config);
                };
                let live_items: Vec<(String, Value)> = live_pes.into_iter().zip(la).collect();
                Value::Array(merge_ordered(live_items, citems, |l, c| {
                    self.merge_element(l, c)
                }))
            }
            (Shape::Set(citems), Some(Value::Array(la))) => {
                let lv = Value::Array(la);
                let live_items: Option<Vec<(String, Value)>> = match shape(&lv, fm) {
                    Shape::Set(items) => {
                        Some(items.into_iter().map(|(pe, v)| (pe, v.clone())).collect())
                    }
                    _ => None,
                };
                let Some(live_items) = live_items else {
                    return config.clone();
                };
                Value::Array(merge_ordered(live_items, citems, |_, c| c.clone()))
            }
            (Shape::Assoc(_), _) => self.merge_new_list(config),
            _ => config.clone(),
        }
    }

    /// An associative list the live object lacks: its elements' nulls dropped.
    fn merge_new_list(&mut self, config: &Value) -> Value {
        match config {
            Value::Array(a) => {
                Value::Array(a.iter().map(|e| self.merge_element(None, e)).collect())
            }
            other => other.clone(),
        }
    }

    /// An element of an associative list: the configuration's element over the live one.
    fn merge_element(&mut self, live: Option<Value>, config: &Value) -> Value {
        match (live, config) {
            (Some(Value::Object(lm)), Value::Object(cm)) => Value::Object(self.merge_maps(lm, cm)),
            (_, Value::Object(cm)) => Value::Object(self.merge_maps(Map::new(), cm)),
            (_, other) => other.clone(),
        }
    }

    fn merge_maps(
        &mut self,
        mut live: Map<String, Value>,
        config: &Map<String, Value>,
    ) -> Map<String, Value> {
        for (k, cv) in config {
            if cv.is_null() {
                continue;
            }
            let fm = self.child_meta(k);
            self.fpath.push(k.clone());
            let merged = self.merge(live.remove(k), cv, &fm);
            self.fpath.pop();
            live.insert(k.clone(), merged);
        }
        live
    }
}

/// Merges two keyed lists: shared elements in the configuration's order, live-only elements
/// kept in place, new configuration elements before the shared element that follows them.
fn merge_ordered(
    live: Vec<(String, Value)>,
    config: Vec<(String, &Value)>,
    mut merge: impl FnMut(Option<Value>, &Value) -> Value,
) -> Vec<Value> {
    let config_index: HashMap<&str, usize> = config
        .iter()
        .enumerate()
        .map(|(i, (pe, _))| (pe.as_str(), i))
        .collect();
    let mut shared: HashMap<String, Value> = HashMap::new();
    let mut sequence: Vec<Result<usize, Value>> = Vec::new();
    for (pe, v) in live {
        match config_index.get(pe.as_str()) {
            Some(&i) => {
                sequence.push(Ok(i));
                shared.insert(pe, v);
            }
            None => sequence.push(Err(v)),
        }
    }
    let mut out = Vec::with_capacity(sequence.len() + config.len());
    let mut next = 0;
    for step in sequence {
        match step {
            Err(live_only) => out.push(live_only),
            Ok(i) => {
                while next <= i {
                    let (pe, cv) = &config[next];
                    out.push(merge(shared.remove(pe), cv));
                    next += 1;
                }
            }
        }
    }
    while next < config.len() {
        let (pe, cv) = &config[next];
        out.push(merge(shared.remove(pe), cv));
        next += 1;
    }
    out
}

/// Removes from `v` the paths of `last` that `keep` does not hold (nor anything under them);
/// fields whose object or list the removal emptied go too when nobody owns anything in them
/// (kube counts named fields as members of the last applied set).
pub(crate) fn prune(v: &mut Value, last: &Set, keep: &Set) {
    let empty = Set::default();
    for (pe, lnode) in &last.children {
        let knode = keep.children.get(pe).unwrap_or(&empty);
        if lnode.member && knode.is_empty() {
            remove_child(v, pe);
            continue;
        }
        if lnode.children.is_empty() {
            continue;
        }
        let Some(child) = child_mut(v, pe) else {
            continue;
        };
        prune(child, lnode, knode);
        let emptied = match child {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if emptied && pe.starts_with("f:") && knode.is_empty() {
            remove_child(v, pe);
        }
    }
}

/// Whether the list element `e` is the one the path element `pe` names.
fn element_matches(e: &Value, pe: &str) -> bool {
    if let Some(key) = pe.strip_prefix("k:") {
        let Ok(fields) = serde_json::from_str::<Map<String, Value>>(key) else {
            return false;
        };
        fields
            .iter()
            .all(|(k, want)| e.get(k).is_some_and(|got| json_equal(got, want)))
    } else if let Some(value) = pe.strip_prefix("v:") {
        serde_json::from_str::<Value>(value).is_ok_and(|want| json_equal(e, &want))
    } else {
        false
    }
}

fn child_index(a: &[Value], pe: &str) -> Option<usize> {
    if let Some(i) = pe.strip_prefix("i:") {
        return i.parse().ok().filter(|i| *i < a.len());
    }
    a.iter().position(|e| element_matches(e, pe))
}

fn child_mut<'a>(v: &'a mut Value, pe: &str) -> Option<&'a mut Value> {
    match v {
        Value::Object(m) => m.get_mut(pe.strip_prefix("f:")?),
        Value::Array(a) => {
            let i = child_index(a, pe)?;
            a.get_mut(i)
        }
        _ => None,
    }
}

fn remove_child(v: &mut Value, pe: &str) {
    match v {
        Value::Object(m) => {
            if let Some(name) = pe.strip_prefix("f:") {
                m.remove(name);
            }
        }
        Value::Array(a) => {
            if let Some(i) = child_index(a, pe) {
                a.remove(i);
            }
        }
        _ => {}
    }
}
