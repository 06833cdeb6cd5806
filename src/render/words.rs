//! A finding and an incident in words: why it is an outlier, its series and
//! period, its numbers, whom a message greets. Every message (digest,
//! reminder, escalation) and the explanation page say these the same way.
//!
//! Must not: format numbers itself (that is [`crate::fmt`]) or carry markup.

use lettre::message::Mailbox;

use crate::fmt::{amount, num, pct, with_unit};
use crate::model::{Check, Finding, Granularity, Incident, Side, format_ts};

/// `1 outlier`, `3 outliers`.
pub fn count_outliers(n: usize) -> String {
    if n == 1 {
        "1 outlier".to_string()
    } else {
        format!("{n} outliers")
    }
}

/// Deviation of a finding's actual from its expected value, in percent of expected.
pub fn deviation_pct(f: &Finding) -> Option<f64> {
    crate::fmt::deviation(f.hit.value, f.hit.expected)
}

/// `6 weeks of history`, `20 days of history`.
fn history_words(f: &Finding) -> String {
    let h = f.hit.history;
    let per_day = f.granularity.points_per_day();
    let (n, unit) = match f.granularity {
        Granularity::Week => (h, "week"),
        Granularity::Day if h >= 14 => (h / 7, "week"),
        Granularity::Day => (h, "day"),
        _ if h >= per_day * 14 => (h / (per_day * 7), "week"),
        _ if h >= per_day => (h / per_day, "day"),
        Granularity::Hour => (h, "hour"),
        Granularity::Minutes(_) => (h, "period"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s} of history")
}

/// The level the seasonal check compares with, in words.
fn seasonal_baseline(g: Granularity) -> &'static str {
    match g {
        Granularity::Day => "the same weekday's usual level",
        Granularity::Week => "the usual weekly level",
        Granularity::Hour | Granularity::Minutes(_) => "the usual level for this hour of the week",
    }
}

/// One line saying why a finding is an outlier, in words.
pub fn why(f: &Finding) -> String {
    let side = match f.hit.side {
        Side::Down => "below",
        Side::Up => "above",
    };
    let amount = match deviation_pct(f) {
        Some(d) => format!("{:.0}% {side}", d.abs()),
        None => side.to_string(),
    };
    let mut line = match f.hit.check {
        Check::Seasonal => format!(
            "{amount} {}; {}",
            seasonal_baseline(f.granularity),
            history_words(f)
        ),
        Check::Variance => format!("{amount} its recent usual level; {}", history_words(f)),
        Check::Holiday
            if f.hit
                .note
                .as_deref()
                .is_some_and(|n| n.contains(crate::model::SEASON_OWN)) =>
        {
            format!("{amount} the season's recent days; {}", history_words(f))
        }
        Check::Holiday => format!("{amount} the same holiday last year; {}", history_words(f)),
        Check::LevelShift => format!(
            "moved to a new level {amount} the previous one and stayed there; {}",
            history_words(f)
        ),
        Check::Outage => format!(
            "dropped to zero where it is usually around {}",
            num(f.hit.expected)
        ),
        Check::Missing => "no data arrived for this period".to_string(),
        Check::Stale => format!(
            "the same value ({}) repeated period after period",
            num(f.hit.value)
        ),
        // the note (the loader's error) follows
        Check::Late if f.key.is_export() => "the export could not be used".to_string(),
        Check::Late => "the newest data is overdue: the export has not been updated".to_string(),
        Check::Bounds => match (f.hit.value < f.hit.lower, f.hit.value > f.hit.upper) {
            (true, _) => format!(
                "{} is below the allowed minimum {}",
                num(f.hit.value),
                num(f.hit.lower)
            ),
            (_, true) => format!(
                "{} is above the allowed maximum {}",
                num(f.hit.value),
                num(f.hit.upper)
            ),
            _ => format!("{} is outside the allowed range", num(f.hit.value)),
        },
        Check::MaxChange => format!(
            "changed {} against the previous period, more than the metric allows",
            pct(deviation_pct(f))
        ),
        Check::Restated => {
            let (old, new) = restated_pair(f);
            format!(
                "value for {} restated from {old} to {new} after it was flagged",
                format_ts(f.hit.ts, f.granularity),
            )
        }
    };
    if let Some(note) = f.hit.note.as_deref().filter(|n| !n.is_empty()) {
        line.push_str("; ");
        // (the season's own reference is already said above)
        line.push_str(&note.replace(&format!(", {}", crate::model::SEASON_OWN), ""));
    }
    line
}

/// `revenue (region=eu, channel=web)`, or `revenue`.
pub(super) fn series_label(i: &Incident) -> String {
    i.key.label()
}

/// `2020-11-29`, or `2020-11-27 to 2020-11-29 (3 periods flagged; figures
/// of the worst, 2020-11-28)`: an incident is shown by its worst finding
/// everywhere (digest, page, pre-read), with its span.
pub(super) fn period_label(i: &Incident) -> String {
    let g = i.granularity;
    let n = i.periods();
    if n <= 1 || i.opened_at_ts == i.last_finding_ts {
        format_ts(i.last_finding_ts, g)
    } else {
        format!(
            "{} to {} ({n} periods flagged; figures of the worst, {})",
            format_ts(i.opened_at_ts, g),
            format_ts(i.last_finding_ts, g),
            format_ts(i.worst.hit.ts, g)
        )
    }
}

/// A restatement's old and new value in words: rounded like every number,
/// unless rounding would make them look equal; a gone period says so.
fn restated_pair(f: &Finding) -> (String, String) {
    let (old, new) = (num(f.hit.expected), num(f.hit.value));
    if f.hit.value.is_nan() {
        (
            old,
            "nothing (the period is gone from the export)".to_string(),
        )
    } else if old == new {
        (f.hit.expected.to_string(), f.hit.value.to_string())
    } else {
        (old, new)
    }
}

/// The numbers line: `580 vs expected 1,000 (normal range 900 to 1,100), -42.0%`;
/// for a restatement `now 450, was 580 when flagged, -22.4%`.
pub(super) fn numbers_label(f: &Finding, unit: &str) -> String {
    if f.hit.check == Check::Restated {
        let (old, new) = restated_pair(f);
        return format!(
            "now {}, was {} when flagged, {}",
            with_unit(new, unit),
            with_unit(old, unit),
            pct(deviation_pct(f))
        );
    }
    format!(
        "{} vs expected {} (normal range {} to {}), {}",
        amount(f.hit.value, unit),
        amount(f.hit.expected, unit),
        amount(f.hit.lower, unit),
        amount(f.hit.upper, unit),
        pct(deviation_pct(f))
    )
}

/// The owner's name, or their address when the mailbox has none.
pub(super) fn greeting_name(owner: &Mailbox) -> String {
    owner
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| owner.email.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::finding;

    #[test]
    fn why_in_words() {
        let cases = [
            (
                finding("revenue", &[], Check::Seasonal, -5.0),
                "42% below the same weekday's usual level; 6 weeks of history",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Holiday, -5.0);
                    f.hit.note = Some("Christmas".into());
                    f.hit.history = 10;
                    f
                },
                "42% below the same holiday last year; 10 days of history; Christmas",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Missing, 0.0);
                    f.hit.value = f64::NAN;
                    f
                },
                "no data arrived for this period",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Bounds, 0.0);
                    f.hit.value = -3.0;
                    f.hit.lower = 0.0;
                    f
                },
                "-3 is below the allowed minimum 0",
            ),
            (
                {
                    let mut f = finding("visits", &[], Check::Seasonal, 6.0);
                    f.granularity = Granularity::Hour;
                    f.hit.side = Side::Up;
                    f.hit.value = 1500.0;
                    f.hit.history = 24 * 7 * 3 + 5;
                    f
                },
                "50% above the usual level for this hour of the week; 3 weeks of history",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(why(&f), want, "{:?}", f.hit.check);
        }
    }
}
