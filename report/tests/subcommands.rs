//! The reader's subcommands on hand-written logs with known contents.

mod common;
use common::*;

/// Known log (see the comments for what each event does to the heap).
fn known_events() -> Vec<&'static str> {
    vec![
        "E 1 1000 100 malloc 0x0 0x1000 24 0 0x55d0c0001169", // A
        "E 2 2000 100 malloc 0x0 0x2000 100 0 0x55d0c0001200", // B, leaked
        "E 3 3000 101 calloc 0x0 0x3000 50 0 0x55d0c0001300", // C
        "E 4 4000 100 free 0x1000 0x0 24 0 0x55d0c0001400",   // A freed
        "E 5 5000 100 malloc 0x0 0x4000 1000 0 0x55d0c0001500", // D: peak 1150 here
        "E 6 6000 100 free 0x4000 0x0 1000 0 0x55d0c0001510", // D freed right away: temporary
        "E 7 7000 100 realloc 0x3000 0x5000 80 0 0x55d0c0001600", // C moved to E, leaked
        "E 8 8000 100 malloc 0x0 0x0 999999999 0 0x55d0c0001700", // failed
        "E 9 9000 100 malloc 0x0 0x6000 7 0 0x55d0c0001800,0x55d0c0001900", // F, leaked
        "E 10 10000 100 malloc 0x0 0x6010 7 0 0x55d0c0001800,0x55d0c0001900", // F, leaked
        "E 11 11000 100 free 0x1000 0x0 0 0 0x55d0c0001a00",  // refused (double free of A)
        "E 12 12000 100 malloc 0x0 0x7000 5 0 0x55d0c0001b00", // G
        "E 13 13000 100 realloc 0x7000 0x0 0 0 0x55d0c0001c00", // realloc(G, 0): G freed
    ]
}

fn known_log(events: &[&str]) -> String {
    let mut s = String::from(HEADER);
    s.push_str(
        "M 0x55d0c0000000 /tmp/a.out\nM 0x7f3a10000000 /usr/lib/x86_64-linux-gnu/libc.so.6\n",
    );
    for e in events {
        s.push_str(e);
        s.push('\n');
    }
    s
}

fn check_summary(out: &str) {
    assert!(out.contains("program    /tmp/a.out (pid 31337)"), "{out}");
    assert!(out.contains("duration   0.000013 s"), "{out}");
    assert!(out.contains("2 threads"), "{out}");
    assert!(out.contains("calls      13 in all"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["malloc", "7", "(1", "failed)"]),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["calloc", "1"]),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["realloc", "2"]),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["free", "3"]),
        "{out}"
    );
    assert!(out.contains("allocated  1273 bytes in 8 blocks"), "{out}");
    assert!(
        out.contains("peak       1150 bytes in 3 blocks, at event #5 (t=0.000005 s)"),
        "{out}"
    );
    assert!(
        out.contains("at end     194 bytes in 4 blocks still live"),
        "{out}"
    );
    assert!(out.contains("temporary  1 blocks"), "{out}");
    // histogram, in the library's buckets (ft_format::bucket): 5,7,7 in 4-7; 24 in 16-31;
    // 50 in 32-63; 80,100 in 64-127; 1000 in 512-1023
    let hist = |range: &str| -> u64 {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(range))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {range} bucket in\n{out}"))
            .parse()
            .unwrap()
    };
    assert_eq!(hist("4-7"), 3);
    assert_eq!(hist("16-31"), 1);
    assert_eq!(hist("32-63"), 1);
    assert_eq!(hist("64-127"), 2);
    assert_eq!(hist("512-1023"), 1);
}

#[test]
fn summary() {
    let d = tmpdir("summary");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let r = ok(&["summary", log.to_str().unwrap()]);
    check_summary(&r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let b = ok(&["summary", "--brief", log.to_str().unwrap()]);
    assert_eq!(b.stdout.lines().count(), 1);
    assert!(
        b.stdout.contains("peak 1150 bytes in use at event #5"),
        "{}",
        b.stdout
    );
    assert!(
        b.stdout.contains("194 bytes in 4 blocks live at the end"),
        "{}",
        b.stdout
    );
}

#[test]
fn out_of_order_lines_are_sorted_by_seq() {
    let d = tmpdir("order");
    let mut ev = known_events();
    ev.swap(2, 3); // free of A written before the calloc
    ev.swap(4, 5); // free of D written before its malloc
    let log = write(&d, "shuffled.log", known_log(&ev).as_bytes());
    check_summary(&ok(&["summary", log.to_str().unwrap()]).stdout);
    let h = ok(&["history", log.to_str().unwrap(), "0x4000"]).stdout;
    let seqs: Vec<&str> = h
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seqs, ["#5", "#6"], "{h}");
}

/// Two process images in one file (an exec in place appends the second): their seq numbers
/// and stack ids both start at 1. Only the last image is read: its program, its leak, its
/// stack, no corrupt record and nothing out of order; a note names the image before it.
#[test]
fn an_exec_in_place_is_read_from_its_own_image() {
    let image = |program: &str, pid: u32, frame: &str, ptr: &str, size: u32| {
        format!(
            "# ft_malloc log v2\n# program {program}\n# pid {pid}\n# ppid 1\n# page_size 4096\n\
             # start_ns 5123456789\nM 0x55d0c0000000 {program}\nS 1 {frame}\n\
             E 1 10 - m 1000 24 @1\nE 2 20 - f 1000 24 @1\nE 3 30 - m {ptr} {size} @1\n"
        )
    };
    let first = image("/usr/bin/env", 4242, "0x55d0c0001169", "2000", 100);
    let second = image(
        "/usr/bin/prog",
        4242,
        "0x55d0c0002222,0x55d0c0003333",
        "9000",
        777,
    );
    let d = tmpdir("exec-in-place");
    let log = write(&d, "exec.log", format!("{first}\n{second}").as_bytes());
    let r = ok(&["summary", log.to_str().unwrap()]);
    let out = &r.stdout;
    assert!(out.contains("program    /usr/bin/prog (pid 4242)"), "{out}");
    assert!(out.contains("calls      3 in all"), "{out}");
    assert!(
        out.contains(
            "note: the file holds 2 process images of this pid (an exec in place appends to it): \
             /usr/bin/env before this one; only the last is read"
        ),
        "{out}"
    );
    assert!(
        out.contains(" 3 events, 0 corrupt)") && !out.contains("out of seq order"),
        "{out}"
    );
    let l = ok(&["--no-symbols", "leaks", log.to_str().unwrap()]).stdout;
    assert!(l.contains("777 bytes in 1 block"), "{l}");
    assert!(!l.contains("100 bytes"), "{l}");
    assert!(l.contains("0x55d0c0003333") || l.contains("+0x3333"), "{l}");
    // Read from a pipe, the images cannot be told apart: said.
    let o = std::process::Command::new(BIN)
        .args(["summary", "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("read from a pipe as one"), "{out}");
}

#[test]
fn stdin_is_read_with_dash() {
    let d = tmpdir("stdin");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let o = std::process::Command::new(BIN)
        .args(["summary", "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    check_summary(&String::from_utf8_lossy(&o.stdout));
}

#[test]
fn leaks_grouped_by_site_sorted_by_bytes() {
    let d = tmpdir("leaks");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let out = ok(&["leaks", log.to_str().unwrap()]).stdout;
    // No debug info for /tmp/a.out: module+offset; the whole stack of F.
    assert_eq!(
        out.split_once("\n\n").unwrap().1,
        "LEAK 100 bytes in 1 block (100 bytes each) at /tmp/a.out+0x1200\n\
         \x20   first block 0x2000, allocated at event #2\n\
         \x20   at /tmp/a.out+0x1200\n\
         \n\
         LEAK 80 bytes in 1 block (80 bytes each) at /tmp/a.out+0x1600\n\
         \x20   first block 0x5000, allocated at event #7\n\
         \x20   at /tmp/a.out+0x1600\n\
         \n\
         LEAK 14 bytes in 2 blocks (7 bytes each) at /tmp/a.out+0x1800\n\
         \x20   first block 0x6000, allocated at event #9\n\
         \x20   at /tmp/a.out+0x1800\n\
         \x20   by /tmp/a.out+0x1900\n",
        "{out}"
    );
    assert!(
        out.starts_with(&format!(
            "Leaks in {} of /tmp/a.out (pid 31337): 194 bytes in 4 blocks never freed, from 3 stacks\n\n",
            log.display()
        )),
        "{out}"
    );
    let brief = ok(&["leaks", "--brief", log.to_str().unwrap()]).stdout;
    assert_eq!(
        brief,
        "194 bytes in 4 blocks never freed, from 3 stacks\n\
         \x20 100 bytes in 1 block at /tmp/a.out+0x1200\n\
         \x20 80 bytes in 1 block at /tmp/a.out+0x1600\n\
         \x20 14 bytes in 2 blocks at /tmp/a.out+0x1800\n"
    );
    let one = ok(&["leaks", "--limit", "1", log.to_str().unwrap()]).stdout;
    assert!(
        one.ends_with("\n(2 more stacks; --limit 0 shows all)\n"),
        "{one}"
    );
}

#[test]
fn top_sites() {
    let d = tmpdir("top");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let out = ok(&["top", log.to_str().unwrap()]).stdout;
    let section = |title: &str| -> Vec<String> {
        out.split("\n\n")
            .find(|s| s.contains(title))
            .unwrap_or_else(|| panic!("no {title} in\n{out}"))
            .lines()
            .skip(2)
            .map(str::to_string)
            .collect()
    };
    let calls = section("most allocation calls");
    assert!(
        calls[0].contains("/tmp/a.out+0x1800") && calls[0].split_whitespace().next() == Some("2"),
        "{out}"
    );
    let bytes = section("most bytes allocated");
    assert!(
        bytes[0].contains("1000") && bytes[0].contains("/tmp/a.out+0x1500"),
        "{out}"
    );
    let temp = section("most temporary");
    assert_eq!(temp.len(), 1, "{out}");
    assert!(temp[0].contains("/tmp/a.out+0x1500"), "{out}");
    let peak = section("largest at the peak");
    assert!(out.contains("(1150 bytes in 3 blocks at event #5"), "{out}");
    let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(cols(&peak[0])[..2], ["1000", "1"], "{out}");
    assert!(peak[0].ends_with("/tmp/a.out+0x1500"));
    assert_eq!(cols(&peak[1])[..2], ["100", "1"]);
    assert_eq!(cols(&peak[2])[..2], ["50", "1"]);
    assert_eq!(peak.len(), 3, "{out}");
    let only = ok(&["top", "--by", "peak", "-n", "1", log.to_str().unwrap()]).stdout;
    assert!(
        !only.contains("most allocation calls") && only.contains("largest at the peak"),
        "{only}"
    );
}

#[test]
fn history_of_a_freed_block() {
    let d = tmpdir("history");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    // An address inside block D (0x4000, 1000 bytes): its malloc and its free.
    let out = ok(&["history", log.to_str().unwrap(), "0x4010"]).stdout;
    let ev: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(ev.len(), 2, "{out}");
    assert!(
        ev[0].starts_with("#5 ") && ev[0].contains("malloc(1000) = 0x4000"),
        "{out}"
    );
    assert!(
        ev[1].starts_with("#6 ")
            && ev[1].contains("free(0x4000) of 1000 bytes")
            && ev[1].contains("block freed"),
        "{out}"
    );
    assert!(
        out.contains("at /tmp/a.out+0x1500") && out.contains("at /tmp/a.out+0x1510"),
        "{out}"
    );
    assert!(out.contains("no live block holds 0x4010"), "{out}");
    // Block A: malloc, free, then a refused double free.
    let out = ok(&["history", log.to_str().unwrap(), "0x1000"]).stdout;
    let ev: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(ev.len(), 3, "{out}");
    assert!(
        ev[2].starts_with("#11 ") && ev[2].contains("refused") && ev[2].contains("double free"),
        "{out}"
    );
    // Block C moved by realloc; the address of E is live at the end.
    let out = ok(&["history", log.to_str().unwrap(), "0x5004"]).stdout;
    assert!(
        out.contains("#7 ") && out.contains("is in a live block: 0x5000, 80 bytes"),
        "{out}"
    );
    // Addresses are hex, with or without 0x (as /proc/PID/maps and gdb show them).
    let out = ok(&["history", log.to_str().unwrap(), "123"]).stdout;
    assert!(out.contains("no event touched 0x123"), "{out}");
    let out = ok(&["history", log.to_str().unwrap(), "4010"]).stdout;
    assert!(
        out.contains("Events that touched 0x4010") && out.contains("malloc(1000) = 0x4000"),
        "{out}"
    );
    let bad = run(&["history", log.to_str().unwrap(), "zzz"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn heap_at_any_event() {
    let d = tmpdir("heap");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let l = log.to_str().unwrap();
    let plain = ok(&["heap", l, "--at", "3", "--plain"]).stdout;
    assert_eq!(
        plain,
        "0x1000 - 0x1018 : 24 bytes\n0x2000 - 0x2064 : 100 bytes\n0x3000 - 0x3032 : 50 bytes\nTotal : 174 bytes\n"
    );
    let at5 = ok(&["heap", l, "--at", "5"]).stdout;
    assert!(at5.contains("Live blocks after event #5"), "{at5}");
    assert!(
        at5.contains("0x4000 - 0x43E8 : 1000 bytes  #5 t=0.000005 s malloc /tmp/a.out+0x1500"),
        "{at5}"
    );
    assert!(at5.contains("Total : 1150 bytes in 3 blocks"), "{at5}");
    let end = ok(&["heap", l, "--plain"]).stdout;
    assert_eq!(
        end,
        "0x2000 - 0x2064 : 100 bytes\n0x5000 - 0x5050 : 80 bytes\n0x6000 - 0x6007 : 7 bytes\n0x6010 - 0x6017 : 7 bytes\nTotal : 194 bytes\n"
    );
    let past = ok(&["heap", l, "--at", "99"]).stdout;
    assert!(past.contains("The log ends at event #13"), "{past}");
    let zero = ok(&["heap", l, "--at", "0", "--plain"]).stdout;
    assert_eq!(zero, "Total : 0 bytes\n");
}

#[test]
fn corrupt_truncated_and_nul_tail() {
    let d = tmpdir("corrupt");
    let ev = known_events();
    let mut s = known_log(&ev[..5]);
    s.push_str("E 5x 1 2 malloc 0x0 0x10 1 0 0x1\n"); // line 14: bad seq
    s.push_str("E 6 6000 100 frobnicate 0x0 0x10 1 0 0x1\n"); // line 15: unknown op
    s.push_str("X a future record type\n"); // skipped, not corrupt
    s.push('\n');
    s.push_str("\u{1}\u{2}binary garbage\n"); // line 18
    for e in &ev[5..] {
        s.push_str(e);
        s.push('\n');
    }
    s.push_str("E 14 14000 100 malloc 0x0 0x8000 9 0 0x55d0c00"); // line 27: cut record
    let mut bytes = s.into_bytes();
    bytes.extend(std::iter::repeat_n(0u8, 5000)); // NUL tail of a killed run
    let log = write(&d, "crashed.log", &bytes);
    let r = ok(&["summary", log.to_str().unwrap()]);
    // Same result as the clean log; the cut record is not counted.
    assert!(
        r.stdout
            .contains("at end     194 bytes in 4 blocks still live"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("log cut short") || r.stdout.contains("cut record"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("(27 lines, 13 events, 4 corrupt)"),
        "{}",
        r.stdout
    );
    for n in [14, 15, 18, 27] {
        assert!(
            r.stderr
                .contains(&format!("crashed.log:{n}: corrupt record skipped")),
            "line {n}: {}",
            r.stderr
        );
    }
    assert!(
        !r.stderr.contains(":16:") && !r.stderr.contains(":17:"),
        "{}",
        r.stderr
    );
    // --quiet: counted, not printed.
    let q = ok(&["--quiet", "leaks", log.to_str().unwrap()]);
    assert!(q.stderr.is_empty(), "{}", q.stderr);
    assert!(
        q.stdout.contains("194 bytes in 4 blocks never freed"),
        "{}",
        q.stdout
    );
    assert!(
        q.stdout.contains("note: 4 corrupt records were skipped"),
        "{}",
        q.stdout
    );
    // A partial record followed by NULs, then records again (a reserved slot never written).
    let mut b2 = known_log(&ev[..3]).into_bytes();
    b2.extend_from_slice(b"E 4 4000 100 fr");
    b2.extend(std::iter::repeat_n(0u8, 64));
    for e in &ev[4..] {
        b2.extend_from_slice(e.as_bytes());
        b2.push(b'\n');
    }
    let log2 = write(&d, "hole.log", &b2);
    let r2 = ok(&["heap", "--plain", log2.to_str().unwrap()]);
    // The free of A (seq 4) was lost: A stays live.
    assert!(
        r2.stdout.starts_with("0x1000 - 0x1018 : 24 bytes\n"),
        "{}",
        r2.stdout
    );
    assert!(
        r2.stderr
            .contains("hole.log:12: corrupt record skipped (record cut short)"),
        "{}",
        r2.stderr
    );
}

#[test]
fn every_prefix_of_a_log_is_read_without_panic() {
    let d = tmpdir("prefixes");
    let full = known_log(&known_events()).into_bytes();
    let first_line = full.iter().position(|&b| b == b'\n').unwrap();
    for cut in (0..full.len()).step_by(7) {
        let p = write(&d, "cut.log", &full[..cut]);
        for cmd in [
            &["summary"][..],
            &["leaks"],
            &["top"],
            &["heap", "--at", "4"],
        ] {
            let mut args: Vec<&str> = cmd.to_vec();
            args.insert(1, p.to_str().unwrap());
            let r = run(&args);
            if cut > first_line {
                assert!(r.status.success(), "{args:?} at cut {cut}: {}", r.stderr);
            } else {
                // Cut before the end of its first line: not yet a log; said so, no panic.
                assert_eq!(
                    r.status.code(),
                    Some(1),
                    "{args:?} at cut {cut}: {}",
                    r.stderr
                );
                assert!(
                    r.stderr.contains("is empty")
                        || r.stderr.contains("ends inside its first line"),
                    "{args:?} at cut {cut}: {}",
                    r.stderr
                );
            }
        }
    }
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let r = run(&["summary", "/nonexistent/x.log"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        r.stderr.contains("cannot read /nonexistent/x.log"),
        "{}",
        r.stderr
    );
}

#[test]
fn plot_svg_and_png() {
    let d = tmpdir("plot");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let svg = d.join("mem.svg");
    ok(&["plot", log.to_str().unwrap(), svg.to_str().unwrap()]);
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(
        s.starts_with("<?xml") && s.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{s}"
    );
    assert!(s.trim_end().ends_with("</svg>"));
    assert!(
        s.contains("<polygon") && s.contains("peak 1150 bytes"),
        "{s}"
    );
    // Well-formed enough: every element opened is closed.
    assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
    let svg2 = d.join("events.svg");
    ok(&[
        "plot",
        "--x",
        "events",
        log.to_str().unwrap(),
        svg2.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&svg2)
            .unwrap()
            .contains("events (seq)")
    );

    let png = d.join("mem.png");
    ok(&[
        "plot",
        "--width",
        "800",
        "--height",
        "500",
        log.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    let b = std::fs::read(&png).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&b[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(b[16..20].try_into().unwrap()), 800);
    assert_eq!(u32::from_be_bytes(b[20..24].try_into().unwrap()), 500);
    assert!(b.ends_with(b"IEND\xaeB`\x82"));

    let bad = run(&[
        "plot",
        log.to_str().unwrap(),
        d.join("x.gif").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    // An empty log still gives a figure.
    let empty = write(&d, "empty.log", HEADER.as_bytes());
    ok(&[
        "plot",
        empty.to_str().unwrap(),
        d.join("empty.svg").to_str().unwrap(),
    ]);
}

#[test]
fn generated_log_reads_consistently() {
    let d = tmpdir("gen");
    let log = d.join("synthetic.log");
    ok(&[
        "gen",
        log.to_str().unwrap(),
        "--events",
        "200000",
        "--seed",
        "7",
    ]);
    let r = ok(&["--speed", "summary", log.to_str().unwrap()]);
    assert!(
        r.stdout
            .contains("(200009 lines, 200000 events, 0 corrupt)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("M events/s"), "{}", r.stderr);
    // leaks' total equals the live bytes of the summary and of heap's replay.
    let live: u64 = ok(&["heap", "--plain", log.to_str().unwrap()])
        .stdout
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("Total : ")
        .trim_end_matches(" bytes")
        .parse()
        .unwrap();
    assert!(
        r.stdout.contains(&format!("({live} bytes) in"))
            || r.stdout.contains(&format!("{live} bytes in")),
        "{live}\n{}",
        r.stdout
    );
}

/// Only ft_malloc logs are read: the first line says what a file is. Anything else is refused
/// with the reason and a non-zero status (it used to read as an empty log: "0 bytes in 0
/// blocks never freed").
#[test]
fn what_is_not_a_log_is_refused() {
    let d = tmpdir("not-a-log");
    let empty = write(&d, "b4.mtrace", b"");
    let passwd = write(
        &d,
        "passwd",
        b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/sh\n",
    );
    let newer = write(&d, "v3.log", b"# ft_malloc log v3\nE 1 1 1 m 10 1 0x1\n");
    let headless = write(&d, "headless.log", b"E 1 1 1 malloc 0x0 0x10 1 0 0x1\n");
    for cmd in ["summary", "leaks", "top", "heap"] {
        let r = run(&[cmd, empty.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1), "{cmd}: {}", r.stdout);
        assert_eq!(
            r.stderr,
            format!(
                "ft-malloc-report: {} is empty: not an ft_malloc log (a log starts with `# ft_malloc log v2`; the program may have ended before the library wrote it)\n",
                empty.display()
            )
        );
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        let r = run(&[cmd, passwd.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1), "{cmd}: {}", r.stdout);
        assert_eq!(
            r.stderr,
            format!(
                "ft-malloc-report: {} is not an ft_malloc log: its first line is `root:x:0:0:root:/root:/bin/bash`, where a log starts with `# ft_malloc log v2` (or `= Start` for log_format=mtrace)\n",
                passwd.display()
            )
        );
        let r = run(&[cmd, newer.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1));
        assert!(r.stderr.contains("is a log of format v3"), "{}", r.stderr);
        let r = run(&[cmd, headless.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1));
        assert!(r.stderr.contains("is not an ft_malloc log"), "{}", r.stderr);
    }
    let r = run(&[
        "plot",
        passwd.to_str().unwrap(),
        d.join("p.svg").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        !d.join("p.svg").exists(),
        "a figure of nothing was left behind"
    );
}

/// mtrace logs (the library's `log_format=mtrace`, and glibc's own mtrace) are read: callers
/// `module:[0xoffset]` are symbolized in their module, realloc pairs `<`/`>` move a block, a
/// free ends one whatever its size.
#[test]
fn mtrace_logs_are_read() {
    let d = tmpdir("mtrace");
    let exe = d.join("leak prog");
    cc(&c_src("leak.c"), &exe, &[]);
    let base = nm(&exe, "make_name");
    let main = nm(&exe, "main");
    let text = format!(
        "= Start\n\
         @ {e}:[0x{a:x}] + 0x55d0c0001000 0xd\n\
         @ {e}:[0x{a:x}] + 0x55d0c0001020 0xd\n\
         @ {e}:[0x{m:x}] + 0x55d0c0002000 0x3e8\n\
         @ {e}:[0x{m:x}] < 0x55d0c0002000\n\
         @ {e}:[0x{m:x}] > 0x55d0c0003000 0x7d0\n\
         @ /usr/lib/x86_64-linux-gnu/libc.so.6:(_IO_file_doallocate+0x94)[0x7f3a1a4758cc] + 0x55d0c0004000 0x400\n\
         @ {e}:[0x{m:x}] - 0x55d0c0003000\n\
         @ {e}:[0x{m:x}] ! 0x55d0c0001020 0xfffffffff\n\
         + 0x55d0c0005000 0x10\n\
         - 0x55d0c0005000\n\
         = End\n",
        e = exe.display(),
        a = base + 4,
        m = main + 4
    );
    let log = write(&d, "prog.mtrace", text.as_bytes());
    let l = log.to_str().unwrap();
    let s = ok(&["summary", l]).stdout;
    assert!(
        s.contains("program    ? (an mtrace log names no program)"),
        "{s}"
    );
    assert!(s.contains("format     mtrace"), "{s}");
    assert!(s.contains("allocated  4066 bytes in 6 blocks"), "{s}");
    assert!(
        s.contains("peak       3050 bytes in 4 blocks, at event #5\n"),
        "{s}"
    );
    assert!(
        s.contains("at end     1050 bytes in 3 blocks still live"),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["realloc", "2", "(1", "failed)"]),
        "{s}"
    );
    let r = ok(&["leaks", l]);
    let src = c_src("leak.c");
    let line = line_of(&src, "static char *make_name");
    assert!(
        r.stdout
            .contains("1050 bytes in 3 blocks never freed, from 2 stacks"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "LEAK 26 bytes in 2 blocks (13 bytes each) at make_name ({src}:{line})\n    \
             first block 0x55d0c0001000, allocated at event #1\n    \
             at make_name ({src}:{line})\n",
            src = src.display()
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("0x7f3a1a4758cc"), "{}", r.stdout);
    let h = ok(&["history", l, "55d0c0002010"]).stdout;
    assert!(h.contains("block moved by realloc"), "{h}");
    let h = ok(&["history", l, "0x55d0c0003000"]).stdout;
    assert!(h.contains("free(0x55d0c0003000)  [block freed]"), "{h}");
    let png = d.join("m.png");
    ok(&["plot", l, png.to_str().unwrap()]);
    // A cut record and garbage are corrupt lines, as in the text format.
    let bad = write(
        &d,
        "bad.mtrace",
        b"= Start\n@ [0x1] + 0x10 0x8\n@ [0x1] ? 0x10\n@ nowhere + 0x20 0x8\n@ [0x1] + 0x30",
    );
    let r = ok(&["summary", bad.to_str().unwrap()]);
    assert!(
        r.stdout.contains("(5 lines, 1 events, 3 corrupt)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("unknown tag"), "{}", r.stderr);
}

/// A plot that cannot be written says so (it used to say `cannot read`), before reading the log.
#[test]
fn plot_names_a_write_failure() {
    let d = tmpdir("plot-write");
    let log = write(&d, "known.log", known_log(&known_events()).as_bytes());
    let r = run(&["plot", log.to_str().unwrap(), "/nonexistent/x.svg"]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        r.stderr,
        "ft-malloc-report: cannot write /nonexistent/x.svg: No such file or directory (os error 2)\n"
    );
    let r = run(&[
        "plot",
        "/nonexistent/in.log",
        d.join("y.svg").to_str().unwrap(),
    ]);
    assert!(
        r.stderr.contains("cannot read /nonexistent/in.log"),
        "{}",
        r.stderr
    );
    assert!(!d.join("y.svg").exists());
}

/// Two threads' lines written in two long runs (as each thread fills a chunk of the file of its
/// own), 120,000 events apart in seq order: every free still meets its malloc.
#[test]
fn chunks_of_busy_threads_are_put_back_in_order() {
    let d = tmpdir("chunks");
    let n = 60_000u64;
    let mut s = String::from(HEADER);
    for (tid, first, base) in [(100u64, 1u64, 0x1000_0000u64), (101, 2, 0x9000_0000)] {
        // Thread `tid` has every other seq from `first`: malloc, then free of the same block.
        for k in 0..n {
            let seq = first + 4 * k;
            let p = base + 0x40 * k;
            s.push_str(&format!(
                "E {seq} {seq} {tid} malloc 0x0 {p:#x} 24 0 0x1000\n"
            ));
            let seq = seq + 2;
            s.push_str(&format!(
                "E {seq} {seq} {tid} free {p:#x} 0x0 24 0 0x1000\n"
            ));
        }
    }
    let log = write(&d, "chunks.log", s.as_bytes());
    let out = ok(&["summary", log.to_str().unwrap()]).stdout;
    assert!(out.contains("240000 events"), "{out}");
    assert!(!out.contains("seq order"), "{out}");
    assert!(!out.contains("not live blocks"), "{out}");
    assert!(
        out.contains("at end     0 bytes in 0 blocks still live"),
        "{out}"
    );
}
