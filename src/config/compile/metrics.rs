//! `[[metric]]`: the detection rules per metric glob.

use super::*;

impl Compiler {
    pub(super) fn metric(
        &mut self,
        i: usize,
        m: raw::RawMetric,
        dimensions: &[&str],
    ) -> MetricRule {
        let k = |f: &str| format!("metric[{i}].{f}");
        let d = MetricRule::default_rule();
        if m.pattern.is_none() {
            self.problem(
                &k("match"),
                "missing: a glob over metric names, e.g. \"revenue*\"".into(),
            );
        }
        let pattern = self.glob(&k("match"), m.pattern.as_deref());
        let direction = self.choice(
            &k("direction"),
            m.direction.as_deref(),
            &[
                ("up", Direction::Up),
                ("down", Direction::Down),
                ("both", Direction::Both),
            ],
            d.direction,
        );
        let sensitivity = self
            .float(&k("sensitivity"), m.sensitivity, SENSITIVITY)
            .unwrap_or(d.sensitivity);
        let min_history = self
            .int(&k("min_history"), m.min_history, MIN_HISTORY)
            .and_then(|h| usize::try_from(h).ok());
        let min_abs_change = self
            .float(&k("min_abs_change"), m.min_abs_change, NON_NEGATIVE)
            .unwrap_or(d.min_abs_change);
        let min_rel_change = self
            .float(&k("min_rel_change"), m.min_rel_change, NON_NEGATIVE)
            .unwrap_or(d.min_rel_change);
        let (lower_bound, upper_bound) = match m.bounds {
            Some(b) => {
                let lower = self.float(&k("bounds.lower"), b.lower, FINITE);
                let upper = self.float(&k("bounds.upper"), b.upper, FINITE);
                if let (Some(l), Some(u)) = (lower, upper) {
                    if l > u {
                        self.problem(&k("bounds"), format!("lower ({l}) is above upper ({u})"));
                    }
                }
                (lower, upper)
            }
            None => (None, None),
        };
        let max_pct_change = self.float(&k("max_pct_change"), m.max_pct_change, MAX_PCT_CHANGE);
        let stale_periods = self
            .int(&k("stale_periods"), m.stale_periods, STALE_PERIODS)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(d.stale_periods);
        let missing_periods = self
            .int(&k("missing_periods"), m.missing_periods, MISSING_PERIODS)
            .and_then(|n| usize::try_from(n).ok());
        let scale = self.choice(
            &k("scale"),
            m.scale.as_deref(),
            &[
                ("auto", Scale::Auto),
                ("log", Scale::Log),
                ("linear", Scale::Linear),
            ],
            d.scale,
        );
        let mut disabled = Vec::new();
        if let Some(checks) = m.checks {
            for (j, c) in checks.iter().enumerate() {
                if Check::parse(c).is_none() {
                    let all: Vec<_> = Check::ALL.iter().map(|c| c.as_str()).collect();
                    self.problem(
                        &format!("metric[{i}].checks[{j}]"),
                        format!("unknown check {c:?} (one of {})", all.join(", ")),
                    );
                }
            }
            disabled = Check::ALL
                .into_iter()
                .filter(|c| !checks.iter().any(|x| x == c.as_str()))
                .collect();
        }
        let (rollups, aggregate) = self.rollups(i, m.rollups, m.aggregate.as_deref(), dimensions);
        MetricRule {
            rollups,
            aggregate,
            pattern,
            direction,
            sensitivity,
            min_history,
            min_abs_change,
            min_rel_change,
            lower_bound,
            upper_bound,
            max_pct_change,
            stale_periods,
            missing_periods,
            seasonality: m.seasonality.unwrap_or(d.seasonality),
            scale,
            disabled,
        }
    }

    /// `rollups` and `aggregate` of `[[metric]]` `i`: each entry is
    /// `"total"` or a dimension some source declares; `aggregate` is `sum`
    /// (the default) or `mean`, and only means something with roll-ups.
    fn rollups(
        &mut self,
        i: usize,
        entries: Option<Vec<String>>,
        aggregate: Option<&str>,
        dimensions: &[&str],
    ) -> (Vec<Rollup>, Option<RollupAggregate>) {
        let k = |f: &str| format!("metric[{i}].{f}");
        let aggregate_given = aggregate.is_some();
        let aggregate = aggregate_given.then(|| {
            self.choice(
                &k("aggregate"),
                aggregate,
                &[
                    ("sum", RollupAggregate::Sum),
                    ("mean", RollupAggregate::Mean),
                ],
                RollupAggregate::Sum,
            )
        });
        let mut rollups: Vec<Rollup> = Vec::new();
        for (j, e) in entries.iter().flatten().enumerate() {
            let keep = match e.as_str() {
                "total" => Vec::new(),
                d if dimensions.contains(&d) => vec![d.to_string()],
                d => {
                    let known = if dimensions.is_empty() {
                        "no source declares dimensions".to_string()
                    } else {
                        format!("the sources' dimensions are {}", dimensions.join(", "))
                    };
                    self.problem(
                        &format!("metric[{i}].rollups[{j}]"),
                        format!("{d:?} is neither \"total\" nor a dimension ({known})"),
                    );
                    continue;
                }
            };
            let rollup = Rollup { keep };
            if !rollups.contains(&rollup) {
                rollups.push(rollup);
            }
        }
        if aggregate_given && rollups.is_empty() {
            self.problem(
                &k("aggregate"),
                "only roll-ups aggregate: add rollups = [\"total\"] or remove it".into(),
            );
        }
        (rollups, aggregate)
    }

    /// A roll-up of a metric the report averages (a rate, a latency) must
    /// say how it aggregates: summing conversion rates over regions is no
    /// total.
    pub(super) fn rates_rolled_up(
        &mut self,
        metrics: &[MetricRule],
        report: &crate::config::report::ReportConfig,
    ) {
        for (i, rule) in metrics.iter().enumerate() {
            if rule.rollups.is_empty() || rule.aggregate.is_some() {
                continue;
            }
            let averaged = report.metrics.iter().find(|m| {
                rule.pattern.matches(&m.name)
                    && matches!(m.aggregate, crate::config::report::Aggregate::Mean)
            });
            if let Some(m) = averaged {
                self.problem(
                    &format!("metric[{i}].rollups"),
                    format!(
                        "{:?} is averaged in the report (a rate or a mean): say how its roll-ups \
                         combine, aggregate = \"mean\" or \"sum\"",
                        m.name
                    ),
                );
            }
        }
    }

    /// `[[derived]]`: each a `name` and a `ratio` of two other metrics.
    pub(super) fn derived(&mut self, raw: Vec<raw::RawDerived>) -> Vec<Derived> {
        let mut out: Vec<Derived> = Vec::new();
        for (i, d) in raw.into_iter().enumerate() {
            let k = |f: &str| format!("derived[{i}].{f}");
            let Some(name) = d.name.filter(|n| !n.trim().is_empty()) else {
                self.problem(&k("name"), "missing: the derived metric's name".into());
                continue;
            };
            let parts = d.ratio.unwrap_or_default();
            let [num, den] = parts.as_slice() else {
                self.problem(
                    &k("ratio"),
                    "give two metrics, numerator then denominator: ratio = [\"orders\", \"sessions\"]"
                        .into(),
                );
                continue;
            };
            if num == den || num == &name || den == &name {
                self.problem(
                    &k("ratio"),
                    format!("{name:?} must be a ratio of two other metrics, got {num:?} / {den:?}"),
                );
                continue;
            }
            if out.iter().any(|o| o.name == name) {
                self.problem(&k("name"), format!("duplicate derived metric {name:?}"));
                continue;
            }
            out.push(Derived {
                name,
                num: num.clone(),
                den: den.clone(),
            });
        }
        out
    }
}

/// A derived ratio is a report metric too (`[[report.metric]] ratio` is the
/// same thing said in the report): added unless the report defines it.
pub(super) fn derived_in_report(
    derived: &[Derived],
    report: &mut crate::config::report::ReportConfig,
) {
    for d in derived {
        if !report.metrics.iter().any(|m| m.name == d.name) {
            let mut m = crate::config::report::ReportMetric::plain(&d.name);
            m.aggregate = crate::config::report::Aggregate::Ratio {
                num: d.num.clone(),
                den: d.den.clone(),
            };
            report.metrics.push(m);
        }
    }
}
