//! Plain data shared by every stage: series keys, granularity, findings (a
//! [`Hit`] plus its series) and their [`Side`], incidents and their severity
//! order, holidays.
//!
//! Owns no behaviour beyond formatting; `detect` produces [`Hit`]s and
//! [`Finding`]s, the pipeline, store and alert stages consume them.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use lettre::message::Mailbox;

/// Spacing of a series' timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Granularity {
    /// A multiple of one minute (1, 5, 15, 30 …), always below one hour.
    Minutes(u32),
    /// One point per hour.
    Hour,
    /// One point per calendar day.
    Day,
    /// One point per week.
    Week,
}

impl Granularity {
    /// Milliseconds between two consecutive points.
    pub const fn step_ms(self) -> i64 {
        match self {
            Granularity::Minutes(m) => m as i64 * 60_000,
            Granularity::Hour => 3_600_000,
            Granularity::Day => MS_PER_DAY,
            Granularity::Week => 7 * MS_PER_DAY,
        }
    }

    /// Milliseconds from a row's timestamp to the end of its period: a
    /// whole step when the timestamp marks the period's start (the default),
    /// and with `period_end` (a "Week Ending" date) the rest of that day for
    /// days and weeks, nothing for finer periods (an hour stamped at its end).
    pub const fn ends_after(self, period_end: bool) -> i64 {
        match (period_end, self) {
            (false, g) => g.step_ms(),
            (true, Granularity::Day | Granularity::Week) => MS_PER_DAY,
            (true, _) => 0,
        }
    }

    /// Points per day (at least 1, also for weekly data).
    pub const fn points_per_day(self) -> usize {
        match self {
            Granularity::Minutes(m) => (1440 / m) as usize,
            Granularity::Hour => 24,
            Granularity::Day | Granularity::Week => 1,
        }
    }

    /// The granularity whose step is closest to `step_ms`, if any fits.
    pub fn from_step_ms(step_ms: i64) -> Option<Self> {
        const MIN: i64 = 60_000;
        const WEEK: i64 = 7 * MS_PER_DAY;
        match step_ms {
            WEEK => Some(Granularity::Week),
            MS_PER_DAY => Some(Granularity::Day),
            3_600_000 => Some(Granularity::Hour),
            s if s > 0 && s < 3_600_000 && s % MIN == 0 && 1440 % (s / MIN) == 0 => {
                u32::try_from(s / MIN).ok().map(Granularity::Minutes)
            }
            _ => None,
        }
    }

    /// Parse a config value: `minute`, `5min`, `hour`, `day`, `week`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minute" | "1min" => Some(Granularity::Minutes(1)),
            "hour" | "hourly" => Some(Granularity::Hour),
            "day" | "daily" => Some(Granularity::Day),
            "week" | "weekly" => Some(Granularity::Week),
            other => {
                let n = other.strip_suffix("min")?.parse::<u32>().ok()?;
                Granularity::from_step_ms(n as i64 * 60_000)
            }
        }
    }

    /// True when timestamps are whole days (daily or weekly data).
    pub const fn is_dated(self) -> bool {
        matches!(self, Granularity::Day | Granularity::Week)
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granularity::Minutes(1) => f.write_str("minute"),
            Granularity::Minutes(m) => write!(f, "{m}min"),
            Granularity::Hour => f.write_str("hour"),
            Granularity::Day => f.write_str("day"),
            Granularity::Week => f.write_str("week"),
        }
    }
}

/// Which way a finding deviates from what was expected: the side of the
/// normal range it fell on. A config rule's `Direction` says which sides it
/// reports; a finding is always on one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Above the expected value (an increase).
    Up,
    /// Below the expected value (a decrease).
    Down,
}

impl Side {
    /// Both sides.
    pub const ALL: [Side; 2] = [Side::Up, Side::Down];

    /// `Up` for an increase, `Down` otherwise.
    pub const fn of(up: bool) -> Side {
        if up { Side::Up } else { Side::Down }
    }

    /// Lower-case name as written in findings files and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Up => "up",
            Side::Down => "down",
        }
    }

    /// Inverse of [`Side::as_str`].
    pub fn parse(s: &str) -> Option<Side> {
        Side::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The check that produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// Robust deviation from a trailing (non-seasonal) baseline.
    Variance,
    /// Deviation from the seasonal baseline (same weekday / hour of week).
    Seasonal,
    /// Deviation from the same holiday last year.
    Holiday,
    /// Onset of a lasting change of level.
    LevelShift,
    /// A zero where the series is normally well above zero.
    Outage,
    /// Periods absent from the export.
    Missing,
    /// The same value repeated.
    Stale,
    /// The newest timestamp is older than the granularity allows.
    Late,
    /// Outside the metric's static bounds.
    Bounds,
    /// Change against the previous period above the metric's maximum.
    MaxChange,
    /// The export's value of an already flagged period changed (or the period
    /// is gone) since callout flagged it: the owner's explanation may be moot.
    Restated,
}

impl Check {
    /// Every check, in display order.
    pub const ALL: [Check; 11] = [
        Check::Variance,
        Check::Seasonal,
        Check::Holiday,
        Check::LevelShift,
        Check::Outage,
        Check::Missing,
        Check::Stale,
        Check::Late,
        Check::Bounds,
        Check::MaxChange,
        Check::Restated,
    ];

    /// Name as written in findings files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Check::Variance => "variance",
            Check::Seasonal => "seasonal",
            Check::Holiday => "holiday",
            Check::LevelShift => "level_shift",
            Check::Outage => "outage",
            Check::Missing => "missing",
            Check::Stale => "stale",
            Check::Late => "late",
            Check::Bounds => "bounds",
            Check::MaxChange => "max_change",
            Check::Restated => "restated",
        }
    }

    /// Inverse of [`Check::as_str`].
    pub fn parse(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Data-health checks are certain (no p-value) and bypass the FDR step.
    pub const fn is_data_health(self) -> bool {
        matches!(
            self,
            Check::Outage
                | Check::Missing
                | Check::Stale
                | Check::Late
                | Check::Bounds
                | Check::MaxChange
                | Check::Restated
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of incident a finding belongs to. A series has at most one open
/// incident per lane, so a late export never hides a real outlier (and the
/// reverse), and each lane can go to the person who can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// The export did not deliver (`late`, `missing`): the data team's problem.
    Export,
    /// The delivered values look broken (`stale`, `outage`, `bounds`, `max_change`).
    Health,
    /// Statistical outliers (`seasonal`, `variance`, `holiday`, `level_shift`).
    Statistical,
    /// Flagged values that moved in the export afterwards (`restated`): each
    /// run's restatements of a series are one incident of their own, closed at
    /// once, so a restatement is news even when the flagged incident is over.
    Restated,
}

impl Lane {
    /// Every lane.
    pub const ALL: [Lane; 4] = [
        Lane::Export,
        Lane::Health,
        Lane::Statistical,
        Lane::Restated,
    ];

    /// The lane of a check.
    pub const fn of(check: Check) -> Lane {
        match check {
            Check::Late | Check::Missing => Lane::Export,
            Check::Outage | Check::Stale | Check::Bounds | Check::MaxChange => Lane::Health,
            Check::Variance | Check::Seasonal | Check::Holiday | Check::LevelShift => {
                Lane::Statistical
            }
            Check::Restated => Lane::Restated,
        }
    }

    /// Name as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Export => "export",
            Lane::Health => "health",
            Lane::Statistical => "statistical",
            Lane::Restated => "restated",
        }
    }

    /// Inverse of [`Lane::as_str`].
    pub fn parse(s: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// One series' detector state after a run, as the store keeps it
/// (`detect::checkpoint` makes, checks and decodes it): the next run resumes
/// the series from it when nothing it was computed from has changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Version of the state encoding.
    pub version: u32,
    /// Hash of what shapes the walk: rule, calendars, events, granularity, explanations.
    pub fingerprint: u64,
    /// Points walked (the state is the one before point `points`).
    pub points: usize,
    /// Timestamp of the last point walked.
    pub last_ts: i64,
    /// Hash of the first `points` timestamps and values.
    pub prefix_hash: u64,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// Identity of one series: its metric name and dimension values, in the
/// order of the source's key columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Metric name (the `metric` column, or the wide column name).
    pub metric: String,
    /// `(dimension column, value)` pairs, in export order.
    pub dims: Vec<(String, String)>,
}

impl Finding {
    /// A `late` finding (no values: NaN, score 0): the period `timestamp` of
    /// a series, or an export's pseudo-series, did not arrive or could not be
    /// used; `note` says what is known.
    pub fn late(
        source: &str,
        key: SeriesKey,
        granularity: Granularity,
        timestamp: i64,
        history: usize,
        note: String,
    ) -> Finding {
        Finding {
            source: source.to_string(),
            key,
            granularity,
            hit: Hit {
                side: Side::Down,
                note: Some(note),
                ..Hit::blank(timestamp, f64::NAN, Check::Late, history)
            },
        }
    }
}

/// A dimension's value in a roll-up series: summed over (`rollup`).
pub const ROLLUP_ALL: &str = "*";

/// The metric name of the pseudo-series that stands for a whole export in
/// export-problem items (an export that could not be read, or came in
/// empty): its incidents open and close like a late export's.
pub const EXPORT_SERIES: &str = "(export)";

impl SeriesKey {
    /// The pseudo-series of a whole export ([`EXPORT_SERIES`]).
    pub fn export() -> SeriesKey {
        SeriesKey {
            metric: EXPORT_SERIES.to_string(),
            dims: Vec::new(),
        }
    }

    /// True for the pseudo-series of a whole export.
    pub fn is_export(&self) -> bool {
        self.metric == EXPORT_SERIES && self.dims.is_empty()
    }

    /// The series as people read it, the same in every digest, page and
    /// pre-read: `revenue (region=apac)`, or `revenue` without dimensions.
    /// (`Display` is the compact `revenue{region=apac}` of logs and files.)
    /// A roll-up reads `revenue (total)`, or `revenue (region=apac, all
    /// channel)` when it sums over some dimensions only.
    pub fn label(&self) -> String {
        if self.dims.is_empty() {
            self.metric.clone()
        } else {
            format!("{} ({})", self.metric, self.dims_label())
        }
    }

    /// The dimensions part of [`Self::label`]: `region=eu, channel=web`,
    /// `total`, `region=eu, all channel`; empty without dimensions.
    pub fn dims_label(&self) -> String {
        if !self.dims.is_empty() && self.dims.iter().all(|(_, v)| v == ROLLUP_ALL) {
            return "total".to_string();
        }
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|(k, v)| {
                if v == ROLLUP_ALL {
                    format!("all {k}")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        dims.join(", ")
    }

    /// A roll-up: some dimension summed over ([`ROLLUP_ALL`]).
    pub fn is_rollup(&self) -> bool {
        self.dims.iter().any(|(_, v)| v == ROLLUP_ALL)
    }

    /// Whether this series lies under roll-up `total`: the same metric and
    /// dimensions, the total's kept values, and fewer dimensions summed over
    /// (a slice, or a partial roll-up under a total).
    pub fn is_under(&self, total: &SeriesKey) -> bool {
        let summed = |k: &SeriesKey| k.dims.iter().filter(|(_, v)| v == ROLLUP_ALL).count();
        self.metric == total.metric
            && self.dims.len() == total.dims.len()
            && summed(self) < summed(total)
            && self
                .dims
                .iter()
                .zip(&total.dims)
                .all(|((k, v), (tk, tv))| k == tk && (tv == ROLLUP_ALL || v == tv))
    }

    /// Value of a dimension, if the series has it.
    pub fn dim(&self, name: &str) -> Option<&str> {
        self.dims
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for SeriesKey {
    /// `orders{region=eu}`, or `orders` without dimensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.dims.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.dims.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// One outlier or data-health problem at one point of one series: what a
/// check found ([`Hit`]) and the series it found it in.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Name of the source the series came from.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Granularity of the series (for formatting and incident logic).
    pub granularity: Granularity,
    /// What was found at which point.
    pub hit: Hit,
}

/// What a check found at one point of a series, before (or without) the
/// series: the kernel's output for one point, a [`Finding`]'s body.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Wall-clock time of the point, milliseconds since 1970 (source timezone).
    pub ts: i64,
    /// Observed value (NaN for missing / late).
    pub value: f64,
    /// What the model expected.
    pub expected: f64,
    /// Lower end of the normal range.
    pub lower: f64,
    /// Upper end of the normal range.
    pub upper: f64,
    /// Signed deviation in robust noise units (0 for data-health checks).
    pub score: f64,
    /// Probability of a deviation at least this large under the model (0 for data-health checks).
    pub p_value: f64,
    /// The side of the normal range the point fell on.
    pub side: Side,
    /// The check that fired.
    pub check: Check,
    /// Change against the same time one week earlier, in percent.
    pub wow_pct: Option<f64>,
    /// Change against the same weekday 52 weeks (364 days) earlier, in percent.
    pub yoy_pct: Option<f64>,
    /// Periods of history the model had at this point.
    pub history: usize,
    /// Holiday or event that applied to this point, if any.
    pub note: Option<String>,
}

impl Hit {
    /// A finding of `check` at point `history` (`ts`, `value`) with nothing
    /// else known yet: no expectation, band, score or comparisons.
    pub fn blank(ts: i64, value: f64, check: Check, history: usize) -> Hit {
        Hit {
            ts,
            value,
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            score: 0.0,
            p_value: 0.0,
            side: Side::Up,
            check,
            wow_pct: None,
            yoy_pct: None,
            history,
            note: None,
        }
    }

    /// `more` added to the note, after a `; ` when there is one already.
    pub fn add_note(&mut self, more: &str) {
        self.note = Some(match self.note.take() {
            Some(n) => format!("{n}; {more}"),
            None => more.to_string(),
        });
    }
}

/// What a holiday finding's note adds when the December season was judged
/// against its own recent days rather than last year's (`render::why` words
/// it so).
pub const SEASON_OWN: &str = "judged against its own recent days";

/// The heading of a note's lines that name the slices that drove a
/// roll-up's move (one [`Driver`] a line after it).
pub const DRIVERS_HEADING: &str = "what drove it:";

/// One slice that drove a roll-up's move, as its finding's note states it:
/// `region r09: -47% vs expected, explains 100% of the gap`.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    /// The dimension and its value: `region r09`.
    pub slice: String,
    /// The slice's own change against its expected value, in percent.
    pub change_pct: f64,
    /// Its share of the total's gap, in percent (can pass 100).
    pub share_pct: f64,
}

impl Driver {
    /// The line of a note.
    pub fn line(&self) -> String {
        format!(
            "{}: {:+.0}% vs expected, explains {:.0}% of the gap",
            self.slice, self.change_pct, self.share_pct
        )
    }

    /// A note's line back (`None`: not a driver's line).
    pub fn parse(line: &str) -> Option<Driver> {
        let (slice, rest) = line.rsplit_once(": ")?;
        let (change, rest) = rest.split_once("% vs expected, explains ")?;
        let share = rest.strip_suffix("% of the gap")?;
        Some(Driver {
            slice: slice.to_string(),
            change_pct: change.parse().ok()?,
            share_pct: share.parse().ok()?,
        })
    }
}

/// The drivers a finding's note names, in its order (none without them).
pub fn drivers(note: &str) -> Vec<Driver> {
    split_drivers(note).1
}

/// A note (or a `why` ending in one) without its drivers' lines, and the
/// drivers. Notes added after the drivers (`; also flagged: …`) stay in the
/// text.
pub fn split_drivers(text: &str) -> (String, Vec<Driver>) {
    let Some(at) = text.find(&format!("{DRIVERS_HEADING}\n")) else {
        return (text.to_string(), Vec::new());
    };
    let mut head = text[..at].trim_end_matches("; ").to_string();
    let mut drivers = Vec::new();
    let mut lines = text[at + DRIVERS_HEADING.len() + 1..].lines();
    while let Some(line) = lines.next() {
        // a note added after the drivers follows the last one after "; "
        let (line, more) = match line.split_once("; ") {
            Some((l, more)) => (l, Some(more)),
            None => (line, None),
        };
        drivers.extend(Driver::parse(line));
        if let Some(more) = more {
            let rest: Vec<&str> = std::iter::once(more).chain(lines).collect();
            if !head.is_empty() {
                head.push_str("; ");
            }
            head.push_str(&rest.join("\n"));
            break;
        }
    }
    (head, drivers)
}

/// An instant as wall-clock ms in its timezone: how series store their time
/// (the local date and time read as if it were UTC).
pub fn wall_ms<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>) -> i64 {
    t.naive_local().and_utc().timestamp_millis()
}

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days from the common era (0001-01-01, chrono's `num_days_from_ce` day 1)
/// to 1970-01-01.
pub const UNIX_EPOCH_DAY_CE: i64 = 719_163;

/// Midnight of a date as wall-clock ms (the timestamps of daily and weekly data).
pub fn date_ms(d: chrono::NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|x| x.and_utc().timestamp_millis())
        .unwrap_or(0)
}

/// Format a timestamp for output: a date for daily/weekly data, else a datetime.
pub fn format_ts(ms: i64, g: Granularity) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    let naive = dt.naive_utc();
    if g.is_dated() {
        naive.format("%Y-%m-%d").to_string()
    } else {
        naive.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// Why a metric moved, as its owner explains it (the explanation form's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A real change in the business (a launch, a price change, a lost customer).
    BusinessChange,
    /// The data is wrong (a broken pipeline, a double count), not the business.
    DataIssue,
    /// A known one-time event (a promotion, an outage, a holiday not in the calendar).
    KnownEvent,
    /// Normal for this time of year or week; nothing to act on.
    ExpectedSeasonal,
    /// Not known yet; the owner is looking into it.
    UnderInvestigation,
}

impl Cause {
    /// Every cause, in the order the form lists them.
    pub const ALL: [Cause; 5] = [
        Cause::BusinessChange,
        Cause::DataIssue,
        Cause::KnownEvent,
        Cause::ExpectedSeasonal,
        Cause::UnderInvestigation,
    ];

    /// Stable name, as stored and posted by the form (`business_change`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::BusinessChange => "business_change",
            Cause::DataIssue => "data_issue",
            Cause::KnownEvent => "known_event",
            Cause::ExpectedSeasonal => "expected_seasonal",
            Cause::UnderInvestigation => "under_investigation",
        }
    }

    /// What a person reads (`business change`, `expected / seasonal`, …).
    pub const fn label(self) -> &'static str {
        match self {
            Cause::BusinessChange => "business change",
            Cause::DataIssue => "data issue",
            Cause::KnownEvent => "known event",
            Cause::ExpectedSeasonal => "expected / seasonal",
            Cause::UnderInvestigation => "under investigation",
        }
    }

    /// Inverse of [`Cause::as_str`].
    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// For a level shift: does the new level stay, or was it a one-off?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// The new level is the new normal: re-anchor without further alerts.
    NewNormal,
    /// A one-off: the points never feed the baseline.
    OneOff,
}

impl Persistence {
    /// Stable name, as stored and posted by the form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Persistence::NewNormal => "new_normal",
            Persistence::OneOff => "one_off",
        }
    }

    /// Inverse of [`Persistence::as_str`].
    pub fn parse(s: &str) -> Option<Persistence> {
        [Persistence::NewNormal, Persistence::OneOff]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The value callout last knew for a flagged period of a series: the store
/// reads it, the restatement check (`restated`) compares it with the export.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Series time of the flagged period.
    pub ts: i64,
    /// Its newest stored value; NaN when a restatement found the period gone.
    pub value: f64,
    /// An owner explained an incident holding this period: the explanation
    /// was given for the old number.
    pub explained: bool,
}

/// An owner's explanation as detection sees it: which points of which series it
/// covers, and what that means for the baseline. Passed to `detect` as data.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainedSpan {
    /// Source of the series.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// First explained timestamp (wall-clock ms, inclusive).
    pub from_ts: i64,
    /// Last explained timestamp (wall-clock ms, inclusive).
    pub to_ts: i64,
    /// The owner's cause.
    pub cause: Cause,
    /// For level shifts: new normal or one-off.
    pub persistence: Option<Persistence>,
}

impl ExplainedSpan {
    /// True when the explained points must never feed the baseline
    /// (a data issue, a known event, or a one-off).
    pub fn excludes_from_baseline(&self) -> bool {
        matches!(self.cause, Cause::DataIssue | Cause::KnownEvent)
            || self.persistence == Some(Persistence::OneOff)
    }

    /// True when the owner accepted the new level: re-anchor, no further alerts.
    pub fn accepts_new_level(&self) -> bool {
        self.persistence == Some(Persistence::NewNormal)
    }
}

/// An incident with its findings, ready to be announced.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Store id; stable across runs.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Export problem, data-health problem or statistical outlier.
    pub lane: Lane,
    /// Granularity of the series.
    pub granularity: Granularity,
    /// Owner under the current config; `None`: nobody to mail.
    pub owner: Option<Mailbox>,
    /// Timestamp of the first finding.
    pub opened_at_ts: i64,
    /// Timestamp of the newest finding.
    pub last_finding_ts: i64,
    /// Set once the series has been normal long enough.
    pub closed_at_ts: Option<i64>,
    /// One per point and check, by time.
    pub findings: Vec<Finding>,
    /// The most severe finding (the latest among equals): what the email shows.
    pub worst: Finding,
}

impl Incident {
    /// Distinct periods with a finding.
    pub fn periods(&self) -> usize {
        self.findings
            .iter()
            .map(|f| f.hit.ts)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// The finding that stands for an incident everywhere it is shown (digest,
/// explanation page, pre-read): the *worst* — the most severe by
/// [`severity_cmp`], the latest among equals.
pub fn worst_finding(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().max_by(|a, b| {
        severity_cmp(a.hit.check, a.hit.score, b.hit.check, b.hit.score)
            .then(a.hit.ts.cmp(&b.hit.ts))
    })
}

/// Severity rank: data-health problems first, then level shifts, then the rest.
fn rank(check: Check) -> u8 {
    if check.is_data_health() {
        2
    } else if check == Check::LevelShift {
        1
    } else {
        0
    }
}

/// Compare by severity (`Greater`: more severe): data-health checks before
/// statistical ones, then larger |score|.
pub fn severity_cmp(a_check: Check, a_score: f64, b_check: Check, b_score: f64) -> Ordering {
    let abs = |x: f64| if x.is_finite() { x.abs() } else { 0.0 };
    rank(a_check)
        .cmp(&rank(b_check))
        .then(abs(a_score).total_cmp(&abs(b_score)))
}

/// Order incidents most severe first (ties: metric, dimensions, id).
pub fn sort_by_severity(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        severity_cmp(
            b.worst.hit.check,
            b.worst.hit.score,
            a.worst.hit.check,
            a.worst.hit.score,
        )
        .then_with(|| a.key.cmp(&b.key))
        .then(a.id.cmp(&b.id))
    });
}

/// A holiday: one of the built-in recurring ones a calendar names, or a date
/// a calendar lists. Config names are parsed into it once, when the config is
/// compiled ([`Holiday::builtin`]); the kernel pairs a holiday with the same
/// holiday last year by this value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holiday {
    /// 1 January.
    NewYear,
    /// Two days before Easter Sunday.
    GoodFriday,
    /// Easter Sunday.
    Easter,
    /// The day after Easter Sunday.
    EasterMonday,
    /// Last Monday of May (US).
    MemorialDay,
    /// 4 July (US).
    IndependenceDay,
    /// First Monday of September (US).
    LaborDay,
    /// Fourth Thursday of November (US).
    Thanksgiving,
    /// The day after Thanksgiving.
    BlackFriday,
    /// The Saturday and Sunday after Thanksgiving.
    ThanksgivingWeekend,
    /// The Monday after Thanksgiving.
    CyberMonday,
    /// December before Christmas Eve, after Cyber Monday: shoppers' season.
    HolidaySeason,
    /// 24 December.
    ChristmasEve,
    /// 25 December.
    Christmas,
    /// 26 to 31 December.
    YearEnd,
    /// A date listed in a calendar's `dates` (not a name config accepts).
    CalendarDate,
}

impl Holiday {
    /// Every built-in holiday, in the order calendars try them.
    pub const BUILTIN: [Holiday; 15] = [
        Holiday::NewYear,
        Holiday::GoodFriday,
        Holiday::Easter,
        Holiday::EasterMonday,
        Holiday::MemorialDay,
        Holiday::IndependenceDay,
        Holiday::LaborDay,
        Holiday::Thanksgiving,
        Holiday::BlackFriday,
        Holiday::ThanksgivingWeekend,
        Holiday::CyberMonday,
        Holiday::HolidaySeason,
        Holiday::ChristmasEve,
        Holiday::Christmas,
        Holiday::YearEnd,
    ];

    /// The holidays of the built-in `default` calendar: widely observed retail
    /// events whose effect is large enough to trip a weekly baseline.
    pub const DEFAULT: [Holiday; 12] = [
        Holiday::NewYear,
        Holiday::GoodFriday,
        Holiday::Easter,
        Holiday::EasterMonday,
        Holiday::Thanksgiving,
        Holiday::BlackFriday,
        Holiday::ThanksgivingWeekend,
        Holiday::CyberMonday,
        Holiday::HolidaySeason,
        Holiday::ChristmasEve,
        Holiday::Christmas,
        Holiday::YearEnd,
    ];

    /// The built-in holiday config calls `name` (`"black_friday"`), if any.
    pub fn builtin(name: &str) -> Option<Holiday> {
        Holiday::BUILTIN.into_iter().find(|h| h.as_str() == name)
    }

    /// The holiday whose [`Holiday::as_str`] is `name`, a listed date included.
    pub fn from_name(name: &str) -> Option<Holiday> {
        Holiday::builtin(name)
            .or((name == Holiday::CalendarDate.as_str()).then_some(Holiday::CalendarDate))
    }

    /// The name config uses (`"black_friday"`); `"calendar date"` for a listed date.
    pub const fn as_str(self) -> &'static str {
        match self {
            Holiday::NewYear => "new_year",
            Holiday::GoodFriday => "good_friday",
            Holiday::Easter => "easter",
            Holiday::EasterMonday => "easter_monday",
            Holiday::MemorialDay => "memorial_day",
            Holiday::IndependenceDay => "independence_day",
            Holiday::LaborDay => "labor_day",
            Holiday::Thanksgiving => "thanksgiving",
            Holiday::BlackFriday => "black_friday",
            Holiday::ThanksgivingWeekend => "thanksgiving_weekend",
            Holiday::CyberMonday => "cyber_monday",
            Holiday::HolidaySeason => "holiday_season",
            Holiday::ChristmasEve => "christmas_eve",
            Holiday::Christmas => "christmas",
            Holiday::YearEnd => "year_end",
            Holiday::CalendarDate => "calendar date",
        }
    }

    /// The name in words, as a finding's note gives it (`"black friday"`).
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quoted name, as the names were printed before they were an enum: the
/// Debug forms of calendars and config are part of every checkpoint's
/// fingerprint (`detect::checkpoint`), so stored states stay usable.
impl fmt::Debug for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One series that was evaluated, for incident bookkeeping: `detect` fills it,
/// `alert` closes incidents of series that were evaluated without a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Newest timestamp evaluated.
    pub last_ts: i64,
    /// Milliseconds between points.
    pub step_ms: i64,
    /// Points evaluated in range.
    pub points: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_reads_total_or_names_what_it_sums_over() {
        let key = |dims: &[(&str, &str)]| SeriesKey {
            metric: "revenue".into(),
            dims: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(key(&[]).label(), "revenue");
        assert_eq!(key(&[("region", "eu")]).label(), "revenue (region=eu)");
        assert_eq!(
            key(&[("region", "*"), ("channel", "*")]).label(),
            "revenue (total)"
        );
        assert_eq!(
            key(&[("region", "eu"), ("channel", "*")]).label(),
            "revenue (region=eu, all channel)"
        );
        assert_eq!(key(&[("region", "*")]).dims_label(), "total");
        assert_eq!(key(&[]).dims_label(), "");
    }

    /// Sides read back from the strings findings files and the store hold.
    #[test]
    fn sides_print_and_parse_as_stored() {
        for (side, text) in [(Side::Up, "up"), (Side::Down, "down")] {
            assert_eq!(side.as_str(), text);
            assert_eq!(side.to_string(), text);
            assert_eq!(Side::parse(text), Some(side));
        }
        assert_eq!(Side::parse("both"), None);
        assert_eq!(Side::of(true), Side::Up);
        assert_eq!(Side::of(false), Side::Down);
    }
}
