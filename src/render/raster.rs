//! A small RGB canvas and its PNG encoding, for chart images in email.
//!
//! Mail clients do not render SVG, so a digest carries its charts as inline
//! PNG. The drawing needed is four primitives (rectangles, anti-aliased
//! strokes, dots, a page background); the encoding is the PNG container
//! around a zlib stream. Deflate and the CRC come from `flate2` and
//! `crc32fast`, which Polars already builds: a rasterizer crate (tiny-skia,
//! resvg) would change shared dependency features and rebuild Polars, for
//! primitives that fit in this file.

use std::io::Write;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    px: Vec<u8>,
}

impl Canvas {
    /// A `width` × `height` canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        Canvas {
            width,
            height,
            px: background.repeat(width * height),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at (x, y), if inside.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = (y * self.width + x) * 3;
            [self.px[i], self.px[i + 1], self.px[i + 2]]
        })
    }

    /// Blend `c` over the pixel at (x, y) with coverage `a` in 0..=1.
    fn blend(&mut self, x: usize, y: usize, c: Rgb, a: f64) {
        if x >= self.width || y >= self.height || a <= 0.0 {
            return;
        }
        let a = a.min(1.0);
        let i = (y * self.width + x) * 3;
        for (p, &c) in self.px[i..i + 3].iter_mut().zip(&c) {
            let old = f64::from(*p);
            let new = old + (f64::from(c) - old) * a;
            // a convex mix of two bytes stays in 0..=255
            #[allow(clippy::cast_possible_truncation, reason = "0..=255 by construction")]
            {
                *p = new.round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    /// The pixel range covering `lo..hi` (fractional), clamped to `0..n`.
    fn span(lo: f64, hi: f64, n: usize) -> std::ops::Range<usize> {
        let clamp = |v: f64| -> usize {
            // clamped to 0..=n first, so the cast is exact
            #[allow(clippy::cast_possible_truncation, reason = "clamped to 0..=n")]
            {
                v.clamp(0.0, n as f64) as usize
            }
        };
        clamp(lo.floor())..clamp(hi.ceil())
    }

    /// Fill the rectangle from (x0, y0) to (x1, y1) with `c` at opacity `a`;
    /// partly covered edge pixels are blended by their coverage.
    pub fn fill_rect(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb, a: f64) {
        let (x0, x1) = (x0.min(x1), x0.max(x1));
        let (y0, y1) = (y0.min(y1), y0.max(y1));
        for y in Self::span(y0, y1, self.height) {
            let cy = (y1.min(y as f64 + 1.0) - y0.max(y as f64)).clamp(0.0, 1.0);
            for x in Self::span(x0, x1, self.width) {
                let cx = (x1.min(x as f64 + 1.0) - x0.max(x as f64)).clamp(0.0, 1.0);
                self.blend(x, y, c, a * cx * cy);
            }
        }
    }

    /// Stroke the segment from `p` to `q`, `width` pixels wide with round
    /// ends, anti-aliased by each pixel centre's distance to the segment.
    pub fn line(&mut self, p: (f64, f64), q: (f64, f64), width: f64, c: Rgb) {
        let r = width / 2.0;
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len2 = dx * dx + dy * dy;
        let xs = Self::span(p.0.min(q.0) - r - 1.0, p.0.max(q.0) + r + 1.0, self.width);
        let ys = Self::span(p.1.min(q.1) - r - 1.0, p.1.max(q.1) + r + 1.0, self.height);
        for y in ys {
            for x in xs.clone() {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - p.0) * dx + (cy - p.1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let d = (cx - p.0 - t * dx).hypot(cy - p.1 - t * dy);
                self.blend(x, y, c, r + 0.5 - d);
            }
        }
    }

    /// Stroke a polyline through `pts`.
    pub fn polyline(&mut self, pts: &[(f64, f64)], width: f64, c: Rgb) {
        if let [only] = pts {
            self.line(*only, *only, width, c);
        }
        for w in pts.windows(2) {
            self.line(w[0], w[1], width, c);
        }
    }

    /// A filled dot of radius `r` at `p`.
    pub fn dot(&mut self, p: (f64, f64), r: f64, c: Rgb) {
        self.line(p, p, 2.0 * r, c);
    }

    /// The image as a PNG file (8-bit RGB, non-interlaced).
    pub fn png(&self) -> Vec<u8> {
        let row = self.width * 3;
        // Filter "Up" (2): each byte minus the one above. A chart's rows are
        // mostly alike, so the filtered stream is mostly zeros.
        let mut raw = Vec::with_capacity((row + 1) * self.height);
        for y in 0..self.height {
            let cur = &self.px[y * row..(y + 1) * row];
            if y == 0 {
                raw.push(0);
                raw.extend_from_slice(cur);
            } else {
                let above = &self.px[(y - 1) * row..y * row];
                raw.push(2);
                raw.extend(cur.iter().zip(above).map(|(c, a)| c.wrapping_sub(*a)));
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // writing to a Vec cannot fail
        let idat = z
            .write_all(&raw)
            .and_then(|()| z.finish())
            .unwrap_or_default();
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let dim = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&dim(self.width));
        ihdr.extend_from_slice(&dim(self.height));
        // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

/// Append one PNG chunk: length, type, data, CRC of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Decode a PNG written by [`Canvas::png`] (tests only: checks the container,
/// every CRC and the filters, so a broken encoder fails here, not in a mail
/// client).
#[cfg(test)]
pub(crate) fn decode(png: &[u8]) -> Result<Canvas, String> {
    use std::io::Read;
    let body = png
        .strip_prefix(b"\x89PNG\r\n\x1a\n")
        .ok_or("no PNG signature")?;
    let (mut pos, mut w, mut h, mut idat) = (0usize, 0usize, 0usize, Vec::new());
    let mut kinds = Vec::new();
    while pos < body.len() {
        let len = u32::from_be_bytes(body[pos..pos + 4].try_into().map_err(|_| "length")?) as usize;
        let kind = &body[pos + 4..pos + 8];
        let data = &body[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(
            body[pos + 8 + len..pos + 12 + len]
                .try_into()
                .map_err(|_| "crc")?,
        );
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(kind);
        hasher.update(data);
        if hasher.finalize() != crc {
            return Err(format!("bad CRC in {}", String::from_utf8_lossy(kind)));
        }
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().map_err(|_| "w")?) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().map_err(|_| "h")?) as usize;
                if data[8..] != [8, 2, 0, 0, 0] {
                    return Err(format!("unexpected IHDR {data:?}"));
                }
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        kinds.push(String::from_utf8_lossy(kind).into_owned());
        pos += 12 + len;
    }
    if kinds.first().map(String::as_str) != Some("IHDR")
        || kinds.last().map(String::as_str) != Some("IEND")
    {
        return Err(format!("chunk order {kinds:?}"));
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let row = w * 3;
    if raw.len() != (row + 1) * h {
        return Err(format!("{} bytes of pixels for {w}x{h}", raw.len()));
    }
    let mut px = vec![0u8; row * h];
    for y in 0..h {
        let line = &raw[y * (row + 1)..(y + 1) * (row + 1)];
        for x in 0..row {
            let up = if y > 0 { px[(y - 1) * row + x] } else { 0 };
            px[y * row + x] = match line[0] {
                0 => line[1 + x],
                2 => line[1 + x].wrapping_add(up),
                f => return Err(format!("filter {f}")),
            };
        }
    }
    Ok(Canvas {
        width: w,
        height: h,
        px,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb = [255, 255, 255];
    const RED: Rgb = [200, 0, 0];

    #[test]
    fn png_round_trips_through_an_independent_decoder() {
        let mut c = Canvas::new(40, 20, WHITE);
        c.fill_rect((5.0, 5.0), (15.0, 10.0), [0, 128, 0], 1.0);
        c.line((0.0, 19.5), (39.0, 0.5), 2.0, RED);
        let back = decode(&c.png()).unwrap();
        assert_eq!((back.width(), back.height()), (40, 20));
        assert_eq!(back.px, c.px, "pixels survive encoding");
        assert_eq!(back.pixel(7, 7), Some([0, 128, 0]));
        assert_eq!(back.pixel(39, 19), Some(WHITE));
    }

    #[test]
    fn a_corrupted_png_is_caught_by_its_crc() {
        let mut png = Canvas::new(4, 4, WHITE).png();
        let n = png.len();
        png[n - 20] ^= 0xff;
        assert!(decode(&png).unwrap_err().contains("CRC"));
    }

    #[test]
    fn strokes_are_antialiased_and_dots_are_round() {
        let mut c = Canvas::new(30, 30, WHITE);
        c.line((2.0, 15.0), (28.0, 15.0), 2.0, RED);
        // a horizontal 2-px line at y = 15 covers rows 14 and 15 fully
        assert_eq!(c.pixel(10, 14), Some(RED));
        assert_eq!(c.pixel(10, 15), Some(RED));
        assert_eq!(c.pixel(10, 12), Some(WHITE));
        let mut d = Canvas::new(30, 30, WHITE);
        d.dot((15.0, 15.0), 5.0, RED);
        assert_eq!(d.pixel(15, 15), Some(RED));
        // the corner of the bounding square stays white: a disc, not a square
        assert_eq!(d.pixel(10, 10), Some(WHITE));
        // a pixel on the rim is blended, neither colour
        let rim = d.pixel(15, 10).unwrap();
        assert!(rim != RED && rim != WHITE, "{rim:?}");
    }

    #[test]
    fn half_opaque_fill_blends_and_out_of_range_is_clipped() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.fill_rect((-5.0, -5.0), (20.0, 3.0), [0, 0, 0], 0.5);
        assert_eq!(c.pixel(0, 0), Some([128, 128, 128]));
        assert_eq!(c.pixel(9, 2), Some([128, 128, 128]));
        assert_eq!(c.pixel(0, 3), Some(WHITE));
        c.line((-100.0, -100.0), (-50.0, -50.0), 3.0, RED);
        assert_eq!(c.pixel(0, 9), Some(WHITE));
    }
}
