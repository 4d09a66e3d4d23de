//! Cron schedules as kube's CronJob controller reads them: five fields
//! (minute hour day-of-month month day-of-week) with lists, ranges, steps,
//! month and weekday names and `?`, or one of the macros `@yearly`,
//! `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
//! next times computed in a time zone, DST included, as kube's cron
//! library computes them.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned, civil};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day-of-month or day-of-week was `*`/`?`: both must match (else either).
    day_star: bool,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Schedule {
    /// Parses a schedule; the error says what is wrong, as kube's does.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("empty spec string".to_owned());
        }
        if spec.contains("TZ") {
            return Err(
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_owned(),
            );
        }
        if let Some(name) = spec.strip_prefix('@') {
            let expanded = match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(format!("unrecognized descriptor: {spec}")),
            };
            return Schedule::parse(expanded);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        }
        let (dom, dom_star) = field(fields[2], &DOM)?;
        let (dow, dow_star) = field(fields[4], &DOW)?;
        Ok(Schedule {
            minute: field(fields[0], &MINUTE)?.0,
            hour: field(fields[1], &HOUR)?.0,
            dom,
            month: field(fields[3], &MONTH)?.0,
            dow,
            day_star: dom_star || dow_star,
        })
    }

    fn day_matches(&self, z: &Zoned) -> bool {
        let dom = bit(self.dom, u32::from(z.day().unsigned_abs()));
        let dow = bit(
            self.dow,
            u32::from(z.weekday().to_sunday_zero_offset().unsigned_abs()),
        );
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after`, read in `tz`;
    /// `None` when there is none within five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.next_zoned(after, tz).map(|z| z.timestamp())
    }

    fn next_zoned(&self, after: Timestamp, tz: &TimeZone) -> Option<Zoned> {
        // The next whole second.
        let start = Timestamp::from_second(after.as_second().checked_add(1)?).ok()?;
        let mut t = start.to_zoned(tz.clone());
        let year_limit = t.year() + 5;
        let mut added = false;
        let midnight = |d: civil::Date| d.to_zoned(tz.clone()).ok();
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !bit(self.month, u32::from(t.month().unsigned_abs())) {
                if !added {
                    added = true;
                    t = midnight(civil::date(t.year(), t.month(), 1))?;
                }
                t = midnight(t.date().checked_add(1.month()).ok()?)?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = midnight(t.date())?;
                }
                t = midnight(t.date().checked_add(1.day()).ok()?)?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !bit(self.hour, u32::from(t.hour().unsigned_abs())) {
                if !added {
                    added = true;
                    let hour = t.date().at(t.hour(), 0, 0, 0);
                    t = hour.to_zoned(tz.clone()).ok()?;
                }
                t = t.checked_add(1.hour()).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !bit(self.minute, u32::from(t.minute().unsigned_abs())) {
                if !added {
                    added = true;
                    let s = t.timestamp().as_second();
                    t = Timestamp::from_second(s - s.rem_euclid(60))
                        .ok()?
                        .to_zoned(tz.clone());
                }
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            if t.second() != 0 {
                // Seconds are always 0 in the standard format.
                let s = t.timestamp().as_second();
                t = Timestamp::from_second(s + 60 - s.rem_euclid(60))
                    .ok()?
                    .to_zoned(tz.clone());
                continue 'wrap;
            }
            return Some(t);
        }
    }
}

fn bit(set: u64, n: u32) -> bool {
    n < 64 && set & (1u64 << n) != 0
}

/// Parses one field (a comma list of ranges); also reports whether it
/// was the wildcard `*`/`?` (without a step).
fn field(text: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (set, is_star) = range(part, b)?;
        bits |= set;
        star |= is_star;
    }
    Ok((bits, star))
}

fn range(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let (range_part, step_part) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step_part.is_some_and(|s| s.contains('/')) {
        return Err(format!("too many slashes: {expr}"));
    }
    let mut star = false;
    let (start, mut end) = if range_part == "*" || range_part == "?" {
        star = true;
        (b.min, b.max)
    } else {
        match range_part.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(format!("too many hyphens: {expr}"));
                }
                (value(lo, b)?, value(hi, b)?)
            }
            None => {
                let v = value(range_part, b)?;
                (v, v)
            }
        }
    };
    let step = match step_part {
        None => 1,
        Some(s) => {
            let step = number(s)?;
            // `N/step` means from N to the maximum.
            if !range_part.contains('-') && !star {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    let mut v = start;
    while v <= end {
        bits |= 1u64 << v;
        v += step;
    }
    Ok((bits, star))
}

fn value(text: &str, b: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        let i = u32::try_from(i).map_err(|_| format!("bad name: {text}"))?;
        return Ok(i + b.min);
    }
    number(text)
}

fn number(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {text}: invalid syntax"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("zone")
    }

    #[test]
    fn parse_accepts_and_refuses_like_kube() {
        let ok = [
            "* * * * *",
            "*/5 * * * *",
            "0 0 1 1 *",
            "0-30/10 9-17 * JAN-mar mon-FRI",
            "5 4 ? * sun",
            "0 0 * * 6",
            "15,45 */2 1,15 * *",
            "5/15 * * * *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ];
        for s in ok {
            assert!(Schedule::parse(s).is_ok(), "{s} should parse");
        }
        let bad = [
            ("", "empty spec string"),
            ("* * * *", "expected exactly 5 fields, found 4: * * * *"),
            (
                "0 0 0 * * *",
                "expected exactly 5 fields, found 6: 0 0 0 * * *",
            ),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* 24 * * *", "end of range (24) above maximum (23): 24"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("x * * * *", "failed to parse int from x: invalid syntax"),
            ("@every 1m", "unrecognized descriptor: @every 1m"),
            ("@reboot", "unrecognized descriptor: @reboot"),
            (
                "TZ=UTC * * * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            (
                "CRON_TZ=UTC 0 * * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
        ];
        for (s, want) in bad {
            assert_eq!(Schedule::parse(s).err().as_deref(), Some(want), "{s}");
        }
    }

    #[test]
    fn next_times_in_utc() {
        let utc = TimeZone::UTC;
        let cases = [
            ("* * * * *", "2024-01-01T10:00:30Z", "2024-01-01T10:01:00Z"),
            ("* * * * *", "2024-01-01T10:00:00Z", "2024-01-01T10:01:00Z"),
            (
                "*/5 * * * *",
                "2024-01-01T10:03:00Z",
                "2024-01-01T10:05:00Z",
            ),
            ("0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"),
            ("@hourly", "2024-01-01T23:30:00Z", "2024-01-02T00:00:00Z"),
            ("@daily", "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z"),
            ("@weekly", "2024-01-03T00:00:00Z", "2024-01-07T00:00:00Z"),
            ("@monthly", "2024-01-15T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@yearly", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            (
                "30 9 * * mon-fri",
                "2024-01-05T10:00:00Z",
                "2024-01-08T09:30:00Z",
            ),
            // Day-of-month OR day-of-week when neither is a wildcard.
            ("0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            ("0 0 13 * 5", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"),
            // `?` is a wildcard: AND semantics.
            ("0 0 ? * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            (
                "5/20 * * * *",
                "2024-01-01T10:06:00Z",
                "2024-01-01T10:25:00Z",
            ),
            (
                "0 0 1 jan *",
                "2024-01-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ),
        ];
        for (spec, after, want) in cases {
            let s = Schedule::parse(spec).expect(spec);
            assert_eq!(
                s.next(ts(after), &utc),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
        let never = Schedule::parse("0 0 30 2 *").expect("parse");
        assert_eq!(never.next(ts("2024-01-01T00:00:00Z"), &utc), None);
    }

    #[test]
    fn next_times_in_zones_and_across_dst() {
        let cases = [
            // 09:00 in Tokyo is 00:00 UTC.
            (
                "0 9 * * *",
                "Asia/Tokyo",
                "2024-01-01T01:00:00Z",
                "2024-01-02T00:00:00Z",
            ),
            // New York in winter is UTC-5, in summer UTC-4.
            (
                "0 9 * * *",
                "America/New_York",
                "2024-01-10T00:00:00Z",
                "2024-01-10T14:00:00Z",
            ),
            (
                "0 9 * * *",
                "America/New_York",
                "2024-07-10T00:00:00Z",
                "2024-07-10T13:00:00Z",
            ),
            // Spring forward (2024-03-10): 02:30 does not exist that day,
            // the run is skipped to the next day.
            (
                "30 2 * * *",
                "America/New_York",
                "2024-03-09T08:00:00Z",
                "2024-03-11T06:30:00Z",
            ),
            // Fall back (2024-11-03): 01:30 happens twice, both run.
            (
                "30 1 * * *",
                "America/New_York",
                "2024-11-03T04:00:00Z",
                "2024-11-03T05:30:00Z",
            ),
            (
                "30 1 * * *",
                "America/New_York",
                "2024-11-03T05:30:00Z",
                "2024-11-03T06:30:00Z",
            ),
            (
                "30 1 * * *",
                "America/New_York",
                "2024-11-03T06:30:00Z",
                "2024-11-04T06:30:00Z",
            ),
            // Hourly across spring forward in Berlin (2024-03-31 02:00 → 03:00).
            (
                "0 * * * *",
                "Europe/Berlin",
                "2024-03-31T00:30:00Z",
                "2024-03-31T01:00:00Z",
            ),
            // Half-hour zone.
            (
                "0 0 * * *",
                "Asia/Kolkata",
                "2024-01-01T00:00:00Z",
                "2024-01-01T18:30:00Z",
            ),
        ];
        for (spec, zone, after, want) in cases {
            let s = Schedule::parse(spec).expect(spec);
            assert_eq!(
                s.next(ts(after), &tz(zone)),
                Some(ts(want)),
                "{spec} in {zone} after {after}"
            );
        }
    }
}
