//! Kubernetes quantities ("100m", "1.5Gi", "2e3") as integers, rounded up
//! as `resource.Quantity`'s `Value()` and `MilliValue()` round.

/// The value of `text` in whole units, rounded up; `None` if it does not
/// parse. Saturates at `i64::MAX`.
pub fn value(text: &str) -> Option<i64> {
    scaled(text, 0)
}

/// The value of `text` in thousandths, rounded up (`"100m"` is 100,
/// `"1"` is 1000); `None` if it does not parse.
pub fn milli_value(text: &str) -> Option<i64> {
    scaled(text, 3)
}

/// `text` × 10^`shift`, rounded up to an integer.
fn scaled(text: &str, shift: i32) -> Option<i64> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') {
        return None;
    }
    let (pow10, pow2) = suffix_exponents(suffix)?;
    // mantissa = whole.frac as an integer, scaled by 10^-len(frac).
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(frac.chars()) {
        let digit = i128::from(c.to_digit(10)?);
        mantissa = mantissa.saturating_mul(10).saturating_add(digit);
    }
    let frac_len = i32::try_from(frac.len()).ok()?;
    let mut exp10 = pow10 + shift - frac_len;
    let mut v = mantissa;
    for _ in 0..pow2 {
        v = v.saturating_mul(2);
    }
    while exp10 > 0 {
        v = v.saturating_mul(10);
        exp10 -= 1;
    }
    let mut divisor: i128 = 1;
    while exp10 < 0 {
        divisor = divisor.saturating_mul(10);
        exp10 += 1;
    }
    // Round away from zero, as Quantity's rounding up does for positives.
    let mut out = v / divisor;
    if v % divisor != 0 {
        out += 1;
    }
    if negative {
        out = -out;
    }
    Some(i64::try_from(out).unwrap_or(if negative { i64::MIN } else { i64::MAX }))
}

/// The (power of ten, power of two) a suffix stands for.
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    Some(match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let exp = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            (exp.parse::<i32>().ok().filter(|e| e.abs() <= 30)?, 0)
        }
    })
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
