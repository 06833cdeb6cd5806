//! Plan targets (`[[plan]]`): a long file (period, metric, dimensions,
//! target) read with Polars, and the target of any window of days.
//!
//! A period is a month (`2025-03`), an ISO week (`2025-W10`) or a date (the
//! week starting that day). A window's target is the targets of the periods it
//! overlaps, pro rata by days: a week in March gets 7/31 of March's target. A
//! window the plan does not cover completely has no target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use super::calendar::{Calendar, day_number};
use crate::config::report::{Aggregate, PlanConfig};

/// Why a plan file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read as a table.
    #[error("plan `{}`: cannot read it: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Polars' message.
        message: String,
    },
    /// A configured column is not in the file.
    #[error("plan `{}`: no column `{column}` (set `{key}` in [[plan]]); columns are {found}", path.display())]
    Column {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The config key naming it.
        key: &'static str,
        /// The file's columns.
        found: String,
    },
    /// A cell that is not what the column needs.
    #[error("plan `{}` row {row}, column `{column}`: {value:?} is not {expected}", path.display())]
    Cell {
        /// The file.
        path: PathBuf,
        /// Data row, 1-based (the header is row 0).
        row: usize,
        /// The column.
        column: String,
        /// What was there.
        value: String,
        /// What would be right.
        expected: &'static str,
    },
}

/// Targets per period, summed over the rows of a metric (or of a slice).
#[derive(Debug, Clone, Default, PartialEq)]
struct Periods(BTreeMap<(i64, i64), (f64, f64)>);

impl Periods {
    fn add(&mut self, span: (i64, i64), target: f64) {
        let e = self.0.entry(span).or_insert((0.0, 0.0));
        e.0 += target;
        e.1 += 1.0;
    }

    /// The target of days `a..b`.
    fn window(&self, a: i64, b: i64, how: &Aggregate) -> Option<f64> {
        if b <= a {
            return None;
        }
        let mut covered = 0i64;
        let mut total = 0.0;
        for (&(s, e), &(sum, n)) in &self.0 {
            let overlap = e.min(b) - s.max(a);
            if overlap <= 0 {
                continue;
            }
            covered += overlap;
            let share = overlap as f64 / (e - s) as f64;
            total += match how {
                // a level or a rate holds for every day of its period
                Aggregate::Mean => sum / n * overlap as f64,
                Aggregate::Last => sum * overlap as f64,
                _ => sum * share,
            };
        }
        (covered == b - a).then(|| match how {
            Aggregate::Mean | Aggregate::Last => total / covered as f64,
            _ => total,
        })
    }
}

/// Every plan's targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    totals: BTreeMap<String, Periods>,
    slices: BTreeMap<(String, String, String), Periods>,
}

impl Plan {
    /// Whether any target exists for `metric`.
    pub fn has(&self, metric: &str) -> bool {
        self.totals.contains_key(metric)
    }

    /// The metric's target for days `a..b` (an aggregate other than a ratio).
    pub fn window(&self, metric: &str, a: i64, b: i64, how: &Aggregate) -> Option<f64> {
        self.totals.get(metric)?.window(a, b, how)
    }

    /// The target of one slice (`dim = value`) of a metric for days `a..b`.
    pub fn slice(
        &self,
        metric: &str,
        dim: &str,
        value: &str,
        a: i64,
        b: i64,
        how: &Aggregate,
    ) -> Option<f64> {
        self.slices
            .get(&(metric.to_string(), dim.to_string(), value.to_string()))?
            .window(a, b, how)
    }
}

/// A period cell → its days.
fn period(s: &str, cal: &Calendar) -> Option<(i64, i64)> {
    let s = s.trim();
    if let Some((y, w)) = super::calendar::parse_iso_week(s) {
        return cal.iso_week(y, w).map(|w| w.days());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let start = day_number(d);
        return Some((start, start + 7));
    }
    let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
    Some(cal.month_of(d).days())
}

fn strings(
    df: &DataFrame,
    path: &Path,
    column: &str,
    key: &'static str,
) -> Result<Vec<Option<String>>, PlanError> {
    let c = df.column(column).map_err(|_| PlanError::Column {
        path: path.to_path_buf(),
        column: column.to_string(),
        key,
        found: df
            .get_column_names()
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let c = c.cast(&DataType::String).map_err(|e| PlanError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let s = c.str().map_err(|e| PlanError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(s.iter().map(|v| v.map(str::to_string)).collect())
}

/// Read one plan file (CSV, or Parquet by extension) into `plan`.
fn read(cfg: &PlanConfig, cal: &Calendar, plan: &mut Plan) -> Result<(), PlanError> {
    let path = cfg.path.as_path();
    let shown = path.display().to_string();
    let err = |e: PolarsError| PlanError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let lf = if parquet {
        LazyFrame::scan_parquet(PlRefPath::new(shown.as_str()), ScanArgsParquet::default())
    } else {
        // every column as text: periods like `2025-03` must not become numbers or dates
        LazyCsvReader::new(PlRefPath::new(shown.as_str()))
            .with_infer_schema_length(Some(0))
            .finish()
    }
    .map_err(err)?;
    let df = lf.collect().map_err(err)?;
    let periods = strings(&df, path, &cfg.period_column, "period_column")?;
    let metrics = strings(&df, path, &cfg.metric_column, "metric_column")?;
    let targets = strings(&df, path, &cfg.value_column, "value_column")?;
    let dims = cfg
        .dimensions
        .iter()
        .map(|d| strings(&df, path, d, "dimensions").map(|v| (d.clone(), v)))
        .collect::<Result<Vec<_>, _>>()?;
    let cell = |row: usize, column: &str, value: &Option<String>, expected| PlanError::Cell {
        path: path.to_path_buf(),
        row: row + 1,
        column: column.to_string(),
        value: value.clone().unwrap_or_default(),
        expected,
    };
    for (i, ((p, m), t)) in periods.iter().zip(&metrics).zip(&targets).enumerate() {
        let span = p.as_deref().and_then(|p| period(p, cal)).ok_or_else(|| {
            cell(
                i,
                &cfg.period_column,
                p,
                "a period: YYYY-MM, YYYY-Www or YYYY-MM-DD",
            )
        })?;
        let metric = m
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| cell(i, &cfg.metric_column, m, "a metric name"))?;
        let target = t
            .as_deref()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .ok_or_else(|| cell(i, &cfg.value_column, t, "a number"))?;
        plan.totals
            .entry(metric.to_string())
            .or_default()
            .add(span, target);
        for (d, vals) in &dims {
            if let Some(Some(v)) = vals.get(i) {
                plan.slices
                    .entry((metric.to_string(), d.clone(), v.clone()))
                    .or_default()
                    .add(span, target);
            }
        }
    }
    Ok(())
}

/// Read every configured plan; a plan that cannot be read is reported and left out.
pub fn load(plans: &[PlanConfig], cal: &Calendar) -> (Plan, Vec<PlanError>) {
    let mut plan = Plan::default();
    let mut errors = Vec::new();
    for p in plans {
        let mut one = Plan::default();
        match read(p, cal, &mut one) {
            Ok(()) => {
                for (k, v) in one.totals {
                    let e = plan.totals.entry(k).or_default();
                    for (span, (s, n)) in v.0 {
                        let x = e.0.entry(span).or_insert((0.0, 0.0));
                        x.0 += s;
                        x.1 += n;
                    }
                }
                for (k, v) in one.slices {
                    let e = plan.slices.entry(k).or_default();
                    for (span, (s, n)) in v.0 {
                        let x = e.0.entry(span).or_insert((0.0, 0.0));
                        x.0 += s;
                        x.1 += n;
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (plan, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_pro_rata_and_only_where_covered() {
        let mut p = Periods::default();
        p.add((0, 31), 310.0); // a 31-day month
        p.add((31, 59), 280.0);
        assert_eq!(p.window(0, 7, &Aggregate::Sum), Some(70.0));
        assert_eq!(p.window(28, 35, &Aggregate::Sum), Some(70.0));
        assert_eq!(p.window(50, 70, &Aggregate::Sum), None);
        assert_eq!(p.window(0, 59, &Aggregate::Sum), Some(590.0));
        let mut r = Periods::default();
        r.add((0, 10), 0.02);
        r.add((10, 20), 0.04);
        assert!((r.window(5, 15, &Aggregate::Mean).unwrap() - 0.03).abs() < 1e-12);
    }

    #[test]
    fn reads_months_and_names_a_bad_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.csv");
        std::fs::write(
            &path,
            "month,metric,region,target\n2025-03,orders,eu,310\n2025-03,orders,us,620\n",
        )
        .unwrap();
        let cfg = PlanConfig {
            path: path.clone(),
            period_column: "month".into(),
            metric_column: "metric".into(),
            value_column: "target".into(),
            dimensions: vec!["region".into()],
        };
        let cal = Calendar {
            week_start: chrono::Weekday::Mon,
            fiscal_year_start: 1,
        };
        let (plan, errors) = load(std::slice::from_ref(&cfg), &cal);
        assert!(errors.is_empty(), "{errors:?}");
        let (a, _) = cal
            .month_of(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap())
            .days();
        assert_eq!(
            plan.window("orders", a, a + 7, &Aggregate::Sum),
            Some(210.0)
        );
        assert_eq!(
            plan.slice("orders", "region", "eu", a, a + 1, &Aggregate::Sum),
            Some(10.0)
        );
        std::fs::write(
            &path,
            "month,metric,region,target\n2025-03,orders,eu,lots\n",
        )
        .unwrap();
        let (_, errors) = load(std::slice::from_ref(&cfg), &cal);
        let msg = errors[0].to_string();
        assert!(
            msg.contains("row 1") && msg.contains("`target`") && msg.contains("\"lots\""),
            "{msg}"
        );
        let bad = PlanConfig {
            period_column: "period".into(),
            ..cfg
        };
        let (_, errors) = load(&[bad], &cal);
        let msg = errors[0].to_string();
        assert!(
            msg.contains("no column `period`") && msg.contains("period_column"),
            "{msg}"
        );
    }
}
