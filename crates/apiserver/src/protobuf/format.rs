//! The JSON text Go gives to times, durations and floating-point numbers.

use serde_json::Value;
use time::OffsetDateTime;

use super::ProtobufError;

/// Seconds of Go's zero `time.Time` (January 1, year 1, UTC) since the Unix epoch.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// `metav1.Time` (`micro == false`: RFC 3339 in seconds) or
/// `metav1.MicroTime` (six fractional digits), in UTC. The zero time is
/// `None` (Go writes `null`).
pub(crate) fn time(seconds: i64, nanos: i64, micro: bool) -> Result<Option<Value>, ProtobufError> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    if total == i128::from(GO_ZERO_TIME) * 1_000_000_000 {
        return Ok(None);
    }
    let t = OffsetDateTime::from_unix_timestamp_nanos(total)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| {
            ProtobufError::malformed(format!(
                "time {seconds}s {nanos}ns is outside the years 0 to 9999"
            ))
        })?;
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micro {
        out.push_str(&format!(".{:06}", t.microsecond()));
    }
    out.push('Z');
    Ok(Some(Value::String(out)))
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s".
pub(crate) fn duration(nanos: i64) -> String {
    let negative = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_owned(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_frac(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = split_frac(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        let mut text = format!("{s}{frac}s");
        if u > 0 {
            text = format!("{}m{text}", u % 60);
            u /= 60;
            if u > 0 {
                text = format!("{u}h{text}");
            }
        }
        out.push_str(&text);
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// Splits `v` into `v / 10^prec` and the fraction as ".ddd" without
/// trailing zeros ("" when the fraction is zero).
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    if prec == 0 {
        return (v, String::new());
    }
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// A protobuf double as Go's JSON number: integral values without a
/// fraction; NaN and infinities are refused as Go refuses them.
pub(crate) fn float(f: f64) -> Result<Value, ProtobufError> {
    if !f.is_finite() {
        return Err(ProtobufError::malformed(format!(
            "{f} cannot be written as JSON"
        )));
    }
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| ProtobufError::malformed(format!("{f} cannot be written as JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn times_read_like_go() {
        assert_eq!(
            time(1_700_000_000, 0, false).ok().flatten(),
            Some(Value::from("2023-11-14T22:13:20Z"))
        );
        assert_eq!(
            time(1_700_000_000, 123_456_789, true).ok().flatten(),
            Some(Value::from("2023-11-14T22:13:20.123456Z"))
        );
        assert_eq!(
            time(0, 0, false).ok().flatten(),
            Some(Value::from("1970-01-01T00:00:00Z"))
        );
        assert_eq!(time(GO_ZERO_TIME, 0, false).ok(), Some(None));
        assert!(time(i64::MAX, 0, false).is_err());
        assert!(time(-70_000_000_000, 0, false).is_err());
    }

    #[test]
    fn floats_read_like_go() {
        assert_eq!(float(1.0).ok(), Some(Value::from(1)));
        assert_eq!(float(0.5).ok(), Some(Value::from(0.5)));
        assert!(float(f64::NAN).is_err());
        assert!(float(f64::INFINITY).is_err());
    }
}
