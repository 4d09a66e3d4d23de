//! Storage sizes: a Kubernetes quantity (`10Gi`, `500M`, `1.5Ti`,
//! `1e9`, `100`) as a number of bytes, for comparing a claim's request
//! with a volume's capacity.

/// The bytes a quantity stands for, or None when it does not parse.
pub fn bytes(quantity: &str) -> Option<f64> {
    let q = quantity.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = q.strip_suffix(suffix) {
            return number_of(number).map(|n| n * factor);
        }
    }
    number_of(q)
}

fn number_of(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("1Gi", Some(1073741824.0)),
            ("512Mi", Some(536870912.0)),
            ("1G", Some(1e9)),
            ("1.5Ki", Some(1536.0)),
            ("100", Some(100.0)),
            ("1e3", Some(1000.0)),
            ("2E", Some(2e18)),
            ("10Xi", None),
            ("", None),
            ("Gi", None),
        ];
        for (q, expected) in cases {
            assert_eq!(bytes(q), expected, "{q}");
        }
    }
}
