//! Docker's human-readable texts: durations ("About a minute") and sizes,
//! shared by the API (`ps`'s Status) and berth's CLI.

/// docker's `units.HumanDuration` ("Less than a second", "5 seconds",
/// "About an hour", "3 days").
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0).round() as i64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// Unix seconds of an RFC 3339 time (`None` if it does not parse).
pub fn unix_secs(t: &str) -> Option<i64> {
    berth_types::time::parse_rfc3339(t).ok().map(|(s, _)| s)
}

/// Seconds since an RFC 3339 time.
pub fn age_secs(t: &str) -> Option<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(now.saturating_sub(unix_secs(t)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(5400), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(unix_secs("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(unix_secs("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(unix_secs("2023-11-14T22:13:20+0é:00"), None);
    }
}
