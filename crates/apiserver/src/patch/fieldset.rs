//! Field sets (structured-merge-diff's `fieldpath.Set`) in the shape of their `FieldsV1`
//! serialization: a tree whose edges are path elements and whose nodes may be members.
//!
//! Path elements are kept in their serialized form: `f:<field>`, `k:<key object>` (an element
//! of an associative list), `v:<value>` (an element of a set), `i:<index>`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Set {
    /// The path leading to this node is in the set.
    pub member: bool,
    /// Longer paths, by their next element. Never holds empty sets.
    pub children: BTreeMap<String, Set>,
}

impl Set {
    /// A set holding only the empty path (the node itself).
    pub fn leaf() -> Set {
        Set {
            member: true,
            children: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Adds `other` at `path` (creating the nodes on the way).
    pub fn graft(&mut self, path: &[String], other: Set) {
        if other.is_empty() {
            return;
        }
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.union_with(&other);
    }

    /// Adds `child` under the element `pe`, unless it is empty.
    pub fn add_child(&mut self, pe: String, child: Set) {
        if !child.is_empty() {
            self.children.entry(pe).or_default().union_with(&child);
        }
    }

    pub fn union_with(&mut self, other: &Set) {
        self.member |= other.member;
        for (pe, child) in &other.children {
            if !child.is_empty() {
                self.children
                    .entry(pe.clone())
                    .or_default()
                    .union_with(child);
            }
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let diff = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            out.add_child(pe.clone(), diff);
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(o) = other.children.get(pe) {
                out.add_child(pe.clone(), child.intersection(o));
            }
        }
        out
    }

    /// Every member path, a node before its descendants.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            m.insert(pe.clone(), child.to_json());
        }
        Value::Object(m)
    }

    /// Reads `FieldsV1` JSON (the root object is the empty path, never a member).
    pub fn from_json(v: &Value) -> Set {
        let mut root = Set::from_node(v);
        root.member = false;
        root
    }

    fn from_node(v: &Value) -> Set {
        let mut set = Set::default();
        let Some(m) = v.as_object() else {
            return set;
        };
        if m.is_empty() {
            set.member = true;
        }
        for (k, child) in m {
            if k == "." {
                set.member = true;
            } else {
                set.add_child(k.clone(), Set::from_node(child));
            }
        }
        set
    }
}

/// The path element of an object field.
pub(crate) fn field_pe(name: &str) -> String {
    format!("f:{name}")
}

/// The path element of an associative list's element with merge key `key` = `value`.
pub(crate) fn key_pe(key: &str, value: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    format!("k:{}", Value::Object(m))
}

/// The path element of a set's element.
pub(crate) fn value_pe(value: &Value) -> String {
    format!("v:{value}")
}

/// A path as structured-merge-diff prints it: `.spec.containers[name="main"].image`.
pub(crate) fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for pe in path {
        if let Some(name) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = pe.strip_prefix("k:") {
            match serde_json::from_str::<Map<String, Value>>(key) {
                Ok(fields) => {
                    let parts: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push('[');
                    out.push_str(&parts.join(","));
                    out.push(']');
                }
                Err(_) => out.push_str(&format!("[{key}]")),
            }
        } else if let Some(value) = pe.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else if let Some(index) = pe.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        } else {
            out.push_str(&format!("[{pe}]"));
        }
    }
    out
}
