//! The edges of guarded blocks and zones (`tests/c/guard_edges.c`): the whole page prefix in
//! front of a guarded block is canary (an underwrite of a block never freed is found at exit,
//! with `check` on), and so is the slack after a block under `guard=below`; a run off a
//! block's far side under `guard=below` faults in a guard page of ours and is explained as an
//! overflow of that block; a wide-string write far before a zone's first block, into the
//! zone's guard page, is explained in `1` as an underflow naming the block; a misaligned free
//! of a guarded block calls it GUARDED. Each first report line is checked exactly, addresses
//! and pid masked, and its block address against the block the program printed.

mod common;

use common::{Output, hex_numbers, mask_report as mask, run};

const SIGSEGV: i32 = 11;
const SIGABRT: i32 = 6;

/// The address of the `block 0x... N` line the program printed.
fn program_block(out: &Output) -> u64 {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("block 0x"))
        .unwrap_or_else(|| panic!("the program printed no block line: {}", out.describe()));
    hex_numbers(line)[0]
}

fn first_line(out: &Output) -> &str {
    out.stderr.lines().next().unwrap_or("")
}

fn edges(args: &[&str], debug: &str) -> Output {
    run("guard_edges", args, &[("MALLOC_DEBUG", debug)])
}

/// Died of `sig` after the program printed "start" and its block (and nothing saying the bug
/// went unseen).
#[track_caller]
fn died_of(out: &Output, sig: i32) {
    assert_eq!(out.signal, Some(sig), "{}", out.describe());
    assert!(
        out.stdout.starts_with("start\nblock 0x"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains("NOT CAUGHT"), "{}", out.describe());
}

const UNDER_LENGTHS: [usize; 5] = [1, 8, 16, 32, 64];

fn underflow_line(n: usize, found: &str) -> String {
    format!(
        "ft_malloc[PID]: ERROR: heap underflow: ADDR (GUARDED, 100 bytes) written {n} bytes before its start, found {found}"
    )
}

/// In `full` the block ends at its guard page and the rest of its page is canary: an
/// underwrite of 1 to 64 bytes of a block never freed is found at exit, before the leak report.
#[test]
fn underwrite_of_a_block_never_freed_is_found_at_exit() {
    for n in UNDER_LENGTHS {
        let out = edges(&["under", &n.to_string()], "full");
        died_of(&out, SIGABRT);
        assert!(
            out.stdout.ends_with(" 100\nwritten\n"),
            "{}",
            out.describe()
        );
        let first = first_line(&out);
        assert_eq!(
            mask(first),
            underflow_line(n, "at exit"),
            "{n} bytes: {}",
            out.describe()
        );
        assert_eq!(hex_numbers(first), vec![program_block(&out)], "{first}");
        assert!(
            !out.stderr.contains("LEAK"),
            "the error comes first: {}",
            out.describe()
        );
        assert!(
            out.stderr.contains("announced_block+"),
            "history: {}",
            out.describe()
        );
    }
}

/// Going on after the report, the leak report follows, and the error summary counts it.
#[test]
fn underwrite_found_at_exit_then_the_leak_report() {
    // (`leaks=all`: a stale copy of the pointer may keep the block reachable.)
    let out = edges(&["under", "32"], "full,on_error=continue,leaks=all");
    assert_eq!(out.status, Some(0), "{}", out.describe());
    assert_eq!(
        mask(first_line(&out)),
        underflow_line(32, "at exit"),
        "{}",
        out.describe()
    );
    let err = out.stderr.find("ERROR: heap underflow").unwrap();
    let leak = out
        .stderr
        .find(": 100 bytes in 1 block(s) allocated by malloc()")
        .expect("leak report");
    assert!(err < leak, "{}", out.describe());
    assert!(
        out.stderr.contains("ERROR SUMMARY: 1 error(s)"),
        "{}",
        out.describe()
    );
}

/// Without `check` the exit check is off: the block is only a leak.
#[test]
fn no_exit_check_without_check() {
    let out = edges(&["under", "8"], "full,nocheck");
    assert_eq!(out.status, Some(0), "{}", out.describe());
    assert!(!out.stderr.contains("ERROR"), "{}", out.describe());
}

/// Freed, the same underwrites are found by free, beyond the 16 bytes in front of the block.
#[test]
fn underwrite_of_the_page_prefix_is_found_at_free() {
    for n in [32, 64] {
        let out = edges(&["under_free", &n.to_string()], "full");
        died_of(&out, SIGABRT);
        assert_eq!(
            mask(first_line(&out)),
            underflow_line(n, "in free()"),
            "{}",
            out.describe()
        );
    }
}

/// `check_every=1` verifies the page prefix on the next call.
#[test]
fn underwrite_of_the_page_prefix_is_found_by_check_every() {
    let out = edges(&["under_call", "64"], "full,check_every=1");
    died_of(&out, SIGABRT);
    assert_eq!(
        mask(first_line(&out)),
        underflow_line(64, "in malloc()"),
        "{}",
        out.describe()
    );
}

/// Under `guard=below` the block starts after its guard page and the slack after it, up to
/// the end of its page, is canary: a write there of a block never freed is found at exit.
#[test]
fn write_into_the_slack_under_guard_below_is_found_at_exit() {
    let out = edges(&["slack"], "full,guard=below");
    died_of(&out, SIGABRT);
    let first = first_line(&out);
    assert_eq!(
        mask(first),
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (GUARDED, 100 bytes) written past its end at offset 100 \
         (1 byte past the end), found at exit",
        "{}",
        out.describe()
    );
    assert_eq!(hex_numbers(first), vec![program_block(&out)], "{first}");
}

/// Under `full,guard=below`, `strlen` of a block filled to its end runs through its slack into
/// the guard page after it (the next pool slot's, or the far guard of a mapping of its own):
/// an overflow of that block, at the faulting instruction.
#[test]
fn strlen_off_the_far_side_under_guard_below() {
    for n in [100usize, 4095, 4096, 4097, 8192, 300_000] {
        let out = edges(&["strlen", &n.to_string()], "full,guard=below");
        died_of(&out, SIGSEGV);
        let first = first_line(&out);
        let m = mask(first);
        let (head, tail) = (
            "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: ",
            format!(" bytes after the {n}-byte block at ADDR (guard page)"),
        );
        assert!(
            m.starts_with(head) && m.ends_with(&tail),
            "{n}: {}",
            out.describe()
        );
        let nums = hex_numbers(first);
        let block = program_block(&out);
        assert_eq!(nums[1], block, "{n}: {first}");
        let after: u64 = m[head.len()..m.len() - tail.len()].parse().unwrap();
        assert_eq!(nums[0], block + n as u64 + after, "{n}: {first}");
        assert!(
            out.stderr.contains("the process now dies of this fault"),
            "{}",
            out.describe()
        );
    }
}

/// In `1`, a wide-string write that starts 4096 bytes before the first block of a zone lands
/// in the zone's guard page: an underflow naming that block, with its history.
#[test]
fn wide_write_far_before_a_zone_block_names_the_block() {
    for how in ["wmemset", "wcscpy"] {
        let out = edges(&[how], "1");
        died_of(&out, SIGSEGV);
        let first = first_line(&out);
        assert_eq!(
            mask(first),
            "ft_malloc[PID]: ERROR: heap underflow (write) at ADDR: 4096 bytes before the 480-byte block at ADDR (zone guard page)",
            "{how}: {}",
            out.describe()
        );
        let block = program_block(&out);
        assert_eq!(hex_numbers(first), vec![block - 4096, block], "{first}");
        assert!(
            out.stderr.contains(" : 480 bytes, TINY zone 0x"),
            "{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("announced_block+"),
            "history: {}",
            out.describe()
        );
        assert!(
            !out.stderr.contains("not in ft_malloc's memory"),
            "{}",
            out.describe()
        );
    }
}

/// A misaligned free of a small guarded block names it GUARDED, not LARGE.
#[test]
fn misaligned_free_of_a_guarded_block_says_guarded() {
    let out = edges(&["misfree"], "full");
    died_of(&out, SIGABRT);
    let first = first_line(&out);
    assert_eq!(
        mask(first),
        "ft_malloc[PID]: ERROR: invalid pointer ADDR (misaligned, 1 bytes into the 16-byte GUARDED block at ADDR) in free()",
        "{}",
        out.describe()
    );
    let block = program_block(&out);
    assert_eq!(hex_numbers(first), vec![block + 1, block], "{first}");
}

/// The real programs report no error under `full` and `full,guard=below` (page-prefix
/// canaries, the exit check, the far guard page): their normal output, checked by
/// `common::real`, and no ERROR line and no fault of ours. One test for both modes: the
/// checks share their scratch directories within a test process.
#[test]
fn real_programs_clean_under_full_and_guard_below() {
    for debug in ["full", "full,guard=below"] {
        for (name, check) in common::real::ALL {
            if let Some(out) = check(&[("MALLOC_DEBUG", debug)]) {
                let ours: Vec<&str> = out
                    .stderr
                    .lines()
                    .filter(|l| {
                        l.starts_with("ft_malloc[")
                            && (l.contains("]: ERROR") || l.contains("SIGSEGV"))
                    })
                    .collect();
                assert!(
                    ours.is_empty(),
                    "{name} with MALLOC_DEBUG={debug}: {}",
                    out.describe()
                );
            }
        }
    }
}
