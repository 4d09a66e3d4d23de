//! Kubernetes resource quantities (`100m`, `1Gi`, `1e3`, `500Mi`), held
//! exactly as a count of nano-units so comparisons and sums never go
//! through floating point. Printing follows kube's canonical form: the
//! input's format (decimal SI, binary SI or decimal exponent) with the
//! largest suffix that keeps the number whole.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `k`, `M`, `m`, … (and plain numbers).
    DecimalSi,
    /// `Ki`, `Mi`, `Gi`, …
    BinarySi,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// An exact resource quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a quantity did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the quantity grammar.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// Too large (or too precise) to hold exactly.
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

const NANO: i128 = 1_000_000_000;

fn ceil_div(n: i128, d: i128) -> i64 {
    let q = n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0);
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

impl Quantity {
    /// Parses kube's quantity grammar: a signed decimal number and an
    /// optional suffix (`n u m k M G T P E`, `Ki … Ei`, or `e<int>`).
    /// Values finer than a nano-unit round up, as kube rounds them.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        if text.is_empty() || !text.is_ascii() {
            return Err(QuantityError::Format);
        }
        let bytes = text.as_bytes();
        let mut pos = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                pos = 1;
                true
            }
            Some(b'+') => {
                pos = 1;
                false
            }
            _ => false,
        };
        let mut int_digits: Vec<u8> = Vec::new();
        let mut frac_digits: Vec<u8> = Vec::new();
        let mut seen_dot = false;
        while let Some(&b) = bytes.get(pos) {
            match b {
                b'0'..=b'9' if seen_dot => frac_digits.push(b - b'0'),
                b'0'..=b'9' => int_digits.push(b - b'0'),
                b'.' if !seen_dot => seen_dot = true,
                _ => break,
            }
            pos += 1;
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(QuantityError::Format);
        }
        let suffix = bytes.get(pos..).unwrap_or(&[]);
        let (format, exp10, exp2) = parse_suffix(suffix)?;
        // Digits as one integer with a decimal exponent.
        while frac_digits.last() == Some(&0) {
            frac_digits.pop();
        }
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| too_large(text))?;
        let mut mantissa: i128 = 0;
        for d in int_digits.iter().chain(frac_digits.iter()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(*d)))
                .ok_or_else(|| too_large(text))?;
        }
        let mut value = mantissa
            .checked_mul(2i128.checked_pow(exp2).ok_or_else(|| too_large(text))?)
            .ok_or_else(|| too_large(text))?;
        let scale = exp10 - frac_len + 9;
        if scale >= 0 {
            let factor = u32::try_from(scale)
                .ok()
                .and_then(pow10)
                .ok_or_else(|| too_large(text))?;
            if value != 0 {
                value = value.checked_mul(factor).ok_or_else(|| too_large(text))?;
            }
        } else {
            let divisor = u32::try_from(-scale).ok().and_then(pow10);
            value = match divisor {
                // Round up what is finer than a nano-unit.
                Some(d) => value / d + i128::from(value % d != 0),
                None => i128::from(value != 0),
            };
        }
        Ok(Quantity {
            nanos: if negative { -value } else { value },
            format,
        })
    }

    /// A whole number (counts), printed as decimal SI.
    pub fn from_int(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// A number of bytes, printed as binary SI (`100Mi`, `2789Ki`).
    pub fn from_bytes(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            format: Format::BinarySi,
        }
    }

    /// Zero.
    pub fn zero() -> Quantity {
        Quantity::from_int(0)
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in whole units, rounded up (kube's `Value()`), saturating.
    pub fn value(&self) -> i64 {
        ceil_div(self.nanos, NANO)
    }

    /// The value in thousandths, rounded up (kube's `MilliValue()`), saturating.
    pub fn milli_value(&self) -> i64 {
        ceil_div(self.nanos, NANO / 1000)
    }

    /// The format it prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The sum, in this quantity's format (a zero takes the other's, as
    /// kube's sums do); `None` on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        })
    }

    /// `self / other` as a float, for display only (kube prints the
    /// limit-to-request ratio with `%f`).
    pub fn ratio(&self, other: &Quantity) -> f64 {
        // Display only: precision loss is acceptable here.
        #[allow(clippy::cast_precision_loss)]
        let (a, b) = (self.nanos as f64, other.nanos as f64);
        a / b
    }

    /// Whether `self / other > limit`, exactly (`other` must be positive).
    pub fn ratio_exceeds(&self, other: &Quantity, limit: &Quantity) -> bool {
        // self/other > limit  <=>  self * 1e9 > limit * other (all nanos).
        let lhs = wide_mul(self.nanos, NANO);
        let rhs = wide_mul(limit.nanos, other.nanos);
        lhs > rhs
    }
}

/// A signed 256-bit product as (sign-aware) comparable parts.
fn wide_mul(a: i128, b: i128) -> (bool, u128, u128) {
    let negative = (a < 0) != (b < 0) && a != 0 && b != 0;
    let (x, y) = (a.unsigned_abs(), b.unsigned_abs());
    let mask = u128::from(u64::MAX);
    let (x1, x0) = (x >> 64, x & mask);
    let (y1, y0) = (y >> 64, y & mask);
    let p00 = x0 * y0;
    let p01 = x0 * y1;
    let p10 = x1 * y0;
    let p11 = x1 * y1;
    let mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
    let lo = (p00 & mask) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    // Ordering key: negative values sort below positive ones.
    if negative {
        (false, !hi, !lo)
    } else {
        (true, hi, lo)
    }
}

fn too_large(text: &str) -> QuantityError {
    QuantityError::TooLarge(text.to_owned())
}

/// The suffix: format, power of ten, power of two.
fn parse_suffix(suffix: &[u8]) -> Result<(Format, i64, u32), QuantityError> {
    let decimal = |e| Ok((Format::DecimalSi, e, 0));
    let binary = |p| Ok((Format::BinarySi, 0, p));
    match suffix {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] => {
            let (negative, digits) = match rest {
                [b'-', d @ ..] => (true, d),
                [b'+', d @ ..] => (false, d),
                d => (false, d),
            };
            if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(QuantityError::Format);
            }
            let mut e: i64 = 0;
            for d in digits {
                e = e * 10 + i64::from(d - b'0');
            }
            Ok((Format::DecimalExponent, if negative { -e } else { e }, 0))
        }
        _ => Err(QuantityError::Format),
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySi && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            format = Format::DecimalSi;
        }
        if format == Format::BinarySi {
            let mut value = self.nanos / NANO;
            let mut power = 0;
            while value % 1024 == 0 && power < 6 {
                value /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(power)
                .copied()
                .unwrap_or("");
            return write!(f, "{value}{suffix}");
        }
        let mut mantissa = self.nanos;
        let mut exp: i32 = -9;
        while mantissa % 1000 == 0 && (format == Format::DecimalExponent || exp < 18) {
            mantissa /= 1000;
            exp += 3;
        }
        if format == Format::DecimalExponent {
            if exp == 0 {
                return write!(f, "{mantissa}");
            }
            return write!(f, "{mantissa}e{exp}");
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_suffixes_exactly() {
        assert_eq!(q("100m").nanos(), 100_000_000);
        assert_eq!(q("1").nanos(), NANO);
        assert_eq!(q("0.5").nanos(), NANO / 2);
        assert_eq!(q(".5").nanos(), NANO / 2);
        assert_eq!(q("5.").nanos(), 5 * NANO);
        assert_eq!(q("1Ki").nanos(), 1024 * NANO);
        assert_eq!(q("1Gi").nanos(), (1 << 30) * NANO);
        assert_eq!(q("500Mi").nanos(), 500 * (1 << 20) * NANO);
        assert_eq!(q("1e3").nanos(), 1000 * NANO);
        assert_eq!(q("1E3").nanos(), 1000 * NANO);
        assert_eq!(q("1E").nanos(), 10i128.pow(18) * NANO);
        assert_eq!(q("5e-3").nanos(), 5_000_000);
        assert_eq!(q("1n").nanos(), 1);
        assert_eq!(q("250u").nanos(), 250_000);
        assert_eq!(q("-2k").nanos(), -2000 * NANO);
        assert_eq!(q("+2k").nanos(), 2000 * NANO);
        assert_eq!(q("1.5Gi").nanos(), 1_610_612_736 * NANO);
        // Finer than a nano rounds up.
        assert_eq!(q("0.1n").nanos(), 1);
        assert_eq!(q("1.0000000001").nanos(), NANO + 1);
        assert_eq!(
            q("1.000000000000000000000000000000000000000000").nanos(),
            NANO
        );
    }

    #[test]
    fn compares_across_formats_without_floats() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1k"), q("1e3"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("1024Mi") == q("1Gi"));
        assert!(q("999m") < q("1"));
        assert!(q("0.1") == q("100m"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn prints_kubes_canonical_forms() {
        for (input, canonical) in [
            ("2", "2"),
            ("2000m", "2"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1.5k", "1500"),
            ("0.5", "500m"),
            ("500m", "500m"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1.5Ki", "1536"),
            ("512Ki", "512Ki"),
            ("100", "100"),
            ("1e3", "1e3"),
            ("1e0", "1"),
            ("1000e3", "1e6"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-500m", "-500m"),
            ("1000E", "1000E"),
            ("0.5Ki", "512"),
            ("100n", "100n"),
        ] {
            assert_eq!(q(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn sums_keep_the_first_format() {
        let sum = q("1Gi").checked_add(&q("1Gi")).unwrap();
        assert_eq!(sum.to_string(), "2Gi");
        let sum = q("500m").checked_add(&q("1")).unwrap();
        assert_eq!(sum.to_string(), "1500m");
        assert_eq!(Quantity::from_int(3).to_string(), "3");
        let sum = Quantity::zero().checked_add(&q("512Mi")).unwrap();
        assert_eq!(sum.to_string(), "512Mi");
    }

    #[test]
    fn ratios_compare_exactly() {
        assert!(q("3").ratio_exceeds(&q("1"), &q("2")));
        assert!(!q("2").ratio_exceeds(&q("1"), &q("2")));
        assert!(q("2001m").ratio_exceeds(&q("1"), &q("2")));
        // Huge memory values do not overflow.
        assert!(q("8Ei").ratio_exceeds(&q("1Ei"), &q("7")));
        assert!(!q("8Ei").ratio_exceeds(&q("1Ei"), &q("8")));
        assert_eq!(format!("{:.6}", q("4").ratio(&q("1"))), "4.000000");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "m",
            "Gi",
            "1.2.3",
            "1x",
            "1 Gi",
            " 1",
            "1Gi ",
            "1gi",
            "1K",
            "1e",
            "1e+",
            "1e99999",
            "--1",
            "+-1",
            "1.5.Gi",
            "one",
            "1é",
            "１",
            "1Gi\u{200b}",
            "1e3m",
            "1Kii",
            ".",
            "-",
            "1mi",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            Quantity::parse("99999999999999999999999999999999999999999"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(Quantity::parse("9999Ei").is_ok());
        assert!(Quantity::parse("1e9999").is_err());
    }
}
