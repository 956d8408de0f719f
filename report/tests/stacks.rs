//! Whole call stacks in the log (docs/LOGFORMAT.md, "Stacks"): the three forms of an event's
//! last field (a caller, a frame list, `@<id>` with an `S` record before or after it), grouping
//! by whole stack, `--frames`, the site named by its first frame outside the C/C++ runtime,
//! the calls inlined at a frame expanded, `flame` as collapsed stacks and as an SVG, and the
//! stderr filter on the library's frame lines.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A log in all three forms: stack 7 (a libc frame, then site 0x1169) by reference with its
/// `S` record after every event naming it, and once as a frame list; stack 9 (the same libc
/// frame first, site 0x1300) with its record after the first event naming it; one event with
/// a caller alone.
fn three_forms(with_s7: bool) -> String {
    let mut s = String::from(HEADER);
    s.push_str("M 0x55d0c0000000 /tmp/a.out\nM 0x7f3a10000000 /nonexistent/libc.so.6\n");
    s.push_str(
        "E 1 1000 100 malloc 0x0 0x1000 24 0 @7\n\
         E 2 1100 100 malloc 0x0 0x2000 100 0 @9\n\
         S 9 0x7f3a1009a040,0x55d0c0001300,0x55d0c0001240\n\
         E 3 1200 101 malloc 0x0 0x3000 24 0 0x7f3a1009a040,0x55d0c0001169,0x55d0c0001240\n\
         E 4 1300 101 malloc 0x0 0x4000 50 0 0x55d0c0001400\n\
         E 5 1400 100 free 0x4000 0x0 50 0 @9\n\
         E 6 1500 100 malloc 0x0 0x5000 10 0 @7\n",
    );
    if with_s7 {
        s.push_str("S 7 0x7f3a1009a040,0x55d0c0001169,0x55d0c0001240\n");
    }
    s
}

#[test]
fn leaks_group_by_whole_stack_in_every_form() {
    let d = tmpdir("stacks-leaks");
    let log = write(&d, "forms.log", three_forms(true).as_bytes());
    let l = log.to_str().unwrap();
    let r = ok(&["leaks", l]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Stack 7 by reference (before its record) and as a frame list: one group. Stack 9 has the
    // same first frame: a group of its own. The libc frame is not the site.
    assert_eq!(
        r.stdout,
        format!(
            "Leaks in {l} of /tmp/a.out (pid 31337): 158 bytes in 4 blocks never freed, from 2 stacks\n\
             \n\
             LEAK 100 bytes in 1 block (100 bytes each) at /tmp/a.out+0x1300\n\
             \x20   first block 0x2000, allocated at event #2\n\
             \x20   at /nonexistent/libc.so.6+0x9a040\n\
             \x20   by /tmp/a.out+0x1300\n\
             \x20   by /tmp/a.out+0x1240\n\
             \n\
             LEAK 58 bytes in 3 blocks (10 to 24 bytes) at /tmp/a.out+0x1169\n\
             \x20   first block 0x1000, allocated at event #1\n\
             \x20   at /nonexistent/libc.so.6+0x9a040\n\
             \x20   by /tmp/a.out+0x1169\n\
             \x20   by /tmp/a.out+0x1240\n"
        )
    );
    // --frames: that many frames per stack, and how many more there are.
    let one = ok(&["leaks", "--frames", "1", l]).stdout;
    assert!(
        one.ends_with(
            "LEAK 58 bytes in 3 blocks (10 to 24 bytes) at /tmp/a.out+0x1169\n\
             \x20   first block 0x1000, allocated at event #1\n\
             \x20   at /nonexistent/libc.so.6+0x9a040\n\
             \x20      (2 more frames)\n"
        ),
        "{one}"
    );
    let summary = ok(&["summary", l]).stdout;
    assert!(
        summary.contains("\nstacks     3 distinct, 3 frames deep at most\n"),
        "{summary}"
    );
    let brief = ok(&["leaks", "--brief", l]).stdout;
    assert_eq!(
        brief,
        "158 bytes in 4 blocks never freed, from 2 stacks\n\
         \x20 100 bytes in 1 block at /tmp/a.out+0x1300\n\
         \x20 58 bytes in 3 blocks at /tmp/a.out+0x1169\n"
    );
}

/// An `@<id>` whose `S` record never comes is said to be unknown (its blocks still counted,
/// apart from every other stack); an `S` record giving an id other frames is a corrupt line.
#[test]
fn a_stack_without_its_record_and_a_conflicting_record() {
    let d = tmpdir("stacks-missing");
    let mut text = three_forms(false);
    text.push_str("S 9 0x7f3a1009a040\n");
    let log = write(&d, "missing.log", text.as_bytes());
    let l = log.to_str().unwrap();
    let r = ok(&["leaks", l]);
    let out = &r.stdout;
    assert!(
        out.contains(
            "note: 1 stack named by events has no S record in the log (shown as `stack @ID`)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("note: 1 corrupt records were skipped\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "LEAK 34 bytes in 2 blocks (10 to 24 bytes) at stack @7 (no S record in the log)\n\
             \x20   first block 0x1000, allocated at event #1\n\
             \x20   stack @7 (no S record in the log)\n"
        ),
        "{out}"
    );
    // The frame list of event 3 stays its own stack; stack 9 keeps its first definition.
    assert!(
        out.contains("LEAK 24 bytes in 1 block (24 bytes each) at /tmp/a.out+0x1169\n"),
        "{out}"
    );
    assert!(
        out.contains("    by /tmp/a.out+0x1300\n    by /tmp/a.out+0x1240\n"),
        "{out}"
    );
    assert!(
        r.stderr.contains(&format!(
            "{l}:16: corrupt record skipped (stack record: id already defined with other frames): S 9 0x7f3a1009a040"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn top_names_rows_by_site_and_lists_each_stack_once() {
    let d = tmpdir("stacks-top");
    let log = write(&d, "forms.log", three_forms(true).as_bytes());
    let l = log.to_str().unwrap();
    let out = ok(&["top", "--frames", "2", l]).stdout;
    let para = |title: &str| -> Vec<Vec<String>> {
        out.split("\n\n")
            .find(|p| p.contains(title))
            .unwrap_or_else(|| panic!("no {title} in\n{out}"))
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let rows = |v: &[&[&str]]| -> Vec<Vec<String>> {
        v.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    assert!(
        out.starts_with(&format!(
            "{l} of /tmp/a.out (pid 31337): 5 allocations, 208 bytes in all, from 3 stacks\n\n"
        )),
        "{out}"
    );
    assert_eq!(
        para("most allocation calls"),
        rows(&[
            &["3", "58", "0", "[1]", "/tmp/a.out+0x1169"],
            &["1", "100", "0", "[2]", "/tmp/a.out+0x1300"],
            &["1", "50", "1", "[3]", "/tmp/a.out+0x1400"],
        ]),
        "{out}"
    );
    assert_eq!(
        para("most bytes allocated"),
        rows(&[
            &["1", "100", "0", "[2]", "/tmp/a.out+0x1300"],
            &["3", "58", "0", "[1]", "/tmp/a.out+0x1169"],
            &["1", "50", "1", "[3]", "/tmp/a.out+0x1400"],
        ]),
        "{out}"
    );
    assert_eq!(
        para("most temporary"),
        rows(&[&["1", "50", "1", "[3]", "/tmp/a.out+0x1400"]]),
        "{out}"
    );
    assert!(
        out.contains(
            "Stacks largest at the peak (198 bytes in 4 blocks at event #4, t=0.000001 s):\n"
        ),
        "{out}"
    );
    assert_eq!(
        para("largest at the peak"),
        rows(&[
            &["100", "1", "50.5%", "[2]", "/tmp/a.out+0x1300"],
            &["50", "1", "25.3%", "[3]", "/tmp/a.out+0x1400"],
            &["48", "2", "24.2%", "[1]", "/tmp/a.out+0x1169"],
        ]),
        "{out}"
    );
    assert!(
        out.ends_with(
            "\n\nStacks (innermost frame first, 2 frames at most; --frames N):\n\
             [1]\n\
             \x20   at /nonexistent/libc.so.6+0x9a040\n\
             \x20   by /tmp/a.out+0x1169\n\
             \x20      (1 more frame)\n\
             [2]\n\
             \x20   at /nonexistent/libc.so.6+0x9a040\n\
             \x20   by /tmp/a.out+0x1300\n\
             \x20      (1 more frame)\n\
             [3]\n\
             \x20   at /tmp/a.out+0x1400\n"
        ),
        "{out}"
    );
}

#[test]
fn history_shows_each_events_stack() {
    let d = tmpdir("stacks-history");
    let log = write(&d, "forms.log", three_forms(true).as_bytes());
    let l = log.to_str().unwrap();
    let out = ok(&["history", l, "0x4000"]).stdout;
    assert_eq!(
        out,
        format!(
            "Events that touched 0x4000 in {l}:\n\
             #4          t=0.000001 s  tid 101  malloc(50) = 0x4000  [block allocated]\n\
             \x20       at /tmp/a.out+0x1400\n\
             #5          t=0.000001 s  tid 100  free(0x4000) of 50 bytes  [block freed]\n\
             \x20       at /nonexistent/libc.so.6+0x9a040\n\
             \x20       by /tmp/a.out+0x1300\n\
             \x20       by /tmp/a.out+0x1240\n\
             at the end of the log no live block holds 0x4000\n"
        )
    );
    let short = ok(&["history", "--frames", "2", l, "0x4000"]).stdout;
    assert!(
        short.contains("\x20       by /tmp/a.out+0x1300\n\x20          (1 more frame)\nat the end"),
        "{short}"
    );
}

#[test]
fn flame_collapsed_stacks_exact() {
    let d = tmpdir("stacks-flame");
    let log = write(&d, "forms.log", three_forms(true).as_bytes());
    let l = log.to_str().unwrap();
    // The live heap at its peak (event 4): stack 7 has 2 blocks (48 bytes) then.
    let peak = ok(&["flame", l]);
    assert_eq!(
        peak.stdout,
        "a.out+0x1240;a.out+0x1169;libc.so.6+0x9a040 48\n\
         a.out+0x1240;a.out+0x1300;libc.so.6+0x9a040 100\n\
         a.out+0x1400 50\n"
    );
    assert!(peak.stderr.is_empty(), "{}", peak.stderr);
    let all = ok(&["flame", "--all", l]).stdout;
    assert_eq!(
        all,
        "a.out+0x1240;a.out+0x1169;libc.so.6+0x9a040 58\n\
         a.out+0x1240;a.out+0x1300;libc.so.6+0x9a040 100\n\
         a.out+0x1400 50\n"
    );
    // A log without allocations: no line, and a graph that says so.
    let empty = write(&d, "empty.log", HEADER.as_bytes());
    assert_eq!(ok(&["flame", empty.to_str().unwrap()]).stdout, "");
    let svg = d.join("empty.svg");
    ok(&["flame", empty.to_str().unwrap(), svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert!(
        doc.descendants()
            .any(|n| n.text() == Some("no bytes to show"))
    );
    // Only .svg files are drawn.
    let bad = run(&["flame", l, d.join("f.png").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    assert!(!d.join("f.png").exists());
}

/// One drawn frame of a flame graph.
#[derive(Debug)]
struct Drawn {
    title: String,
    x: f64,
    y: f64,
    w: f64,
    label: Option<String>,
}

/// Parses the SVG with an XML parser: the root, the title texts, and each frame's rectangle.
fn frames_of(svg: &str) -> (Vec<String>, Vec<Drawn>) {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is not well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("width"), Some("1200"));
    let texts: Vec<String> = root
        .children()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect();
    let num = |n: roxmltree::Node, a: &str| -> f64 { n.attribute(a).unwrap().parse().unwrap() };
    let frames = root
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("frame"))
        .map(|g| {
            let title = g.children().find(|n| n.has_tag_name("title")).unwrap();
            let rect = g.children().find(|n| n.has_tag_name("rect")).unwrap();
            let label = g
                .children()
                .find(|n| n.has_tag_name("text"))
                .map(|t| t.text().unwrap_or("").to_string());
            Drawn {
                title: title.text().unwrap_or("").to_string(),
                x: num(rect, "x"),
                y: num(rect, "y"),
                w: num(rect, "width"),
                label,
            }
        })
        .collect();
    (texts, frames)
}

/// Frames at the same height, left to right.
fn levels(frames: &[Drawn]) -> Vec<Vec<&Drawn>> {
    let mut by_y: BTreeMap<i64, Vec<&Drawn>> = BTreeMap::new();
    for f in frames {
        by_y.entry(-(f.y * 10.0) as i64).or_default().push(f);
    }
    by_y.into_values()
        .map(|mut v| {
            v.sort_by(|a, b| a.x.total_cmp(&b.x));
            v
        })
        .collect()
}

/// Every frame's children lie within it and are no wider than it together; labels fit.
fn check_nesting(frames: &[Drawn]) {
    let lv = levels(frames);
    for k in 1..lv.len() {
        for c in &lv[k] {
            let parent = lv[k - 1]
                .iter()
                .find(|p| p.x - 0.02 <= c.x && c.x + c.w <= p.x + p.w + 0.02)
                .unwrap_or_else(|| panic!("{c:?} has no frame under it"));
            let sum: f64 = lv[k]
                .iter()
                .filter(|o| parent.x - 0.02 <= o.x && o.x + o.w <= parent.x + parent.w + 0.02)
                .map(|o| o.w)
                .sum();
            assert!(sum <= parent.w + 0.05, "{parent:?}: children {sum}");
        }
    }
    for f in frames {
        if let Some(l) = &f.label {
            // 7.23 px per character of the 12 px monospace font, 3 px of margin each side.
            assert!(
                l.chars().count() as f64 * 7.23 + 6.0 <= f.w + 0.01,
                "{l:?} overflows {f:?}"
            );
            let name = f.title.split_once(" (").unwrap().0;
            assert!(
                l == name || (l.ends_with("..") && name.starts_with(&l[..l.len() - 2])),
                "{l:?} is not {name:?} cut short"
            );
        }
    }
}

#[test]
fn flame_svg_is_valid_and_widths_are_bytes() {
    let d = tmpdir("stacks-svg");
    let log = write(&d, "forms.log", three_forms(true).as_bytes());
    let l = log.to_str().unwrap();
    let svg = d.join("peak.svg");
    let r = ok(&["flame", l, svg.to_str().unwrap()]);
    assert_eq!(
        r.stdout,
        format!(
            "wrote {}: flame graph of the live heap at its peak (3 stacks)\n",
            svg.display()
        )
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    let (texts, frames) = frames_of(&text);
    assert_eq!(
        texts[0],
        "Live heap at its peak: 198 bytes in 4 blocks at event #4"
    );
    // all; a.out+0x1240 (two stacks) and a.out+0x1400; 0x1169 and 0x1300; the libc frame above
    // each: 1 + 2 + 2 + 2 frames.
    assert_eq!(frames.len(), 7, "{frames:?}");
    let lv = levels(&frames);
    assert_eq!(lv.len(), 4);
    let root = lv[0][0];
    assert_eq!(root.title, "all (198 bytes, 100.00%)");
    assert!((root.w - 1180.0).abs() < 0.01, "{root:?}");
    // Widths are bytes: 148 and 50 of 198 at the first level, summing to the root's width.
    let w = |b: f64| b / 198.0 * 1180.0;
    let l1: Vec<(&str, f64)> = lv[1].iter().map(|f| (f.title.as_str(), f.w)).collect();
    assert_eq!(l1.len(), 2);
    assert_eq!(l1[0].0, "a.out+0x1240 (148 bytes, 74.75%)");
    assert_eq!(l1[1].0, "a.out+0x1400 (50 bytes, 25.25%)");
    assert!((l1[0].1 - w(148.0)).abs() < 0.01 && (l1[1].1 - w(50.0)).abs() < 0.01);
    assert!((l1[0].1 + l1[1].1 - root.w).abs() < 0.02);
    let l2: Vec<&str> = lv[2].iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        l2,
        [
            "a.out+0x1169 (48 bytes, 24.24%)",
            "a.out+0x1300 (100 bytes, 50.51%)"
        ]
    );
    assert!((lv[2][0].w + lv[2][1].w - lv[1][0].w).abs() < 0.02);
    assert!(
        lv[3]
            .iter()
            .all(|f| f.title.starts_with("libc.so.6+0x9a040 ("))
    );
    check_nesting(&frames);
    // Labels: whole where they fit.
    assert_eq!(root.label.as_deref(), Some("all"));
    assert_eq!(lv[1][0].label.as_deref(), Some("a.out+0x1240"));

    // A larger graph: every stack of a generated log, with --all.
    let generated = d.join("gen.log");
    ok(&[
        "gen",
        generated.to_str().unwrap(),
        "--events",
        "20000",
        "--form",
        "ref",
    ]);
    let svg2 = d.join("all.svg");
    ok(&[
        "flame",
        "--all",
        generated.to_str().unwrap(),
        svg2.to_str().unwrap(),
    ]);
    let (texts, frames) = frames_of(&std::fs::read_to_string(&svg2).unwrap());
    assert!(texts[0].starts_with("All allocations: "), "{texts:?}");
    assert!(frames.len() > 256, "{}", frames.len());
    check_nesting(&frames);

    // A frame too narrow for its name: the label is cut to fit and ends in `..`; the tooltip
    // keeps the whole name.
    let small = write(
        &d,
        "small.log",
        format!(
            "{HEADER}M 0x55d0c0000000 /tmp/a.out\n\
             E 1 10 1 malloc 0x0 0x1000 1000 0 @1\n\
             S 1 0x55d0c0001100\n\
             E 2 20 1 malloc 0x0 0x2000 40 0 0x55d0c0001200\n"
        )
        .as_bytes(),
    );
    let svg3 = d.join("small.svg");
    let r = ok(&["flame", small.to_str().unwrap(), svg3.to_str().unwrap()]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let (_, frames) = frames_of(&std::fs::read_to_string(&svg3).unwrap());
    check_nesting(&frames);
    let narrow = frames
        .iter()
        .find(|f| f.title.starts_with("a.out+0x1200 (40 bytes"))
        .unwrap();
    // 40 of 1040 bytes: 45.4 px, room for 5 characters.
    assert!(
        (narrow.w - 40.0 / 1040.0 * 1180.0).abs() < 0.01,
        "{narrow:?}"
    );
    assert_eq!(narrow.label.as_deref(), Some("a.o.."));
}

/// Logs generated in the three forms from the same events: the frame-list and the reference
/// forms (whose records of a quarter of the stacks come after events naming them) give the same
/// reports; the caller form the same summary, its stacks one frame deep.
#[test]
fn generated_logs_in_three_forms_agree() {
    let d = tmpdir("stacks-gen");
    let make = |form: &str| -> PathBuf {
        let p = d.join(format!("{form}.log"));
        ok(&[
            "gen",
            p.to_str().unwrap(),
            "--events",
            "50000",
            "--seed",
            "3",
            "--form",
            form,
        ]);
        p
    };
    let (caller, list, refs) = (make("caller"), make("list"), make("ref"));
    let text = std::fs::read_to_string(&refs).unwrap();
    // (The generator's stack j has id j + 1 in the log: its stack 1 is `@2`.)
    let first_ref = text.find(" @2\n").unwrap();
    let record = text.find("\nS 2 ").unwrap();
    assert!(record > first_ref, "the S record of stack 1 is not late");
    let same = |args: &[&str]| {
        let run_on = |p: &Path| {
            let mut a: Vec<&str> = vec!["--no-symbols"];
            a.extend(args);
            a.push(p.to_str().unwrap());
            ok(&a).stdout.replace(p.to_str().unwrap(), "LOG")
        };
        let (a, b) = (run_on(&list), run_on(&refs));
        assert_eq!(a, b, "{args:?}");
        a
    };
    let leaks = same(&["leaks"]);
    assert!(leaks.contains("from 256 stacks"), "{leaks}");
    same(&["top", "--frames", "16"]);
    same(&["flame"]);
    same(&["flame", "--all"]);
    // The same events in each (the first line counts the lines of the file: the S records).
    let body = |p: &Path| {
        let s = ok(&["summary", p.to_str().unwrap()])
            .stdout
            .replace(p.to_str().unwrap(), "LOG");
        let (stacks, rest): (Vec<&str>, Vec<&str>) =
            s.lines().skip(1).partition(|l| l.starts_with("stacks "));
        (stacks.join(""), rest.join("\n"))
    };
    let (c, l, r) = (body(&caller), body(&list), body(&refs));
    assert_eq!(c.1, l.1);
    assert_eq!(c.1, r.1);
    assert_eq!(c.0, "stacks     64 distinct, 1 frame deep at most");
    assert_eq!(l.0, "stacks     256 distinct, 16 frames deep at most");
    assert_eq!(r.0, l.0);
    let cl = ok(&["--no-symbols", "leaks", caller.to_str().unwrap()]).stdout;
    assert!(cl.contains("from 64 stacks"), "{cl}");
    // A quarter of the stacks start in libc: their site is the next frame, in the program.
    assert!(
        !leaks
            .lines()
            .any(|l| l.starts_with("LEAK ") && l.contains("libc")),
        "{leaks}"
    );
    assert!(leaks.contains("    at /usr/lib/x86_64-linux-gnu/libc.so.6+0x9a0"));
}

/// Real addresses of a program compiled with -g (stack_sites.c) and of two libc functions
/// standing for runtime frames: the site is the first frame in the program (named at its
/// file:line), two stacks with the same first frame stay apart, and so do two stacks with the
/// same site.
#[test]
fn site_skips_runtime_frames() {
    let d = tmpdir("stacks-sites");
    let src = c_src("stack_sites.c");
    let exe = d.join("stack sites");
    cc(&src, &exe, &["-ldl"]);
    let o = Command::new(&exe).output().unwrap();
    assert!(o.status.success());
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(printed.lines().last(), Some("OK"));
    let v: BTreeMap<&str, Vec<&str>> = printed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, rest)| (k, rest.splitn(2, ' ').collect()))
        .collect();
    let a = |k: &str| u64::from_str_radix(v[k][0].trim_start_matches("0x"), 16).unwrap();
    let libc_path = v["libc"][1];
    let (strdup, getdelim) = (a("strdup") + 0x10, a("getdelim") + 0x40);
    let log = format!(
        "{HEADER}M 0x{:x} {}\nM 0x{:x} {libc_path}\n\
         E 1 10 1 malloc 0x0 0x1000 100 0 @1\n\
         E 2 20 1 malloc 0x0 0x2000 100 0 @2\n\
         S 2 0x{strdup:x},0x{:x},0x{:x}\n\
         E 3 30 1 malloc 0x0 0x3000 100 0 0x{strdup:x},0x{:x},0x{:x}\n\
         E 4 40 1 malloc 0x0 0x4000 100 0 @2\n\
         E 5 50 1 malloc 0x0 0x5000 40 0 0x{:x}\n\
         S 1 0x{strdup:x},0x{getdelim:x},0x{:x},0x{:x}\n",
        a("exe"),
        exe.display(),
        a("libc"),
        a("copy_name"),
        a("main2"),
        a("copy_name"),
        a("main2"),
        a("next_token"),
        a("next_token"),
        a("main1"),
    );
    let p = write(&d, "sites.log", log.as_bytes());
    let r = ok(&["leaks", p.to_str().unwrap()]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let out = r.stdout;
    let s = src.display();
    let at = |marker: &str| format!("({s}:{})", line_of(&src, marker));
    let paras: Vec<&str> = out.split("\n\n").skip(1).collect();
    assert_eq!(paras.len(), 3, "{out}");
    let lines = |p: &str| p.lines().map(str::to_string).collect::<Vec<_>>();
    let copy = lines(paras[0]);
    assert_eq!(
        copy[0],
        format!(
            "LEAK 300 bytes in 3 blocks (100 bytes each) at copy_name {}",
            at("SITE-COPY-NAME")
        )
    );
    assert!(
        copy[2].starts_with("    at ")
            && copy[2].contains("strdup (")
            && copy[2].contains(libc_path),
        "{out}"
    );
    assert_eq!(
        copy[3],
        format!("    by copy_name {}", at("SITE-COPY-NAME"))
    );
    assert_eq!(copy[4], format!("    by main {}", at("SITE-MAIN-2")));
    assert_eq!(copy.len(), 5, "{out}");
    let next = lines(paras[1]);
    assert_eq!(
        next[0],
        format!(
            "LEAK 100 bytes in 1 block (100 bytes each) at next_token {}",
            at("SITE-NEXT-TOKEN")
        )
    );
    assert_eq!(next[2], copy[2], "the same first frame");
    assert!(
        next[3].starts_with("    by getdelim (") && next[3].contains(libc_path),
        "{out}"
    );
    assert_eq!(
        next[4..],
        [
            format!("    by next_token {}", at("SITE-NEXT-TOKEN")),
            format!("    by main {}", at("SITE-MAIN-1"))
        ]
    );
    // The same site from another stack (the caller alone) is a group of its own.
    let alone = lines(paras[2]);
    assert_eq!(
        alone,
        [
            format!(
                "LEAK 40 bytes in 1 block (40 bytes each) at next_token {}",
                at("SITE-NEXT-TOKEN")
            ),
            "    first block 0x5000, allocated at event #5".to_string(),
            format!("    at next_token {}", at("SITE-NEXT-TOKEN")),
        ]
    );
    // top and heap name rows by the site too; flame goes from main up to strdup.
    let top = ok(&["top", "--by", "bytes", p.to_str().unwrap()]).stdout;
    let row = top.lines().find(|l| l.contains("[1]")).unwrap();
    assert!(
        row.ends_with(&format!("copy_name {}", at("SITE-COPY-NAME"))),
        "{top}"
    );
    let heap = ok(&["heap", p.to_str().unwrap()]).stdout;
    assert!(
        heap.contains(&format!(
            "0x1000 - 0x1064 : 100 bytes  #1 t=0.000000 s malloc next_token {}",
            at("SITE-NEXT-TOKEN")
        )),
        "{heap}"
    );
    let flame = ok(&["flame", p.to_str().unwrap()]).stdout;
    let fl: Vec<&str> = flame.lines().collect();
    assert_eq!(fl.len(), 3, "{flame}");
    assert!(
        fl.iter()
            .any(|l| l.starts_with("main;copy_name;") && l.ends_with("strdup 300")),
        "{flame}"
    );
    assert!(
        fl.iter()
            .any(|l| l.starts_with("main;next_token;getdelim;") && l.ends_with("strdup 100")),
        "{flame}"
    );
    assert!(fl.contains(&"next_token 40"), "{flame}");
}

/// inline_alloc.c at -O2: malloc is called from a static inline helper inlined into its caller.
/// The reader lists the helper at its line, then `inlined into` the caller at the line of the
/// call, as `addr2line -i` does; so do flame (as frames of their own) and the stderr filter.
#[test]
fn inlined_helper_is_expanded() {
    let d = tmpdir("stacks-inline");
    let src = c_src("inline_alloc.c");
    let exe = d.join("inline_alloc");
    cc(&src, &exe, &["-O2"]);
    let log = d.join("inline.log");
    let r = run_preloaded(&exe, &[], &format!("log={},backtrace=4", log.display()));
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "alpha\nbeta\ngamma\nOK\n");
    let s = src.display();
    let at = |marker: &str| format!("({s}:{})", line_of(&src, marker));
    let l = log.to_str().unwrap();
    let out = ok(&["leaks", l]).stdout;
    let want = format!(
        "LEAK 17 bytes in 3 blocks (5 to 6 bytes) at dup_word {m}\n\
         \x20   first block ",
        m = at("INLINE-MALLOC")
    );
    assert!(out.contains(&want), "{want}\nnot in\n{out}");
    let frames = format!(
        "\x20   at dup_word {}\n\
         \x20      inlined into split_words {}\n\
         \x20   by main {}\n",
        at("INLINE-MALLOC"),
        at("INLINE-CALL"),
        at("MAIN-CALL")
    );
    assert!(out.contains(&frames), "{frames}\nnot in\n{out}");
    // The block's history shows the same frames.
    let text = std::fs::read_to_string(&log).unwrap();
    let (exe_base, first) = {
        let m = text
            .lines()
            .find(|l| l.starts_with("M ") && l.ends_with("/inline_alloc"))
            .expect("no module record of the program");
        let base = u64::from_str_radix(&m[4..m[2..].find(' ').unwrap() + 2], 16).unwrap();
        let e = text
            .lines()
            .find(|l| l.starts_with("E ") && l.split(' ').nth(6) == Some("6"))
            .unwrap();
        (base, e.split(' ').collect::<Vec<_>>())
    };
    // (Format v2: `E seq t tid m out size where`.)
    let h = ok(&["history", l, first[5]]).stdout;
    assert!(
        h.contains(&frames.replace("\x20   ", "\x20       ")),
        "{frames}\nnot in\n{h}"
    );
    // flame: the helper is a frame of its own, above its caller.
    let flame = ok(&["flame", l]).stdout;
    assert!(
        flame
            .lines()
            .any(|f| f.ends_with(";main;split_words;dup_word 17")),
        "{flame}"
    );
    // The stderr filter on the library's frame lines: the helper in place of module and
    // symbol, the caller on a line of its own under the same prefix.
    // Frame 0 of the event: the caller (or a frame list's first), or the first frame of the
    // S record the event names.
    let frame0 = match first[7].strip_prefix('@') {
        Some(id) => text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("S {id} ")))
            .expect("no S record for the event's stack"),
        None => first[7],
    };
    let ra = u64::from_str_radix(&frame0.split(',').next().unwrap()[2..], 16).unwrap();
    let input = format!(
        "ft_malloc[7]: ERROR: double free of 0x1000 (TINY, 6 bytes) in free()\n\
         ft_malloc[7]:   allocated by malloc() at #1, thread 7:\n\
         ft_malloc[7]:     #0 0x{ra:x} {e}+0x{off:x} split_words+0x2b\n\
         ft_malloc[7]:     #1 0x{ra:x} {e}+0x{off:x}\n\
         ft_malloc[7]:     #2 0x7f0000001000 /nonexistent/libc.so.6+0x1000 __libc_start_main+0x80\n\
         ft_malloc[7]:     #3 0x7f0000002000 0x7f0000002000\n\
         ft_malloc[7]:   allocated from {e}+0x{off:x}\n",
        e = exe.display(),
        off = ra - exe_base
    );
    let mut child = Command::new(BIN)
        .arg("symbolize")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let (m, c) = (at("INLINE-MALLOC"), at("INLINE-CALL"));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "ft_malloc[7]: ERROR: double free of 0x1000 (TINY, 6 bytes) in free()\n\
             ft_malloc[7]:   allocated by malloc() at #1, thread 7:\n\
             ft_malloc[7]:     #0 0x{ra:x} dup_word {m}\n\
             ft_malloc[7]:        inlined into split_words {c}\n\
             ft_malloc[7]:     #1 0x{ra:x} dup_word {m}\n\
             ft_malloc[7]:        inlined into split_words {c}\n\
             ft_malloc[7]:     #2 0x7f0000001000 /nonexistent/libc.so.6+0x1000 __libc_start_main+0x80\n\
             ft_malloc[7]:     #3 0x7f0000002000 0x7f0000002000\n\
             ft_malloc[7]:   allocated from dup_word {m}, inlined into split_words {c}\n"
        )
    );
}
