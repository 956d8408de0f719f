//! The allocation log: a known sequence event for event, SIGKILL after N allocations,
//! a forked child's own file, glibc's mtrace script on log_format=mtrace, threads cancelled
//! while they allocate.
mod common;

use common::{Run, compile, fresh_dir, require, run};
use std::path::{Path, PathBuf};

/// One `E` record.
#[derive(Debug, Clone)]
struct Ev {
    seq: u64,
    t: u64,
    tid: u64,
    op: String,
    inp: u64,
    out: u64,
    size: u64,
    align: u64,
    frames: Vec<u64>,
}

/// Marks a stack id while the log is parsed (resolved into frames once every `S` is read).
const STACK_REF: u64 = 1 << 63;

fn hex(s: &str) -> u64 {
    u64::from_str_radix(
        s.strip_prefix("0x")
            .unwrap_or_else(|| panic!("not 0x hex: {s}")),
        16,
    )
    .unwrap()
}

/// Header keys, modules (base, path) and events (their stacks resolved) of a log; NUL bytes are
/// skipped, every other line must be a valid record.
type Parsed = (Vec<(String, String)>, Vec<(u64, String)>, Vec<Ev>);

fn parse(bytes: &[u8]) -> Parsed {
    let text: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    let text = String::from_utf8(text).expect("log is UTF-8");
    let (mut hdr, mut mods, mut evs) = (vec![], vec![], vec![]);
    let mut stacks = std::collections::HashMap::<u64, Vec<u64>>::new();
    for line in text.lines() {
        if line.is_empty() {
            continue; // filler: reserved space not written (yet)
        }
        if let Some(h) = line.strip_prefix("# ") {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            hdr.push((k.to_string(), v.to_string()));
        } else if let Some(m) = line.strip_prefix("M ") {
            let (b, p) = m.split_once(' ').expect("M base path");
            mods.push((hex(b), p.to_string()));
        } else if let Some(e) = line.strip_prefix("E ") {
            let e = common::event::parse(e).unwrap_or_else(|| panic!("bad event line {line:?}"));
            // `-`: the thread whose id is the pid of the header block above.
            let pid = hdr.iter().rev().find(|(k, _)| k == "pid");
            let main = pid.map_or(0, |(_, v)| v.parse().unwrap());
            evs.push(Ev {
                seq: e.seq,
                t: e.t_us,
                tid: e.tid.unwrap_or(main),
                op: e.op.name().to_string(),
                inp: e.inp,
                out: e.out,
                size: e.size,
                align: e.align,
                frames: match e.stack_id() {
                    Some(id) => vec![id.parse::<u64>().unwrap() | STACK_REF],
                    None => vec![hex(e.site)],
                },
            });
        } else if let Some(st) = line.strip_prefix("S ") {
            let (id, frames) = st.split_once(' ').expect("S id frames");
            stacks.insert(
                id.parse::<u64>().unwrap(),
                frames.split(',').map(hex).collect(),
            );
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    // `@ID` names the stack of the `S` record with that id, before or after the event.
    for e in &mut evs {
        if e.frames[0] & STACK_REF != 0 {
            let id = e.frames[0] & !STACK_REF;
            e.frames = stacks
                .get(&id)
                .unwrap_or_else(|| panic!("no S record for stack {id}"))
                .clone();
        }
    }
    (hdr, mods, evs)
}

fn read_log(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Base of the module whose path ends with `name`.
fn module_base(mods: &[(u64, String)], exe: &Path) -> u64 {
    let name = exe.file_name().unwrap().to_str().unwrap();
    mods.iter()
        .find(|(_, p)| p.ends_with(name))
        .unwrap_or_else(|| panic!("no M record for {name}: {mods:?}"))
        .0
}

fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[test]
fn known_sequence_event_for_event() {
    let dir = fresh_dir("dir_log_sequence");
    let spec = format!("log={}/seq.%p.log,backtrace=4", dir.display());
    let o = run("log_sequence", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    let p: Vec<u64> = (0..10)
        .map(|i| {
            let l = o
                .stdout
                .lines()
                .find(|l| l.starts_with(&format!("P{i} ")))
                .unwrap();
            let v = l.split(' ').nth(1).unwrap();
            if v == "(nil)" { 0 } else { hex(v) }
        })
        .collect();
    let logs = logs_in(&dir);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let bytes = read_log(&logs[0]);
    assert!(
        !bytes.contains(&0),
        "a normal exit trims the file to its content"
    );
    let (hdr, mods, evs) = parse(&bytes);
    let key = |k: &str| {
        hdr.iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no # {k}"))
    };
    assert_eq!(hdr[0], ("ft_malloc".to_string(), "log v2".to_string()));
    assert!(key("program").contains("log_sequence"), "{hdr:?}");
    let pid: u64 = key("pid").parse().unwrap();
    assert!(key("page_size").parse::<u64>().unwrap() >= 4096);
    assert!(key("debug").contains("backtrace=4"));
    let exe = compile("log_sequence");
    let base = module_base(&mods, &exe);
    let size = std::fs::metadata(&exe).unwrap().len();
    let ours: Vec<&Ev> = evs
        .iter()
        .filter(|e| e.frames[0] >= base && e.frames[0] < base + size)
        .collect();
    // (op, in, out, size, align)
    let want: Vec<(&str, u64, u64, u64, u64)> = vec![
        ("malloc", 0, p[0], 24, 0),
        ("calloc", 0, p[1], 30, 0),
        ("realloc", p[0], p[2], 100, 0),
        ("free", p[1], 0, 30, 0),
        ("posix_memalign", 0, p[3], 200, 64),
        ("aligned_alloc", 0, p[4], 64, 32),
        ("memalign", 0, p[5], 50, 128),
        ("valloc", 0, p[6], 10, 4096),
        ("realloc", 0, p[7], 40, 0),
        ("realloc", p[7], 0, 0, 0),
        ("malloc", 0, 0, 1 << 60, 0),
        ("free", p[2], 0, 100, 0),
        ("free", p[3], 0, 200, 0),
        ("free", p[4], 0, 64, 0),
        ("free", p[5], 0, 50, 0),
        ("free", p[6], 0, 10, 0),
    ];
    assert_eq!(ours.len(), want.len(), "events from the program: {ours:#?}");
    for (e, w) in ours.iter().zip(&want) {
        // realloc(NULL, n) may be logged as the malloc it is.
        let op_ok = e.op == w.0 || (w.0 == "realloc" && w.1 == 0 && e.op == "malloc");
        assert!(
            op_ok && (e.inp, e.out, e.size) == (w.1, w.2, w.3),
            "event {e:?}, expected {w:?}"
        );
        if w.0 != "valloc" {
            assert_eq!(e.align, w.4, "{e:?}");
        } else {
            assert!(e.align >= 4096);
        }
        assert_eq!(e.tid, pid, "single-threaded: tid = pid");
        assert!(
            e.frames.len() >= 2,
            "backtrace=4 gives main's caller too: {e:?}"
        );
    }
    for w in evs.windows(2) {
        assert!(w[1].seq > w[0].seq, "seq increases: {:?} {:?}", w[0], w[1]);
        assert!(w[1].t >= w[0].t, "time goes forward");
    }
    // Callers are distinct call sites, in program order.
    for w in ours.windows(2) {
        assert!(w[1].frames[0] > w[0].frames[0]);
    }
}

#[test]
fn sigkill_after_n_allocations_loses_nothing() {
    for (n, threads) in [(100_000u64, 1), (120_000, 4)] {
        let dir = fresh_dir(&format!("dir_log_sigkill_{threads}"));
        let path = dir.join("kill.log");
        let spec = format!("log={}", path.display());
        let o = run(
            "log_sigkill",
            &[&n.to_string(), &threads.to_string()],
            &[("MALLOC_DEBUG", &spec)],
        );
        assert_eq!(o.signal, Some(9), "{}", o.describe());
        let (_, mods, evs) = parse(&read_log(&path));
        let exe = compile("log_sigkill");
        let base = module_base(&mods, &exe);
        let size = std::fs::metadata(&exe).unwrap().len();
        let mallocs = evs
            .iter()
            .filter(|e| e.op == "malloc" && e.frames[0] >= base && e.frames[0] < base + size)
            .count();
        assert_eq!(
            mallocs as u64, n,
            "all {n} malloc events ({threads} threads) are in the log"
        );
        let mut seqs: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        seqs.sort();
        seqs.dedup();
        assert_eq!(seqs.len(), evs.len(), "no event twice");
    }
}

#[test]
fn forked_child_writes_its_own_file() {
    let dir = fresh_dir("dir_log_fork");
    let spec = format!("log={}/fork.%p.log", dir.display());
    let o = run("log_fork", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    let child: u64 = o.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    let logs = logs_in(&dir);
    assert_eq!(logs.len(), 2, "{logs:?}");
    let mut seen = 0;
    for l in &logs {
        let (hdr, mods, evs) = parse(&read_log(l));
        let pid: u64 = hdr
            .iter()
            .find(|(k, _)| k == "pid")
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(l.to_str().unwrap().ends_with(&format!("fork.{pid}.log")));
        assert!(!mods.is_empty(), "each file names its modules");
        let sizes: Vec<u64> = evs
            .iter()
            .filter(|e| e.op == "malloc")
            .map(|e| e.size)
            .collect();
        if pid == child {
            assert!(hdr.iter().any(|(k, _)| k == "forked_from"));
            assert!(sizes.contains(&22) && sizes.contains(&44), "{sizes:?}");
            assert!(!sizes.contains(&11) && !sizes.contains(&33), "{sizes:?}");
        } else {
            assert!(sizes.contains(&11) && sizes.contains(&33), "{sizes:?}");
            assert!(!sizes.contains(&22) && !sizes.contains(&44), "{sizes:?}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn log_to_stderr_and_fd() {
    let o = run("log_sequence", &[], &[("MALLOC_DEBUG", "log=stderr")]);
    o.assert_success();
    let (_, _, evs) = parse(o.stderr.as_bytes());
    assert!(
        evs.iter()
            .any(|e| e.op == "posix_memalign" && e.align == 64)
    );
    let o = run("log_sequence", &[], &[("MALLOC_DEBUG", "log=fd:1")]);
    o.assert_success();
    assert!(
        o.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("E ").and_then(common::event::parse))
            .any(|e| e.op == ft_format::Op::Calloc && e.out != 0),
        "{}",
        o.describe()
    );
    // A stream may carry the records of several processes: every record there names its
    // thread in full (`-`, the main thread of the header above, is for a file of one process).
    let events: Vec<_> = o
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("E ").and_then(common::event::parse))
        .collect();
    assert!(
        !events.is_empty() && events.iter().all(|e| e.tid.is_some()),
        "{}",
        o.describe()
    );
}

#[test]
fn mtrace_format_read_by_glibc_mtrace() {
    let Some(mtrace) = require("mtrace") else {
        return;
    };
    let dir = fresh_dir("dir_log_mtrace");
    let path = dir.join("mt.log");
    let spec = format!("log={},log_format=mtrace", path.display());
    let o = run("mtrace_leak", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"= Start"));
    assert_eq!(lines.last(), Some(&"= End"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("mtrace_leak") && l.contains(":[0x") && l.ends_with(" 0x4d")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" < 0x")) && lines.iter().any(|l| l.contains(" > 0x")),
        "{text}"
    );
    let exe = compile("mtrace_leak");
    let r = Run::new(mtrace).no_preload().arg(&exe).arg(&path).go();
    // mtrace exits 1 when it finds memory not freed.
    assert!(r.stdout.contains("Memory not freed"), "{}", r.describe());
    let leak_line = std::fs::read_to_string(common::c_dir().join("mtrace_leak.c"))
        .unwrap()
        .lines()
        .position(|l| l.contains("PLANTED LEAK"))
        .unwrap()
        + 1;
    let leaks: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("0x")).collect();
    assert_eq!(leaks.len(), 1, "exactly the planted leak: {}", r.stdout);
    assert!(
        leaks[0].contains("0x4d") && leaks[0].ends_with(&format!("mtrace_leak.c:{leak_line}")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_thread_cancelled_while_it_allocates_leaves_the_log_working() {
    let dir = fresh_dir("dir_log_cancel");
    let path = dir.join("cancel.log");
    let spec = format!("log={}", path.display());
    for mode in ["", "1", spec.as_str()] {
        let o = Run::new(compile("log_thread_cancel"))
            .envs(&[("MALLOC_DEBUG", mode)])
            .timeout(std::time::Duration::from_secs(30))
            .go();
        o.assert_ok_clean();
    }
    let (_, _, evs) = parse(&read_log(&path));
    let last = evs
        .iter()
        .filter(|e| e.op == "malloc" && e.size == 3000)
        .count();
    assert_eq!(
        last, 20000,
        "the main thread's blocks after the cancellations are logged"
    );
}
