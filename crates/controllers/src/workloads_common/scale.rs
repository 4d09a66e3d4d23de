//! Int-or-percent fields (`maxUnavailable`, `maxSurge`) against a total.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves an int-or-percent against `total` (`default` when unset; a
/// percent is rounded up when `round_up`, else down).
pub fn scaled(v: Option<&IntOrString>, total: i32, default: i32, round_up: bool) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let t = i64::from(total) * pct;
            let v = if round_up { (t + 99) / 100 } else { t / 100 };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_percents() {
        let s = |v: &str| IntOrString::String(v.to_owned());
        let cases = [
            (None, 10, false, 1),
            (Some(IntOrString::Int(3)), 10, false, 3),
            (Some(s("25%")), 10, true, 3),
            (Some(s("25%")), 10, false, 2),
            (Some(s("100%")), 3, true, 3),
            (Some(s("0%")), 3, true, 0),
        ];
        for (v, total, up, want) in cases {
            assert_eq!(scaled(v.as_ref(), total, 1, up), want, "{v:?} of {total}");
        }
    }
}
