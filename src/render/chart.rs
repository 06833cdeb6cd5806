//! Line charts of a series as inline SVG, for the explanation page.
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

/// Where a chart's values land: the value and time ranges, rounded to
/// ticks, mapped onto a plot rectangle. Shared by the SVG and the PNG, so
/// both draw the same picture.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Value range, rounded out to whole ticks.
    lo: f64,
    hi: f64,
    /// Tick spacing.
    step: f64,
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
            .chain(c.band.iter().flat_map(|b| [b.lower, b.upper]))
            .filter(|v| v.is_finite());
        let (mut y0, mut y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let ts = c
            .points
            .iter()
            .map(|p| p.0)
            .chain(c.marks.iter().map(|m| m.0))
            .chain(c.band.iter().map(|b| b.ts));
        let (t0, t1) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        if c.points.is_empty() || !y0.is_finite() || t0 > t1 {
            return None;
        }
        if y1 - y0 < 1e-9 {
            y0 -= 1.0;
            y1 += 1.0;
        }
        let step = nice_step(y1 - y0);
        Some(Frame {
            lo: (y0 / step).floor() * step,
            hi: (y1 / step).ceil() * step,
            step,
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
        self.rect.1 + (self.hi - v) / (self.hi - self.lo) * self.rect.3
    }

    /// The value gridlines: a handful, `(hi - lo) / step` is small by construction.
    fn ticks(&self) -> Vec<f64> {
        #[allow(clippy::cast_possible_truncation, reason = "a small tick count")]
        let n = ((self.hi - self.lo) / self.step).round().clamp(0.0, 100.0) as i64;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
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
                text.ylabel x=(LEFT - 6.0) y=(format!("{:.1}", y(*v) + 4.0)) text-anchor="end" { (super::num(*v)) }
            }
            @for (i, t) in xticks.iter().enumerate() {
                // the last label ends at the plot's right edge instead of running off it
                text.xlabel x=(format!("{:.1}", x(*t))) y=(H - 8.0)
                    text-anchor=(if i + 1 == xticks.len() { "end" } else { "middle" }) { (fmt_time(*t, c.x_format)) }
            }
            @for b in c.band.iter().filter(|b| b.lower.is_finite() && b.upper.is_finite()) {
                rect.band x=(format!("{:.1}", x(b.ts) - cell / 2.0)) y=(format!("{:.1}", y(b.upper)))
                    width=(format!("{:.1}", cell)) height=(format!("{:.1}", (y(b.lower) - y(b.upper)).max(1.0))) {
                    title { "normal range " (super::num(b.lower)) " to " (super::num(b.upper)) }
                }
                @if b.expected.is_finite() {
                    line.expected x1=(format!("{:.1}", x(b.ts) - cell / 2.0)) x2=(format!("{:.1}", x(b.ts) + cell / 2.0))
                        y1=(format!("{:.1}", y(b.expected))) y2=(format!("{:.1}", y(b.expected))) {}
                }
            }
            polyline.series points=(line) {}
            @for &(t, v) in c.marks.iter().filter(|m| m.1.is_finite()) {
                circle.mark cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="4.5" {
                    title { (fmt_time(t, "%Y-%m-%d %H:%M")) ": " (super::num(v)) }
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

/// The chart as a PNG image of [`PNG_SIZE`] (at twice the pixels), for
/// email; `None` when there is nothing to draw.
pub fn png(c: &Chart<'_>) -> Option<Vec<u8>> {
    raster(c).map(|cv| cv.png())
}

/// The lowest and highest value drawn (series and flagged points), for a
/// caption next to an image.
pub fn value_range(c: &Chart<'_>) -> Option<(f64, f64)> {
    let vals = c
        .points
        .iter()
        .chain(c.marks)
        .map(|p| p.1)
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    lo.is_finite().then_some((lo, hi))
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
