//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch, and server-side apply.
//!
//! Every function here is pure: it takes `serde_json::Value`s and returns a new one, with no I/O.
//!
//! * [`json_patch`]: `application/json-patch+json` (RFC 6902 with RFC 6901 pointers).
//! * [`merge_patch`]: `application/merge-patch+json` (RFC 7386).
//! * [`strategic_merge_patch`]: `application/strategic-merge-patch+json`, with the patch metadata
//!   of [`builtin_meta`] (kube-apiserver refuses it for custom resources with 415: when
//!   `builtin_meta` answers `None`, answer [`PatchError::StrategicMergeUnsupported`]).
//! * [`apply`](apply::apply): `application/apply-patch+yaml` (server-side apply) and
//!   [`record_update`] for the managedFields of every other write; both
//!   take the kind's [`PatchMeta`] too (associative lists and sets come from it).
//!
//! Patch metadata is asked per field path from the object root ([`PatchMeta::field`]), so the
//! strategic merge patch needs no starting path: it always patches a whole object.
//!
//! Inputs nested deeper than [`MAX_DEPTH`] levels are refused with [`PatchError::TooDeep`]
//! (checked without recursion), so the recursive algorithms can never exhaust the stack.
#![deny(clippy::string_slice)]

pub mod apply;
mod depth;
mod fieldset;
mod json_patch;
mod managed;
mod merge_patch;
mod meta;
mod order;
mod strategic;
#[cfg(test)]
mod tests;
mod walk;

pub use apply::{ApplyError, Conflict, apply, field_set, record_update};
pub use json_patch::{MAX_JSON_PATCH_OPERATIONS, json_patch};
pub use merge_patch::merge_patch;
pub use meta::{FieldMeta, NoMeta, PatchMeta, builtin_meta};
pub use strategic::strategic_merge_patch;

/// How deep documents and patches may nest (objects and arrays); deeper input is refused.
///
/// The algorithms recurse; 200 levels fit a 2 MiB stack (a tokio worker's) even in debug
/// builds, and exceed what serde_json parses by default (128).
pub const MAX_DEPTH: usize = 200;

/// The message kube-apiserver answers (415) to a strategic merge patch of a custom resource.
pub const STRATEGIC_MERGE_UNSUPPORTED: &str = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// Why a patch could not be applied.
///
/// [`http_status`](PatchError::http_status) gives the status kube-apiserver answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (400 Bad Request), e.g. a JSON patch that is not
    /// an array, or a malformed `$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList`.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but does not apply to this object (422 Unprocessable Entity):
    /// a missing path, a failed `test`, a list element without its merge key...
    #[error("{0}")]
    Invalid(String),
    /// A JSON patch with more operations than kube-apiserver allows (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// The number of operations in the patch.
        got: usize,
    },
    /// The document or the patch nests deeper than [`MAX_DEPTH`] (400).
    #[error("the JSON nests deeper than {0} levels")]
    TooDeep(usize),
    /// A strategic merge patch of a kind without compiled-in patch metadata (415).
    #[error("{}", STRATEGIC_MERGE_UNSUPPORTED)]
    StrategicMergeUnsupported,
}

impl PatchError {
    /// The HTTP status kube-apiserver answers for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) | PatchError::TooDeep(_) => 400,
            PatchError::Invalid(_) => 422,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::StrategicMergeUnsupported => 415,
        }
    }

    /// Whether this is a 422 (the patch does not apply to the object) rather than a malformed
    /// request.
    pub fn is_invalid(&self) -> bool {
        self.http_status() == 422
    }
}

pub(crate) use depth::{check_depth, json_equal};
