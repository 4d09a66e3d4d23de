//! Docker's `filters` query parameter: a JSON object of lists,
//! `{"label":["a=1","b"],"status":["running"]}`, or the older map shape
//! `{"label":{"a=1":true}}`.

use berth_engine::filter::Filters;
use serde_json::Value;

/// Parses a `filters` value; anything but an object of string lists (or
/// of maps) is an error naming the value.
pub fn parse_filters(raw: &str) -> Result<Filters, String> {
    let mut out = std::collections::BTreeMap::new();
    if raw.is_empty() {
        return Ok(Filters(out));
    }
    let v: Value = serde_json::from_str(raw).map_err(|e| format!("invalid filter '{raw}': {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("invalid filter '{raw}'"))?;
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    format!("invalid filter '{raw}': values of {k:?} must be strings")
                })?,
            _ => return Err(format!("invalid filter '{raw}'")),
        };
        out.insert(k.clone(), list);
    }
    Ok(Filters(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_and_bad_values() {
        let f = parse_filters(r#"{"label":["a=1","b"],"status":{"running":true}}"#).unwrap();
        assert_eq!(f.get("label"), ["a=1", "b"]);
        assert_eq!(f.get("status"), ["running"]);
        assert!(parse_filters("").unwrap().0.is_empty());
        for bad in [
            "{bad",
            "[]",
            r#"{"label":"a"}"#,
            r#"{"label":[1]}"#,
            "é",
            r#"{"é":[null]}"#,
        ] {
            assert!(parse_filters(bad).is_err(), "{bad}");
        }
    }
}
