//! Exact decimals: the `decimal` field kind (money, quantities a bookkeeper adds up).
//!
//! A decimal field declares its `scale` (digits after the point) and optionally its
//! `precision` (digits in all, default [`DEFAULT_PRECISION`], at most [`MAX_PRECISION`]) and a
//! `rounding` mode. Its value is stored, returned, exported and sent in events as a JSON string
//! in canonical form: an optional `-`, digits, and exactly `scale` digits after the point
//! (`"1250.00"`, `"0.000000001"`). Strings keep every digit whatever reads them (a JavaScript
//! client's numbers are doubles); `numeric` in SQL compares them as numbers.
//!
//! Clients may send a string (`"12.5"`, `"1e-9"`) or a JSON number (`12.5`). A number arrives as
//! a double, so it is taken by its shortest representation (`0.1` is `0.1`, not
//! `0.1000000000000000055…`) and refused if that has more than [`MAX_NUMBER_DIGITS`] significant
//! digits (digits a double may already have lost: send a string). A value with more decimals
//! than the scale is refused unless the field declares a `rounding` mode: rounding is never
//! implicit.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Digits in all when the field does not say.
pub const DEFAULT_PRECISION: u32 = 18;
/// Most digits a decimal field may declare (what an exact 96-bit decimal holds).
pub const MAX_PRECISION: u32 = 28;
/// Most significant digits a JSON number may carry to be taken as a decimal: every decimal of
/// up to 15 digits survives the trip through a double.
pub const MAX_NUMBER_DIGITS: u32 = 15;
/// Longest decimal string accepted (sign, digits, point, exponent): far beyond 28 digits, and
/// keeps parsing of hostile input trivially bounded.
pub const MAX_TEXT: usize = 64;

/// How a value with more decimals than the scale is rounded (`rounding:` on the field; also
/// the modes of the `round` operation in rules and scripts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To the nearest, ties to the even digit (banker's rounding): 2.345 → 2.34, 2.355 → 2.36.
    HalfEven,
    /// To the nearest, ties away from zero (as taught at school): 2.345 → 2.35, -2.345 → -2.35.
    HalfUp,
    /// To the nearest, ties toward zero: 2.345 → 2.34.
    HalfDown,
    /// Away from zero: 2.341 → 2.35.
    Up,
    /// Toward zero (truncation): 2.349 → 2.34.
    Down,
    /// Toward positive infinity: 2.341 → 2.35, -2.349 → -2.34.
    Ceiling,
    /// Toward negative infinity: 2.349 → 2.34, -2.341 → -2.35.
    Floor,
}

impl Rounding {
    /// Every mode, in the order the docs list them.
    pub const ALL: [Rounding; 7] = [
        Rounding::HalfEven,
        Rounding::HalfUp,
        Rounding::HalfDown,
        Rounding::Up,
        Rounding::Down,
        Rounding::Ceiling,
        Rounding::Floor,
    ];

    /// The name as written in YAML, rules and scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::HalfEven => "half_even",
            Rounding::HalfUp => "half_up",
            Rounding::HalfDown => "half_down",
            Rounding::Up => "up",
            Rounding::Down => "down",
            Rounding::Ceiling => "ceiling",
            Rounding::Floor => "floor",
        }
    }

    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Rounding> {
        Rounding::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfDown => RoundingStrategy::MidpointTowardZero,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Down => RoundingStrategy::ToZero,
            Rounding::Ceiling => RoundingStrategy::ToPositiveInfinity,
            Rounding::Floor => RoundingStrategy::ToNegativeInfinity,
        }
    }
}

/// `x` rounded to `scale` decimals with `mode`.
pub fn round(x: Decimal, scale: u32, mode: Rounding) -> Decimal {
    x.round_dp_with_strategy(scale, mode.strategy())
}

/// The decimal a string holds: `12`, `-0.5`, `+3.25`, `1e-9`, `1.5E3` (surrounding spaces
/// allowed). `None` for anything else, or for more than 28 significant digits.
pub fn parse_str(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_TEXT {
        return None;
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) || (mantissa.contains('.') && frac.is_empty()) {
        return None;
    }
    if let Some(exp) = exponent {
        let exp_digits = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if exp_digits.is_empty() || exp_digits.len() > 3 || !digits_ok(exp_digits) {
            return None;
        }
        return Decimal::from_scientific(s).ok();
    }
    Decimal::from_str_exact(s).ok()
}

/// The decimal a JSON number holds, by its shortest representation; `Err` with the reason when
/// it carries more significant digits than a double keeps.
pub fn from_f64(f: f64) -> Result<Decimal, String> {
    if !f.is_finite() {
        return Err("must be a finite number".into());
    }
    // `Display` of an f64 is its shortest round-tripping representation, without exponent.
    let text = f.to_string();
    let significant = text.bytes().filter(u8::is_ascii_digit).skip_while(|&b| b == b'0').count();
    // Trailing zeros of an integer are not significant (1e20 is "100000000000000000000").
    let trailing_zeros = if text.contains('.') { 0 } else { text.bytes().rev().take_while(|&b| b == b'0').count() };
    if significant.saturating_sub(trailing_zeros) > MAX_NUMBER_DIGITS as usize {
        return Err(format!(
            "has more than {MAX_NUMBER_DIGITS} significant digits as a JSON number: send it as a string (\"{text}\") to keep every digit"
        ));
    }
    Decimal::from_str(&text).map_err(|_| "is out of the range of a decimal".to_string())
}

/// The decimal a JSON value holds: a decimal string, or a number. `Err` says what is wrong.
pub fn from_json(value: &Value) -> Result<Decimal, String> {
    match value {
        Value::String(s) => parse_str(s).ok_or_else(|| "must be a decimal number (e.g. \"12.50\")".to_string()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Decimal::from(i)),
            None => from_f64(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => Err("must be a decimal number (e.g. \"12.50\")".into()),
    }
}

/// A double for a decimal (for rules, whose numbers are doubles; exact for up to 15
/// significant digits).
pub fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::NAN)
}

/// A decimal as a JSON number when a double holds it exactly (its shortest representation is
/// the same decimal), else as a string. What scripts and rules hand back: a field of kind
/// `decimal` takes either, a `number` field the former.
pub fn to_json_number(d: Decimal) -> Value {
    let f = to_f64(d);
    if f.is_finite() && Decimal::from_str(&f.to_string()).is_ok_and(|back| back == d) {
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            #[expect(clippy::cast_possible_truncation, reason = "whole and within ±2^53")]
            return Value::from(f as i64);
        }
        if let Some(n) = serde_json::Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    Value::String(d.normalize().to_string())
}

/// The shape of a decimal field: what [`Spec::canonical`] enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub precision: u32,
    pub scale: u32,
    pub rounding: Option<Rounding>,
    pub minimum: Option<Decimal>,
    pub maximum: Option<Decimal>,
}

impl Spec {
    /// The canonical string of `value` for this field, or what is wrong with it.
    pub fn canonical(&self, value: &Value) -> Result<String, String> {
        let d = from_json(value)?;
        let rounded = match self.rounding {
            Some(mode) => round(d, self.scale, mode),
            None => {
                let r = d.round_dp(self.scale);
                if r != d {
                    return Err(match self.scale {
                        0 => "must be a whole number (the field has no decimals and no `rounding`)".into(),
                        1 => "has more than 1 decimal place (the field has no `rounding`)".into(),
                        n => format!("has more than {n} decimal places (the field has no `rounding`)"),
                    });
                }
                r
            }
        };
        let mut d = rounded;
        d.rescale(self.scale);
        if d.is_zero() {
            // `-0.00` is `0.00`.
            d.set_sign_positive(true);
        }
        let int_digits = self.precision - self.scale;
        let int_part = d.trunc().abs();
        if !int_part.is_zero() && int_part.to_string().len() > int_digits as usize {
            return Err(match int_digits {
                0 => "must be less than 1 in absolute value".into(),
                n => format!("has more than {n} digits before the decimal point"),
            });
        }
        if d.scale() != self.scale {
            // `rescale` could not reach the scale: beyond 28 significant digits.
            return Err(format!("does not fit {} digits", self.precision));
        }
        if let Some(min) = self.minimum {
            if d < min {
                return Err(format!("must be >= {}", min.normalize()));
            }
        }
        if let Some(max) = self.maximum {
            if d > max {
                return Err(format!("must be <= {}", max.normalize()));
            }
        }
        Ok(d.to_string())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(precision: u32, scale: u32, rounding: Option<Rounding>) -> Spec {
        Spec { precision, scale, rounding, minimum: None, maximum: None }
    }

    #[test]
    fn strings_and_numbers_become_canonical_strings() {
        let money = spec(18, 2, None);
        for (input, out) in [
            (json!("0.1"), "0.10"),
            (json!(0.1), "0.10"),
            (json!(12), "12.00"),
            (json!("-0"), "0.00"),
            (json!("+3.5"), "3.50"),
            (json!(" 1250 "), "1250.00"),
            (json!("1e2"), "100.00"),
            (json!("123456789012.34"), "123456789012.34"),
            (json!(123_456_789_012.34), "123456789012.34"),
            (json!("9999999999999999.99"), "9999999999999999.99"),
        ] {
            assert_eq!(money.canonical(&input).as_deref(), Ok(out), "{input}");
        }
        let fine = spec(28, 9, None);
        assert_eq!(fine.canonical(&json!("1e-9")).as_deref(), Ok("0.000000001"));
        assert_eq!(fine.canonical(&json!("123456789012.123456789")).as_deref(), Ok("123456789012.123456789"));
        assert_eq!(fine.canonical(&json!(1e-9)).as_deref(), Ok("0.000000001"));
    }

    #[test]
    fn too_many_decimals_is_refused_unless_the_field_rounds() {
        let err = spec(18, 2, None).canonical(&json!("12.345")).unwrap_err();
        assert!(err.contains("more than 2 decimal places"), "{err}");
        // Trailing zeros beyond the scale lose nothing.
        assert_eq!(spec(18, 2, None).canonical(&json!("12.3400")).as_deref(), Ok("12.34"));
        let cases = [
            (Rounding::HalfEven, ["2.34", "2.36", "-2.34"]),
            (Rounding::HalfUp, ["2.35", "2.36", "-2.35"]),
            (Rounding::HalfDown, ["2.34", "2.35", "-2.34"]),
            (Rounding::Up, ["2.35", "2.36", "-2.35"]),
            (Rounding::Down, ["2.34", "2.35", "-2.34"]),
            (Rounding::Ceiling, ["2.35", "2.36", "-2.34"]),
            (Rounding::Floor, ["2.34", "2.35", "-2.35"]),
        ];
        for (mode, expected) in cases {
            let s = spec(18, 2, Some(mode));
            let got: Vec<String> =
                ["2.345", "2.355", "-2.345"].iter().map(|v| s.canonical(&json!(v)).unwrap_or_else(|e| e)).collect();
            assert_eq!(got, expected, "{mode:?}");
        }
    }

    #[test]
    fn precision_and_bounds_are_enforced() {
        let err = spec(5, 2, None).canonical(&json!("1000.00")).unwrap_err();
        assert!(err.contains("more than 3 digits before"), "{err}");
        assert_eq!(spec(5, 2, None).canonical(&json!("-999.99")).as_deref(), Ok("-999.99"));
        let bounded = Spec { minimum: Some(Decimal::new(1, 2)), ..spec(18, 2, None) };
        assert_eq!(bounded.canonical(&json!("0")).unwrap_err(), "must be >= 0.01");
        assert_eq!(bounded.canonical(&json!("0.01")).as_deref(), Ok("0.01"));
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let money = spec(18, 2, None);
        for bad in [
            json!("abc"),
            json!(""),
            json!("1."),
            json!(".5"),
            json!("1e"),
            json!("1e9999"),
            json!(true),
            json!(null),
            json!([1]),
        ] {
            assert!(money.canonical(&bad).is_err(), "{bad}");
        }
        let long = "1".repeat(100);
        assert!(money.canonical(&json!(long)).is_err());
        // A double with more digits than it keeps is refused rather than silently changed.
        let err = money.canonical(&json!(12_345_678_901_234_567_f64)).unwrap_err();
        assert!(err.contains("send it as a string"), "{err}");
    }

    #[test]
    fn numbers_back_to_json_are_exact_or_strings() {
        assert_eq!(to_json_number(Decimal::new(3, 1)), json!(0.3));
        assert_eq!(to_json_number(Decimal::new(1200, 2)), json!(12));
        let long = parse_str("123456789012.123456789").unwrap();
        assert_eq!(to_json_number(long), json!("123456789012.123456789"));
        assert_eq!(Rounding::parse("half_even"), Some(Rounding::HalfEven));
        assert_eq!(Rounding::parse("nearest"), None);
    }
}
