//! Line charts of a series as inline SVG, for the explanation page, and the
//! pre-read's 6-12 comparison chart ([`comparison_svg`]); both also as PNG for email.
//!
//! Pure: points in, markup out. Built with maud, so every text (labels, the
//! metric name in the title) is escaped. The chart scales to its container
//! (viewBox, width 100%), which makes it readable on a phone, and needs no
//! JavaScript. Drawn: the series as a line, the normal range callout computed
//! at flagged points as a shaded band with the expected value as a dash, and
//! the flagged points as red dots.

use maud::{Markup, html};

use super::raster::{Canvas, Rgb};

/// The normal range at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Series time (ms).
    pub ts: i64,
    /// Lower end of the normal range.
    pub lower: f64,
    /// Upper end of the normal range.
    pub upper: f64,
    /// Expected value.
    pub expected: f64,
}

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    /// Accessible name, e.g. "orders, last 6 weeks".
    pub title: &'a str,
    /// The series: (series time ms, value), ascending.
    pub points: &'a [(i64, f64)],
    /// Normal ranges to shade.
    pub band: &'a [Band],
    /// Flagged points: (series time ms, value).
    pub marks: &'a [(i64, f64)],
    /// chrono format of the time axis labels, e.g. `"%d %b"`.
    pub x_format: &'a str,
    /// The metric's unit on the value axis and in tooltips (`£`, `ms`; "" none).
    pub unit: &'a str,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// A step of 1, 2 or 5 times a power of ten, about `range / 4`.
fn nice_step(range: f64) -> f64 {
    let raw = (range / 4.0).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_time(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc().format(format).to_string())
        .unwrap_or_default()
}

/// A value axis: the range rounded out to whole ticks of a nice step.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// The axis over `y0..=y1` (already widened when empty).
    fn over(y0: f64, y1: f64) -> Axis {
        let step = nice_step(y1 - y0);
        Axis {
            lo: (y0 / step).floor() * step,
            hi: (y1 / step).ceil() * step,
            step,
        }
    }

    /// Where `v` lands in a plot `top`..`top + height`.
    fn y(&self, top: f64, height: f64, v: f64) -> f64 {
        top + (self.hi - v) / (self.hi - self.lo) * height
    }

    /// The value gridlines: a handful, `(hi - lo) / step` is small by construction.
    fn ticks(&self) -> Vec<f64> {
        #[allow(clippy::cast_possible_truncation, reason = "a small tick count")]
        let n = ((self.hi - self.lo) / self.step).round().clamp(0.0, 100.0) as i64;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }
}

/// The smallest and largest finite value, `None` when there is none.
pub(crate) fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    lo.is_finite().then_some((lo, hi))
}

/// Where a chart's values land: the value and time ranges, rounded to
/// ticks, mapped onto a plot rectangle. Shared by the SVG and the PNG, so
/// both draw the same picture.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Value axis.
    axis: Axis,
    /// Time range (ms).
    t0: i64,
    t1: i64,
    /// Plot rectangle: left, top, width, height.
    rect: (f64, f64, f64, f64),
}

impl Frame {
    /// The frame of `c` in `rect`; `None` when there is nothing to draw.
    fn of(c: &Chart<'_>, rect: (f64, f64, f64, f64)) -> Option<Frame> {
        let ys = c
            .points
            .iter()
            .map(|p| p.1)
            .chain(c.marks.iter().map(|m| m.1))
            .chain(c.band.iter().flat_map(|b| [b.lower, b.upper]));
        let (mut y0, mut y1) = extent(ys)?;
        let ts = c
            .points
            .iter()
            .map(|p| p.0)
            .chain(c.marks.iter().map(|m| m.0))
            .chain(c.band.iter().map(|b| b.ts));
        let (t0, t1) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        if c.points.is_empty() || t0 > t1 {
            return None;
        }
        if y1 - y0 < 1e-9 {
            y0 -= 1.0;
            y1 += 1.0;
        }
        Some(Frame {
            axis: Axis::over(y0, y1),
            t0,
            t1,
            rect,
        })
    }

    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        self.rect.0 + (t - self.t0) as f64 / span * self.rect.2
    }

    fn y(&self, v: f64) -> f64 {
        self.axis.y(self.rect.1, self.rect.3, v)
    }

    fn ticks(&self) -> Vec<f64> {
        self.axis.ticks()
    }

    /// Width of one band cell: one period of the series, at least `min` px.
    fn cell(&self, c: &Chart<'_>, min: f64) -> f64 {
        (self.rect.2 / c.points.len().max(1) as f64).max(min)
    }
}

/// The chart as an `<svg>` element; an empty series gives a short note instead.
pub fn svg(c: &Chart<'_>) -> Markup {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let Some(fr) = Frame::of(c, (LEFT, TOP, pw, ph)) else {
        return html! { p.nochart { "No data to chart for " (c.title) "." } };
    };
    let (t0, t1) = (fr.t0, fr.t1);
    let x = |t: i64| fr.x(t);
    let y = |v: f64| fr.y(v);
    let line: String = c
        .points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let cell = fr.cell(c, 4.0);
    let ticks = fr.ticks();
    let xticks: Vec<i64> = (0..5).map(|i| t0 + (t1 - t0) * i / 4).collect();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H)}
            role="img" aria-label=(c.title) preserveAspectRatio="xMidYMid meet" {
            title { (c.title) }
            @for v in &ticks {
                line.grid x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(*v))) y2=(format!("{:.1}", y(*v))) {}
                text.ylabel x=(LEFT - 6.0) y=(format!("{:.1}", y(*v) + 4.0)) text-anchor="end" { (crate::fmt::amount(*v, c.unit)) }
            }
            @for (i, t) in xticks.iter().enumerate() {
                // the last label ends at the plot's right edge instead of running off it
                text.xlabel x=(format!("{:.1}", x(*t))) y=(H - 8.0)
                    text-anchor=(if i + 1 == xticks.len() { "end" } else { "middle" }) { (fmt_time(*t, c.x_format)) }
            }
            @for b in c.band.iter().filter(|b| b.lower.is_finite() && b.upper.is_finite()) {
                rect.band x=(format!("{:.1}", x(b.ts) - cell / 2.0)) y=(format!("{:.1}", y(b.upper)))
                    width=(format!("{:.1}", cell)) height=(format!("{:.1}", (y(b.lower) - y(b.upper)).max(1.0))) {
                    title { "normal range " (crate::fmt::amount(b.lower, c.unit)) " to " (crate::fmt::amount(b.upper, c.unit)) }
                }
                @if b.expected.is_finite() {
                    line.expected x1=(format!("{:.1}", x(b.ts) - cell / 2.0)) x2=(format!("{:.1}", x(b.ts) + cell / 2.0))
                        y1=(format!("{:.1}", y(b.expected))) y2=(format!("{:.1}", y(b.expected))) {}
                }
            }
            polyline.series points=(line) {}
            @for &(t, v) in c.marks.iter().filter(|m| m.1.is_finite()) {
                circle.mark cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="4.5" {
                    title { (fmt_time(t, "%Y-%m-%d %H:%M")) ": " (crate::fmt::amount(v, c.unit)) }
                }
            }
        }
    }
}

/// Size of a chart image in email, in CSS pixels.
pub const PNG_SIZE: (usize, usize) = (560, 150);
/// Image pixels per CSS pixel: sharp on high-density screens.
const PNG_SCALE: usize = 2;

const SERIES_RGB: Rgb = [0x2f, 0x5f, 0xb3];
const MARK_RGB: Rgb = [0xd6, 0x33, 0x6c];
const BAND_RGB: Rgb = [0x2f, 0x9e, 0x44];
const EXPECTED_RGB: Rgb = [0x1b, 0x5e, 0x20];
const GRID_RGB: Rgb = [0xe3, 0xe3, 0xe3];
const WHITE: Rgb = [0xff, 0xff, 0xff];

/// The frame of the email image: a small margin, and room for half a band
/// cell beside the first and last points.
fn png_frame(c: &Chart<'_>) -> Option<Frame> {
    let k = PNG_SCALE as f64;
    let (w, h) = (
        (PNG_SIZE.0 * PNG_SCALE) as f64,
        (PNG_SIZE.1 * PNG_SCALE) as f64,
    );
    let pad = 6.0 * k;
    let half_cell = ((w - 2.0 * pad) / c.points.len().max(1) as f64 / 2.0).min(20.0 * k);
    let side = pad + half_cell;
    Frame::of(c, (side, pad, w - 2.0 * side, h - 2.0 * pad))
}

/// The chart drawn for email: the same frame, band, line and marks as
/// [`svg`] without text (the digest prints the numbers and the range next
/// to it). `None` when there is nothing to draw.
fn raster(c: &Chart<'_>) -> Option<Canvas> {
    let k = PNG_SCALE as f64;
    let fr = png_frame(c)?;
    let rect = fr.rect;
    let (w, h) = (PNG_SIZE.0 * PNG_SCALE, PNG_SIZE.1 * PNG_SCALE);
    let mut cv = Canvas::new(w, h, WHITE);
    for v in fr.ticks() {
        let y = fr.y(v);
        cv.line((rect.0, y), (rect.0 + rect.2, y), k, GRID_RGB);
    }
    let cell = fr.cell(c, 4.0 * k);
    for b in c
        .band
        .iter()
        .filter(|b| b.lower.is_finite() && b.upper.is_finite())
    {
        let x = fr.x(b.ts);
        let (top, bottom) = (fr.y(b.upper), fr.y(b.lower));
        cv.fill_rect(
            (x - cell / 2.0, top),
            (x + cell / 2.0, bottom.max(top + k)),
            BAND_RGB,
            0.3,
        );
        if b.expected.is_finite() {
            let ye = fr.y(b.expected);
            cv.line(
                (x - cell / 2.0, ye),
                (x + cell / 2.0, ye),
                1.5 * k,
                EXPECTED_RGB,
            );
        }
    }
    let line: Vec<(f64, f64)> = c
        .points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(t, v)| (fr.x(t), fr.y(v)))
        .collect();
    cv.polyline(&line, 1.5 * k, SERIES_RGB);
    for &(t, v) in c.marks.iter().filter(|m| m.1.is_finite()) {
        let p = (fr.x(t), fr.y(v));
        // a white ring keeps the dot apart from the line in greyscale
        cv.dot(p, 6.0 * k, WHITE);
        cv.dot(p, 4.5 * k, MARK_RGB);
    }
    Some(cv)
}

/// The normal ranges and flagged points of an incident's findings, as a
/// chart draws them.
pub fn bands_and_marks(findings: &[crate::model::Finding]) -> (Vec<Band>, Vec<(i64, f64)>) {
    let band = findings
        .iter()
        .map(|f| Band {
            ts: f.hit.ts,
            lower: f.hit.lower,
            upper: f.hit.upper,
            expected: f.hit.expected,
        })
        .collect();
    let marks = findings.iter().map(|f| (f.hit.ts, f.hit.value)).collect();
    (band, marks)
}

/// The chart as a PNG image of [`PNG_SIZE`] (at twice the pixels), for
/// email; `None` when there is nothing to draw.
pub fn png(c: &Chart<'_>) -> Option<Vec<u8>> {
    raster(c).map(|cv| cv.png())
}

/// The lowest and highest value drawn (series and flagged points), for a
/// caption next to an image.
pub fn value_range(c: &Chart<'_>) -> Option<(f64, f64)> {
    extent(c.points.iter().chain(c.marks).map(|p| p.1))
}

/// How a line of a comparison chart is stroked: solid, dashed and dotted
/// stay apart in greyscale print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// This year.
    Solid,
    /// Last year.
    Dashed,
    /// The plan.
    Dotted,
}

impl Stroke {
    /// Dash and gap lengths in CSS pixels; `None`: solid.
    const fn dashes(self) -> Option<(f64, f64)> {
        match self {
            Stroke::Solid => None,
            Stroke::Dashed => Some((6.0, 4.0)),
            Stroke::Dotted => Some((1.5, 3.5)),
        }
    }

    const fn rgb(self) -> Rgb {
        match self {
            Stroke::Solid => SERIES_RGB,
            Stroke::Dashed => LAST_YEAR_RGB,
            Stroke::Dotted => PLAN_RGB,
        }
    }

    const fn width(self) -> f64 {
        match self {
            Stroke::Solid => 2.5,
            Stroke::Dashed | Stroke::Dotted => 1.8,
        }
    }

    const fn class(self) -> &'static str {
        match self {
            Stroke::Solid => "this-year",
            Stroke::Dashed => "last-year",
            Stroke::Dotted => "plan",
        }
    }
}

const LAST_YEAR_RGB: Rgb = [0x80, 0x80, 0x80];
const PLAN_RGB: Rgb = [0xb3, 0x5c, 0x00];
const INCIDENT_RGB: Rgb = [0xfc, 0xe4, 0xec];

/// One half of a comparison chart: periods on a category axis, up to three
/// lines over them, and the periods to mark.
#[derive(Debug, Clone, Copy)]
pub struct Panel<'a> {
    /// Heading above the plot, e.g. "Weekly".
    pub heading: &'a str,
    /// One label per period.
    pub labels: &'a [String],
    /// Lines (values per period; `None` is a gap) with their strokes.
    pub lines: &'a [(Stroke, &'a [Option<f64>])],
    /// Periods to mark (an incident): shaded column and a ring on the solid line.
    pub marked: &'a [bool],
}

/// The 6-12 chart: weeks beside months, this year solid, last year dashed,
/// plan dotted; one look in the SVG of the pre-read and the PNG of email.
#[derive(Clone, Copy)]
pub struct Comparison<'a> {
    /// Accessible name, e.g. "orders: 6 weeks and 12 months".
    pub title: &'a str,
    /// Unit for the value axes ("£", "orders", "%"), shown in each heading.
    pub unit: &'a str,
    /// Legend names of the strokes (this year, last year, plan).
    pub legend: [&'a str; 3],
    /// The left half (weeks).
    pub left: Panel<'a>,
    /// The right half (months).
    pub right: Panel<'a>,
    /// Value labels on the axes.
    pub fmt: &'a dyn Fn(f64) -> String,
}

const CW: f64 = 760.0;
const CH: f64 = 250.0;
/// Where the left panel's plot ends and the right one's starts (of `CW`).
const SPLIT: f64 = 0.4;

/// Where a panel's values land (shared by SVG and PNG).
#[derive(Debug, Clone, Copy)]
struct PanelFrame {
    axis: Axis,
    n: usize,
    rect: (f64, f64, f64, f64),
}

impl PanelFrame {
    fn of(p: &Panel<'_>, rect: (f64, f64, f64, f64)) -> Option<PanelFrame> {
        let vals = p
            .lines
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied());
        let (mut y0, mut y1) = extent(vals)?;
        if p.labels.is_empty() {
            return None;
        }
        // totals read against zero when they are near it; otherwise zoom in
        if y0 > 0.0 && y0 < 0.35 * y1 {
            y0 = 0.0;
        }
        if y1 - y0 < 1e-9 {
            y0 -= y0.abs().max(1.0) * 0.1;
            y1 += y1.abs().max(1.0) * 0.1;
        }
        Some(PanelFrame {
            axis: Axis::over(y0, y1),
            n: p.labels.len(),
            rect,
        })
    }

    fn x(&self, i: usize) -> f64 {
        self.rect.0 + (i as f64 + 0.5) / self.n as f64 * self.rect.2
    }

    fn y(&self, v: f64) -> f64 {
        self.axis.y(self.rect.1, self.rect.3, v)
    }

    fn ticks(&self) -> Vec<f64> {
        self.axis.ticks()
    }

    /// The runs of consecutive known values of a line, as points.
    fn runs(&self, values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
        let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in values.iter().enumerate() {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    if let Some(run) = out.last_mut() {
                        run.push((self.x(i), self.y(v)));
                    }
                }
                None => out.push(Vec::new()),
            }
        }
        out.retain(|r| !r.is_empty());
        out
    }
}

/// Panel rectangles (left, top, width, height) in a `w` × `h` box with room
/// for labels: `label_w` for the value axis, `top` and `bottom` margins.
fn panel_rects(w: f64, h: f64, label_w: f64, top: f64, bottom: f64) -> [(f64, f64, f64, f64); 2] {
    let gap = 24.0 * w / CW;
    let split = w * SPLIT;
    let right = 10.0 * w / CW;
    [
        (label_w, top, split - label_w - gap / 2.0, h - top - bottom),
        (
            split + gap / 2.0 + label_w,
            top,
            w - split - gap / 2.0 - label_w - right,
            h - top - bottom,
        ),
    ]
}

fn svg_panel(p: &Panel<'_>, fr: &PanelFrame, unit: &str, fmt: &dyn Fn(f64) -> String) -> Markup {
    let (l, t, w, h) = fr.rect;
    let cell = w / fr.n as f64;
    let every = if fr.n > 8 { 2 } else { 1 };
    let solid = p
        .lines
        .iter()
        .find(|(s, _)| *s == Stroke::Solid)
        .map(|(_, v)| *v);
    html! {
        text.heading x=(format!("{l:.1}")) y=(format!("{:.1}", t - 10.0)) {
            (p.heading) @if !unit.is_empty() { " (" (unit) ")" }
        }
        @for (i, m) in p.marked.iter().enumerate() {
            @if *m {
                rect.incident x=(format!("{:.1}", l + i as f64 * cell)) y=(format!("{t:.1}"))
                    width=(format!("{cell:.1}")) height=(format!("{h:.1}")) {
                    title { (p.labels.get(i).map_or("", String::as_str)) ": incident" }
                }
            }
        }
        @for v in fr.ticks() {
            line.grid x1=(format!("{l:.1}")) x2=(format!("{:.1}", l + w)) y1=(format!("{:.1}", fr.y(v))) y2=(format!("{:.1}", fr.y(v))) {}
            text.ylabel x=(format!("{:.1}", l - 5.0)) y=(format!("{:.1}", fr.y(v) + 4.0)) text-anchor="end" { (fmt(v)) }
        }
        line.axis x1=(format!("{l:.1}")) x2=(format!("{:.1}", l + w)) y1=(format!("{:.1}", t + h)) y2=(format!("{:.1}", t + h)) {}
        @for (i, label) in p.labels.iter().enumerate() {
            @if (fr.n - 1 - i) % every == 0 {
                text.xlabel x=(format!("{:.1}", fr.x(i))) y=(format!("{:.1}", t + h + 15.0)) text-anchor="middle" { (label) }
            }
        }
        @for (stroke, values) in p.lines {
            @for run in fr.runs(values) {
                @let pts = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ");
                polyline class=(stroke.class()) points=(pts) {}
            }
        }
        @if let Some(values) = solid {
            @for (i, v) in values.iter().enumerate() {
                @if let Some(v) = v.filter(|v| v.is_finite()) {
                    @let marked = p.marked.get(i).copied().unwrap_or(false);
                    circle class=(if marked { "point marked" } else { "point" })
                        cx=(format!("{:.1}", fr.x(i))) cy=(format!("{:.1}", fr.y(v)))
                        r=(if marked { "5" } else { "3" }) {
                        title { (p.labels.get(i).map_or("", String::as_str)) ": " (fmt(v)) }
                    }
                }
            }
        }
    }
}

/// Left ends of the legend entries (three strokes, then the incident key):
/// each after the previous one's text, at ~6.2 px per character of 11 px text.
fn legend_xs(names: &[&str; 3]) -> [f64; 4] {
    let mut xs = [52.0; 4];
    for i in 0..3 {
        xs[i + 1] = xs[i] + 34.0 + names[i].chars().count() as f64 * 6.2 + 22.0;
    }
    xs
}

/// The 6-12 chart as an `<svg>`: two panels, each with its own value axis
/// (weekly and monthly totals differ by a factor of four), a legend below.
pub fn comparison_svg(c: &Comparison<'_>) -> Markup {
    let rects = panel_rects(CW, CH, 52.0, 30.0, 44.0);
    let frames = [
        PanelFrame::of(&c.left, rects[0]),
        PanelFrame::of(&c.right, rects[1]),
    ];
    if frames.iter().all(Option::is_none) {
        return html! { p.nochart { "No data to chart for " (c.title) "." } };
    }
    let legend_y = CH - 8.0;
    let strokes = [Stroke::Solid, Stroke::Dashed, Stroke::Dotted];
    html! {
        svg.chart.comparison xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (CW) " " (CH)}
            role="img" aria-label=(c.title) preserveAspectRatio="xMidYMid meet" {
            title { (c.title) }
            @for (p, fr) in [&c.left, &c.right].into_iter().zip(&frames) {
                @if let Some(fr) = fr {
                    (svg_panel(p, fr, c.unit, c.fmt))
                }
            }
            @for (x, (stroke, name)) in legend_xs(&c.legend).into_iter().zip(strokes.iter().zip(c.legend)) {
                line class=(stroke.class()) x1=(format!("{x:.1}")) x2=(format!("{:.1}", x + 28.0))
                    y1=(format!("{:.1}", legend_y - 4.0)) y2=(format!("{:.1}", legend_y - 4.0)) {}
                text.legend x=(format!("{:.1}", x + 34.0)) y=(format!("{legend_y:.1}")) { (name) }
            }
            @let x = legend_xs(&c.legend)[3];
            rect.incident x=(format!("{x:.1}")) y=(format!("{:.1}", legend_y - 11.0)) width="14" height="12" {}
            circle.point.marked cx=(format!("{:.1}", x + 7.0)) cy=(format!("{:.1}", legend_y - 5.0)) r="4" {}
            text.legend x=(format!("{:.1}", x + 20.0)) y=(format!("{legend_y:.1}")) { "week with an incident" }
        }
    }
}

/// CSS for [`comparison_svg`], for pages that embed it.
pub const COMPARISON_CSS: &str = "
svg.comparison { width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg.comparison .heading { font-weight: 600; fill: #222; }
svg.comparison .grid { stroke: #e3e3e3; stroke-width: 1; }
svg.comparison .axis { stroke: #999; stroke-width: 1; }
svg.comparison .ylabel, svg.comparison .xlabel, svg.comparison .legend { fill: #444; }
svg.comparison .xlabel { font-size: 10px; }
svg.comparison polyline, svg.comparison line.this-year, svg.comparison line.last-year, svg.comparison line.plan { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg.comparison .this-year { stroke: #2f5fb3; stroke-width: 2.5; }
svg.comparison .last-year { stroke: #808080; stroke-width: 1.8; stroke-dasharray: 6 4; }
svg.comparison .plan { stroke: #b35c00; stroke-width: 1.8; stroke-dasharray: 1.5 3.5; }
svg.comparison .point { fill: #2f5fb3; stroke: #fff; stroke-width: 1; }
svg.comparison .point.marked { fill: #d6336c; stroke: #fff; stroke-width: 1.5; }
svg.comparison rect.incident { fill: #fce4ec; }
";

/// Size of a comparison image in email, in CSS pixels.
pub const COMPARISON_PNG_SIZE: (usize, usize) = (600, 170);

/// Stroke `pts` with `stroke`'s dash pattern (in canvas pixels, `k` per CSS pixel).
fn stroke_run(cv: &mut Canvas, pts: &[(f64, f64)], stroke: Stroke, k: f64) {
    let width = stroke.width() * k;
    let Some((on, off)) = stroke.dashes() else {
        cv.polyline(pts, width, stroke.rgb());
        return;
    };
    let (on, off) = (on * k, off * k);
    // the pattern continues across vertices, as SVG's stroke-dasharray does
    let mut phase = 0.0;
    for w in pts.windows(2) {
        let (p, q) = (w[0], w[1]);
        let len = (q.0 - p.0).hypot(q.1 - p.1);
        let mut at = 0.0;
        while at < len {
            let in_dash = phase < on;
            let left = if in_dash {
                on - phase
            } else {
                on + off - phase
            };
            let step = left.min(len - at);
            if in_dash {
                let a = at / len;
                let b = (at + step) / len;
                let lerp = |t: f64| (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t);
                cv.line(lerp(a), lerp(b), width, stroke.rgb());
            }
            at += step;
            phase = (phase + step) % (on + off);
        }
    }
}

/// The 6-12 chart drawn for email: the same panels, strokes and marks as
/// [`comparison_svg`] without text (the mail prints the numbers beside it).
fn comparison_raster(c: &Comparison<'_>) -> Option<Canvas> {
    let k = PNG_SCALE as f64;
    let (w, h) = (
        COMPARISON_PNG_SIZE.0 * PNG_SCALE,
        COMPARISON_PNG_SIZE.1 * PNG_SCALE,
    );
    let rects = panel_rects(w as f64, h as f64, 8.0 * k, 8.0 * k, 8.0 * k);
    let frames = [
        PanelFrame::of(&c.left, rects[0]),
        PanelFrame::of(&c.right, rects[1]),
    ];
    if frames.iter().all(Option::is_none) {
        return None;
    }
    let mut cv = Canvas::new(w, h, WHITE);
    for (p, fr) in [&c.left, &c.right].into_iter().zip(&frames) {
        let Some(fr) = fr else { continue };
        let (l, t, pw, ph) = fr.rect;
        let cell = pw / fr.n as f64;
        for (i, m) in p.marked.iter().enumerate() {
            if *m {
                cv.fill_rect(
                    (l + i as f64 * cell, t),
                    (l + (i + 1) as f64 * cell, t + ph),
                    INCIDENT_RGB,
                    1.0,
                );
            }
        }
        for v in fr.ticks() {
            cv.line((l, fr.y(v)), (l + pw, fr.y(v)), k, GRID_RGB);
        }
        for (stroke, values) in p.lines {
            for run in fr.runs(values) {
                stroke_run(&mut cv, &run, *stroke, k);
            }
        }
        if let Some((_, values)) = p.lines.iter().find(|(s, _)| *s == Stroke::Solid) {
            for (i, v) in values.iter().enumerate() {
                let Some(v) = v.filter(|v| v.is_finite()) else {
                    continue;
                };
                let at = (fr.x(i), fr.y(v));
                if p.marked.get(i).copied().unwrap_or(false) {
                    cv.dot(at, 6.5 * k, WHITE);
                    cv.dot(at, 5.0 * k, MARK_RGB);
                } else {
                    cv.dot(at, 3.0 * k, SERIES_RGB);
                }
            }
        }
    }
    Some(cv)
}

/// The 6-12 chart as a PNG of [`COMPARISON_PNG_SIZE`] (at twice the pixels), for email.
pub fn comparison_png(c: &Comparison<'_>) -> Option<Vec<u8>> {
    comparison_raster(c).map(|cv| cv.png())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn chart<'a>(
        title: &'a str,
        pts: &'a [(i64, f64)],
        band: &'a [Band],
        marks: &'a [(i64, f64)],
    ) -> String {
        svg(&Chart {
            title,
            points: pts,
            band,
            marks,
            x_format: "%d %b",
            unit: "",
        })
        .into_string()
    }

    #[test]
    fn draws_line_band_and_marks_with_escaped_title() {
        let pts: Vec<(i64, f64)> = (0..42).map(|d| (d * DAY, 100.0 + (d % 7) as f64)).collect();
        let band = [Band {
            ts: 41 * DAY,
            lower: 95.0,
            upper: 110.0,
            expected: 102.0,
        }];
        let marks = [(41 * DAY, 180.0)];
        let s = chart("<b>orders</b>", &pts, &band, &marks);
        assert!(s.starts_with("<svg"), "{s}");
        assert!(
            s.contains("&lt;b&gt;orders&lt;/b&gt;") && !s.contains("<b>"),
            "{s}"
        );
        assert_eq!(s.matches("<rect class=\"band\"").count(), 1);
        assert_eq!(s.matches("<circle class=\"mark\"").count(), 1);
        assert_eq!(s.matches("<polyline").count(), 1);
        // the outlier is the highest point: at the top of the plot area
        let cy: f64 = s
            .split("cy=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(cy < TOP + 0.3 * (H - TOP - BOTTOM), "cy {cy}");
        assert!(s.contains("11 Feb"), "last date on the axis: {s}");
    }

    #[test]
    fn flat_and_empty_series_do_not_break() {
        let flat: Vec<(i64, f64)> = (0..5).map(|d| (d * DAY, 3.0)).collect();
        let s = chart("flat", &flat, &[], &[]);
        assert!(
            s.contains("<polyline") && !s.contains("NaN") && !s.contains("inf"),
            "{s}"
        );
        let s = chart("empty", &[], &[], &[]);
        assert!(s.contains("No data") && !s.contains("<svg"), "{s}");
    }

    #[test]
    fn the_png_draws_the_outlier_where_the_svg_does() {
        let pts: Vec<(i64, f64)> = (0..42).map(|d| (d * DAY, 100.0 + (d % 7) as f64)).collect();
        let band = [Band {
            ts: 41 * DAY,
            lower: 95.0,
            upper: 110.0,
            expected: 102.0,
        }];
        let marks = [(41 * DAY, 180.0)];
        let c = Chart {
            title: "orders",
            points: &pts,
            band: &band,
            marks: &marks,
            x_format: "%d %b",
            unit: "",
        };
        let img = super::super::raster::decode(&png(&c).unwrap()).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (PNG_SIZE.0 * PNG_SCALE, PNG_SIZE.1 * PNG_SCALE)
        );
        let fr = png_frame(&c).unwrap();
        #[allow(clippy::cast_possible_truncation, reason = "test coordinates")]
        let at = |t: i64, v: f64| img.pixel(fr.x(t) as usize, fr.y(v) as usize).unwrap();
        assert_eq!(at(41 * DAY, 180.0), MARK_RGB, "the outlier dot");
        // the band below the outlier is shaded green, not white
        let band_px = at(41 * DAY, 97.0);
        assert!(band_px[1] > band_px[0] && band_px != WHITE, "{band_px:?}");
        // the series line passes through a normal day
        assert_eq!(at(10 * DAY, 103.0), SERIES_RGB);
        // far from everything: background
        assert_eq!(at(20 * DAY, 170.0), WHITE);
        assert_eq!(value_range(&c), Some((100.0, 180.0)));
        let empty = Chart { points: &[], ..c };
        assert!(png(&empty).is_none());
    }

    type Lines = (
        Vec<String>,
        Vec<Option<f64>>,
        Vec<Option<f64>>,
        Vec<Option<f64>>,
        Vec<bool>,
    );

    fn comparison_fixture() -> Lines {
        let labels: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
        let this: Vec<Option<f64>> = (0..6).map(|i| Some(100.0 + f64::from(i))).collect();
        let last: Vec<Option<f64>> = (0..6).map(|i| Some(90.0 + f64::from(i))).collect();
        let plan: Vec<Option<f64>> = vec![
            None,
            None,
            Some(101.0),
            Some(102.0),
            Some(103.0),
            Some(104.0),
        ];
        let marked = vec![false, false, false, false, false, true];
        (labels, this, last, plan, marked)
    }

    #[test]
    fn the_comparison_draws_three_strokes_marks_and_escapes() {
        let (labels, this, last, plan, marked) = comparison_fixture();
        let lines = [
            (Stroke::Solid, this.as_slice()),
            (Stroke::Dashed, last.as_slice()),
            (Stroke::Dotted, plan.as_slice()),
        ];
        let fmt = |v: f64| crate::fmt::num(v);
        let panel = Panel {
            heading: "Weekly",
            labels: &labels,
            lines: &lines,
            marked: &marked,
        };
        let c = Comparison {
            title: "<i>orders</i>",
            unit: "£",
            legend: ["2025", "2024", "plan"],
            left: panel,
            right: panel,
            fmt: &fmt,
        };
        let s = comparison_svg(&c).into_string();
        assert!(s.contains("&lt;i&gt;orders") && !s.contains("<i>"), "{s}");
        for class in ["this-year", "last-year", "plan"] {
            assert_eq!(
                s.matches(&format!("<polyline class=\"{class}\"")).count(),
                2,
                "{class}"
            );
        }
        // the marked week in each half, and the legend's key
        assert_eq!(s.matches("class=\"point marked\"").count(), 3);
        assert!(s.contains("Weekly (£)"), "unit on the axis heading");
        // the PNG marks the same week: the marked dot is where the frame puts it
        let img = super::super::raster::decode(&comparison_png(&c).unwrap()).unwrap();
        let k = PNG_SCALE as f64;
        let (w, h) = (
            COMPARISON_PNG_SIZE.0 * PNG_SCALE,
            COMPARISON_PNG_SIZE.1 * PNG_SCALE,
        );
        let rects = panel_rects(w as f64, h as f64, 8.0 * k, 8.0 * k, 8.0 * k);
        let fr = PanelFrame::of(&panel, rects[0]).unwrap();
        #[allow(clippy::cast_possible_truncation, reason = "test coordinates")]
        let at = |x: f64, y: f64| img.pixel(x as usize, y as usize).unwrap();
        assert_eq!(at(fr.x(5), fr.y(105.0)), MARK_RGB);
        assert_eq!(at(fr.x(1), fr.y(101.0)), SERIES_RGB);
        // the marked week's column is shaded, the others are not
        assert_eq!(at(fr.x(5), fr.y(92.0)), INCIDENT_RGB);
        assert_eq!(at(fr.x(1), fr.y(97.5)), WHITE);
    }

    #[test]
    fn nice_steps() {
        for (range, want) in [(100.0, 50.0), (7.0, 2.0), (0.3, 0.1), (1234.0, 500.0)] {
            assert!(
                (nice_step(range) - want).abs() < 1e-9,
                "{range}: {}",
                nice_step(range)
            );
        }
    }
}
