//! Kubernetes quantities ("100m", "1.5Gi", "2e3") as integers, rounded up
//! as `resource.Quantity`'s `Value()` and `MilliValue()` round (the parser
//! is `berth_types::quantity`, shared with the API server and the agent).

use berth_types::quantity::Quantity;

/// The value of `text` in whole units, rounded up; `None` if it does not
/// parse. Saturates at `i64::MAX`.
pub fn value(text: &str) -> Option<i64> {
    Quantity::parse(text.trim()).ok().map(|q| q.value())
}

/// The value of `text` in thousandths, rounded up (`"100m"` is 100,
/// `"1"` is 1000); `None` if it does not parse.
pub fn milli_value(text: &str) -> Option<i64> {
    Quantity::parse(text.trim()).ok().map(|q| q.milli_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kube_quantities() {
        let cases: &[(&str, Option<i64>, Option<i64>)] = &[
            ("1", Some(1), Some(1000)),
            ("100m", Some(1), Some(100)),
            ("1.5", Some(2), Some(1500)),
            ("0.1", Some(1), Some(100)),
            ("2Gi", Some(2 << 30), Some((2i64 << 30) * 1000)),
            ("128Mi", Some(128 << 20), Some((128i64 << 20) * 1000)),
            ("1k", Some(1000), Some(1_000_000)),
            ("1e3", Some(1000), Some(1_000_000)),
            ("500M", Some(500_000_000), Some(500_000_000_000)),
            ("1n", Some(1), Some(1)),
            ("0", Some(0), Some(0)),
            ("abc", None, None),
            ("1Xi", None, None),
            ("", None, None),
        ];
        for (text, v, m) in cases {
            assert_eq!(value(text), *v, "value({text})");
            assert_eq!(milli_value(text), *m, "milli_value({text})");
        }
    }
}
