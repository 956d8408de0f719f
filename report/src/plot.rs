//! The memory-use figure, in the spirit of glibc's memusage graph: memory in use over time
//! (top) and the histogram of requested sizes (bottom). The figure is a list of shapes, written
//! as SVG by hand or rasterized to PNG (with a built-in 5x7 bitmap font).

use crate::commands::{human, secs};
use crate::reader::LogInfo;
use crate::stats::{self, Stats};
use clap::ValueEnum;
use std::fmt::Write as _;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum XAxis {
    /// Nanoseconds since the start of the process.
    Time,
    /// Event numbers (seq).
    Events,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

type Rgb = (u8, u8, u8);

pub enum Shape {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Rgb,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        color: Rgb,
        width: f64,
        dashed: bool,
    },
    /// Closed, filled polygon.
    Area { pts: Vec<(f64, f64)>, fill: Rgb },
    Polyline {
        pts: Vec<(f64, f64)>,
        color: Rgb,
        width: f64,
    },
    /// `y` is the text's baseline; `size` its height in pixels.
    Text {
        x: f64,
        y: f64,
        size: f64,
        anchor: Anchor,
        text: String,
        color: Rgb,
    },
}

pub struct Figure {
    pub w: u32,
    pub h: u32,
    pub shapes: Vec<Shape>,
}

const INK: Rgb = (0x22, 0x22, 0x22);
const GRID: Rgb = (0xdd, 0xdd, 0xdd);
const HEAP: Rgb = (0xc0, 0x1c, 0x28);
const HEAP_FILL: Rgb = (0xf6, 0xc4, 0xc8);
const BAR: Rgb = (0x1c, 0x5f, 0xc0);
const PEAK: Rgb = (0x55, 0x55, 0x55);

/// About `n` round tick values from 0 to `max` (steps of 1, 2, 5 x 10^k times `unit`).
fn ticks(max: f64, n: usize, unit: f64) -> Vec<f64> {
    if max <= 0.0 {
        return vec![0.0];
    }
    let raw = max / unit / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        * unit;
    let mut v = Vec::new();
    let mut t = 0.0;
    while t <= max * 1.0000001 {
        v.push(t);
        t += step;
    }
    v
}

fn byte_unit(max: u64) -> (f64, &'static str) {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (u, n) in units {
        if max >= u * 2 {
            return (u as f64, n);
        }
    }
    (1.0, "B")
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn size_label(v: u64) -> String {
    const K: u64 = 1024;
    if v >= K * K * K && v.is_multiple_of(K * K * K) {
        format!("{}G", v / (K * K * K))
    } else if v >= K * K && v.is_multiple_of(K * K) {
        format!("{}M", v / (K * K))
    } else if v >= K && v.is_multiple_of(K) {
        format!("{}K", v / K)
    } else {
        format!("{v}")
    }
}

/// `1300 bytes`, `23.2 MiB`: as `human` without the exact count.
fn short_bytes(b: u64) -> String {
    let h = human(b);
    match h.find(" (") {
        Some(i) => h[..i].to_string(),
        None => h,
    }
}

/// A count in at most 4 characters or so: `999`, `1.2K`, `12K`, `3.4M`.
fn compact(n: u64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (u, name) in units {
        let v = n as f64 / u;
        if v >= 1.0 {
            return if v < 9.95 {
                format!("{v:.1}{name}")
            } else {
                format!("{v:.0}{name}")
            };
        }
    }
    format!("{n}")
}

/// Width and height above the baseline of `text` drawn at `size`: the larger of the PNG's
/// bitmap font (a 6-pixel advance and 7 rows per scale step) and an SVG viewer's DejaVu Sans
/// (about 0.66 em per character, 0.76 em above the baseline).
pub fn text_extent(size: f64, text: &str) -> (f64, f64) {
    let scale = (size / 10.0).round().max(1.0);
    let n = text.chars().count() as f64;
    (
        (6.0 * scale * n).max(0.66 * size * n),
        (7.0 * scale).max(0.76 * size),
    )
}

/// The box `[x0, y0, x1, y1]` a text shape covers (None for other shapes).
#[cfg(test)]
pub fn text_box(s: &Shape) -> Option<[f64; 4]> {
    let Shape::Text {
        x,
        y,
        size,
        anchor,
        text,
        ..
    } = s
    else {
        return None;
    };
    let (w, h) = text_extent(*size, text);
    let x0 = match anchor {
        Anchor::Start => *x,
        Anchor::Middle => x - w / 2.0,
        Anchor::End => x - w,
    };
    Some([x0, y - h, x0 + w, *y])
}

/// `text`, cut with `...` to fit in `width` pixels at `size`.
fn fit(text: &str, size: f64, width: f64) -> String {
    if text_extent(size, text).0 <= width {
        return text.to_string();
    }
    let per = text_extent(size, "x").0;
    let keep = ((width / per) as usize).saturating_sub(3);
    let mut t: String = text.chars().take(keep).collect();
    t.push_str("...");
    t
}

pub fn figure(st: &Stats, info: &LogInfo, xaxis: XAxis, w: u32, h: u32) -> Figure {
    let mut s: Vec<Shape> = Vec::new();
    let (wf, hf) = (w as f64, h as f64);
    s.push(Shape::Rect {
        x: 0.0,
        y: 0.0,
        w: wf,
        h: hf,
        fill: (255, 255, 255),
    });
    let prog = info.header("program").unwrap_or("?");
    let pid = info
        .header("pid")
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    s.push(Shape::Text {
        x: wf / 2.0,
        y: 22.0,
        size: 15.0,
        anchor: Anchor::Middle,
        text: fit(&format!("Memory usage of {prog}{pid}"), 15.0, wf - 16.0),
        color: INK,
    });
    s.push(Shape::Text {
        x: wf / 2.0,
        y: 40.0,
        size: 11.0,
        anchor: Anchor::Middle,
        text: fit(
            &format!(
                "peak {} at event #{} (t={}); {} allocations, {} in all; {} live at the end",
                short_bytes(st.peak_bytes),
                st.peak_seq,
                secs(st.peak_t),
                st.alloc_blocks,
                short_bytes(st.alloc_bytes),
                short_bytes(st.live_bytes())
            ),
            11.0,
            wf - 16.0,
        ),
        color: INK,
    });

    // ---- top panel: memory in use
    let (left, right) = (80.0, wf - 30.0);
    let (top, bottom) = (60.0, (hf * 0.62).max(120.0));
    let tl = match xaxis {
        XAxis::Time => &st.by_time,
        XAxis::Events => &st.by_seq,
    };
    let origin = tl.origin.unwrap_or(0) as f64;
    let x_end = origin + (tl.buckets.len() as f64) * tl.width as f64;
    let (x0, x1) = (
        if xaxis == XAxis::Time {
            0.0
        } else {
            origin.min(1.0)
        },
        x_end.max(origin + 1.0),
    );
    let ymax_bytes = st.peak_bytes.max(1);
    let (unit, uname) = byte_unit(ymax_bytes);
    let yt = ticks(ymax_bytes as f64 * 1.05, 5, unit);
    let ymax = yt.last().copied().unwrap_or(1.0).max(ymax_bytes as f64);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (right - left);
    let py = |y: f64| bottom - y / ymax * (bottom - top);
    for &t in &yt {
        s.push(Shape::Line {
            x1: left,
            y1: py(t),
            x2: right,
            y2: py(t),
            color: GRID,
            width: 1.0,
            dashed: false,
        });
        s.push(Shape::Text {
            x: left - 6.0,
            y: py(t) + 4.0,
            size: 11.0,
            anchor: Anchor::End,
            text: fmt_num(t / unit),
            color: INK,
        });
    }
    let (xunit, xname) = match xaxis {
        XAxis::Time => {
            let span = x1 - x0;
            if span >= 2e9 {
                (1e9, "time (s)")
            } else if span >= 2e6 {
                (1e6, "time (ms)")
            } else if span >= 2e3 {
                (1e3, "time (us)")
            } else {
                (1.0, "time (ns)")
            }
        }
        XAxis::Events => (1.0, "events (seq)"),
    };
    for t in ticks(x1 - x0, 8, xunit) {
        let x = px(x0 + t);
        s.push(Shape::Line {
            x1: x,
            y1: top,
            x2: x,
            y2: bottom,
            color: GRID,
            width: 1.0,
            dashed: false,
        });
        s.push(Shape::Text {
            x,
            y: bottom + 16.0,
            size: 11.0,
            anchor: Anchor::Middle,
            text: fmt_num((x0 + t) / xunit),
            color: INK,
        });
    }
    s.push(Shape::Text {
        x: (left + right) / 2.0,
        y: bottom + 32.0,
        size: 12.0,
        anchor: Anchor::Middle,
        text: xname.to_string(),
        color: INK,
    });
    s.push(Shape::Text {
        x: 8.0,
        y: top - 8.0,
        size: 12.0,
        anchor: Anchor::Start,
        text: format!("in use ({uname})"),
        color: INK,
    });
    if !tl.buckets.is_empty() {
        let bw = tl.width as f64;
        let mut area = vec![(px(origin), py(0.0))];
        let mut line = Vec::with_capacity(tl.buckets.len() * 2);
        for (i, b) in tl.buckets.iter().enumerate() {
            let xa = px(origin + i as f64 * bw);
            let xb = px(origin + (i + 1) as f64 * bw);
            area.push((xa, py(b.max as f64)));
            area.push((xb, py(b.max as f64)));
            line.push((xa, py(b.max as f64)));
            line.push((xb, py(b.max as f64)));
        }
        area.push((px(origin + tl.buckets.len() as f64 * bw), py(0.0)));
        s.push(Shape::Area {
            pts: area,
            fill: HEAP_FILL,
        });
        s.push(Shape::Polyline {
            pts: line,
            color: HEAP,
            width: 1.5,
        });
    }
    let peak_y = py(st.peak_bytes as f64);
    s.push(Shape::Line {
        x1: left,
        y1: peak_y,
        x2: right,
        y2: peak_y,
        color: PEAK,
        width: 1.0,
        dashed: true,
    });
    let peak_x = match xaxis {
        XAxis::Time => st.peak_t as f64,
        XAxis::Events => st.peak_seq as f64,
    };
    let peak_label = format!("peak {}", human(st.peak_bytes));
    // Inside the plot area, clear of the axis labels on its left.
    let half = text_extent(11.0, &peak_label).0 / 2.0 + 4.0;
    s.push(Shape::Text {
        x: px(peak_x).clamp(left + half, (right - half).max(left + half)),
        y: peak_y - 5.0,
        size: 11.0,
        anchor: Anchor::Middle,
        text: peak_label,
        color: PEAK,
    });
    s.push(Shape::Line {
        x1: left,
        y1: bottom,
        x2: right,
        y2: bottom,
        color: INK,
        width: 1.0,
        dashed: false,
    });
    s.push(Shape::Line {
        x1: left,
        y1: top,
        x2: left,
        y2: bottom,
        color: INK,
        width: 1.0,
        dashed: false,
    });

    // ---- bottom panel: size histogram (the library's buckets: 0, then [2^(k-1), 2^k))
    let htop = bottom + 62.0;
    let hbottom = hf - 40.0;
    let nz: Vec<usize> = (0..stats::HIST_BUCKETS)
        .filter(|&b| st.hist[b] > 0)
        .collect();
    s.push(Shape::Text {
        x: 8.0,
        y: htop - 10.0,
        size: 12.0,
        anchor: Anchor::Start,
        text: fit(
            "allocations by requested size in bytes (a bar counts the sizes from its left edge up to its right edge)",
            12.0,
            wf - 16.0,
        ),
        color: INK,
    });
    if let (Some(&first), Some(&last)) = (nz.first(), nz.last()) {
        let n = last - first + 1;
        let maxc = st.hist.iter().copied().max().unwrap_or(1).max(1) as f64;
        let slot = (right - left) / n as f64;
        // Room for the count above each bar: all of them, or none (the axis then tells).
        let counts: Vec<String> = (first..=last).map(|b| compact(st.hist[b])).collect();
        let widest = counts
            .iter()
            .map(|c| text_extent(10.0, c).0)
            .fold(0.0, f64::max);
        let show_counts = widest + 4.0 <= slot;
        let bar_room = hbottom - htop - if show_counts { 14.0 } else { 4.0 };
        let ct = ticks(maxc, 3, 1.0);
        let cmax = ct.last().copied().unwrap_or(1.0).max(maxc);
        for &t in &ct {
            let y = hbottom - t / cmax * bar_room;
            s.push(Shape::Line {
                x1: left,
                y1: y,
                x2: right,
                y2: y,
                color: GRID,
                width: 1.0,
                dashed: false,
            });
            s.push(Shape::Text {
                x: left - 6.0,
                y: y + 4.0,
                size: 10.0,
                anchor: Anchor::End,
                text: compact(t as u64),
                color: INK,
            });
        }
        for (k, b) in (first..=last).enumerate() {
            let c = st.hist[b] as f64;
            let bh = c / cmax * bar_room;
            let x = left + k as f64 * slot;
            if c > 0.0 {
                s.push(Shape::Rect {
                    x: x + slot * 0.1,
                    y: hbottom - bh,
                    w: slot * 0.8,
                    h: bh,
                    fill: BAR,
                });
                if show_counts {
                    s.push(Shape::Text {
                        x: x + slot / 2.0,
                        y: hbottom - bh - 3.0,
                        size: 10.0,
                        anchor: Anchor::Middle,
                        text: counts[k].clone(),
                        color: INK,
                    });
                }
            }
        }
        // The edges of the bars, labelled with the size where a bar starts: every edge, or every
        // 2nd, 4th... when the labels would not fit side by side.
        let edges: Vec<(f64, String)> = (0..=n)
            .filter_map(|j| {
                let v = if j < n {
                    stats::hist_range(first + j).0
                } else {
                    stats::hist_range(last).1.checked_add(1)?
                };
                Some((left + j as f64 * slot, size_label(v)))
            })
            .collect();
        let widest = edges
            .iter()
            .map(|(_, t)| text_extent(10.0, t).0)
            .fold(0.0, f64::max);
        let mut step = 1;
        while (step as f64) * slot < widest + 8.0 && step < edges.len() {
            step *= 2;
        }
        for (j, (x, label)) in edges.into_iter().enumerate() {
            if j % step != 0 {
                continue;
            }
            s.push(Shape::Line {
                x1: x,
                y1: hbottom,
                x2: x,
                y2: hbottom + 4.0,
                color: INK,
                width: 1.0,
                dashed: false,
            });
            s.push(Shape::Text {
                x,
                y: hbottom + 15.0,
                size: 10.0,
                anchor: Anchor::Middle,
                text: label,
                color: INK,
            });
        }
    } else {
        s.push(Shape::Text {
            x: (left + right) / 2.0,
            y: (htop + hbottom) / 2.0,
            size: 12.0,
            anchor: Anchor::Middle,
            text: "no allocations".to_string(),
            color: INK,
        });
    }
    s.push(Shape::Line {
        x1: left,
        y1: hbottom,
        x2: right,
        y2: hbottom,
        color: INK,
        width: 1.0,
        dashed: false,
    });
    Figure { w, h, shapes: s }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c if (c as u32) < 0x20 => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn rgb(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub fn to_svg(f: &Figure) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#,
        w = f.w,
        h = f.h
    );
    let pts = |p: &[(f64, f64)]| {
        p.iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for s in &f.shapes {
        match s {
            Shape::Rect { x, y, w, h, fill } => {
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"/>"#,
                    rgb(*fill)
                );
            }
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                color,
                width,
                dashed,
            } => {
                let _ = writeln!(
                    o,
                    r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{}" stroke-width="{width}"{}/>"#,
                    rgb(*color),
                    if *dashed {
                        r#" stroke-dasharray="6,4""#
                    } else {
                        ""
                    }
                );
            }
            Shape::Area { pts: p, fill } => {
                let _ = writeln!(o, r#"<polygon points="{}" fill="{}"/>"#, pts(p), rgb(*fill));
            }
            Shape::Polyline {
                pts: p,
                color,
                width,
            } => {
                let _ = writeln!(
                    o,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"/>"#,
                    pts(p),
                    rgb(*color)
                );
            }
            Shape::Text {
                x,
                y,
                size,
                anchor,
                text,
                color,
            } => {
                let a = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let _ = writeln!(
                    o,
                    r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{a}" fill="{}">{}</text>"#,
                    rgb(*color),
                    esc(text)
                );
            }
        }
    }
    o.push_str("</svg>\n");
    o
}

// ---------------------------------------------------------------- PNG

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i] = c.0;
            self.px[i + 1] = c.1;
            self.px[i + 2] = c.2;
        }
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgb) {
        let (x0, y0) = (x.round() as i64, y.round() as i64);
        let (x1, y1) = ((x + w).round() as i64, (y + h).round() as i64);
        for yy in y0.max(0)..y1.min(self.h as i64) {
            for xx in x0.max(0)..x1.min(self.w as i64) {
                self.set(xx, yy, c);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, c: Rgb, width: f64, dashed: bool) {
        let len = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
        let steps = (len.ceil() as usize).max(1);
        let r = ((width - 1.0) / 2.0).max(0.0).round() as i64;
        for i in 0..=steps {
            if dashed && (i % 10) >= 6 {
                continue;
            }
            let t = i as f64 / steps as f64;
            let (x, y) = (
                (x1 + (x2 - x1) * t).round() as i64,
                (y1 + (y2 - y1) * t).round() as i64,
            );
            for dy in -r..=r {
                for dx in -r..=r {
                    self.set(x + dx, y + dy, c);
                }
            }
        }
    }

    /// Even-odd scanline fill.
    fn polygon(&mut self, pts: &[(f64, f64)], c: Rgb) {
        if pts.len() < 3 {
            return;
        }
        let ymin = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min)
            .max(0.0)
            .floor() as i64;
        let ymax = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max)
            .min(self.h as f64 - 1.0)
            .ceil() as i64;
        let mut xs: Vec<f64> = Vec::new();
        for y in ymin..=ymax {
            let yc = y as f64 + 0.5;
            xs.clear();
            for i in 0..pts.len() {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                if (a.1 <= yc && b.1 > yc) || (b.1 <= yc && a.1 > yc) {
                    xs.push(a.0 + (yc - a.1) / (b.1 - a.1) * (b.0 - a.0));
                }
            }
            xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
            for pair in xs.chunks(2) {
                if let [a, b] = pair {
                    for x in a.round() as i64..b.round() as i64 {
                        self.set(x, y, c);
                    }
                }
            }
        }
    }

    fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, text: &str, c: Rgb) {
        let scale = ((size / 10.0).round() as i64).max(1);
        let adv = 6 * scale;
        let width = text.chars().count() as i64 * adv;
        let mut cx = match anchor {
            Anchor::Start => x.round() as i64,
            Anchor::Middle => x.round() as i64 - width / 2,
            Anchor::End => x.round() as i64 - width,
        };
        let top = y.round() as i64 - 7 * scale;
        for ch in text.chars() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.set(cx + col * scale + dx, top + row as i64 * scale + dy, c);
                            }
                        }
                    }
                }
            }
            cx += adv;
        }
    }
}

pub fn to_png(f: &Figure) -> Vec<u8> {
    let mut cv = Canvas {
        w: f.w as usize,
        h: f.h as usize,
        px: vec![255; f.w as usize * f.h as usize * 3],
    };
    for s in &f.shapes {
        match s {
            Shape::Rect { x, y, w, h, fill } => cv.rect(*x, *y, *w, *h, *fill),
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                color,
                width,
                dashed,
            } => cv.line(*x1, *y1, *x2, *y2, *color, *width, *dashed),
            Shape::Area { pts, fill } => cv.polygon(pts, *fill),
            Shape::Polyline { pts, color, width } => {
                for w in pts.windows(2) {
                    cv.line(w[0].0, w[0].1, w[1].0, w[1].1, *color, *width, false);
                }
            }
            Shape::Text {
                x,
                y,
                size,
                anchor,
                text,
                color,
            } => cv.text(*x, *y, *size, *anchor, text, *color),
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, f.w, f.h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().expect("png header");
        wr.write_image_data(&cv.px).expect("png data");
    }
    out
}

/// 5x7 bitmap glyphs (bit 4 = leftmost column). Lower case is drawn as upper case.
fn glyph(c: char) -> [u8; 7] {
    let c = c.to_ascii_uppercase();
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        ';' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '\\' => [0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '*' => [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00],
        '\'' => [0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00],
        '"' => [0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x00, 0x00, 0x04],
        '?' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
        '&' => [0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D],
        '@' => [0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E],
        '~' => [0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00],
        ' ' => [0; 7],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::LogInfo;

    fn overlap(a: &[f64; 4], b: &[f64; 4]) -> bool {
        a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
    }

    /// Every text of the figure lies inside it and no two overlap, with the PNG's font and with
    /// an SVG viewer's.
    fn assert_legible(f: &Figure, what: &str) {
        let boxes: Vec<([f64; 4], &str)> = f
            .shapes
            .iter()
            .filter_map(|s| {
                let b = text_box(s)?;
                let Shape::Text { text, .. } = s else {
                    return None;
                };
                Some((b, text.as_str()))
            })
            .collect();
        for (b, t) in &boxes {
            assert!(
                b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= f.w as f64 && b[3] <= f.h as f64,
                "{what}: {t:?} leaves the {}x{} figure: {b:?}",
                f.w,
                f.h
            );
        }
        for (i, (a, ta)) in boxes.iter().enumerate() {
            for (b, tb) in &boxes[i + 1..] {
                assert!(!overlap(a, b), "{what}: {ta:?} {a:?} overlaps {tb:?} {b:?}");
            }
        }
    }

    fn stats(hist: &[(usize, u64)], peak: u64) -> Stats {
        let mut st = Stats::new(true);
        for &(k, n) in hist {
            st.hist[k] = n;
            st.alloc_blocks += n;
        }
        st.peak_bytes = peak;
        st.peak_seq = 1234567;
        st.peak_t = 1_500_000_000;
        for i in 0..2000u64 {
            st.by_time.record(i * 1_000_000, (i * 7919) % peak.max(1));
            st.by_seq.record(i * 1000, (i * 7919) % peak.max(1));
        }
        st
    }

    #[test]
    fn labels_are_legible() {
        let info = LogInfo {
            headers: vec![
                (
                    "program".into(),
                    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java-with-a-rather-long-name-indeed/and/more/of/it"
                        .into(),
                ),
                ("pid".into(), "4194304".into()),
            ],
            ..Default::default()
        };
        // Sizes from 0 bytes to 1 GiB, counts from 1 to over a million: the labels that ran
        // together (`<=256K<=512K`) in the first version of the plot.
        let wide: Vec<(usize, u64)> = (0..=31)
            .map(|k| (k, 1 + (k as u64 * 7919 * 13) % 1_234_567))
            .collect();
        let narrow = [(5, 12), (6, 1_000_000), (7, 3)];
        let one = [(0, 1)];
        for (w, h) in [(1000, 640), (800, 500), (1600, 900), (640, 480)] {
            for (name, hist) in [
                ("wide", &wide[..]),
                ("narrow", &narrow[..]),
                ("one", &one[..]),
            ] {
                for x in [XAxis::Time, XAxis::Events] {
                    let st = stats(hist, 3 << 30);
                    let f = figure(&st, &info, x, w, h);
                    assert_legible(&f, &format!("{name} {w}x{h} {x:?}"));
                }
            }
        }
    }
}
