//! show_alloc_mem_ex and show_alloc_mem_ex_cmd: the dump of a heap with known blocks
//! (hexdump compared with `hexdump -C`), every command and bad ones, 100 dumps from a signal
//! handler while threads allocate, gdb calling both on a stopped program.
mod common;

use common::{Run, compile, fresh_dir, lib, require, run};
use std::time::Duration;

/// The blocks printed by dump_ex_known on stderr: name -> address.
fn addrs(stderr: &str) -> std::collections::HashMap<String, String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ADDR "))
        .map(|l| {
            let (n, a) = l.split_once(' ').unwrap();
            (n.to_string(), a.to_string())
        })
        .collect()
}

/// The bytes of the TINY block of dump_ex_known.
fn tiny_bytes() -> Vec<u8> {
    let mut v = b"Hello, ft_malloc!\n".to_vec();
    v.extend(0..30u8);
    v
}

/// `hexdump -C` of `bytes` (the tool when installed, else our reference).
fn hexdump_c(bytes: &[u8]) -> String {
    let dir = fresh_dir("hexdump_ref");
    let f = dir.join("bytes");
    std::fs::write(&f, bytes).unwrap();
    if let Some(h) = common::which("hexdump") {
        let o = Run::new(h).no_preload().arg("-C").arg(&f).go();
        o.assert_success();
        return o.stdout;
    }
    let mut s = String::new();
    for (i, c) in bytes.chunks(16).enumerate() {
        s += &format!("{:08x}  ", i * 16);
        for j in 0..16 {
            s += &match c.get(j) {
                Some(b) => format!("{b:02x} "),
                None => "   ".into(),
            };
            if j == 7 {
                s.push(' ');
            }
        }
        s += " |";
        s.extend(c.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        s += "|\n";
    }
    s + &format!("{:08x}\n", bytes.len())
}

/// Lines of `out` after the line equal to `first`, `n` of them.
fn after<'a>(out: &'a str, first: &str, n: usize) -> Vec<&'a str> {
    let v: Vec<&str> = out.lines().collect();
    let i = v
        .iter()
        .position(|l| *l == first)
        .unwrap_or_else(|| panic!("no line {first:?} in\n{out}"));
    v[i + 1..(i + 1 + n).min(v.len())].to_vec()
}

/// The legend under hexdumps that mark canary bytes.
const LEGEND: &str = "  (~ marks canary bytes: written by ft_malloc around the requested size, not the program's data)";

/// A hexdump row at `off` of `n` canary bytes: each marked with `~` after its hex digits and
/// shown as `~` in the text column.
#[track_caller]
fn assert_canary_row(row: &str, off: &str, n: usize) {
    assert!(row.starts_with(&format!("{off}  ")), "{row}");
    assert_eq!(row.matches('~').count(), 2 * n, "{row}");
    assert!(row.ends_with(&format!("|{}|", "~".repeat(n))), "{row}");
}

fn upper(a: &str) -> String {
    format!("0x{}", a.trim_start_matches("0x").to_uppercase())
}

#[test]
fn show_alloc_mem_ex_known_blocks() {
    let o = run("dump_ex_known", &["ex"], &[("MALLOC_DEBUG", "1,noleaks")]);
    o.assert_success();
    let a = addrs(&o.stderr);
    let out = &o.stdout;
    // Classic line of the TINY block, then details, then the hexdump of its 48 known bytes,
    // then the canary after them, marked, and the legend of the mark.
    let t = u64::from_str_radix(a["tiny"].trim_start_matches("0x"), 16).unwrap();
    let classic = format!("{} - 0x{:X} : 48 bytes", upper(&a["tiny"]), t + 48);
    let lines = after(out, &classic, 7);
    let d = lines[0];
    assert!(
        d.starts_with("  used, 48 bytes requested, ") && d.contains(" usable, #1 malloc() thread "),
        "{d}"
    );
    // The caller named as reports name a frame: module+offset and function+offset.
    assert!(d.contains("dump_ex_known") && d.contains(" main+0x"), "{d}");
    assert!(d.ends_with(", canary ok"), "{d}");
    let want = hexdump_c(&tiny_bytes());
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(lines[1..4], want[..3], "hexdump -C layout\n{out}");
    assert_canary_row(lines[4], "00000030", 16);
    assert_eq!(lines[5], "00000040");
    assert_eq!(lines[6], LEGEND, "{out}");
    assert_eq!(
        out.lines().filter(|l| *l == LEGEND).count(),
        1,
        "one legend per dump\n{out}"
    );
    // SMALL: 1000 bytes of 0xAB, first 64 shown (hexdump=64 default), repeated lines starred.
    let s = u64::from_str_radix(a["small"].trim_start_matches("0x"), 16).unwrap();
    let lines = after(
        out,
        &format!("{} - 0x{:X} : 1000 bytes", upper(&a["small"]), s + 1000),
        4,
    );
    assert_eq!(
        lines[1],
        "00000000  ab ab ab ab ab ab ab ab  ab ab ab ab ab ab ab ab  |................|"
    );
    assert_eq!(lines[2], "*");
    assert_eq!(lines[3], "00000040");
    // The freed block is quarantined (MALLOC_DEBUG=1), shown in parentheses with its free.
    let f = u64::from_str_radix(a["freed"].trim_start_matches("0x"), 16).unwrap();
    let lines = after(
        out,
        &format!("({} - 0x{:X} : 64 bytes)", upper(&a["freed"]), f + 64),
        1,
    );
    assert!(
        lines[0].starts_with("  quarantined, 64 bytes requested")
            && lines[0].contains(", freed #5 thread "),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(", fill ok"), "{}", lines[0]);
    assert!(out.contains("LARGE : 0x"), "{out}");
    assert!(out.lines().any(|l| l == "Total : 201048 bytes"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Stats : live 201048 bytes in 3 blocks, peak ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "Calls : malloc 4 free 1, failed 0"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "  131072 - 262143 : 1"), "{out}");
    let ev = after(out, "Last events (5 of 5):", 5);
    // No log: the events go by number, untimed.
    assert!(
        ev[0].starts_with("  #1 tid ") && ev[0].contains(" malloc(48) = "),
        "{ev:?}"
    );
    assert!(
        ev[4].starts_with("  #5 ") && ev[4].contains(&format!(" free({}) [64 bytes]", a["freed"])),
        "{ev:?}"
    );
    assert!(!out.contains("heap busy"));
}

/// With a log, the events the dump shows carry their time, as the log's records do.
#[test]
fn events_are_timed_when_a_log_is_written() {
    let dir = fresh_dir("dump_timed");
    let debug = format!("1,noleaks,log={}/d.log", dir.display());
    let o = run(
        "dump_ex_known",
        &["ex"],
        &[("MALLOC_DEBUG", debug.as_str())],
    );
    o.assert_success();
    let ev = after(&o.stdout, "Last events (5 of 5):", 5);
    let t = ev[0]
        .strip_prefix("  #1 t=")
        .and_then(|r| r.split_once("us tid "))
        .map(|(us, _)| us.parse::<u64>());
    assert!(matches!(t, Some(Ok(_))), "{ev:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Threads number their events in batches; a block's events still come in the order they
/// happened. A block that thread A allocated, thread B (whose numbers lag behind A's) freed, and
/// A allocated again is listed malloc, free, malloc: without thread caches, and with them (the
/// block comes back to A through its cache once B has exited). The dump's header counts every
/// event.
#[test]
fn a_blocks_events_keep_their_order_across_threads() {
    for (debug, arg) in [("1,quarantine=0,noleaks", None), ("stats", Some("exit"))] {
        let o = run(
            "events_across_threads",
            arg.as_slice(),
            &[("MALLOC_DEBUG", debug)],
        );
        o.assert_success();
        let out = &o.stdout;
        let block = out
            .lines()
            .find_map(|l| l.strip_prefix("BLOCK "))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(out.contains("AGAIN same"), "{debug}: {out}");
        let head = out
            .lines()
            .find(|l| l.starts_with("Last events ("))
            .unwrap_or_else(|| panic!("{out}"));
        // Every call counted ("Calls : malloc 13 calloc 2 free 11, failed 0"), though the
        // numbers have gaps.
        let calls: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("Calls : "))
            .and_then(|l| l.split(',').next())
            .unwrap_or_else(|| panic!("{out}"))
            .split_whitespace()
            .filter_map(|w| w.parse::<u64>().ok())
            .sum();
        assert!(
            calls > 20 && head.ends_with(&format!(" of {calls}):")),
            "{head}\n{out}"
        );
        let events: Vec<(u64, &str, &str)> = out
            .lines()
            .skip_while(|l| *l != "=== log")
            .filter_map(|l| l.strip_prefix("  #"))
            .filter(|l| l.contains(block))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let op = w[3].split('(').next().unwrap();
                (w[0].parse().unwrap(), w[2], op)
            })
            .collect();
        let ops: Vec<&str> = events.iter().map(|e| e.2).collect();
        assert_eq!(ops, ["malloc", "free", "malloc"], "{debug}: {out}");
        assert!(
            events[0].0 < events[1].0 && events[1].0 < events[2].0,
            "{events:?}"
        );
        // Freed by the other thread.
        assert!(
            events[0].1 == events[2].1 && events[0].1 != events[1].1,
            "{events:?}"
        );
    }
}

#[test]
fn hexdump_all_shows_whole_blocks() {
    let o = run(
        "dump_ex_known",
        &["ex"],
        &[("MALLOC_DEBUG", "canary,hexdump=all")],
    );
    o.assert_success();
    // The 200000-byte block entirely, then the first 16 bytes of its canary.
    let v: Vec<&str> = o.stdout.lines().collect();
    let i = v
        .iter()
        .position(|l| l.starts_with("00030d40  "))
        .unwrap_or_else(|| panic!("no row 00030d40:\n{}", o.stdout));
    assert_canary_row(v[i], "00030d40", 16);
    assert_eq!(v[i + 1], "00030d50", "{}", o.stdout);
}

#[test]
fn every_command_and_bad_ones() {
    let o = run("dump_ex_known", &["cmd"], &[("MALLOC_DEBUG", "1,noleaks")]);
    o.assert_success();
    let a = addrs(&o.stderr);
    let out = &o.stdout;
    // The output of each command, keyed by the command.
    let mut sec: Vec<(String, Vec<String>)> = vec![];
    for l in out.lines() {
        if let Some(c) = l.strip_prefix("=== ") {
            sec.push((c.to_string(), vec![]));
        } else if let Some(last) = sec.last_mut() {
            last.1.push(l.to_string());
        }
    }
    let get = |c: &str| -> &Vec<String> {
        &sec.iter()
            .find(|(k, _)| k == c)
            .unwrap_or_else(|| panic!("no section {c:?}:\n{out}"))
            .1
    };
    assert!(
        get("help")[0].starts_with("show_alloc_mem_ex_cmd commands:") && get("help").len() == 8
    );
    let h = get(&format!("hexdump {}", a["tiny"]));
    assert!(
        h[0].starts_with(&format!("block {} - ", a["tiny"])) && h[0].ends_with(": 48 bytes, TINY"),
        "{h:?}"
    );
    assert_eq!(h[2..].join("\n") + "\n", hexdump_c(&tiny_bytes()));
    let t = u64::from_str_radix(a["tiny"].trim_start_matches("0x"), 16).unwrap();
    let h = get(&format!("hexdump 0x{:x} 8", t + 7));
    assert_eq!(
        h[2],
        "00000007  66 74 5f 6d 61 6c 6c 6f                           |ft_mallo|"
    );
    assert_eq!(h[3], "0000000f");
    // Past the requested size, into the canary: marked, and the legend said.
    let h = get(&format!("hexdump 0x{t:x} 64"));
    assert_eq!(
        h[2..5].join("\n") + "\n",
        hexdump_c(&tiny_bytes())
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    );
    assert_canary_row(&h[5], "00000030", 16);
    assert_eq!(h[6], "00000040");
    assert_eq!(h[7], LEGEND);
    let b = get(&format!("block 0x{:x}", t + 3));
    assert_eq!(
        b[2],
        format!("history of {} (events still in the ring):", a["tiny"])
    );
    assert!(
        b[3].starts_with("  #1 ") && b[3].contains(&format!("malloc(48) = {}", a["tiny"])),
        "{b:?}"
    );
    let l = u64::from_str_radix(a["large"].trim_start_matches("0x"), 16).unwrap();
    let h = get(&format!("hexdump 0x{:x} 40", l + 100000));
    assert_eq!(
        h[2],
        "000186a0  4c 4c 4c 4c 4c 4c 4c 4c  4c 4c 4c 4c 4c 4c 4c 4c  |LLLLLLLLLLLLLLLL|"
    );
    assert_eq!(h.last().unwrap(), "000186c8");
    let lg = get("log 5");
    assert!(
        lg[0].starts_with("Last events (5 of ") && lg.len() == 6,
        "{lg:?}"
    );
    assert!(get("stats")[0].starts_with("Stats : live "));
    assert!(get("stats")[1].starts_with("Calls : malloc "));
    assert_eq!(
        get("check"),
        &vec!["check: 5 blocks verified, 0 problems".to_string()]
    );
    assert!(get("leaks")[0].starts_with("leaks: "));
    // Bad commands and addresses: one error line each.
    for (c, e) in [
        (
            "frobnicate",
            "error: unknown command 'frobnicate' (try \"help\")",
        ),
        ("hexdump", "error: hexdump needs an address (0x...)"),
        ("hexdump nothex", "error: bad address 'nothex'"),
        (
            "hexdump 0x0",
            "error: 0x0 is not inside a block of ft_malloc",
        ),
        (
            "hexdump 0xffffffffffffffff",
            "error: 0xffffffffffffffff is not inside a block of ft_malloc",
        ),
        (
            "hexdump 0x99999999999999999999",
            "error: bad address '0x99999999999999999999'",
        ),
        (
            "block 0x10",
            "error: 0x10 is not inside a block of ft_malloc",
        ),
        ("log x", "error: bad count 'x'"),
    ] {
        assert_eq!(get(c), &vec![e.to_string()], "command {c:?}");
    }
    assert_eq!(get("")[0], "error: empty command (try \"help\")");
    let stack = get(&format!("hexdump {}", a["stack"]));
    assert_eq!(
        stack,
        &vec![format!(
            "error: {} is not inside a block of ft_malloc",
            a["stack"]
        )]
    );
    let bad_len = get(&format!("hexdump {} zz", a["tiny"]));
    assert_eq!(bad_len, &vec!["error: bad length 'zz'".to_string()]);
    assert!(out.contains("show_alloc_mem_ex_cmd: no command (try \"help\")\n"));
    assert_eq!(out.lines().last(), Some("OK"));
}

#[test]
fn dump_from_signal_handler_100_times_while_threads_allocate() {
    let o = Run::new(compile("dump_from_signal"))
        .env("MALLOC_DEBUG", "1,dump_signal=SIGUSR2,hexdump=0,noleaks")
        .timeout(Duration::from_secs(120))
        .go();
    o.assert_success();
    assert!(o.stderr.contains("DONE"), "{}", o.describe());
    // Where reports go (stderr here), never into the program's output.
    let dumps = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("Total : "))
        .count();
    assert_eq!(dumps, 100, "one dump per signal");
    assert_eq!(
        o.stderr
            .lines()
            .filter(|l| l.starts_with("Last events ("))
            .count(),
        100
    );
    assert_eq!(o.stdout, "", "{}", o.describe());
}

/// dump_at_exit and dump_signal write where reports go: stderr, or the report= file; the
/// program's stdout keeps only its own output.
#[test]
fn dumps_go_where_reports_go() {
    let o = run(
        "leak_free_program",
        &[],
        &[("MALLOC_DEBUG", "1,noleaks,dump_at_exit")],
    );
    o.assert_success();
    assert_eq!(o.stdout, "node 9 some value\nOK\n", "{}", o.describe());
    assert!(
        o.stderr.lines().any(|l| l.starts_with("Total : ")),
        "{}",
        o.describe()
    );
    let dir = fresh_dir("dump_report");
    let report = dir.join("r.txt");
    let o = run(
        "leak_free_program",
        &[],
        &[(
            "MALLOC_DEBUG",
            &format!("1,noleaks,dump_at_exit,report={}", report.display()),
        )],
    );
    o.assert_success();
    assert_eq!(o.stdout, "node 9 some value\nOK\n", "{}", o.describe());
    assert!(!o.stderr.contains("Total : "), "{}", o.describe());
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.lines().any(|l| l.starts_with("Total : ")), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("Stats : live ")),
        "{text}"
    );
    // A signal's dump, in the report file too.
    let report = dir.join("s.txt");
    let o = Run::new(compile("dump_from_signal"))
        .env(
            "MALLOC_DEBUG",
            format!(
                "1,dump_signal=USR2,hexdump=0,noleaks,report={}",
                report.display()
            ),
        )
        .timeout(Duration::from_secs(120))
        .go();
    o.assert_success();
    assert_eq!(o.stdout, "", "{}", o.describe());
    assert!(!o.stderr.contains("Total : "), "{}", o.describe());
    // (One dump per signal is the test above's; on a loaded machine signals to a thread that
    // is still dumping coalesce.)
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.lines().filter(|l| l.starts_with("Total : ")).count() > 50,
        "{text}"
    );
}

#[test]
fn gdb_calls_the_dump_on_a_stopped_program() {
    let Some(gdb) = require("gdb") else { return };
    let exe = compile("dump_gdb");
    let o = Run::new(gdb)
        .no_preload()
        .args(["-batch", "-nx", "-ex", "set startup-with-shell off"])
        .arg("-ex")
        .arg(format!("set environment LD_PRELOAD={}", lib().display()))
        .args([
            "-ex",
            "set environment MALLOC_DEBUG=1,noleaks",
            "-ex",
            "break stop_here",
            "-ex",
            "run",
        ])
        .args([
            "-ex",
            "call show_alloc_mem_ex()",
            "-ex",
            "call show_alloc_mem_ex_cmd(dump_cmd)",
        ])
        .args([
            "-ex",
            "call show_alloc_mem_ex_cmd(log_cmd)",
            "-ex",
            "continue",
        ])
        .arg(&exe)
        .timeout(Duration::from_secs(120))
        .go();
    let out = &o.stdout;
    if out.contains("ptrace: Operation not permitted")
        || o.stderr.contains("ptrace: Operation not permitted")
    {
        println!("skipped: ptrace not permitted");
        return;
    }
    assert!(out.contains("Total : "), "{}", o.describe());
    assert!(
        out.contains("|gdb sees this bl|"),
        "hexdump of the block named by dump_cmd:\n{out}"
    );
    assert!(out.contains("Last events (3 of "), "{out}");
    assert!(out.contains("exited normally"), "{}", o.describe());
}

#[test]
fn dump_without_debugging() {
    let dir = fresh_dir("dump_plain");
    let o = Run::new(compile("dump_ex_known")).arg("cmd").cwd(&dir).go();
    o.assert_success();
    assert!(
        o.stdout
            .contains("log: no event ring (MALLOC_DEBUG is not set)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("Calls : not counted (MALLOC_DEBUG is not set)"),
        "{}",
        o.stdout
    );
}
