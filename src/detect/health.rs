//! The data-health pass of the kernel: gaps (`missing`), repeated values
//! (`stale`), `max_change` and static `bounds`, checked on the raw values
//! before any model is asked.
//!
//! Its only state is the repeat statistics of recent values
//! ([`Repeats`]); the rest is the rule and the point. Plain owned data, so it
//! can be checkpointed between runs.

use super::counts::{self, Repeats};
use crate::config::MetricRule;
use crate::model::{Check, Granularity, Hit, Side};

/// What the health pass needs to know about the point besides its values.
pub struct HealthContext<'a> {
    /// First timestamp to report on (inclusive).
    pub from: i64,
    /// Last timestamp to report on (inclusive).
    pub to: i64,
    /// The model's last expected value (for the findings' "expected").
    pub last_expected: f64,
    /// The series is past its warm-up: a run of one value is rated against
    /// the values seen so far only from here on (before, every value is new).
    pub warm: bool,
    /// A finding at the point with the common fields filled in.
    pub base_hit: &'a dyn Fn(Check) -> Hit,
}

/// Data-health state of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// How often recent values occur and repeat.
    repeats: Repeats,
    /// Chance below which a run of one value is `stale`.
    stale_alpha: f64,
    /// Absent periods that make a gap (a lost scrape is not one).
    missing_periods: i64,
    /// Spacing of the series.
    step: i64,
    /// Points per day (stale runs of sub-daily data stop being news).
    ppd: usize,
    /// The series' own cadence: how many intervals between two rows had `k`
    /// periods absent (`k` = index, the last one counting `GAP_BUCKETS - 1`
    /// or more). A series whose rows come irregularly (an hourly export that
    /// skips an hour now and then) is missing rows only when a gap is
    /// unusual for it ([`Health::usual_absent`]).
    gaps: Vec<u32>,
}

/// Gap lengths told apart by the cadence (periods absent, 0 to 31 and more).
const GAP_BUCKETS: usize = 32;
/// Intervals seen before the cadence is trusted.
const CADENCE_MIN_INTERVALS: u32 = 100;
/// Intervals per one that may be longer than the usual gap (1 %).
const CADENCE_RARE_IN: u32 = 100;

impl Health {
    /// The health state of a series of granularity `g` under `rule`.
    pub fn new(g: Granularity, rule: &MetricRule) -> Health {
        Health {
            repeats: Repeats::new(),
            stale_alpha: counts::stale_alpha(g.points_per_day()),
            missing_periods: i64::try_from(rule.missing_periods_for(g)).unwrap_or(i64::MAX),
            step: g.step_ms(),
            ppd: g.points_per_day(),
            gaps: vec![0; GAP_BUCKETS],
        }
    }

    /// Periods absent that the series' own cadence makes usual: twice the
    /// gap that no more than 1 % of its intervals exceed (0 for
    /// a series that keeps its grid, or before [`CADENCE_MIN_INTERVALS`]).
    fn usual_absent(&self) -> i64 {
        let total: u32 = self.gaps.iter().sum();
        if total < CADENCE_MIN_INTERVALS {
            return 0;
        }
        let allowed = total / CADENCE_RARE_IN;
        let mut longer = 0u32;
        for k in (0..GAP_BUCKETS).rev() {
            if longer + self.gaps[k] > allowed {
                return 2 * k as i64;
            }
            longer += self.gaps[k];
        }
        0
    }

    /// Learn one interval between two rows, `absent` periods long.
    fn learn_gap(&mut self, absent: i64) {
        let k = usize::try_from(absent.max(0))
            .unwrap_or(0)
            .min(GAP_BUCKETS - 1);
        self.gaps[k] = self.gaps[k].saturating_add(1);
    }

    /// After decoding a checkpoint taken before point `k` of values `ys`: the
    /// repeat window's values from the data (see [`Repeats::refill`]); false
    /// when the data is too short for the window (the state does not fit).
    pub fn restore(&mut self, ys: &[f64], k: usize) -> bool {
        let (window, run) = self.repeats.window_and_run();
        // a stored run longer than the data is not this series' state
        let Some(first) = run.checked_add(window).and_then(|n| k.checked_sub(n)) else {
            return false;
        };
        if k > ys.len() {
            return false;
        }
        self.repeats.refill(&ys[first..k - run]);
        true
    }

    /// Absent periods that make a gap.
    pub fn missing_periods(&self) -> i64 {
        self.missing_periods
    }

    /// Check point `i` of the series (`ts`, `ys`), pushing its findings;
    /// returns how many periods in a row the value has repeated.
    pub fn check(
        &mut self,
        ts: &[i64],
        ys: &[f64],
        i: usize,
        rule: &MetricRule,
        cx: &HealthContext<'_>,
        out: &mut Vec<Hit>,
    ) -> usize {
        let (t, y, step) = (ts[i], ys[i], self.step);
        let in_range = |t: i64| t >= cx.from && t <= cx.to;
        let absent = if i > 0 {
            ((t - ts[i - 1] + step / 2) / step - 1).max(0)
        } else {
            0
        };
        if i > 0 && t - ts[i - 1] > step + step / 2 {
            let first_missing = ts[i - 1] + step;
            self.repeats.break_run();
            if in_range(first_missing)
                && absent >= self.missing_periods
                && absent > self.usual_absent()
                && rule.enabled(Check::Missing)
            {
                out.push(Hit {
                    expected: cx.last_expected,
                    side: Side::Down,
                    note: Some(format!("{} period(s) absent", (t - ts[i - 1]) / step - 1)),
                    ..Hit::blank(first_missing, f64::NAN, Check::Missing, i)
                });
            }
        }
        if i > 0 {
            self.learn_gap(absent);
        }
        // a run of one value, rated against how often that value occurs
        // (detect::counts): small counts and capped values repeat by chance
        let eq_run = self.repeats.push(y);
        if !in_range(t) {
            return eq_run;
        }
        if i > 0 {
            let prev = ys[i - 1];
            let consecutive = t - ts[i - 1] <= step + step / 2;
            // sub-daily: a value stuck for more than a quarter of a day (a
            // gauge pinned at its cap) has been reported for hours; after
            // that it is the new normal
            if eq_run >= rule.stale_periods
                && cx.warm
                && y != 0.0
                && (self.ppd == 1 || eq_run <= self.ppd / 4 + rule.stale_periods)
                && self.repeats.run_chance(y, eq_run) < self.stale_alpha
                && rule.enabled(Check::Stale)
            {
                let e = cx.last_expected;
                let mut h = (cx.base_hit)(Check::Stale);
                h.expected = e;
                h.side = Side::of(!(e.is_finite() && y < e));
                h.note = Some(format!("same value {eq_run} periods in a row"));
                out.push(h);
            }
            if let Some(max) = rule.max_pct_change
                && consecutive
                && prev != 0.0
                && ((y / prev - 1.0) * 100.0).abs() > max
                && rule.enabled(Check::MaxChange)
            {
                let mut h = (cx.base_hit)(Check::MaxChange);
                h.expected = prev;
                h.lower = prev * (1.0 - max / 100.0);
                h.upper = prev * (1.0 + max / 100.0);
                h.side = Side::of(y > prev);
                out.push(h);
            }
        }
        let below = rule.lower_bound.is_some_and(|l| y < l);
        let above = rule.upper_bound.is_some_and(|u| y > u);
        if (below || above) && rule.enabled(Check::Bounds) {
            let mut h = (cx.base_hit)(Check::Bounds);
            h.lower = rule.lower_bound.unwrap_or(f64::NEG_INFINITY);
            h.upper = rule.upper_bound.unwrap_or(f64::INFINITY);
            h.expected = if below { h.lower } else { h.upper };
            h.side = Side::of(above);
            out.push(h);
        }
        eq_run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    /// Run the pass over daily values (`None`: the day is absent).
    fn check(values: &[Option<f64>], rule: &MetricRule) -> Vec<(i64, Check)> {
        let (mut ts, mut ys) = (Vec::new(), Vec::new());
        for (d, v) in values.iter().enumerate() {
            if let Some(v) = v {
                ts.push(d as i64 * DAY);
                ys.push(*v);
            }
        }
        let mut health = Health::new(Granularity::Day, rule);
        let mut out = Vec::new();
        for i in 0..ts.len() {
            let base = |check: Check| Hit::blank(ts[i], ys[i], check, i);
            let cx = HealthContext {
                from: 0,
                to: i64::MAX,
                last_expected: 100.0,
                warm: true,
                base_hit: &base,
            };
            health.check(&ts, &ys, i, rule, &cx, &mut out);
        }
        out.iter().map(|h| (h.ts / DAY, h.check)).collect()
    }

    /// Distinct non-repeating values around 100.
    fn varied(n: usize) -> Vec<Option<f64>> {
        (0..n)
            .map(|d| Some(100.0 + (d * 37 % 101) as f64 * 0.31))
            .collect()
    }

    #[test]
    fn a_gap_is_reported_at_its_first_absent_day() {
        let mut v = varied(40);
        v[20] = None;
        v[21] = None;
        assert_eq!(
            check(&v, &MetricRule::default_rule()),
            vec![(20, Check::Missing)]
        );
    }

    #[test]
    fn a_repeated_measurement_is_stale() {
        let mut v = varied(60);
        for x in &mut v[50..55] {
            *x = Some(123.456);
        }
        let hits = check(&v, &MetricRule::default_rule());
        assert!(!hits.is_empty());
        assert!(
            hits.iter()
                .all(|&(d, c)| c == Check::Stale && (52..55).contains(&d)),
            "{hits:?}"
        );
    }

    #[test]
    fn bounds_and_max_change() {
        let mut v = varied(30);
        v[10] = Some(160.0);
        v[20] = Some(400.0);
        let mut rule = MetricRule::default_rule();
        rule.upper_bound = Some(150.0);
        rule.max_pct_change = Some(200.0);
        assert_eq!(
            check(&v, &rule),
            vec![
                (10, Check::Bounds),
                (20, Check::MaxChange),
                (20, Check::Bounds)
            ]
        );
    }
}
