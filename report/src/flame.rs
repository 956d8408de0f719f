//! `flame`: bytes per call stack, as collapsed stacks and as a flame graph.
//!
//! Collapsed stacks are the text that flamegraph.pl, inferno and speedscope read: one line per
//! distinct stack, `root;caller;...;leaf VALUE`, the outermost frame first, frames named by
//! their function (the calls inlined at an address expanded into frames of their own), lines
//! sorted, stacks that name the same functions added together.
//!
//! The SVG is drawn here, with no external tool: one rectangle per frame of the merged call
//! tree, the root (`all`) at the bottom, children above their caller, sorted by name, each as
//! wide as its bytes; a frame narrower than [`MIN_WIDTH`] pixels is left out with everything
//! above it. Labels are cut to the width of their rectangle (monospace font, so the cut is
//! exact) and end in `..` when cut; every frame carries a tooltip (`<title>`) with its full
//! name, bytes and share. The program's frames are drawn in warm colours, the C/C++ runtime's
//! in blue.

use std::fmt::Write;

/// One frame of a collapsed stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub name: String,
    /// In a module of the C/C++ runtime (drawn in another colour).
    pub runtime: bool,
}

/// A collapsed stack: frames outermost first, and its value (bytes).
pub type Folded = (Vec<Frame>, u64);

/// A frame name as it may stand in a collapsed line: `;` separates frames there, and a line
/// ends at a newline.
pub fn clean(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Adds up stacks with the same frame names and sorts them by their line.
pub fn merge(stacks: Vec<Folded>) -> Vec<Folded> {
    let mut m: std::collections::BTreeMap<String, Folded> = Default::default();
    for (frames, v) in stacks {
        if v == 0 {
            continue;
        }
        let key = line_of(&frames);
        m.entry(key).or_insert((frames, 0)).1 += v;
    }
    m.into_values().collect()
}

fn line_of(frames: &[Frame]) -> String {
    let mut s = String::new();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(&f.name);
    }
    s
}

/// The collapsed text: `root;...;leaf VALUE\n` per stack.
pub fn collapsed(stacks: &[Folded]) -> String {
    let mut s = String::new();
    for (frames, v) in stacks {
        let _ = writeln!(s, "{} {v}", line_of(frames));
    }
    s
}

/// Layout of the SVG, in pixels.
pub const WIDTH: f64 = 1200.0;
const PAD_X: f64 = 10.0;
const FRAME_H: f64 = 16.0;
const TOP: f64 = 58.0;
const BOTTOM: f64 = 26.0;
const FONT: f64 = 12.0;
/// Advance of one character of the monospace font at [`FONT`] px (DejaVu Sans Mono: 0.602 em).
const CHAR_W: f64 = 7.23;
/// Frames narrower than this are not drawn (nor what is above them).
pub const MIN_WIDTH: f64 = 0.1;

struct Node {
    name: String,
    runtime: bool,
    value: u64,
    children: Vec<Node>,
}

impl Node {
    fn child(&mut self, f: &Frame) -> &mut Node {
        let i = match self
            .children
            .iter()
            .position(|c| c.name == f.name && c.runtime == f.runtime)
        {
            Some(i) => i,
            None => {
                self.children.push(Node {
                    name: f.name.clone(),
                    runtime: f.runtime,
                    value: 0,
                    children: Vec::new(),
                });
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }

    fn sort(&mut self) {
        self.children
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.runtime.cmp(&b.runtime)));
        for c in &mut self.children {
            c.sort();
        }
    }

    fn depth(&self) -> usize {
        1 + self.children.iter().map(Node::depth).max().unwrap_or(0)
    }
}

fn tree(stacks: &[Folded]) -> Node {
    let mut root = Node {
        name: "all".to_string(),
        runtime: false,
        value: 0,
        children: Vec::new(),
    };
    for (frames, v) in stacks {
        root.value += v;
        let mut n = &mut root;
        for f in frames {
            n = n.child(f);
            n.value += v;
        }
    }
    root.sort();
    root
}

/// `&`, `<`, `>`, `"` escaped for XML text and attributes.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

/// FNV-1a of a name: its colour stays the same from one graph to the next.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn colour(name: &str, runtime: bool, root: bool) -> String {
    if root {
        return "rgb(210,210,210)".to_string();
    }
    let h = hash(name);
    let v = |k: u32| ((h >> (k * 16)) & 0xffff) as f64 / 65535.0;
    if runtime {
        format!(
            "rgb({},{},{})",
            (80.0 + 60.0 * v(0)) as u8,
            (150.0 + 50.0 * v(1)) as u8,
            (200.0 + 55.0 * v(2)) as u8
        )
    } else {
        format!(
            "rgb({},{},{})",
            (205.0 + 50.0 * v(0)) as u8,
            (230.0 * v(1)) as u8,
            (55.0 * v(2)) as u8
        )
    }
}

/// The label of a frame `w` pixels wide: the name, or its start and `..` when it does not fit;
/// None when not even three characters fit.
pub fn label(name: &str, w: f64) -> Option<String> {
    let fit = ((w - 6.0) / CHAR_W).floor();
    if fit < 3.0 {
        return None;
    }
    let fit = fit as usize;
    let n = name.chars().count();
    if n <= fit {
        Some(name.to_string())
    } else {
        Some(name.chars().take(fit - 2).chain("..".chars()).collect())
    }
}

fn human(v: u64) -> String {
    crate::commands::human(v)
}

/// The flame graph of `stacks` as an SVG document: `title` on top, `subtitle` under it.
pub fn svg(stacks: &[Folded], title: &str, subtitle: &str) -> String {
    let root = tree(stacks);
    let depth = root.depth();
    let height = TOP + depth as f64 * FRAME_H + BOTTOM;
    let mut s = String::new();
    let _ = write!(
        s,
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"rgb(250,250,242)\"/>\n\
         <text x=\"{cx}\" y=\"24\" text-anchor=\"middle\" font-family=\"Verdana, DejaVu Sans, sans-serif\" font-size=\"17\">{t}</text>\n\
         <text x=\"{cx}\" y=\"44\" text-anchor=\"middle\" font-family=\"Verdana, DejaVu Sans, sans-serif\" font-size=\"12\" fill=\"rgb(80,80,80)\">{st}</text>\n",
        w = WIDTH,
        h = height,
        cx = WIDTH / 2.0,
        t = xml(title),
        st = xml(subtitle),
    );
    let _ = writeln!(
        s,
        "<g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"{FONT}\">"
    );
    if root.value == 0 {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no bytes to show</text>",
            WIDTH / 2.0,
            TOP + FRAME_H
        );
    } else {
        let scale = (WIDTH - 2.0 * PAD_X) / root.value as f64;
        draw(&mut s, &root, root.value, 0, PAD_X, scale, height, true);
    }
    s.push_str("</g>\n</svg>\n");
    s
}

#[allow(clippy::too_many_arguments)]
fn draw(
    s: &mut String,
    n: &Node,
    total: u64,
    depth: usize,
    x: f64,
    scale: f64,
    height: f64,
    root: bool,
) {
    let w = n.value as f64 * scale;
    if w < MIN_WIDTH {
        return;
    }
    let y = height - BOTTOM - (depth + 1) as f64 * FRAME_H;
    let pct = 100.0 * n.value as f64 / total as f64;
    let _ = write!(
        s,
        "<g class=\"frame\"><title>{} ({}, {:.2}%)</title><rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\" rx=\"2\" ry=\"2\"/>",
        xml(&n.name),
        human(n.value),
        pct,
        x,
        y,
        w,
        FRAME_H - 1.0,
        colour(&n.name, n.runtime, root)
    );
    if let Some(l) = label(&n.name, w) {
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>",
            x + 3.0,
            y + FRAME_H - 4.5,
            xml(&l)
        );
    }
    s.push_str("</g>\n");
    let mut cx = x;
    for c in &n.children {
        draw(s, c, total, depth + 1, cx, scale, height, false);
        cx += c.value as f64 * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: &str) -> Frame {
        Frame {
            name: n.to_string(),
            runtime: false,
        }
    }

    #[test]
    fn merge_and_collapse() {
        let stacks = vec![
            (vec![f("main"), f("b")], 5),
            (vec![f("main"), f("a")], 7),
            (vec![f("main"), f("b")], 1),
            (vec![f("main"), f("zero")], 0),
        ];
        assert_eq!(collapsed(&merge(stacks)), "main;a 7\nmain;b 6\n");
        assert_eq!(clean("a;b\nc"), "a:b c");
    }

    #[test]
    fn labels_fit_their_frame() {
        assert_eq!(label("main", 100.0).as_deref(), Some("main"));
        assert_eq!(label("main", 20.0), None);
        let l = label("a_rather_long_function_name", 60.0).unwrap();
        assert!(l.ends_with(".."), "{l}");
        assert!(6.0 + l.chars().count() as f64 * CHAR_W <= 60.0, "{l}");
        assert_eq!(xml("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
