//! Strategic merge patch, with the semantics of Kubernetes' apimachinery `strategicpatch`.
//!
//! A JSON merge patch, plus:
//! * lists whose field has `patchStrategy: merge` merge: lists of objects element by element by
//!   their `patchMergeKey`, lists of primitives as sets; other lists are replaced;
//! * `$patch: delete` on a list element (by merge key) removes it; on a map it empties it (an
//!   absent field stays absent);
//! * `$patch: replace` on a map replaces it with the patch's map; as an element of a list
//!   (`[{"$patch": "replace"}, ...]`) it replaces the list with the patch's other elements;
//! * `$patch: merge` is the default behaviour, spelled out;
//! * `$setElementOrder/<list>` orders the merged list (see [`order`](super::order));
//! * `$retainKeys: [..]` removes every key of the map that the list does not name;
//! * `$deleteFromPrimitiveList/<list>: [..]` removes those values from a list of primitives;
//! * `null` deletes a field.
//!
//! Every directive is stripped from the result. Differences from kube, where kube's behaviour
//! looks accidental: `$patch: merge` is accepted instead of refused; a `$patch: replace` map
//! for a field the object lacks sets the field instead of dropping it; new list elements and
//! replaced lists have their own directives applied (and their `null`s dropped) instead of
//! being stored verbatim; `$deleteFromPrimitiveList` of a list of objects is refused.

use serde_json::{Map, Value};

use super::order::{ElemKind, element_kind, no_merge_key, normalize, partition};
use super::{FieldMeta, PatchError, PatchMeta, check_depth, json_equal};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

fn bad_retain_keys() -> PatchError {
    PatchError::BadRequest("invalid patch format of retainKeys".to_string())
}
fn bad_set_element_order() -> PatchError {
    PatchError::BadRequest("invalid patch format of setElementOrder list".to_string())
}
fn bad_primitive_list() -> PatchError {
    PatchError::BadRequest("invalid patch format of primitive list".to_string())
}
fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::Invalid(format!(
        "unknown patch type: {directive} in map: {}",
        Value::Object(map.clone())
    ))
}

/// Applies the strategic merge patch `patch` to `doc`, with `meta` telling how each field
/// merges ([`builtin_meta`](super::builtin_meta) for the built-in kinds).
///
/// Both must be JSON objects. Every `$` directive is stripped from the result.
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    meta: &dyn PatchMeta,
) -> Result<Value, PatchError> {
    check_depth(doc)?;
    check_depth(patch)?;
    let (Value::Object(original), Value::Object(patch)) = (doc, patch) else {
        return Err(PatchError::BadRequest("invalid JSON document".to_string()));
    };
    let mut ctx = Ctx {
        meta,
        path: Vec::new(),
    };
    let merged = ctx.merge_map(original.clone(), patch.clone())?;
    let mut out = Value::Object(merged);
    strip_directives(&mut out);
    Ok(out)
}

/// Removes every strategic-merge directive key from `v`, at any depth.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !is_directive_key(k));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn is_directive_key(k: &str) -> bool {
    k == PATCH
        || k == RETAIN_KEYS
        || k.starts_with("$setElementOrder/")
        || k.starts_with("$deleteFromPrimitiveList/")
}

/// The list field a `<prefix>/<field>` directive names.
fn directive_field<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, field) = key.split_once('/')?;
    (head == prefix).then_some(field)
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

struct Ctx<'m> {
    meta: &'m dyn PatchMeta,
    /// Field names from the root to the map being merged (list elements are transparent).
    path: Vec<String>,
}

impl Ctx<'_> {
    fn field_meta(&mut self, field: &str) -> FieldMeta {
        self.path.push(field.to_string());
        let m = self.meta.field(&self.path);
        self.path.pop();
        m
    }

    fn path_string(&self, field: &str) -> String {
        let mut p = self.path.join(".");
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(field);
        p
    }

    /// Runs `f` with `field` pushed on the path.
    fn within<T>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(field.to_string());
        let out = f(self);
        self.path.pop();
        out
    }

    /// kube's `mergeMap`: merges `patch` into `original`.
    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.remove(PATCH) {
            match directive.as_str() {
                Some("replace") => return self.merge_map(Map::new(), patch),
                Some("delete") => return Ok(Map::new()),
                Some("merge") => {}
                _ => return Err(bad_patch_type(&directive, &patch)),
            }
        }
        self.retain_keys(&mut original, &mut patch)?;
        self.set_element_orders(&mut original, &mut patch)?;

        for (key, patch_value) in patch {
            let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = directive_field(&key, DELETE_FROM_PRIMITIVE_LIST)
                    .ok_or_else(bad_primitive_list)?;
                (field.to_string(), true)
            } else {
                (key, false)
            };
            if patch_value.is_null() {
                original.remove(&key);
                continue;
            }
            let Some(original_value) = original.remove(&key) else {
                if !delete_list && let Some(v) = self.within(&key, |c| c.fresh(patch_value))? {
                    original.insert(key, v);
                }
                continue;
            };
            if !same_kind(&original_value, &patch_value) {
                let v = if delete_list {
                    Some(original_value)
                } else {
                    self.within(&key, |c| c.fresh(patch_value))?
                };
                if let Some(v) = v {
                    original.insert(key, v);
                }
                continue;
            }
            let merged = match (original_value, patch_value) {
                (Value::Object(o), Value::Object(p)) => {
                    let meta = self.field_meta(&key);
                    let base = if meta.replace { Map::new() } else { o };
                    Value::Object(self.within(&key, |c| c.merge_map(base, p))?)
                }
                (Value::Array(o), Value::Array(p)) => {
                    let meta = self.field_meta(&key);
                    Value::Array(if meta.merge || delete_list {
                        self.within(&key, |c| c.merge_list(o, p, &meta, delete_list))?
                    } else {
                        self.within(&key, |c| c.fresh_list(p))?
                    })
                }
                (_, scalar) => scalar,
            };
            original.insert(key, merged);
        }
        Ok(original)
    }

    /// A patch value for a field the object lacks (or whose kind changes): its directives
    /// are applied and its `null`s dropped. `None` when the value is a deletion.
    fn fresh(&mut self, v: Value) -> Result<Option<Value>, PatchError> {
        Ok(match v {
            Value::Object(m) => {
                if m.get(PATCH).and_then(Value::as_str) == Some("delete") {
                    return Ok(None);
                }
                Some(Value::Object(self.merge_map(Map::new(), m)?))
            }
            Value::Array(a) => Some(Value::Array(self.fresh_list(a)?)),
            other => Some(other),
        })
    }

    /// A list from a patch taken as it is: elements carrying `$patch` are dropped.
    fn fresh_list(&mut self, list: Vec<Value>) -> Result<Vec<Value>, PatchError> {
        let mut out = Vec::with_capacity(list.len());
        for v in list {
            if v.get(PATCH).is_some() {
                continue;
            }
            out.extend(self.fresh(v)?);
        }
        Ok(out)
    }

    /// `$retainKeys`: clears the keys of `original` that the list does not name.
    fn retain_keys(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let Some(retain) = patch.remove(RETAIN_KEYS) else {
            return Ok(());
        };
        let Value::Array(retain) = retain else {
            return Err(bad_retain_keys());
        };
        let keep = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
        for (k, v) in patch.iter() {
            if v.is_null()
                || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                || k.starts_with(SET_ELEMENT_ORDER)
            {
                continue;
            }
            if !keep(k) {
                return Err(bad_retain_keys());
            }
        }
        original.retain(|k, _| keep(k));
        Ok(())
    }

    /// `$setElementOrder/<field>`: merges `<field>` and orders it (kube's
    /// `mergePatchIntoOriginal`). The list and the directive leave `patch`.
    fn set_element_orders(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in keys {
            let order = patch.remove(&key).unwrap_or(Value::Null);
            let Value::Array(order) = order else {
                return Err(bad_set_element_order());
            };
            let field = directive_field(&key, SET_ELEMENT_ORDER)
                .ok_or_else(bad_set_element_order)?
                .to_string();
            let as_list = |v: Option<Value>| -> Result<Option<Vec<Value>>, PatchError> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Array(a)) => Ok(Some(a)),
                    Some(other) => Err(PatchError::Invalid(format!(
                        "expected a list for {field}, but received {other}"
                    ))),
                }
            };
            let original_list = as_list(original.remove(&field))?;
            let patch_list = as_list(patch.remove(&field))?;
            let meta = self.field_meta(&field);
            let key_name = meta.merge_key.as_deref();
            validate_order(patch_list.as_deref().unwrap_or(&[]), &order, key_name)?;

            let server_order = original_list.clone().unwrap_or_default();
            let kind = element_kind(&[
                original_list.as_deref().unwrap_or(&[]),
                patch_list.as_deref().unwrap_or(&[]),
            ])?;
            let merged = match (original_list, patch_list) {
                (Some(o), None) => o,
                (None, Some(p)) => self.within(&field, |c| c.fresh_list(p))?,
                (Some(o), Some(p)) => {
                    if meta.merge {
                        self.within(&field, |c| c.merge_list(o, p, &meta, false))?
                    } else {
                        self.within(&field, |c| c.fresh_list(p))?
                    }
                }
                (None, None) => continue,
            };
            let ordered = match kind {
                None => merged,
                Some(kind) => {
                    let key_name = if kind == ElemKind::Object {
                        key_name
                    } else {
                        None
                    };
                    if kind == ElemKind::Object && key_name.is_none() {
                        return Err(PatchError::Invalid(format!(
                            "cannot order the list {} without a merge key",
                            self.path_string(&field)
                        )));
                    }
                    let (named, server_only) = partition(merged, &order, key_name)?;
                    normalize(named, server_only, &order, &server_order, key_name, kind)?
                }
            };
            original.insert(field, Value::Array(ordered));
        }
        Ok(())
    }

    /// kube's `mergeSlice`: merges the list `patch` into `original`.
    fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: Vec<Value>,
        meta: &FieldMeta,
        delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let Some(kind) = element_kind(&[&original, &patch])? else {
            return Ok(original);
        };
        if kind != ElemKind::Object {
            if delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|p| json_equal(p, v)))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(&patch) {
                if !merged.iter().any(|m| json_equal(m, v)) {
                    merged.push(v.clone());
                }
            }
            let (named, server_only) = partition(merged, &patch, None)?;
            return normalize(named, server_only, &patch, &original, None, kind);
        }
        if delete_list {
            return Err(bad_primitive_list());
        }
        let Some(key) = meta.merge_key.as_deref() else {
            return Err(PatchError::Invalid(format!(
                "cannot merge lists without merge key for {}",
                self.path.join(".")
            )));
        };
        let (original, patch) = self.special_elements(original, patch, key)?;
        let server_order = original.clone();
        let merged = self.merge_elements(original, &patch, key)?;
        let (named, server_only) = partition(merged, &patch, Some(key))?;
        normalize(named, server_only, &patch, &server_order, Some(key), kind)
    }

    /// kube's `mergeSliceWithSpecialElements`: applies the `$patch` elements of a list patch.
    /// Returns the original list after deletions (or the replacement) and the plain elements.
    fn special_elements(
        &mut self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for v in patch {
            let Some(directive) = v.get(PATCH) else {
                plain.push(v);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let Some(id) = v.get(key) else {
                        return Err(no_merge_key(&v, key));
                    };
                    original.retain(|o| !o.get(key).is_some_and(|k| json_equal(k, id)));
                }
                Some("replace") => replace = true,
                Some("merge") => {}
                _ => {
                    let map = v.as_object().cloned().unwrap_or_default();
                    return Err(bad_patch_type(directive, &map));
                }
            }
        }
        if replace {
            return Ok((self.fresh_list(plain)?, Vec::new()));
        }
        Ok((original, plain))
    }

    /// kube's `mergeSliceWithoutSpecialElements`: merges each patch element into the original
    /// element with the same merge key, or appends it.
    fn merge_elements(
        &mut self,
        mut original: Vec<Value>,
        patch: &[Value],
        key: &str,
    ) -> Result<Vec<Value>, PatchError> {
        for p in patch {
            let Value::Object(pm) = p else {
                return Err(PatchError::Invalid(format!(
                    "expected a map, but received a {p}"
                )));
            };
            let Some(id) = pm.get(key) else {
                return Err(no_merge_key(p, key));
            };
            let found = original
                .iter()
                .position(|o| o.get(key).is_some_and(|k| json_equal(k, id)));
            match found {
                Some(i) => {
                    let target = match std::mem::take(&mut original[i]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    original[i] = Value::Object(self.merge_map(target, pm.clone())?);
                }
                None => original.push(Value::Object(self.merge_map(Map::new(), pm.clone())?)),
            }
        }
        Ok(original)
    }
}

/// kube's `validatePatchWithSetOrderList`: the patch list's elements (deletions aside) must
/// appear in the `$setElementOrder` list, in the same relative order.
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = if key.is_some() {
        if let Some(bad) = patch.iter().find(|v| !v.is_object()) {
            return Err(PatchError::Invalid(format!(
                "expected a map, but received a {bad}"
            )));
        }
        patch
            .iter()
            .filter(|v| v.get(PATCH).and_then(Value::as_str) != Some("delete"))
            .collect()
    } else {
        patch.iter().collect()
    };
    let (mut p, mut s) = (0, 0);
    while p < items.len() && s < order.len() {
        if items[p].get(PATCH).is_some() {
            p += 1;
            continue;
        }
        let equal = match key {
            None => json_equal(items[p], &order[s]),
            Some(key) => {
                let a = items[p]
                    .get(key)
                    .ok_or_else(|| no_merge_key(items[p], key))?;
                let b = order[s]
                    .get(key)
                    .ok_or_else(|| no_merge_key(&order[s], key))?;
                json_equal(a, b)
            }
        };
        if equal {
            p += 1;
        }
        s += 1;
    }
    if p < items.len() {
        return Err(PatchError::BadRequest(format!(
            "invalid patch format of setElementOrder list: the order in patch list {} doesn't match $setElementOrder list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}
