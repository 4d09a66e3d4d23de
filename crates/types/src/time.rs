//! RFC 3339 timestamps, as docker, runc and the registry write them:
//! formatting, and the one parser berth uses for times it did not write
//! itself (image configs, registries, users).

use std::fmt;

/// Formats a Unix time (UTC) as RFC 3339 with nanoseconds
/// (`2026-11-24T21:55:08.500000000Z`).
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Formats a Unix time as Kubernetes' `metav1.Time`: RFC 3339 in UTC to
/// the second (`2026-11-24T21:55:08Z`).
pub fn format_rfc3339_seconds(secs: i64) -> String {
    let full = format_rfc3339(secs, 0);
    format!("{}Z", full.split('.').next().unwrap_or(&full))
}

/// Formats a Unix time as Kubernetes' `metav1.MicroTime`: RFC 3339 in UTC
/// with microseconds (`2026-11-24T21:55:08.123456Z`).
pub fn format_rfc3339_micros(secs: i64, nanos: u32) -> String {
    let full = format_rfc3339(secs, nanos);
    // 9 fractional digits and `Z` → 6 digits and `Z`.
    let cut = full.len().saturating_sub(4);
    format!("{}Z", full.get(..cut).unwrap_or(&full))
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's days-from-civil; the inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Why a string is not an RFC 3339 time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTime {
    /// The input (shortened when long).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for InvalidTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid RFC 3339 time {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for InvalidTime {}

/// Parses an RFC 3339 time (`2026-11-24T16:14:49.232+01:00`): a 4-digit
/// year, `T` (or `t`, or a space) between date and time, optional
/// fractional seconds (any number of digits; nanoseconds are kept), and
/// `Z` or a `±HH:MM` offset, which is honoured. Returns the Unix time
/// (UTC) as seconds and nanoseconds. Anything else, including any
/// non-ASCII byte, is an error; it never panics.
pub fn parse_rfc3339(s: &str) -> Result<(i64, u32), InvalidTime> {
    let fail = |reason: &'static str| InvalidTime {
        input: s.chars().take(64).collect(),
        reason,
    };
    let b = s.as_bytes();
    if !b.is_ascii() {
        return Err(fail("it holds non-ASCII characters"));
    }
    // Fixed positions: YYYY-MM-DDTHH:MM:SS
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));
    if b.len() < 20 {
        return Err(fail("too short"));
    }
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(fail("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let field = |from, n, what| digits(from, n).ok_or_else(|| fail(what));
    let year = field(0, 4, "the year is not 4 digits")?;
    let month = field(5, 2, "the month is not 2 digits")?;
    let day = field(8, 2, "the day is not 2 digits")?;
    let hour = field(11, 2, "the hour is not 2 digits")?;
    let minute = field(14, 2, "the minute is not 2 digits")?;
    let second = field(17, 2, "the second is not 2 digits")?;
    if !(1..=12).contains(&month) {
        return Err(fail("the month is out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail("the day is out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(fail("the time of day is out of range"));
    }
    let mut pos = 19;
    let mut nanos = 0u32;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            if pos - start < 9 {
                nanos = nanos * 10 + u32::from(b[pos] - b'0');
            }
            pos += 1;
        }
        if pos == start {
            return Err(fail("no digits after the decimal point"));
        }
        for _ in (pos - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(pos..) {
        Some(b"Z" | b"z") => 0,
        Some([sign @ (b'+' | b'-'), ..]) if b.len() - pos == 6 && sep(pos + 3, b":") => {
            let h = digits(pos + 1, 2).ok_or_else(|| fail("the offset hour is not 2 digits"))?;
            let m = digits(pos + 4, 2).ok_or_else(|| fail("the offset minute is not 2 digits"))?;
            if h > 23 || m > 59 {
                return Err(fail("the offset is out of range"));
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' { -o } else { o }
        }
        Some([]) | None => return Err(fail("the time zone (Z or ±HH:MM) is missing")),
        Some(_) => return Err(fail("expected Z or ±HH:MM after the time")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok((secs, nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`) into
/// signed nanoseconds, with Go's error messages.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.chars().take_while(char::is_ascii_digit).count();
        let (int_part, r) = s.split_at(int_len);
        s = r;
        let mut frac_part = "";
        if let Some(r) = s.strip_prefix('.') {
            let n = r.chars().take_while(char::is_ascii_digit).count();
            let (f, r2) = r.split_at(n);
            frac_part = f;
            s = r2;
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        } else if int_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .chars()
            .take_while(|c| *c != '.' && !c.is_ascii_digit())
            .map(char::len_utf8)
            .sum::<usize>();
        let (unit, r) = s.split_at(unit_len);
        s = r;
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<u128>().map_err(|_| invalid())?
        };
        let mut v = int.checked_mul(mult).ok_or_else(invalid)?;
        // Fraction: at most 30 digits matter for nanosecond precision.
        let mut scale: u128 = 1;
        let mut frac: u128 = 0;
        for d in frac_part.chars().take(30) {
            frac = frac * 10 + u128::from(d.to_digit(10).unwrap_or(0));
            scale *= 10;
        }
        v = v.checked_add(frac * mult / scale).ok_or_else(invalid)?;
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(invalid());
        }
    }
    let t = i128::try_from(total).map_err(|_| invalid())?;
    let t = if neg { -t } else { t };
    i64::try_from(t).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_registries_and_tools_write() {
        let ok = |s: &str| parse_rfc3339(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok("1970-01-01T00:00:10Z"), (10, 0));
        assert_eq!(ok("1970-01-01t00:00:10z"), (10, 0));
        assert_eq!(ok("1970-01-01 00:00:10Z"), (10, 0));
        assert_eq!(ok("2023-11-14T22:13:20.000000000Z"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-14T22:13:20.5Z"), (1_700_000_000, 500_000_000));
        assert_eq!(
            ok("2023-11-14T22:13:20.123456789123Z"),
            (1_700_000_000, 123_456_789)
        );
        // offsets are honoured
        assert_eq!(
            ok("2000-03-01T01:00:00.5+01:00"),
            (951_868_800, 500_000_000)
        );
        assert_eq!(ok("2023-11-14T17:13:20-05:00"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-15T03:43:20+05:30"), (1_700_000_000, 0));
        assert_eq!(ok("2023-11-14T22:13:20-00:00"), (1_700_000_000, 0));
        assert_eq!(ok("1969-12-31T23:59:59Z"), (-1, 0));
        assert_eq!(ok("2000-02-29T00:00:00Z"), (951_782_400, 0));
        assert_eq!(
            ok("0001-01-01T00:00:00Z"),
            (-62_135_596_800, 0),
            "Go's zero time"
        );
        // a leap second rolls into the next minute
        assert_eq!(ok("2016-12-31T23:59:60Z"), (1_483_228_800, 0));
        // what berth writes parses back
        for (secs, nanos) in [(0, 0), (1_700_000_000, 5), (-1, 999_999_999)] {
            assert_eq!(ok(&format_rfc3339(secs, nanos)), (secs, nanos));
        }
    }

    #[test]
    fn rejects_everything_else_without_panicking() {
        for bad in [
            "",
            "2023",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+01",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+01:00:00",
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20+01:60",
            "2023-11-14T22:13:20ZZ",
            "2023-13-14T22:13:20Z",
            "2023-00-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-11-31T22:13:20Z",
            "2023-11-14T24:13:20Z",
            "2023-11-14T22:60:20Z",
            "2023-11-14T22:13:61Z",
            "2023-11-14X22:13:20Z",
            "+023-11-14T22:13:20Z",
            "2023-1a-14T22:13:20Z",
            // multi-byte characters anywhere, including inside the offset
            "2023-11-14T22:13:20+0\u{e9}:0",
            "2023-11-14T22:13:2\u{e9}Z",
            "2023-11-14T22:13:20.\u{665}Z",
            "\u{1F600}2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20\u{2212}01:00",
        ] {
            let e = parse_rfc3339(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid RFC 3339 time"), "{e}");
        }
        assert!(
            parse_rfc3339("2023-11-14T22:13:20+0\u{e9}:0")
                .unwrap_err()
                .reason
                .contains("non-ASCII")
        );
    }

    #[test]
    fn kubernetes_time_formats() {
        assert_eq!(format_rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_micros(1, 123_456_789),
            "1970-01-01T00:00:01.123456Z"
        );
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in [-719_468, -1, 0, 59, 60, 11_016, 20_781, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m.into(), d.into()), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_rfc3339(1_700_000_000, 0),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(format_rfc3339(-1, 0), "1969-12-31T23:59:59.000000000Z");
    }
}
