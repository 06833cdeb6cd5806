//! Numbers for people and files, below every layer: one formatter, so a
//! digest, a page, the pre-read and a findings file never disagree on how a
//! number reads (thousands separators, significant digits for small values,
//! never a non-zero shown as 0, the metric's unit), and one way to write a
//! percentage, a deviation and a moment for people. Pipeline, report, web and
//! render all call it here; it imports nothing from them.

use chrono::DateTime;
use chrono_tz::Tz;

/// A number for people: thousands separators, few decimals, `n/a` for NaN.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let a = x.abs();
    let s = if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else if a >= 1e-6 {
        // three significant digits: a small non-zero never reads as 0
        let places = zeros_after_point(a) + 3;
        format!("{x:.places$}")
    } else {
        return scientific(x, 3);
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    // a value that rounds to zero is shown without a sign
    if s == "-0" {
        return "0".into();
    }
    group_thousands(&s)
}

/// Thousands separators in a formatted number: `-1234567.5` → `-1,234,567.5`.
pub fn group_thousands(s: &str) -> String {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A formatted number with the metric's unit (`[[report.metric]] unit`):
/// currency symbols before it (`£41,104`, `-£5`), any other unit after it
/// (`12 ms`); no unit: the number alone. The one rule for every digest,
/// page, chart axis, plan line and pre-read.
pub fn with_unit(body: String, unit: &str) -> String {
    if unit.is_empty() || body == "n/a" {
        body
    } else if ["£", "$", "€", "¥"].contains(&unit) {
        match body.strip_prefix('-') {
            Some(b) => format!("-{unit}{b}"),
            None => format!("{unit}{body}"),
        }
    } else {
        format!("{body} {unit}")
    }
}

/// [`num`] with the metric's unit ([`with_unit`]).
pub fn amount(x: f64, unit: &str) -> String {
    with_unit(num(x), unit)
}

/// Zeros between the decimal point and the first significant digit of `a`
/// in (0, 1): 0 for 0.5, 3 for 0.00012 (at most 12).
pub fn zeros_after_point(a: f64) -> usize {
    let mut zeros = 0;
    let mut v = a.abs();
    while v < 0.1 && v > 0.0 && zeros < 12 {
        v *= 10.0;
        zeros += 1;
    }
    zeros
}

/// `x` in scientific notation with `digits` significant digits, trailing
/// zeros of the mantissa cut: `1.2e-300`, `-3e-7`.
pub fn scientific(x: f64, digits: usize) -> String {
    let s = format!("{x:.*e}", digits.saturating_sub(1));
    match s.split_once('e') {
        Some((m, e)) if m.contains('.') => {
            format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// Deviation of `actual` from `expected`, in percent of expected.
pub fn deviation(actual: f64, expected: f64) -> Option<f64> {
    let d = (actual - expected) / expected.abs() * 100.0;
    (d.is_finite() && expected != 0.0).then_some(d)
}

/// `Wed 2 Dec 10:00`.
pub fn short_time(t: &DateTime<Tz>) -> String {
    t.format("%a %-d %b %H:%M").to_string()
}

/// A signed percentage with one decimal, or `n/a`.
pub fn pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:+.1}%"),
        _ => "n/a".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        let cases = [
            (1234567.8, "1,234,568"),
            (-1500.0, "-1,500"),
            (580.0, "580"),
            (12.25, "12.2"),
            (1.5, "1.5"),
            (0.01234, "0.0123"),
            (0.0, "0"),
            (f64::NAN, "n/a"),
            // tiny values keep their significant digits, never "0"
            (1.2e-4, "0.00012"),
            (0.000_123_456, "0.000123"),
            (-4.56e-5, "-0.0000456"),
            (1e-300, "1e-300"),
            (-1.23456e-9, "-1.23e-9"),
        ];
        for (x, want) in cases {
            assert_eq!(num(x), want, "num({x})");
        }
        assert_eq!(pct(Some(-42.0)), "-42.0%");
        assert_eq!(pct(Some(3.04)), "+3.0%");
        assert_eq!(pct(None), "n/a");
    }
}
