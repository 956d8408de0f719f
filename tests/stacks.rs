//! Whole call stacks in reports: every ERROR and LEAK names the first frame outside the C/C++
//! runtime as its headline and lists the stack under it (`#N 0xADDR module+0xOFF function+0xOFF`),
//! through code built without frame pointers (`-O2 -fomit-frame-pointer`, as distributions build
//! libc and libstdc++), through signal frames and from threads; `stack=1` keeps the caller alone.
mod common;

use common::{Output, Run, compile, compile_optimised, require};

/// The frame lines under the first stderr line that contains `header`: `(module, function)`.
fn frames_under(o: &Output, header: &str) -> Vec<(String, String)> {
    let mut lines = o.stderr.lines().skip_while(|l| !l.contains(header));
    assert!(
        lines.next().is_some(),
        "no line with {header:?}:\n{}",
        o.describe()
    );
    lines
        .map_while(|l| {
            let body = l.split_once("]: ")?.1.trim_start();
            let rest = body.strip_prefix('#')?;
            let f: Vec<&str> = rest.split(' ').collect();
            let module = f.get(2)?.rsplit_once('+')?.0.to_string();
            let function = f
                .get(3)
                .map_or("", |s| s.rsplit_once('+').map_or(*s, |x| x.0));
            Some((module, function.to_string()))
        })
        .collect()
}

fn is_libc(module: &str) -> bool {
    module.contains("/libc.so")
}

/// The functions of the frames, in order.
fn functions(frames: &[(String, String)]) -> Vec<&str> {
    frames.iter().map(|(_, f)| f.as_str()).collect()
}

#[test]
fn leak_through_strndup_names_the_programs_function_then_its_caller() {
    let exe = compile_optimised("stacks_leak_strndup", "", &[]);
    let o = Run::new(&exe).env("MALLOC_DEBUG", "1").go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    let leak = o
        .stderr
        .lines()
        .find(|l| l.contains("LEAK: ") && l.contains(" block(s) allocated by malloc() from "))
        .unwrap_or_else(|| panic!("{}", o.describe()));
    // The headline is the program, not libc. (The last token may still be in a register.)
    let exe_name = exe.to_str().unwrap();
    assert!(
        leak.contains(&format!("allocated by malloc() from {exe_name}+0x")),
        "{leak}"
    );
    let frames = frames_under(&o, "  e.g. ");
    assert!(is_libc(&frames[0].0), "libc's strndup first: {frames:?}");
    assert_eq!(frames[0].1, "strndup", "{frames:?}");
    assert_eq!(
        &functions(&frames)[1..4],
        &["next_token", "parse", "main"],
        "{frames:?}"
    );
}

#[test]
fn leak_through_vector_growth_names_the_pushing_function() {
    let exe = compile_optimised("stacks_vector_leak", "", &[]);
    let o = Run::new(&exe).env("MALLOC_DEBUG", "1").go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert!(
        o.stderr
            .contains("LEAK: 4096 bytes in 1 block(s) allocated by operator new() from"),
        "{}",
        o.describe()
    );
    let frames = frames_under(&o, "(4096 bytes), allocated at event");
    let f = functions(&frames);
    let at = f
        .iter()
        .position(|n| n.contains("push_many"))
        .unwrap_or_else(|| panic!("push_many not among {f:?}"));
    assert_eq!(f[at + 1], "main", "{f:?}");
}

#[test]
fn double_free_through_qsort_shows_both_stacks() {
    let exe = compile_optimised("stacks_qsort_double_free", "", &[]);
    let o = Run::new(&exe).env("MALLOC_DEBUG", "1").go();
    assert_eq!(o.signal, Some(libc::SIGABRT), "{}", o.describe());
    let first = o.stderr.lines().find(|l| l.contains("ERROR")).unwrap();
    assert!(first.contains("ERROR: double free of 0x"), "{first}");
    for header in ["  free() called from ", "  freed at event #"] {
        let frames = frames_under(&o, header);
        let f = functions(&frames);
        assert_eq!(f[0], "cmp", "{header}: {f:?}");
        let q = f
            .iter()
            .position(|n| n.starts_with("qsort") || n.starts_with("msort"))
            .unwrap_or_else(|| panic!("{header}: libc's qsort not in {f:?}"));
        assert!(is_libc(&frames[q].0), "{frames:?}");
        let s = f
            .iter()
            .position(|n| *n == "sort_them")
            .unwrap_or_else(|| panic!("{header}: sort_them not in {f:?}"));
        assert!(s > q && f[s + 1] == "main", "{header}: {f:?}");
    }
    let alloc = functions(&frames_under(&o, "  allocated by malloc() at event #"))
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    assert_eq!(alloc[0], "main", "{alloc:?}");
}

/// In `full,guard=exact`, and in `guard` alone (whose allocations keep the caller alone: the
/// fault's stack is unwound for the report all the same).
#[test]
fn guard_fault_inside_strcat_shows_the_programs_frame_below_libcs() {
    for mode in ["full,guard=exact", "guard=exact"] {
        guard_fault_inside_strcat(mode);
    }
}

fn guard_fault_inside_strcat(mode: &str) {
    let exe = compile_optimised("stacks_strcat_overflow", "", &[]);
    let o = Run::new(&exe).env("MALLOC_DEBUG", mode).go();
    assert_eq!(o.signal, Some(libc::SIGSEGV), "{mode}: {}", o.describe());
    assert!(
        o.stderr.contains("ERROR: heap overflow (write) at 0x"),
        "{}",
        o.describe()
    );
    let frames = frames_under(&o, "  faulting instruction ");
    assert!(is_libc(&frames[0].0), "the fault is in libc: {frames:?}");
    let f = functions(&frames);
    let at = f
        .iter()
        .position(|n| *n == "append_suffix")
        .unwrap_or_else(|| panic!("append_suffix not in {f:?}"));
    assert!(frames[..at].iter().all(|(m, _)| is_libc(m)), "{frames:?}");
    assert_eq!(f[at + 1], "main", "{f:?}");
}

#[test]
fn stacks_from_a_signal_handler_and_a_thread_end_cleanly() {
    let exe = compile_optimised("stacks_thread_signal", "", &[]);
    // leaks=all: a finished thread's block may still be named on its cached stack.
    let o = Run::new(&exe).env("MALLOC_DEBUG", "1,leaks=all").go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert!(o.stdout.contains("OK"));
    let handler = frames_under(&o, "(111 bytes), allocated at event");
    let f = functions(&handler);
    assert_eq!(f[0], "on_usr1", "{f:?}");
    let r = f
        .iter()
        .position(|n| *n == "raise_from")
        .unwrap_or_else(|| panic!("through the signal frame to raise_from: {f:?}"));
    assert_eq!(f[r + 1], "main", "{f:?}");
    let thread = frames_under(&o, "(222 bytes), allocated at event");
    let f = functions(&thread);
    assert_eq!(f[0], "thread_body", "{f:?}");
    assert!(
        thread.len() < 16,
        "a thread's stack ends at its first frame: {f:?}"
    );
    assert!(
        thread.iter().skip(1).all(|(m, _)| is_libc(m)),
        "libc's thread start only after it: {thread:?}"
    );
}

#[test]
fn stack_1_keeps_the_caller_alone() {
    let exe = compile_optimised("stacks_leak_strndup", "", &[]);
    for spec in ["1,stack=1", "1,backtrace=1"] {
        let o = Run::new(&exe).env("MALLOC_DEBUG", spec).go();
        let leak = o
            .stderr
            .lines()
            .find(|l| l.contains("LEAK: ") && l.contains(" block(s) allocated by malloc() from "))
            .unwrap_or_else(|| panic!("{}", o.describe()));
        assert!(
            leak.contains("/libc.so"),
            "one frame: strndup's call in libc: {leak}"
        );
        assert!(
            !o.stderr.contains("     #0 "),
            "no frame lines: {}",
            o.describe()
        );
    }
    let o = Run::new(&exe).env("MALLOC_DEBUG", "1,stack=65").go();
    assert!(
        o.stderr
            .contains("WARNING: MALLOC_DEBUG: 'stack=65': out of range (valid: 0-64); using 64"),
        "{}",
        o.describe()
    );
}

#[test]
fn cpp_exception_through_five_frames_in_every_mode() {
    let exe = compile("unwind_cpp_exception");
    for spec in [
        None,
        Some("1"),
        Some("full"),
        Some("full,guard=below"),
        Some("sample=1"),
    ] {
        let mut r = Run::new(&exe);
        if let Some(s) = spec {
            r = r.env("MALLOC_DEBUG", s);
        }
        let o = r.go();
        o.assert_ok_clean();
        assert!(
            o.stdout.starts_with("caught depth 5\n"),
            "{spec:?}: {}",
            o.describe()
        );
    }
}

#[test]
fn java_version_runs_clean_in_debug_mode() {
    let Some(java) = require("java") else { return };
    let o = Run::new(java)
        .arg("-version")
        .env("MALLOC_DEBUG", "1,noleaks")
        .go();
    o.assert_success();
    assert!(o.stderr.contains("version"), "{}", o.describe());
    assert!(!o.stderr.contains("ft_malloc["), "{}", o.describe());
}

/// The leak groups of `o` as (bytes, blocks, functions of the stack).
fn leak_groups(o: &Output) -> Vec<(usize, usize, Vec<String>)> {
    let mut groups = Vec::new();
    for (i, l) in o.stderr.lines().enumerate() {
        let Some(rest) = l.split_once("LEAK: ").map(|x| x.1) else {
            continue;
        };
        let w: Vec<&str> = rest.split(' ').collect();
        let (Ok(bytes), Ok(blocks)) = (w[0].parse::<usize>(), w[3].parse::<usize>()) else {
            continue;
        };
        let header = o.stderr.lines().nth(i + 1).unwrap().to_string();
        let f = frames_under(o, &header);
        groups.push((bytes, blocks, f.into_iter().map(|x| x.1).collect()));
    }
    groups
}

#[test]
fn callers_with_the_same_frame_keep_their_own_stacks() {
    // Each call from the same return address and stack pointer after the first is answered
    // from the stacks already seen, which must tell the two callers apart.
    for exe in [
        compile_optimised("stacks_same_frame", "", &[]),
        compile("stacks_same_frame"),
    ] {
        let o = Run::new(&exe).env("MALLOC_DEBUG", "1").go();
        assert_eq!(o.status, Some(0), "{}", o.describe());
        let groups = leak_groups(&o);
        for (caller, size, want) in [("from_a", 24, 200), ("from_b", 40, 100)] {
            let mine: Vec<_> = groups
                .iter()
                .filter(|g| g.2.iter().any(|f| f == caller))
                .collect();
            assert_eq!(mine.len(), 1, "{caller}: {groups:?}\n{}", o.describe());
            let (bytes, blocks, _) = mine[0];
            assert_eq!(*bytes, size * blocks, "{caller}: {groups:?}");
            assert!(
                *blocks >= want - 2 && *blocks <= want,
                "{caller}: {groups:?}"
            );
        }
    }
}

/// Where a seccomp filter refuses `process_vm_readv` (EPERM), stack pages are probed another
/// way: the double free's stack still runs from the program's innermost function to main, and
/// the leak check, reading its roots directly, still tells the kept block from the dropped one.
#[test]
fn stacks_and_leaks_without_process_vm_readv() {
    let exe = compile("stacks_no_vm_read");
    let o = Run::new(&exe)
        .env("MALLOC_DEBUG", "1,on_error=continue")
        .go();
    if o.status == Some(2) && o.stderr.contains("seccomp: ") {
        println!("skipped: a seccomp filter cannot be installed here");
        return;
    }
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "went on\n", "{}", o.describe());
    let frames = frames_under(&o, "  free() called from ");
    assert_eq!(
        &functions(&frames)[0..4],
        ["level3", "level2", "level1", "main"],
        "{frames:?}"
    );
    let leaks: Vec<&str> = o.stderr.lines().filter(|l| l.contains("LEAK")).collect();
    assert_eq!(leaks.len(), 2, "{}", o.describe());
    assert!(leaks[0].contains("LEAK: 2222 bytes in 1 block(s) allocated by malloc() from "));
    assert!(leaks[1].contains("LEAK SUMMARY: 2222 bytes in 1 unreachable block(s)"));
}
