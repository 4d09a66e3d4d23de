//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch, and server-side apply.
//! (Placeholder until the patch library lands: merge patch only.)

use serde_json::Value;

/// A patch that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(String);

impl PatchError {
    /// Whether it is a 422.
    pub fn is_invalid(&self) -> bool {
        false
    }
}

/// Patch metadata.
pub trait PatchMeta: Send + Sync {}
struct Generic;
impl PatchMeta for Generic {}

/// Built-in metadata.
pub fn builtin_meta(_group: &str, _kind: &str) -> Option<Box<dyn PatchMeta>> {
    None
}
/// Generic metadata.
pub fn generic_meta() -> Box<dyn PatchMeta> {
    Box::new(Generic)
}
/// RFC 6902.
pub fn json_patch(_doc: &Value, _patch: &Value) -> Result<Value, PatchError> {
    Err(PatchError("not supported yet: JSON patch".into()))
}
/// RFC 7386.
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else { return Ok(patch.clone()) };
    let mut out = match doc { Value::Object(m) => m.clone(), _ => serde_json::Map::new() };
    for (k, v) in p {
        if v.is_null() { out.remove(k); } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v)?;
            out.insert(k.clone(), merged);
        }
    }
    Ok(Value::Object(out))
}
/// Strategic merge patch.
pub fn strategic_merge_patch(doc: &Value, patch: &Value, _meta: &dyn PatchMeta) -> Result<Value, PatchError> {
    merge_patch(doc, patch)
}
/// managedFields of an update.
pub fn record_update(_old: Option<&Value>, _new: &mut Value, _manager: &str, _now: &str) {}
/// Server-side apply.
pub mod apply {
    use super::PatchMeta;
    use serde_json::Value;
    /// Apply errors.
    #[derive(Debug, thiserror::Error)]
    pub enum ApplyError {
        /// A conflict.
        #[error("{message}")]
        Conflict { message: String },
        /// Other.
        #[error("{0}")]
        Invalid(String),
    }
    /// Apply.
    pub fn apply(live: Option<&Value>, applied: &Value, _m: &str, _v: &str, _f: bool, _meta: &dyn PatchMeta, _now: &str) -> Result<Value, ApplyError> {
        match live {
            None => Ok(applied.clone()),
            Some(l) => super::merge_patch(l, applied).map_err(|e| ApplyError::Invalid(e.to_string())),
        }
    }
}
