//! Go durations (`--health-interval 30s`, `--since 10m`) and docker's
//! timestamps for `--since`/`--until` (`logs`, `events`).

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`) in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration: {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(n_end);
        if num.is_empty() {
            return Err(bad());
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        let u_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_end);
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = tail;
    }
    if !total.is_finite() || total >= i64::MAX as f64 {
        return Err(format!("duration {s:?} is too long"));
    }
    let v = total as i64;
    Ok(if neg { -v } else { v })
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A time for `--since`/`--until`, in nanoseconds since the epoch: a Go
/// duration before `now_ns` (`10m`), a Unix time with an optional fraction
/// (`1700000000.5`), an RFC 3339 time with or without its zone, or a date
/// (`2026-11-24`, `2026-11-24T10:00`); times without a zone are UTC (the
/// daemon's local time here).
pub fn parse_timestamp(s: &str, now_ns: i64) -> Result<i64, String> {
    let bad = || format!("failed to parse value as time or duration: {s:?}");
    if s != "0"
        && let Ok(d) = parse_duration(s)
    {
        return Ok(now_ns.saturating_sub(d));
    }
    if !s.is_ascii() {
        return Err(bad());
    }
    // Unix seconds[.fraction]
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if let Some(secs) = digits(secs)
        && (frac.is_empty() || frac.bytes().all(|b| b.is_ascii_digit()))
    {
        let mut nanos: i64 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
        }
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|v| v.checked_add(nanos))
            .ok_or_else(bad);
    }
    // RFC 3339, with the zone or without (UTC), or shorter forms
    let full = match s.len() {
        10 => format!("{s}T00:00:00Z"),
        13 => format!("{s}:00:00Z"),
        16 => format!("{s}:00Z"),
        _ if s.ends_with(['Z', 'z'])
            || s.get(s.len().saturating_sub(6)..)
                .is_some_and(|t| t.starts_with(['+', '-']) && t.get(3..4) == Some(":")) =>
        {
            s.to_owned()
        }
        _ => format!("{s}Z"),
    };
    let (secs, nanos) = berth_types::time::parse_rfc3339(&full).map_err(|_| bad())?;
    secs.checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(i64::from(nanos)))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("2µs"), Ok(2_000));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in [
            "",
            "s",
            "10",
            "1x",
            "1.2.3s",
            "é",
            "1é",
            "5sé",
            "99999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_like_docker() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(parse_timestamp("10m", now), Ok(now - 600_000_000_000));
        assert_eq!(parse_timestamp("0", now), Ok(0));
        assert_eq!(
            parse_timestamp("1700000000.5", now),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_timestamp("1700000000.123456789123", now),
            Ok(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", now),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20+01:00", now),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20", now),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14", now),
            Ok(1_699_920_000_000_000_000)
        );
        for bad in [
            "1.12345678é",
            "é",
            "yesterday",
            "2023-13-01",
            "99999999999999999999",
            "1.2.3",
            "-",
            "",
        ] {
            assert!(parse_timestamp(bad, now).is_err(), "{bad}");
        }
    }
}
