//! From protobuf bytes to the JSON object Kubernetes would have received,
//! walking the message descriptors: field names are the protobuf names
//! (which Kubernetes makes equal to the JSON tags), with the Go JSON rules
//! for the special types, inline members, maps and zero values.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ::protobuf::descriptor::field_descriptor_proto::Type;
use ::protobuf::reflect::{FieldDescriptor, MessageDescriptor, RuntimeFieldType, RuntimeType};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::ProtobufError;
use super::format;
use super::presence;
use super::schema::{self, Special};
use super::wire::{Reader, WireValue};

/// The deepest nesting of messages accepted (a CRD schema nests two levels
/// per schema level).
pub(crate) const MAX_DEPTH: usize = 200;

/// The wire values of one field of a message, in wire order.
pub(crate) struct Collected<'a> {
    /// The field's descriptor.
    pub(crate) field: FieldDescriptor,
    /// Its values as they arrived.
    pub(crate) values: Vec<WireValue<'a>>,
}

/// Reads a message's fields, grouped by field number (ascending). Fields
/// the descriptor does not know are skipped, as Go's decoder does.
pub(crate) fn collect<'a>(
    desc: &MessageDescriptor,
    bytes: &'a [u8],
) -> Result<Vec<Collected<'a>>, ProtobufError> {
    let mut by_number: BTreeMap<u32, Collected<'a>> = BTreeMap::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.next_field()? {
        if let Some(entry) = by_number.get_mut(&number) {
            entry.values.push(value);
            continue;
        }
        if let Some(field) = desc.field_by_number(number) {
            by_number.insert(
                number,
                Collected {
                    field,
                    values: vec![value],
                },
            );
        }
    }
    Ok(by_number.into_values().collect())
}

/// The bytes of a singular message field: Go merges repeated occurrences,
/// which for protobuf is the concatenation.
pub(crate) fn merged<'a>(
    field: &str,
    values: &[WireValue<'a>],
) -> Result<Cow<'a, [u8]>, ProtobufError> {
    let mut chunks = values.iter().map(|v| match v {
        WireValue::Bytes(b) => Ok(*b),
        other => Err(ProtobufError::malformed(format!(
            "a message field arrived as a {} value",
            other.kind()
        ))
        .at(field)),
    });
    match values.len() {
        0 => Ok(Cow::Borrowed(&[])),
        1 => chunks.next().unwrap_or(Ok(&[])).map(Cow::Borrowed),
        _ => {
            let mut out = Vec::new();
            for chunk in chunks {
                out.extend_from_slice(chunk?);
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// The bytes of a singular string or bytes field: the last occurrence wins.
pub(crate) fn last_bytes<'a>(
    field: &str,
    values: &[WireValue<'a>],
) -> Result<&'a [u8], ProtobufError> {
    match values.last() {
        None => Ok(&[]),
        Some(WireValue::Bytes(b)) => Ok(b),
        Some(other) => Err(ProtobufError::malformed(format!(
            "a bytes field arrived as a {} value",
            other.kind()
        ))
        .at(field)),
    }
}

/// Fields whose protobuf name (from the Go field name) differs from the
/// JSON tag: (message, protobuf name, JSON name).
const RENAMED: &[(&str, &str, &str)] = &[
    ("BoundObjectReference", "uID", "uid"),
    ("IngressClassParametersReference", "aPIGroup", "apiGroup"),
];

/// The JSON member name of a field.
fn json_name(desc: &MessageDescriptor, field: &str) -> String {
    if let Some((_, _, json)) = RENAMED
        .iter()
        .find(|(m, f, _)| *m == desc.name() && *f == field)
    {
        return (*json).to_owned();
    }
    if schema::is_json_schema_props(desc) {
        match field {
            "ref" => return "$ref".to_owned(),
            "schema" => return "$schema".to_owned(),
            _ => {}
        }
        if let Some(rest) = field.strip_prefix("xKubernetes") {
            let mut out = String::from("x-kubernetes");
            for c in rest.chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            return out;
        }
    }
    field.to_owned()
}

/// Converts a message to its JSON form. `None` means the Go JSON is `null`
/// (a zero time, an empty raw extension), which is left out.
pub(crate) fn message(
    desc: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::malformed(format!(
            "messages nested deeper than {MAX_DEPTH} levels"
        )));
    }
    match schema::special(desc) {
        Special::None => plain(desc, bytes, depth).map(|m| Some(Value::Object(m))),
        special => special_message(special, desc, bytes, depth),
    }
}

fn plain(
    desc: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut inlined = Vec::new();
    for Collected { field, values } in collect(desc, bytes)? {
        let name = field.name().to_owned();
        let value = match field.runtime_field_type() {
            RuntimeFieldType::Map(..) => map_field(desc, &field, &values, depth),
            RuntimeFieldType::Repeated(_) => repeated_field(&field, &values, depth),
            RuntimeFieldType::Singular(RuntimeType::Message(md)) => {
                let bytes = merged(&name, &values)?;
                let converted = message(&md, &bytes, depth + 1).map_err(|e| e.at(&name))?;
                if schema::is_inline(&name, &md) {
                    if let Some(Value::Object(members)) = converted {
                        inlined.push(members);
                    }
                    continue;
                }
                Ok(converted.filter(|v| {
                    !(is_zero(v)
                        && schema::special(&md) == Special::IntOrString
                        && !presence::keeps_zero(desc.name(), &name))
                }))
            }
            RuntimeFieldType::Singular(_) => {
                let last = values.last().copied();
                match last {
                    Some(v) => scalar(&field, v).map(|v| {
                        Some(v).filter(|v| !is_zero(v) || presence::keeps_zero(desc.name(), &name))
                    }),
                    None => Ok(None),
                }
            }
        }
        .map_err(|e| e.at(&name))?;
        if let Some(value) = value {
            out.insert(json_name(desc, &name), value);
        }
    }
    // Inline members never replace the parent's own (Go's rule for
    // embedded structs).
    for members in inlined {
        for (k, v) in members {
            out.entry(k).or_insert(v);
        }
    }
    Ok(out)
}

/// Whether a JSON value is Go's zero value of its scalar type.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

fn map_field(
    parent: &MessageDescriptor,
    field: &FieldDescriptor,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let entry_name = field.proto().type_name().trim_start_matches('.');
    let entry = parent
        .nested_messages()
        .find(|m| m.full_name() == entry_name)
        .ok_or_else(|| ProtobufError::malformed(format!("no map entry type {entry_name}")))?;
    let (Some(_), Some(value_field)) = (entry.field_by_number(1), entry.field_by_number(2)) else {
        return Err(ProtobufError::malformed(format!(
            "map entry type {entry_name} lacks its key or value"
        )));
    };
    let mut out = Map::new();
    for v in values {
        let WireValue::Bytes(bytes) = v else {
            return Err(ProtobufError::malformed(format!(
                "a map entry arrived as a {} value",
                v.kind()
            )));
        };
        let mut key = String::new();
        let mut value = None;
        for Collected {
            field: f,
            values: vs,
        } in collect(&entry, bytes)?
        {
            if f.number() == 1 {
                if let Some(last) = vs.last() {
                    key = match scalar(&f, *last)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                }
            } else {
                value = element(&f, &vs, depth)?;
            }
        }
        let value = match value {
            Some(v) => v,
            // An entry without a value holds the zero value of its type.
            None => default_of(&value_field, depth)?,
        };
        out.insert(key, value);
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// The value of a map entry's value field from its wire values.
fn element(
    field: &FieldDescriptor,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    match field.runtime_field_type() {
        RuntimeFieldType::Singular(RuntimeType::Message(md)) => {
            let bytes = merged(field.name(), values)?;
            Ok(Some(
                message(&md, &bytes, depth + 1)?.unwrap_or(Value::Null),
            ))
        }
        _ => match values.last() {
            Some(v) => scalar(field, *v).map(Some),
            None => Ok(None),
        },
    }
}

/// Go's zero value of a field, as JSON.
fn default_of(field: &FieldDescriptor, depth: usize) -> Result<Value, ProtobufError> {
    if let RuntimeFieldType::Singular(RuntimeType::Message(md)) = field.runtime_field_type() {
        return Ok(message(&md, &[], depth + 1)?.unwrap_or(Value::Null));
    }
    Ok(match field.proto().type_() {
        Type::TYPE_STRING => Value::String(String::new()),
        Type::TYPE_BOOL => Value::Bool(false),
        Type::TYPE_BYTES => Value::Null,
        _ => Value::from(0),
    })
}

fn repeated_field(
    field: &FieldDescriptor,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let mut out = Vec::with_capacity(values.len());
    let packable = !matches!(
        field.proto().type_(),
        Type::TYPE_STRING | Type::TYPE_BYTES | Type::TYPE_MESSAGE | Type::TYPE_GROUP
    );
    for v in values {
        match (field.runtime_field_type(), v) {
            (RuntimeFieldType::Repeated(RuntimeType::Message(md)), WireValue::Bytes(bytes)) => {
                out.push(message(&md, bytes, depth + 1)?.unwrap_or(Value::Null));
            }
            (_, WireValue::Bytes(bytes)) if packable => {
                let mut reader = Reader::new(bytes);
                while !reader.is_empty() {
                    out.push(scalar(field, packed_element(field, &mut reader)?)?);
                }
            }
            _ => out.push(scalar(field, *v)?),
        }
    }
    Ok(Some(Value::Array(out)).filter(|v| !is_zero(v)))
}

/// One element of a packed repeated scalar.
fn packed_element<'a>(
    field: &FieldDescriptor,
    reader: &mut Reader<'a>,
) -> Result<WireValue<'a>, ProtobufError> {
    Ok(match field.proto().type_() {
        Type::TYPE_DOUBLE | Type::TYPE_FIXED64 | Type::TYPE_SFIXED64 => {
            WireValue::Fixed64(u64::from_le_bytes(reader.fixed::<8>()?))
        }
        Type::TYPE_FLOAT | Type::TYPE_FIXED32 | Type::TYPE_SFIXED32 => {
            WireValue::Fixed32(u32::from_le_bytes(reader.fixed::<4>()?))
        }
        _ => WireValue::Varint(reader.varint()?),
    })
}

/// Converts one scalar wire value by the field's declared type.
fn scalar(field: &FieldDescriptor, v: WireValue<'_>) -> Result<Value, ProtobufError> {
    let ty = field.proto().type_();
    let mismatch =
        || ProtobufError::malformed(format!("a {ty:?} field arrived as a {} value", v.kind()));
    Ok(match (ty, v) {
        (Type::TYPE_STRING, WireValue::Bytes(b)) => {
            // Go keeps the bytes; its JSON encoder replaces invalid UTF-8.
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        (Type::TYPE_BYTES, WireValue::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Type::TYPE_BOOL, WireValue::Varint(n)) => Value::Bool(n != 0),
        (Type::TYPE_INT32 | Type::TYPE_ENUM, WireValue::Varint(n)) => Value::from(n as i32),
        (Type::TYPE_INT64, WireValue::Varint(n)) => Value::from(n as i64),
        (Type::TYPE_UINT32, WireValue::Varint(n)) => Value::from(n as u32),
        (Type::TYPE_UINT64, WireValue::Varint(n)) => Value::from(n),
        (Type::TYPE_SINT32, WireValue::Varint(n)) => Value::from(zigzag(n) as i32),
        (Type::TYPE_SINT64, WireValue::Varint(n)) => Value::from(zigzag(n)),
        (Type::TYPE_FIXED32, WireValue::Fixed32(n)) => Value::from(n),
        (Type::TYPE_SFIXED32, WireValue::Fixed32(n)) => Value::from(n as i32),
        (Type::TYPE_FIXED64, WireValue::Fixed64(n)) => Value::from(n),
        (Type::TYPE_SFIXED64, WireValue::Fixed64(n)) => Value::from(n as i64),
        (Type::TYPE_DOUBLE, WireValue::Fixed64(n)) => format::float(f64::from_bits(n))?,
        (Type::TYPE_FLOAT, WireValue::Fixed32(n)) => format::float(f64::from(f32::from_bits(n)))?,
        _ => return Err(mismatch()),
    })
}

fn zigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// The singular scalar fields of a small special message, by name.
fn scalars(
    desc: &MessageDescriptor,
    bytes: &[u8],
) -> Result<BTreeMap<String, Value>, ProtobufError> {
    let mut out = BTreeMap::new();
    for Collected { field, values } in collect(desc, bytes)? {
        if let (RuntimeFieldType::Singular(rt), Some(last)) =
            (field.runtime_field_type(), values.last())
            && !matches!(rt, RuntimeType::Message(_))
        {
            out.insert(
                field.name().to_owned(),
                scalar(&field, *last).map_err(|e| e.at(field.name()))?,
            );
        }
    }
    Ok(out)
}

fn special_message(
    special: Special,
    desc: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let int = |m: &BTreeMap<String, Value>, k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    match special {
        Special::None => plain(desc, bytes, depth).map(|m| Some(Value::Object(m))),
        Special::Time => {
            // Go: an empty message is the zero time (JSON null); the
            // nanoseconds are dropped on decode.
            if bytes.is_empty() {
                return Ok(None);
            }
            let s = scalars(desc, bytes)?;
            format::time(int(&s, "seconds"), 0, false)
        }
        Special::MicroTime => {
            if bytes.is_empty() {
                return Ok(None);
            }
            let s = scalars(desc, bytes)?;
            format::time(int(&s, "seconds"), int(&s, "nanos"), true)
        }
        Special::Duration => {
            let s = scalars(desc, bytes)?;
            Ok(Some(Value::String(format::duration(int(&s, "duration")))))
        }
        Special::Quantity => {
            let s = scalars(desc, bytes)?;
            let text = s.get("string").and_then(Value::as_str).unwrap_or("");
            Ok(Some(Value::String(if text.is_empty() {
                "0".to_owned()
            } else {
                text.to_owned()
            })))
        }
        Special::IntOrString => {
            let s = scalars(desc, bytes)?;
            match int(&s, "type") {
                0 => Ok(Some(Value::from(int(&s, "intVal")))),
                1 => Ok(Some(
                    s.get("strVal")
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                )),
                other => Err(ProtobufError::malformed(format!(
                    "IntOrString of unknown type {other}"
                ))),
            }
        }
        Special::RawJson => {
            let raw = collect(desc, bytes)?
                .into_iter()
                .find(|c| c.field.name().eq_ignore_ascii_case("raw"))
                .map(|c| last_bytes("raw", &c.values))
                .transpose()?
                .unwrap_or_default();
            raw_json(raw, depth)
        }
        Special::SchemaOrBool | Special::SchemaOrArray | Special::SchemaOrStringArray => {
            schema_union(special, desc, bytes, depth)
        }
        Special::StringList => {
            let items = collect(desc, bytes)?
                .into_iter()
                .find(|c| c.field.name() == "items")
                .map(|c| repeated_field(&c.field, &c.values, depth))
                .transpose()?
                .flatten()
                .unwrap_or(Value::Array(Vec::new()));
            Ok(Some(items))
        }
    }
}

/// Embedded JSON (`RawExtension`, `FieldsV1`, `apiextensions.JSON`), or an
/// embedded protobuf object.
fn raw_json(raw: &[u8], depth: usize) -> Result<Option<Value>, ProtobufError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.starts_with(super::MAGIC) {
        return super::decode_at(raw, depth + 1).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| ProtobufError::malformed(format!("embedded JSON is invalid: {e}")))
}

fn schema_union(
    special: Special,
    desc: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let mut schema = None;
    let mut list: Option<Value> = None;
    let mut allows = false;
    for Collected { field, values } in collect(desc, bytes)? {
        match field.runtime_field_type() {
            RuntimeFieldType::Singular(RuntimeType::Message(md)) => {
                let b = merged(field.name(), &values)?;
                schema = message(&md, &b, depth + 1).map_err(|e| e.at(field.name()))?;
            }
            RuntimeFieldType::Repeated(_) => {
                list = repeated_field(&field, &values, depth).map_err(|e| e.at(field.name()))?;
            }
            RuntimeFieldType::Singular(_) => {
                if let Some(last) = values.last() {
                    allows = scalar(&field, *last)? == Value::Bool(true);
                }
            }
            RuntimeFieldType::Map(..) => {}
        }
    }
    Ok(match special {
        // Go: the schema if set, else the boolean.
        Special::SchemaOrBool => Some(schema.unwrap_or(Value::Bool(allows))),
        // Go: the list if non-empty, else the schema, else null.
        _ => list.or(schema),
    })
}
