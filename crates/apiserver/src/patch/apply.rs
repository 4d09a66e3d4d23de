//! Server-side apply and managedFields, after structured-merge-diff's semantics.
//!
//! Field ownership is tracked per manager in `metadata.managedFields` (`FieldsV1` sets).
//! An apply sets the fields of the applied configuration, removes the fields the manager
//! applied last time but no longer applies (unless another manager owns them), and fails with
//! a conflict when it changes a field another manager owns (unless forced, which takes the
//! field over). Every other write records, with [`record_update`], that its manager now owns
//! the fields it changed.
//!
//! The walk over an object takes its shape from [`PatchMeta`]: maps and structs are granular
//! (unless `atomic`), lists with a merge key are associative (keyed `k:{"<key>":<value>}`),
//! primitive lists with the merge strategy are sets (`v:<value>`), other lists are atomic.
//!
//! Simplifications (documented, on purpose):
//! * one key per associative list, the strategic-merge key (kube keys some lists by several
//!   fields, e.g. container ports by `containerPort` and `protocol`);
//! * a `null` in an applied configuration is ignored (neither set nor owned);
//! * one API version: field sets of other versions are compared as they are (no conversion);
//! * no `before-first-apply` manager for objects without managedFields, no cap on the number
//!   of Update entries, no subresource argument (entries' `subresource` is kept as read);
//! * the caller resets what the endpoint ignores (e.g. `status` on the main resource) before
//!   calling;
//! * Update field sets mark list elements (`"."`) but not maps a write created (kube marks
//!   both; nothing reads the difference);
//! * associative and set lists merge in this order: shared elements in the applied order,
//!   live-only elements kept in place, new elements before the shared element following them.

use serde_json::{Map, Value};

use super::fieldset::{Set, display_path};
use super::managed::{Entry, EntryId, put_entries, strip_server_fields, take_entries};
use super::walk::{Walker, prune};
use super::{FieldMeta, PatchMeta, check_depth};

/// A field that an apply would change while another manager owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version the manager wrote with.
    pub api_version: String,
    /// The entry's subresource (`status`...), if any.
    pub subresource: Option<String>,
    /// The field, as kube prints it: `.spec.replicas`, `.spec.containers[name="main"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as kube names it in conflict messages: `"kubectl"` for an applier,
    /// `"kubectl-client-side-apply" using apps/v1` for an updater.
    pub fn manager_display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The message of the conflict's `StatusCause` (type `FieldManagerConflict`, field
    /// [`field`](Self::field)).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_display())
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The apply changes fields other managers own (409 Conflict, reason `Conflict`, one
    /// `FieldManagerConflict` cause per field).
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<Conflict>),
    /// The applied configuration is unusable (400), e.g. not an object or with managedFields.
    #[error("{0}")]
    BadRequest(String),
}

impl ApplyError {
    /// The HTTP status kube-apiserver answers for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ApplyError::Conflict(_) => 409,
            ApplyError::BadRequest(_) => 400,
        }
    }
}

/// kube's wording: `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`,
/// or with several, `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display(),
            c.field
        );
    }
    let mut by_manager: Vec<(String, Vec<&str>)> = Vec::new();
    for c in conflicts {
        let m = c.manager_display();
        match by_manager.iter_mut().find(|(d, _)| *d == m) {
            Some((_, fields)) => fields.push(&c.field),
            None => by_manager.push((m, vec![&c.field])),
        }
    }
    by_manager.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = Vec::new();
    for (m, fields) in by_manager {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The field set (`FieldsV1` JSON) of an applied configuration: every field it sets, every
/// element of its associative lists (with `"."`) and sets; not the fields the server owns
/// (`apiVersion`, `kind`, `metadata.name`, `namespace`, `uid`, `resourceVersion`, ...).
pub fn field_set(obj: &Value, meta: &dyn PatchMeta) -> Value {
    if check_depth(obj).is_err() {
        return Value::Object(Map::new());
    }
    let mut w = Walker::new(meta);
    let mut set = w.set_of(obj, &FieldMeta::default());
    strip_server_fields(&mut set);
    set.to_json()
}

/// Applies `applied` (a user's partial configuration) as `manager` onto `live` (`None`:
/// the object is created), with `force` to take over conflicting fields. Returns the new
/// object with its `metadata.managedFields`; `now` (RFC 3339) stamps the applier's entry.
///
/// The result keeps the live object's fields the configuration does not mention, except
/// those the manager applied before and dropped now (and nobody else owns).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    meta: &dyn PatchMeta,
    now: &str,
) -> Result<Value, ApplyError> {
    check_depth(applied).map_err(|e| ApplyError::BadRequest(e.to_string()))?;
    if let Some(live) = live {
        check_depth(live).map_err(|e| ApplyError::BadRequest(e.to_string()))?;
    }
    let Value::Object(_) = applied else {
        return Err(ApplyError::BadRequest(
            "the applied configuration must be an object".to_string(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_string(),
        ));
    }
    let mut live_obj = match live {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => {
            return Err(ApplyError::BadRequest(
                "the live object is not an object".to_string(),
            ));
        }
        None => Value::Object(Map::new()),
    };
    let mut entries = take_entries(&mut live_obj);
    let mut w = Walker::new(meta);

    let mut merged = w.merge(Some(live_obj.clone()), applied, &FieldMeta::default());
    let mut new_set = w.set_of(applied, &FieldMeta::default());
    strip_server_fields(&mut new_set);

    let id = EntryId::apply(manager);
    let last_set = match entries.iter().position(|e| e.id() == id) {
        Some(i) => entries.remove(i).set,
        None => Set::default(),
    };
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".to_string(),
        api_version: api_version.to_string(),
        time: Some(now.to_string()),
        subresource: None,
        set: new_set,
    });

    if !last_set.is_empty() {
        let mut keep = Set::default();
        for e in &entries {
            keep.union_with(&e.set);
        }
        prune(&mut merged, &last_set, &keep);
    }

    let mut cmp = w.compare(&live_obj, &merged);
    cmp.strip();
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| e.id() != id) {
        let taken = e.set.intersection(&changed);
        if taken.is_empty() {
            continue;
        }
        for path in taken.paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: display_path(&path),
            });
        }
        if force {
            e.set = e.set.difference(&taken);
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by_key(Conflict::manager_display);
        return Err(ApplyError::Conflict(conflicts));
    }
    for e in entries.iter_mut().filter(|e| e.id() != id) {
        e.set = e.set.difference(&cmp.removed);
    }
    entries.retain(|e| !e.set.is_empty());
    put_entries(&mut merged, entries);
    Ok(merged)
}

/// Records in `new`'s managedFields that `manager` (operation `Update`, with `api_version`)
/// wrote `new` over `old` (`None` for a create): the fields that changed become its own and
/// leave other managers' sets; removed fields leave every set.
///
/// `new`'s own managedFields, when they differ from `old`'s, are taken as the user's
/// (`[]` clears them all, and nothing is recorded).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    meta: &dyn PatchMeta,
    now: &str,
) {
    if check_depth(new).is_err() || old.is_some_and(|o| check_depth(o).is_err()) {
        return;
    }
    let Value::Object(_) = new else {
        return;
    };
    let mut old_obj = old.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let old_fields = old_obj
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(Value::Null);
    let mut entries = take_entries(&mut old_obj);
    match new.pointer("/metadata/managedFields") {
        Some(Value::Array(a)) if a.is_empty() => {
            take_entries(new);
            return;
        }
        Some(fields @ Value::Array(_)) if *fields != old_fields => entries = take_entries(new),
        _ => {
            take_entries(new);
        }
    }

    let mut w = Walker::new(meta);
    let mut cmp = w.compare(&old_obj, new);
    cmp.strip();
    let changed = cmp.modified.union(&cmp.added);
    let touched = changed.union(&cmp.removed);

    let id = EntryId::update(manager, api_version);
    let mut own = match entries.iter().position(|e| e.id() == id) {
        Some(i) => entries.remove(i),
        None => Entry {
            manager: manager.to_string(),
            operation: "Update".to_string(),
            api_version: api_version.to_string(),
            time: None,
            subresource: None,
            set: Set::default(),
        },
    };
    for e in entries.iter_mut() {
        e.set = e.set.difference(&touched);
    }
    let set = own.set.difference(&cmp.removed).union(&changed);
    if set != own.set || own.time.is_none() {
        own.time = Some(now.to_string());
    }
    own.set = set;
    entries.push(own);
    entries.retain(|e| !e.set.is_empty());
    put_entries(new, entries);
}
