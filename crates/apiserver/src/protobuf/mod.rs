//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`),
//! decoded into the JSON object the same request would have carried as JSON.
//!
//! kubectl's typed clients (`kubectl create configmap|secret|deployment…`,
//! `auth whoami|can-i`, `create token`, `drain`, `autoscale`, `certificate
//! approve`) send their bodies this way. The body is the magic `k8s\0`
//! followed by a `runtime.Unknown` envelope whose `raw` holds the object.
//!
//! Field names and numbers come from the reflection descriptors of the
//! `k8s-rs-pb` crate (generated from the Kubernetes [`KUBERNETES_VERSION`]
//! `.proto` files); the JSON rules of Go's types (times, quantities,
//! int-or-strings, embedded JSON, inline members, `omitempty`) are here.
//! Fields unknown to those descriptors are skipped, as Go skips them.

mod convert;
mod format;
mod presence;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use ::protobuf::reflect::{RuntimeFieldType, RuntimeType};
use serde_json::Value;

pub use schema::KUBERNETES_VERSION;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The bytes are not a well-formed Kubernetes protobuf body.
    #[error("malformed protobuf body{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    Malformed {
        /// The dotted field path where decoding failed ("" at the top).
        path: String,
        /// What is wrong there.
        reason: String,
    },
    /// The body is well formed, but berth has no protobuf schema for its kind.
    #[error("not supported yet: protobuf body of kind {kind} ({api_version}); send JSON")]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
    /// The envelope asks for something berth does not do (an encoding, a
    /// content type).
    #[error("unsupported protobuf body: {0}")]
    Unsupported(String),
}

impl ProtobufError {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        ProtobufError::Malformed {
            path: String::new(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path of a malformed-body error with a field name.
    pub(crate) fn at(self, field: &str) -> Self {
        match self {
            ProtobufError::Malformed { path, reason } => ProtobufError::Malformed {
                path: if path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{field}.{path}")
                },
                reason,
            },
            other => other,
        }
    }
}

/// Decodes a Kubernetes protobuf body (the 4-byte magic "k8s\0" followed by
/// a runtime.Unknown envelope: typeMeta{apiVersion, kind}, raw,
/// contentEncoding, contentType) into the JSON object Kubernetes would have
/// received as JSON, with `apiVersion` and `kind` set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_at(body, 0)
}

/// [`decode`] at a nesting depth (an object embedded in a `RawExtension`).
pub(crate) fn decode_at(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ProtobufError::malformed("the body does not start with the magic bytes \"k8s\\0\"")
    })?;
    let unknown = schema::unknown_descriptor()
        .ok_or_else(|| ProtobufError::Unsupported("no runtime.Unknown descriptor".to_owned()))?;
    let mut type_meta = None;
    let mut raw: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut encoding = String::new();
    let mut content_type = String::new();
    for convert::Collected { field, values } in convert::collect(&unknown, envelope)? {
        let name = field.name();
        match name {
            "typeMeta" => {
                let desc = match field.runtime_field_type() {
                    RuntimeFieldType::Singular(RuntimeType::Message(md)) => md,
                    _ => continue,
                };
                let bytes = convert::merged(name, &values)?;
                type_meta = convert::message(&desc, &bytes, depth + 1).map_err(|e| e.at(name))?;
            }
            "raw" => raw = Cow::Borrowed(convert::last_bytes(name, &values)?),
            "contentEncoding" | "contentType" => {
                let bytes = convert::last_bytes(name, &values)?;
                let text = String::from_utf8_lossy(bytes).into_owned();
                if name == "contentType" {
                    content_type = text;
                } else {
                    encoding = text;
                }
            }
            _ => {}
        }
    }
    let text = |k: &str| {
        type_meta
            .as_ref()
            .and_then(|t| t.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let api_version = text("apiVersion");
    let kind = text("kind");
    if !encoding.is_empty() {
        return Err(ProtobufError::Unsupported(format!(
            "content encoding {encoding:?}"
        )));
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::malformed(
            "the envelope has no apiVersion or no kind",
        ));
    }
    let mut object = match content_type.as_str() {
        "" | CONTENT_TYPE => {
            let desc = schema::kind_descriptor(&api_version, &kind).ok_or_else(|| {
                ProtobufError::UnsupportedKind {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                }
            })?;
            match convert::message(&desc, &raw, depth + 1)? {
                Some(Value::Object(m)) => m,
                _ => {
                    return Err(ProtobufError::UnsupportedKind { api_version, kind });
                }
            }
        }
        "application/json" => match serde_json::from_slice(&raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(ProtobufError::malformed("raw JSON is not an object")),
            Err(e) => return Err(ProtobufError::malformed(format!("raw JSON: {e}"))),
        },
        other => {
            return Err(ProtobufError::Unsupported(format!(
                "raw content type {other:?}"
            )));
        }
    };
    object.insert("apiVersion".to_owned(), Value::String(api_version));
    object.insert("kind".to_owned(), Value::String(kind));
    Ok(Value::Object(object))
}
