//! managedFields entries: parsing, identity, writing in kube's order, and the fields the
//! server owns (never tracked).

use serde_json::{Map, Value};

use super::fieldset::{Set, field_pe};

/// One managedFields entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub set: Set,
}

/// What tells entries apart: kube keys Apply entries by manager, Update entries by manager
/// and API version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EntryId {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: Option<String>,
}

impl EntryId {
    pub fn apply(manager: &str) -> EntryId {
        EntryId {
            manager: manager.to_string(),
            operation: "Apply".to_string(),
            api_version: String::new(),
            subresource: None,
        }
    }
    pub fn update(manager: &str, api_version: &str) -> EntryId {
        EntryId {
            manager: manager.to_string(),
            operation: "Update".to_string(),
            api_version: api_version.to_string(),
            subresource: None,
        }
    }
}

impl Entry {
    pub fn id(&self) -> EntryId {
        EntryId {
            manager: self.manager.clone(),
            operation: self.operation.clone(),
            api_version: if self.operation == "Apply" {
                String::new()
            } else {
                self.api_version.clone()
            },
            subresource: self.subresource.clone(),
        }
    }

    fn parse(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if s("fieldsType").is_some_and(|t| t != "FieldsV1") {
            return None;
        }
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource"),
            set: v.get("fieldsV1").map(Set::from_json).unwrap_or_default(),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.clone().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(t) = &self.time {
            m.insert("time".into(), t.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.set.to_json());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), sub.clone().into());
        }
        Value::Object(m)
    }
}

/// Removes `metadata.managedFields` from `obj` and parses it.
pub(crate) fn take_entries(obj: &mut Value) -> Vec<Entry> {
    let Some(Value::Object(meta)) = obj.get_mut("metadata") else {
        return Vec::new();
    };
    match meta.remove("managedFields") {
        Some(Value::Array(a)) => a.iter().filter_map(Entry::parse).collect(),
        _ => Vec::new(),
    }
}

/// Writes `entries` as `obj`'s managedFields, in kube's order (operation, time, manager,
/// API version, subresource); none leaves the field out.
pub(crate) fn put_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Value::Object(root) = obj else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Removes the fields the server owns from a field set (kube's `stripMeta`).
pub(crate) fn strip_server_fields(set: &mut Set) {
    set.children.remove("f:apiVersion");
    set.children.remove("f:kind");
    if let Some(meta) = set.children.get_mut("f:metadata") {
        meta.member = false;
        for f in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            meta.children.remove(&field_pe(f));
        }
        if meta.is_empty() {
            set.children.remove("f:metadata");
        }
    }
}
