//! The reader on logs written by the REAL libft_malloc.so (`MALLOC_DEBUG=log=PATH`), from small
//! C programs of known behaviour (tests/c/real_*.c, `cc -g -O0`): leaks at their file:line, the
//! history of a block used after free, the heap replayed at an event against show_alloc_mem at
//! the same point, and plots of a real log.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn build(name: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let src = c_src(&format!("{name}.c"));
    let exe = dir.join(name);
    cc(&src, &exe, &[]);
    (src, exe)
}

/// Runs `exe` with `MALLOC_DEBUG=log=LOG[,extra]`; expects exit 0 and a log with events.
fn logged_run(exe: &Path, log: &Path, extra: &str) -> Run {
    let debug = format!("log={}{extra}", log.display());
    let r = run_preloaded(exe, &[], &debug);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{} failed: {}\n{}",
        exe.display(),
        r.stdout,
        r.stderr
    );
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("no log {}: {e}\n{}", log.display(), r.stderr));
    assert!(text.starts_with("# ft_malloc log v2\n"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("E ")),
        "no event in the log:\n{text}"
    );
    r
}

/// The event lines of a log, split in fields (format v2: a malloc is `E seq t tid m out size where`).
fn events(log: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("E "))
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

/// (a) Planted leaks: `leaks LOG` names both sites at the function and line of the allocation
/// call, largest first, with the right counts, and nothing for the freed allocations.
#[test]
fn leaks_of_a_real_program_at_file_line() {
    let d = tmpdir("real-leaks");
    let (src, exe) = build("real_leak", &d);
    let log = d.join("leak.log");
    logged_run(&exe, &log, ",backtrace=4");
    let r = ok(&["leaks", log.to_str().unwrap()]);
    let out = &r.stdout;
    let small = line_of(&src, "LEAK-SMALL");
    let big = line_of(&src, "LEAK-BIG");
    let src = src.display();
    assert!(
        out.contains("1072 bytes in 4 blocks never freed, from 2 stacks"),
        "{out}"
    );
    let at_big = format!("at leak_big ({src}:{big})");
    let at_small = format!("at leak_small ({src}:{small})");
    let (ib, is) = (out.find(&at_big), out.find(&at_small));
    assert!(
        ib.is_some() && is.is_some(),
        "{at_big} / {at_small} missing:\n{out}"
    );
    assert!(ib < is, "sites not sorted by bytes:\n{out}");
    assert!(
        out.contains(&format!(
            "LEAK 1000 bytes in 1 block (1000 bytes each) {at_big}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "LEAK 72 bytes in 3 blocks (24 bytes each) {at_small}\n"
        )),
        "{out}"
    );
    // backtrace=4: the callers' frames too.
    assert!(out.contains(&format!("by main ({src}:")), "{out}");
    assert!(
        !out.contains("churn"),
        "a freed site reported as a leak:\n{out}"
    );
    // --brief, as the launcher's summary shows it.
    let r = ok(&["leaks", "--brief", log.to_str().unwrap()]);
    assert!(
        r.stdout
            .contains(&format!("1000 bytes in 1 block at leak_big ({src}:{big})")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "72 bytes in 3 blocks at leak_small ({src}:{small})"
        )),
        "{}",
        r.stdout
    );
}

/// (b) A block used after free: its history lists the malloc and the free, in that order, at
/// their file:line, from its start address and from an address inside it.
#[test]
fn history_of_a_block_used_after_free() {
    let d = tmpdir("real-uaf");
    let (src, exe) = build("real_uaf", &d);
    let log = d.join("uaf.log");
    let r = logged_run(&exe, &log, "");
    let addr = r.stdout.trim();
    assert!(addr.starts_with("0x"), "no address printed: {:?}", r.stdout);
    let a = u64::from_str_radix(&addr[2..], 16).unwrap();
    let malloc_line = line_of(&src, "UAF-MALLOC");
    let free_line = line_of(&src, "UAF-FREE");
    let src = src.display();
    for probe in [
        format!("0x{a:x}"),
        format!("0x{:x}", a + 20),
        format!("{:x}", a + 35),
    ] {
        let h = ok(&["history", log.to_str().unwrap(), &probe]).stdout;
        let m = h.find(&format!("malloc(36) = 0x{a:x}  [block allocated]"));
        let f = h.find(&format!("free(0x{a:x}) of 36 bytes  [block freed]"));
        assert!(m.is_some() && f.is_some() && m < f, "{probe}:\n{h}");
        let at_m = h.find(&format!("at make_record ({src}:{malloc_line})"));
        let at_f = h.find(&format!("at drop_record ({src}:{free_line})"));
        assert!(at_m.is_some() && at_f.is_some(), "{probe}:\n{h}");
        assert!(m < at_m && at_m < f && f < at_f, "{probe}:\n{h}");
        assert!(h.contains("no live block holds"), "{probe}:\n{h}");
        // The other block (malloc(300)) is not in it.
        assert!(!h.contains("malloc(300)"), "{probe}:\n{h}");
    }
    // Just past the end of the block: not touched.
    let h = ok(&["history", log.to_str().unwrap(), &format!("0x{:x}", a + 36)]).stdout;
    assert!(!h.contains("make_record"), "{h}");
}

/// `0xSTART - 0xEND : N bytes` lines (either case), as a set of (start, size); checks END.
fn blocks(text: &str) -> BTreeSet<(u64, u64)> {
    let hex = |s: &str| {
        u64::from_str_radix(
            s.trim()
                .strip_prefix("0x")
                .or(s.trim().strip_prefix("0X"))?,
            16,
        )
        .ok()
    };
    let mut set = BTreeSet::new();
    for l in text.lines() {
        let Some((range, size)) = l.split_once(" : ") else {
            continue;
        };
        let Some((start, end)) = range.split_once(" - ") else {
            continue;
        };
        let (Some(start), Some(end)) = (hex(start), hex(end)) else {
            continue;
        };
        let size: u64 = size.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(end - start, size, "{l}");
        assert!(set.insert((start, size)), "block listed twice: {l}");
    }
    set
}

fn total(text: &str) -> u64 {
    let l = text
        .lines()
        .find(|l| l.starts_with("Total : "))
        .unwrap_or_else(|| panic!("no Total line:\n{text}"));
    l["Total : ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// (c) `heap LOG --at SEQ --plain` replays the same live blocks as show_alloc_mem printed at
/// the same point (SEQ: the event before the marker allocation that follows show_alloc_mem).
#[test]
fn heap_replay_matches_show_alloc_mem() {
    let d = tmpdir("real-heap");
    let (src, exe) = build("real_heap", &d);
    let marker: u64 = std::fs::read_to_string(&src)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("#define MARKER_SIZE "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log = d.join("heap.log");
    // log= alone: no canary or quarantine changing the blocks.
    let r = logged_run(&exe, &log, "");
    let shown = r
        .stdout
        .split_once("show_alloc_mem:\n")
        .unwrap_or_else(|| panic!("{}", r.stdout))
        .1;
    let ev = events(&log);
    let markers: Vec<&Vec<String>> = ev
        .iter()
        .filter(|e| e[4] == "m" && e[6] == marker.to_string())
        .collect();
    assert_eq!(
        markers.len(),
        1,
        "marker allocation not found once in the log"
    );
    let seq: u64 = markers[0][1].parse().unwrap();
    let want = blocks(shown);
    // Every kind of block is in it: tiny, small, large, realloc'd, calloc, aligned, the stdout buffer.
    assert!(want.len() >= 12, "{shown}");
    for size in [13, 200, 5000, 10000, 1 << 20, 300, 256, 100, 4096] {
        assert!(
            want.iter().any(|&(_, s)| s == size),
            "no {size}-byte block in show_alloc_mem:\n{shown}"
        );
    }
    let at = (seq - 1).to_string();
    let replay = ok(&["heap", log.to_str().unwrap(), "--at", &at, "--plain"]).stdout;
    assert_eq!(
        blocks(&replay),
        want,
        "heap --at {at} --plain:\n{replay}\nshow_alloc_mem:\n{shown}"
    );
    assert_eq!(total(&replay), total(shown), "{replay}\n{shown}");
    // The marker is live after its own event, and the non-plain listing has the same blocks.
    let after = blocks(
        &ok(&[
            "heap",
            log.to_str().unwrap(),
            "--at",
            &seq.to_string(),
            "--plain",
        ])
        .stdout,
    );
    assert_eq!(after.len(), want.len() + 1);
    assert!(after.iter().any(|&(_, s)| s == marker));
    let full = ok(&["heap", log.to_str().unwrap(), "--at", &at]).stdout;
    assert_eq!(blocks(&full), want, "{full}");
    assert!(
        full.contains(&format!("Live blocks after event #{at} ")),
        "{full}"
    );
}

/// (d) The plot of a real log: a well-formed SVG document whose root is <svg> (parsed by
/// python3's XML parser), and a PNG with the signature, an IHDR of the requested size, and
/// data the png crate decodes.
#[test]
fn plot_of_a_real_log_is_valid_svg_and_png() {
    let d = tmpdir("real-plot");
    let (_, exe) = build("real_heap", &d);
    let log = d.join("plot.log");
    logged_run(&exe, &log, "");
    let svg = d.join("mem.svg");
    let r = ok(&["plot", log.to_str().unwrap(), svg.to_str().unwrap()]);
    assert!(r.stdout.contains("wrote "), "{}", r.stdout);
    let script = "import sys, xml.etree.ElementTree as E\n\
                  r = E.parse(sys.argv[1]).getroot()\n\
                  print(r.tag, r.get('width'), r.get('height'), sum(1 for _ in r.iter()))";
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&svg)
        .output()
        .expect("python3");
    let parsed = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "SVG does not parse: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let f: Vec<&str> = parsed.split_whitespace().collect();
    assert_eq!(
        &f[..3],
        ["{http://www.w3.org/2000/svg}svg", "1000", "640"],
        "{parsed}"
    );
    assert!(
        f[3].parse::<u32>().unwrap() > 20,
        "an almost empty SVG: {parsed}"
    );

    for x in ["time", "events"] {
        let png = d.join(format!("mem-{x}.png"));
        ok(&[
            "plot",
            "--x",
            x,
            "--width",
            "900",
            "--height",
            "500",
            log.to_str().unwrap(),
            png.to_str().unwrap(),
        ]);
        let b = std::fs::read(&png).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(
            &b[8..16],
            b"\0\0\0\x0dIHDR",
            "first chunk is not a 13-byte IHDR"
        );
        let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
        assert_eq!((w, h), (900, 500));
        let mut rd = png::Decoder::new(std::io::Cursor::new(&b))
            .read_info()
            .expect("PNG header");
        let mut buf = vec![0; rd.output_buffer_size().unwrap()];
        let info = rd.next_frame(&mut buf).expect("PNG data");
        assert_eq!((info.width, info.height), (900, 500));
        // Not a blank image: more than one colour.
        let px = &buf[..info.buffer_size()];
        let first = &px[..3];
        assert!(px.chunks(3).any(|p| p != first), "a blank PNG");
        assert!(b.ends_with(b"IEND\xaeB`\x82"), "no IEND at the end");
    }
}
