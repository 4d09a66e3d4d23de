//! IntOrString values (`maxSurge: 25%`, `minAvailable: 2`) scaled against
//! a total, as kube's `intstr.GetScaledValueFromIntOrPercent`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// kube's `GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of
/// `total` rounded up or down; anything else is an error (kube's text).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .to_owned(),
                );
            };
            let pct: i64 = number.parse().map_err(|_| {
                format!("invalid value for IntOrString: invalid value {s:?}: {number:?} is not an integer")
            })?;
            let product = pct * i64::from(total);
            let v = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(v)
                .map_err(|_| format!("invalid value for IntOrString: {s:?} is out of range"))
        }
    }
}

/// [`scaled_value`] of an optional field: `default` when unset, 0 when it
/// does not parse (the API validates these fields, so that is a value
/// that slipped past validation).
pub fn scaled(v: Option<&IntOrString>, total: i32, default: i32, round_up: bool) -> i32 {
    v.map_or(default, |v| scaled_value(v, total, round_up).unwrap_or(0))
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
            (Some(s("x%")), 3, true, 0),
        ];
        for (v, total, up, want) in cases {
            assert_eq!(scaled(v.as_ref(), total, 1, up), want, "{v:?} of {total}");
        }
    }

    #[test]
    fn invalid_values_are_errors() {
        let s = |v: &str| IntOrString::String(v.to_owned());
        assert_eq!(scaled_value(&s("50%"), 5, false), Ok(2));
        assert_eq!(scaled_value(&s("50%"), 5, true), Ok(3));
        assert!(scaled_value(&s("x%"), 5, true).is_err());
        assert_eq!(
            scaled_value(&s("5"), 5, true),
            Err(
                "invalid value for IntOrString: invalid type: string is not a percentage"
                    .to_owned()
            )
        );
    }
}
