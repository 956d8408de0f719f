//! The heap's own safety: the exit leak scan reads only what can be read and reports only real
//! leaks (forked children, blocks kept after a report), over-aligned blocks cost their size and
//! not their alignment, address space held by freed blocks is given back when a mapping fails
//! and zones stay small under an address-space limit, allocator metadata is out of reach of an
//! overflow of user data, and the messages around these say the right thing. One C program of
//! `tests/c/` per case.

mod common;

use common::{Output, compile, fresh_dir, run};

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;

/// `ft_malloc[<digits>]` becomes `ft_malloc[PID]`, every `0x<hex digits>` becomes `ADDR`.
fn mask(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if s[i..].starts_with("ft_malloc[") {
            let digits = b[i + 10..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits > 0 && b.get(i + 10 + digits) == Some(&b']') {
                out.push_str("ft_malloc[PID]");
                i += 10 + digits + 1;
                continue;
            }
        }
        if b[i] == b'0' && b.get(i + 1) == Some(&b'x') {
            let n = b[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if n > 0 {
                out.push_str("ADDR");
                i += 2 + n;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The masked stderr lines that start with `ft_malloc[PID]: <kind>`.
fn lines_of(out: &Output, kind: &str) -> Vec<String> {
    let p = format!("ft_malloc[PID]: {kind}");
    mask(&out.stderr)
        .lines()
        .filter(|l| l.starts_with(&p))
        .map(str::to_string)
        .collect()
}

/// The stderr lines of process `pid` that start with `ft_malloc[pid]: <kind>` (masked).
fn lines_of_pid(out: &Output, pid: u32, kind: &str) -> Vec<String> {
    let p = format!("ft_malloc[{pid}]: {kind}");
    out.stderr
        .lines()
        .filter(|l| l.starts_with(&p))
        .map(mask)
        .collect()
}

fn exe(prog: &str) -> String {
    compile(prog).display().to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. The exit leak scan and file mappings.

/// A file mapped past its end (private and shared, writable): the scan used to die of SIGBUS
/// reading the pages beyond the file. Now it exits 0 with exactly the planted leak reported, and
/// the block whose only pointer is in the private mapping's readable page is not.
#[test]
fn leak_scan_file_mapped_past_eof() {
    for mode in ["1", "full"] {
        let dir = fresh_dir(&format!("leak_scan_file_past_eof_{mode}"));
        let out = run(
            "leak_scan_file_past_eof",
            &[dir.to_str().unwrap()],
            &[("MALLOC_DEBUG", mode)],
        );
        assert_eq!(out.signal, None, "{mode}: {}", out.describe());
        out.assert_success();
        assert_eq!(out.stdout, "OK\n", "{mode}: {}", out.describe());
        let want = format!(
            "ft_malloc[PID]: LEAK: 4321 bytes in 1 block(s) allocated by malloc() from {}+ADDR",
            exe("leak_scan_file_past_eof")
        );
        assert_eq!(
            lines_of(&out, "LEAK: "),
            vec![want],
            "{mode}: {}",
            out.describe()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The same where the kernel refuses process_vm_readv (a seccomp filter the program installs
/// before exit): the scan reads roots in place, skips file mappings that are no loaded module
/// (so the block pointed to from the private mapping is reported too), and exits 0.
#[test]
fn leak_scan_without_process_vm_readv() {
    let dir = fresh_dir("leak_scan_file_past_eof_noreadv");
    let out = run(
        "leak_scan_file_past_eof",
        &[dir.to_str().unwrap(), "noreadv"],
        &[("MALLOC_DEBUG", "1")],
    );
    assert_eq!(out.signal, None, "{}", out.describe());
    out.assert_success();
    assert_eq!(out.stdout, "OK\n", "{}", out.describe());
    let path = exe("leak_scan_file_past_eof");
    let mut leaks = lines_of(&out, "LEAK: ");
    leaks.sort();
    assert_eq!(
        leaks,
        vec![
            format!(
                "ft_malloc[PID]: LEAK: 1234 bytes in 1 block(s) allocated by malloc() from {path}+ADDR"
            ),
            format!(
                "ft_malloc[PID]: LEAK: 4321 bytes in 1 block(s) allocated by malloc() from {path}+ADDR"
            ),
        ],
        "{}",
        out.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 2. Spurious LEAK lines.

/// A child that calls exit() after fork() reports its own leaks (a block of its own, and the
/// forking thread's block it dropped) but not the blocks of the threads that do not exist in
/// it; the parent reports nothing.
#[test]
fn fork_child_reports_only_its_own_leaks() {
    for mode in ["1", "full"] {
        let out = run("fork_child_leaks", &["workers"], &[("MALLOC_DEBUG", mode)]);
        out.assert_success();
        let child: u32 = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("child "))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no child pid: {}", out.describe()));
        assert!(out.stdout.ends_with("OK\n"), "{mode}: {}", out.describe());
        let path = exe("fork_child_leaks");
        let mut leaks = lines_of_pid(&out, child, "LEAK: ");
        leaks.sort();
        assert_eq!(
            leaks,
            vec![
                format!(
                    "ft_malloc[PID]: LEAK: 555 bytes in 1 block(s) allocated by malloc() from {path}+ADDR"
                ),
                format!(
                    "ft_malloc[PID]: LEAK: 777 bytes in 1 block(s) allocated by malloc() from {path}+ADDR"
                ),
            ],
            "{mode}: {}",
            out.describe()
        );
        let summary = lines_of_pid(&out, child, "LEAK SUMMARY: ");
        assert_eq!(summary.len(), 1, "{mode}: {}", out.describe());
        assert!(
            summary[0].starts_with(
                "ft_malloc[PID]: LEAK SUMMARY: 1332 bytes in 2 unreachable block(s); "
            ),
            "{mode}: {}",
            out.describe()
        );
        let all_leaks = lines_of(&out, "LEAK: ");
        assert_eq!(
            all_leaks.len(),
            2,
            "{mode}: the parent reported: {}",
            out.describe()
        );
        assert!(
            lines_of(&out, "ERROR").is_empty(),
            "{mode}: {}",
            out.describe()
        );
    }
}

/// Children forked while four threads allocate and free, exiting at once: blocks that other
/// threads held only in their registers are no leak of the child.
#[test]
fn fork_child_of_busy_threads_reports_nothing() {
    for mode in ["1", "full"] {
        let out = run("fork_child_leaks", &["churn"], &[("MALLOC_DEBUG", mode)]);
        out.assert_success();
        assert_eq!(out.stdout, "OK\n", "{mode}: {}", out.describe());
        assert!(
            lines_of(&out, "LEAK").is_empty(),
            "{mode}: {}",
            out.describe()
        );
        assert!(
            lines_of(&out, "ERROR").is_empty(),
            "{mode}: {}",
            out.describe()
        );
    }
}

/// Blocks the allocator keeps after a canary report (on_error=continue) were freed by the
/// program: three ERROR reports, then no LEAK line.
#[test]
fn kept_block_is_not_a_leak() {
    for mode in ["1,on_error=continue", "full,on_error=continue"] {
        let out = run("kept_block_not_leak", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_success();
        assert_eq!(out.stdout, "OK\n", "{mode}: {}", out.describe());
        let errors: Vec<String> = lines_of(&out, "ERROR: ");
        assert_eq!(errors.len(), 3, "{mode}: {}", out.describe());
        assert!(
            lines_of(&out, "LEAK").is_empty(),
            "{mode}: {}",
            out.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Over-aligned blocks.

/// Four aligned_alloc(1 GiB, 100) under RLIMIT_AS = VmSize + 2 GiB succeed, aligned and usable,
/// adding less than 16 MiB of RSS (the program checks), in every mode.
#[test]
fn aligned_alloc_1g_costs_its_size() {
    for mode in ["", "1", "full"] {
        let out = run("aligned_alloc_1g", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok_clean();
    }
}

/// The front canary of an over-aligned block still catches a 1-byte underflow.
#[test]
fn aligned_alloc_1g_underflow_found() {
    let out = run("aligned_alloc_1g", &["underflow"], &[("MALLOC_DEBUG", "1")]);
    assert_eq!(out.signal, Some(SIGABRT), "{}", out.describe());
    assert!(!out.stdout.contains("continued"), "{}", out.describe());
    assert_eq!(
        mask(&out.stderr).lines().next(),
        Some(
            "ft_malloc[PID]: ERROR: heap underflow: ADDR (LARGE, 100 bytes) written 1 bytes before its start, found in free()"
        ),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Address space held by freed blocks.

/// Under `full` and RLIMIT_AS = VmSize + 384 MiB, 64 rounds of malloc(16 MiB)/free and a final
/// malloc(128 MiB) all succeed: a failed mapping releases the address-space quarantine and
/// retries. The other modes, for comparison, must pass too.
#[test]
fn freed_address_space_is_given_back_when_mapping_fails() {
    for mode in ["full", "guard", "1", ""] {
        let out = run("guard_quarantine_rlimit", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok_clean();
    }
}

/// A program started under RLIMIT_AS = its VmSize + 48 MiB (or RLIMIT_DATA = VmData + 48 MiB)
/// uses every SMALL class, 4000 TINY blocks and 16 LARGE ones, then churns 4 KiB blocks, and a
/// request past the limit still fails: zones of a process with an address-space limit hold 100
/// blocks of their class, not of the biggest SMALL size (1.6 MiB each), and the guard budgets
/// shrink to the limit (said once in a WARNING when spent).
#[test]
fn every_small_class_fits_a_tight_address_space_limit() {
    let dir = fresh_dir("zones_rlimit_as_log");
    let log = format!("log={}", dir.join("l.log").display());
    let runs = ["", "1", log.as_str(), "sample=2", "full"].map(|m| ("as", m));
    for (limit, mode) in runs.into_iter().chain([("data", ""), ("data", "1")]) {
        let out = run("zones_rlimit_as", &[limit], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok();
        if mode.contains("sample") || mode == "full" {
            assert!(
                out.stderr
                    .lines()
                    .all(|l| l.contains("WARNING: guard: memory budget"))
            );
        } else {
            assert_eq!(out.stderr, "", "{limit} {mode}: {}", out.describe());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Under a seccomp filter that refuses mprotect and madvise, metadata goes without its guard
/// pages and guard modes fall back to canaries (said once): no allocation fails.
#[test]
fn a_sandbox_that_refuses_mprotect_costs_guards_not_allocations() {
    let dir = fresh_dir("seccomp_no_protect_log");
    let log = format!("log={}", dir.join("l.log").display());
    for mode in ["", "1", log.as_str(), "full", "guard=below", "sample=2"] {
        let out = run("seccomp_no_protect", &[], &[("MALLOC_DEBUG", mode)]);
        if out.stdout.contains("seccomp unavailable") {
            println!("skipped: seccomp unavailable");
            return;
        }
        out.assert_ok();
        let warnings: Vec<&str> = out.stderr.lines().collect();
        if mode == "full" || mode.starts_with("guard") || mode.starts_with("sample") {
            assert_eq!(warnings.len(), 1, "{mode}: {}", out.describe());
            assert!(
                warnings[0].contains("WARNING: guard: the kernel refused to make a guard page")
                    && warnings[0].contains("EPERM"),
                "{mode}: {}",
                out.describe()
            );
        } else {
            assert!(warnings.is_empty(), "{mode}: {}", out.describe());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// 5. Metadata out of reach of overflows.

/// MALLOC_DEBUG unset: 8 KiB of 0x41 written past the end of the second TINY (64-byte blocks)
/// and SMALL (2048-byte blocks) zone, then thousands of mallocs and frees, show_alloc_mem and
/// malloc_trim. Asserted: the program either ends normally (exit 0, "OK", nothing on stderr:
/// no refused call, which would mean our metadata was hit) or is killed by SIGSEGV while its
/// own memset runs (stdout stops at "overflowing": a guard page); never a crash or a refusal
/// after the overflow, which is where the allocator would follow the corrupted header.
#[test]
fn zone_overflow_cannot_reach_metadata() {
    for size in ["64", "2048"] {
        let out = run("zone_overflow_plain", &[size], &[]);
        if out.signal == Some(SIGSEGV) {
            assert_eq!(
                out.stdout,
                "overflowing\n",
                "size {size}: killed after the overflow: {}",
                out.describe()
            );
            continue;
        }
        assert_eq!(out.signal, None, "size {size}: {}", out.describe());
        assert!(
            out.stdout.starts_with("overflowing\noverflowed\n") && out.stdout.ends_with("OK\n"),
            "size {size}: {}",
            out.describe()
        );
        out.assert_success();
        assert_eq!(out.stderr, "", "size {size}: {}", out.describe());
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Messages.

/// malloc(2^46) under the guard modes: no claim that a budget was "spent by live blocks" (a
/// request no budget covers gets NULL/ENOMEM, or canaries): nothing on stderr at all.
#[test]
fn huge_request_under_guard_says_nothing() {
    for mode in ["full", "guard", "guard,guard_budget=1m"] {
        let out = run("huge_request_guarded", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok_clean();
    }
}

/// After heavy LARGE churn, the dump's count of kernel mappings is the number of lines of
/// /proc/self/maps read right after it (a few lines of slack), never a wrapped counter.
#[test]
fn mapping_count_after_large_churn_is_exact() {
    for mode in ["", "1", "full"] {
        let out = run("large_churn_mappings", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_success();
        assert!(out.stdout.ends_with("OK\n"), "{mode:?}: {}", out.describe());
        let stats = out
            .stdout
            .lines()
            .find(|l| l.starts_with("Stats : "))
            .unwrap_or_else(|| panic!("{mode:?}: no Stats line: {}", out.describe()));
        let shown: u64 = stats
            .split(" kernel mappings")
            .next()
            .filter(|_| stats.contains(" kernel mappings"))
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode:?}: no mapping count in {stats:?}"));
        let maps: u64 = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("maps "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode:?}: no maps line: {}", out.describe()));
        assert!(
            shown.abs_diff(maps) <= 4,
            "{mode:?}: dump says {shown} kernel mappings, /proc/self/maps has {maps} lines"
        );
    }
}

/// The peak of a small program (40,000 bytes live at once, below the batch by which a thread's
/// balance reaches the shared count) is what the `stats` line says, not 0.
#[test]
fn stats_peak_of_a_small_program() {
    for mode in ["stats", "1,stats"] {
        let out = run("peak_small", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_success();
        assert_eq!(out.stdout, "OK\n", "{mode}: {}", out.describe());
        let peak: u64 = out
            .stderr
            .lines()
            .find_map(|l| l.split_once("stats: peak ").map(|(_, r)| r))
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no stats line: {}", out.describe()));
        // (Start-up allocations of the C library come on top, a few KiB at most.)
        assert!(
            (40_000..=48_000).contains(&peak),
            "{mode}: peak {peak}: {}",
            out.describe()
        );
    }
}

/// A 10,000-byte MALLOC_DEBUG item: its warning echoes a bounded part of it, says how long it
/// was and ends its line, so the next warning is a line of its own.
#[test]
fn long_option_item_warning_ends_its_line() {
    let long = "x".repeat(10_000);
    let value = format!("1,{long},bogus2");
    let out = run(
        "leak_free_program",
        &[],
        &[("MALLOC_DEBUG", value.as_str())],
    );
    out.assert_success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARNING: MALLOC_DEBUG: ignoring"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", out.describe());
    assert!(warnings[0].len() < 1024, "{}", out.describe());
    assert!(
        warnings[0].contains("…(10000 bytes)': unknown option; valid: "),
        "{}",
        out.describe()
    );
    assert!(
        warnings[1].contains("ignoring 'bogus2': unknown option; valid: "),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr
            .lines()
            .all(|l| l.matches("ft_malloc[").count() == 1),
        "{}",
        out.describe()
    );
}
