//! Detection: each kind of heap bug found under `MALLOC_DEBUG=1` (check, canary, fill,
//! quarantine=4m, leaks; on_error=abort), with the exact first report line (pid and addresses
//! masked), the exit status or signal; the options that change what happens after a report
//! (on_error, report=PATH, check_every, fail, help, unknown options, empty value); correct C, C++
//! and real programs that must run without any report. One C/C++ program of `tests/c/` per
//! detection.

mod common;

use common::{Output, compile, fresh_dir, real, run};

const SIGABRT: i32 = 6;
const ABORTING: &str =
    "ft_malloc[PID]: aborting (MALLOC_DEBUG on_error=abort; on_error=continue goes on)";

/// `MALLOC_DEBUG=1`, the environment of most tests here.
const DEBUG: &[(&str, &str)] = &[("MALLOC_DEBUG", "1")];

/// Masks what changes from run to run: `ft_malloc[<digits>]` becomes `ft_malloc[PID]` and every
/// `0x<hex digits>` (either case) becomes `ADDR`. The same as matching each line against a regex
/// with `\d+` for the pid and `0x[0-9a-fA-F]+` for each address.
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

/// The masked lines of stderr.
fn masked_stderr(out: &Output) -> Vec<String> {
    mask(&out.stderr).lines().map(str::to_string).collect()
}

/// The masked `ft_malloc[PID]: ERROR: ...` lines of stderr (not the ERROR SUMMARY).
fn error_lines(out: &Output) -> Vec<String> {
    masked_stderr(out)
        .into_iter()
        .filter(|l| l.starts_with("ft_malloc[PID]: ERROR: "))
        .collect()
}

/// The pid of the first `ft_malloc[<pid>]` line of `text`.
fn pid_of(text: &str) -> Option<u32> {
    let rest = text.lines().find_map(|l| l.strip_prefix("ft_malloc["))?;
    rest[..rest.find(']')?].parse().ok()
}

/// The program died of SIGABRT after exactly one ERROR report: stderr starts with `first` (masked)
/// and its last report line is the `aborting` line; the program did not go on.
#[track_caller]
fn assert_abort_report(out: &Output, first: &str) {
    let lines = masked_stderr(out);
    assert_eq!(
        out.signal,
        Some(SIGABRT),
        "expected SIGABRT: {}",
        out.describe()
    );
    assert_eq!(
        lines.first().map(String::as_str),
        Some(first),
        "first report line: {}",
        out.describe()
    );
    assert_eq!(
        error_lines(out).len(),
        1,
        "one ERROR report expected: {}",
        out.describe()
    );
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("ft_malloc[PID]"))
        .collect();
    assert_eq!(
        ours.last().map(|s| s.as_str()),
        Some(ABORTING),
        "{}",
        out.describe()
    );
    assert!(
        !out.stdout.contains("continued"),
        "the program went on: {}",
        out.describe()
    );
    assert!(
        out.stderr.lines().all(|l| l.starts_with("ft_malloc[")),
        "stderr holds lines that are not ours: {}",
        out.describe()
    );
}

/// Runs `prog` under `MALLOC_DEBUG=1` and checks the abort with `first` as the first line.
#[track_caller]
fn expect_abort(prog: &str, first: &str) -> Output {
    let out = run(prog, &[], DEBUG);
    assert_abort_report(&out, first);
    out
}

/// Path of the compiled program, as the reports name it (`<path>+0x<offset>`).
fn exe(prog: &str) -> String {
    compile(prog).display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Bad pointers.

#[test]
fn double_free_tiny() {
    expect_abort(
        "double_free_tiny",
        "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()",
    );
}

#[test]
fn double_free_small() {
    expect_abort(
        "double_free_small",
        "ft_malloc[PID]: ERROR: double free of ADDR (SMALL, 3000 bytes) in free()",
    );
}

#[test]
fn double_free_large() {
    expect_abort(
        "double_free_large",
        "ft_malloc[PID]: ERROR: double free of ADDR (LARGE, 200000 bytes) in free()",
    );
}

/// The report also names the call site and the block's history (allocated, freed).
#[test]
fn double_free_report_names_call_sites() {
    let out = expect_abort(
        "double_free_tiny",
        "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()",
    );
    let lines = masked_stderr(&out);
    let path = exe("double_free_tiny");
    assert!(
        lines[1].starts_with(&format!(
            "ft_malloc[PID]:   free() called from {path}+ADDR, thread "
        )),
        "{}",
        out.describe()
    );
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(
        has("ft_malloc[PID]:   allocated by malloc() at event #"),
        "{}",
        out.describe()
    );
    assert!(
        has("ft_malloc[PID]:   freed at event #"),
        "{}",
        out.describe()
    );
}

const NOT_OURS: &str =
    "(not allocated by ft_malloc: stack, global, foreign or never allocated) in free()";

#[test]
fn free_stack_pointer() {
    expect_abort(
        "free_stack_pointer",
        &format!("ft_malloc[PID]: ERROR: invalid pointer ADDR {NOT_OURS}"),
    );
}

#[test]
fn free_global_pointer() {
    expect_abort(
        "free_global_pointer",
        &format!("ft_malloc[PID]: ERROR: invalid pointer ADDR {NOT_OURS}"),
    );
}

#[test]
fn free_never_allocated() {
    expect_abort(
        "free_never_allocated",
        &format!("ft_malloc[PID]: ERROR: invalid pointer ADDR {NOT_OURS}"),
    );
}

#[test]
fn free_interior_pointer() {
    expect_abort(
        "free_interior_pointer",
        "ft_malloc[PID]: ERROR: invalid pointer ADDR (16 bytes into the 24-byte TINY block at ADDR) in free()",
    );
}

#[test]
fn free_misaligned_pointer() {
    expect_abort(
        "free_misaligned_pointer",
        "ft_malloc[PID]: ERROR: invalid pointer ADDR (misaligned, 1 bytes into the 24-byte TINY block at ADDR) in free()",
    );
}

#[test]
fn realloc_freed_block() {
    expect_abort(
        "realloc_freed_block",
        "ft_malloc[PID]: ERROR: realloc of freed block ADDR (TINY, 24 bytes) in realloc()",
    );
}

#[test]
fn usable_size_freed_block() {
    expect_abort(
        "usable_size_freed_block",
        "ft_malloc[PID]: ERROR: malloc_usable_size of freed block ADDR (TINY, 24 bytes) in malloc_usable_size()",
    );
}

// ---------------------------------------------------------------------------------------------
// Overflows and underflows (canaries).

/// An overflow report: the first line, then the bytes found against the canary expected.
#[track_caller]
fn expect_overflow(prog: &str, first: &str, offset: i64) {
    let out = expect_abort(prog, first);
    let lines = masked_stderr(&out);
    assert!(lines.len() >= 3, "{}", out.describe());
    let found = format!("ft_malloc[PID]:   bytes at offset {offset}: ");
    let expected = "ft_malloc[PID]:   expected canary  : ";
    assert!(
        lines[1].starts_with(&found),
        "second line should start with {found:?}: {}",
        out.describe()
    );
    assert!(
        lines[2].starts_with(expected),
        "third line should start with {expected:?}: {}",
        out.describe()
    );
    // The same number of bytes shown on both lines, and they differ.
    let bytes = |l: &str, p: &str| {
        l[p.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (got, want) = (bytes(&lines[1], &found), bytes(&lines[2], expected));
    assert_eq!(got.len(), want.len(), "{}", out.describe());
    assert_ne!(got, want, "{}", out.describe());
}

#[test]
fn overflow_1_byte_slack() {
    expect_overflow(
        "overflow_1_byte_slack",
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 13 bytes) written past its end at offset 13 (1 byte past the end), found in free()",
        13,
    );
}

#[test]
fn overflow_1_byte_exact() {
    expect_overflow(
        "overflow_1_byte_exact",
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 24 bytes) written past its end at offset 24 (1 byte past the end), found in free()",
        24,
    );
}

#[test]
fn overflow_small() {
    expect_overflow(
        "overflow_small",
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (SMALL, 3000 bytes) written past its end at offset 3000 (1 byte past the end), found in free()",
        3000,
    );
}

#[test]
fn overflow_large() {
    expect_overflow(
        "overflow_large",
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (LARGE, 200000 bytes) written past its end at offset 200000 (1 byte past the end), found in free()",
        200000,
    );
}

#[test]
fn underflow_1_byte() {
    expect_abort(
        "underflow_1_byte",
        "ft_malloc[PID]: ERROR: heap underflow: ADDR (TINY, 24 bytes) written 1 bytes before its start, found in free()",
    );
}

// ---------------------------------------------------------------------------------------------
// Write after free (quarantine + fill).

const WRITE_AFTER_FREE: &str = "ft_malloc[PID]: ERROR: write after free: ADDR (TINY, 24 bytes) modified at offset 16 after it was freed (found when it left quarantine)";

/// The block is still in quarantine when main returns: the drain at exit finds the write.
#[test]
fn write_after_free_immediate() {
    let out = expect_abort("write_after_free_immediate", WRITE_AFTER_FREE);
    assert_eq!(out.stdout, "end\n", "{}", out.describe());
}

/// A LARGE block up to 64 KiB is quarantined with a fill too: the write is found at exit.
#[test]
fn write_after_free_large() {
    let out = expect_abort(
        "write_after_free_large",
        "ft_malloc[PID]: ERROR: write after free: ADDR (LARGE, 40000 bytes) modified at offset 30000 after it was freed (found when it left quarantine)",
    );
    assert_eq!(out.stdout, "end\n", "{}", out.describe());
}

/// 1000 blocks of the same class allocated and freed meanwhile: none reuses the freed block
/// (the program checks), and the write is still found at exit.
#[test]
fn write_after_free_after_1000_tiny_allocs() {
    let out = run("write_after_free_after_1000_allocs", &["tiny"], DEBUG);
    assert_abort_report(&out, WRITE_AFTER_FREE);
    assert_eq!(out.stdout, "loop done\n", "{}", out.describe());
}

/// The default quarantine scales with the heap: in a small program 512 KB freed after the block
/// push it out during the loop (found then); with a set `quarantine=64m` it stays until exit.
#[test]
fn write_after_free_quarantine_scales_with_heap() {
    let out = run("write_after_free_after_1000_allocs", &["mid"], DEBUG);
    assert_abort_report(&out, WRITE_AFTER_FREE);
    assert_eq!(out.stdout, "", "found during the loop: {}", out.describe());
    let out = run(
        "write_after_free_after_1000_allocs",
        &["mid"],
        &[("MALLOC_DEBUG", "1,quarantine=64m")],
    );
    assert_abort_report(&out, WRITE_AFTER_FREE);
    assert_eq!(
        out.stdout,
        "loop done\n",
        "found at exit: {}",
        out.describe()
    );
}

/// 8 MiB freed after the block pushes it out of the 4 MiB quarantine during the loop: found then.
#[test]
fn write_after_free_after_1000_big_allocs() {
    let out = run("write_after_free_after_1000_allocs", &["big"], DEBUG);
    assert_abort_report(&out, WRITE_AFTER_FREE);
    assert_eq!(
        out.stdout,
        "",
        "the write should be found before the loop ends: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Fill, sizes.

#[test]
fn fill_uninitialised() {
    run("fill_uninitialised", &[], DEBUG).assert_ok_clean();
}

#[test]
fn absurd_size() {
    expect_abort(
        "absurd_size",
        "ft_malloc[PID]: ERROR: absurd size 18446744073709551600 (-16 as a signed value) in malloc()",
    );
}

/// Not a bug of the program: NULL and ENOMEM, no report, under debugging as without it.
#[test]
fn calloc_overflow_enomem() {
    run("calloc_overflow_enomem", &[], DEBUG).assert_ok_clean();
    run("calloc_overflow_enomem", &[], &[]).assert_ok_clean();
}

// ---------------------------------------------------------------------------------------------
// C++: allocation and deallocation families.

/// `c++` missing: prints `skipped` and returns false.
fn have_cxx() -> bool {
    common::require("c++").is_some()
}

#[test]
fn free_of_new() {
    if !have_cxx() {
        return;
    }
    expect_abort(
        "free_of_new",
        "ft_malloc[PID]: ERROR: alloc-dealloc mismatch: ADDR (TINY, 4 bytes) allocated by operator new(), released by free()",
    );
}

/// A program's own operator new around malloc with the default delete, and its own delete
/// around free with the default new: no mismatch (the function that called malloc, or free,
/// is an operator new, or delete); a real mismatch is still one (`free_of_new` above), and an
/// overflow of such a block is still found at delete[].
#[test]
fn own_operator_new_or_delete_is_no_mismatch() {
    if !have_cxx() {
        return;
    }
    run("own_operator_new", &[], DEBUG).assert_ok_clean();
    run("own_operator_delete", &[], DEBUG).assert_ok_clean();
    assert_abort_report(
        &run("own_operator_new", &["overflow"], DEBUG),
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 16 bytes) written past its end at offset 16 (1 byte past the end), found in operator delete[]()",
    );
}

#[test]
fn delete_of_new_array() {
    if !have_cxx() {
        return;
    }
    expect_abort(
        "delete_of_new_array",
        "ft_malloc[PID]: ERROR: alloc-dealloc mismatch: ADDR (TINY, 4 bytes) allocated by operator new[](), released by operator delete()",
    );
}

#[test]
fn delete_array_of_new() {
    if !have_cxx() {
        return;
    }
    expect_abort(
        "delete_array_of_new",
        "ft_malloc[PID]: ERROR: alloc-dealloc mismatch: ADDR (TINY, 4 bytes) allocated by operator new(), released by operator delete[]()",
    );
}

#[test]
fn delete_of_malloc() {
    if !have_cxx() {
        return;
    }
    expect_abort(
        "delete_of_malloc",
        "ft_malloc[PID]: ERROR: alloc-dealloc mismatch: ADDR (TINY, 4 bytes) allocated by malloc(), released by operator delete()",
    );
}

#[test]
fn sized_delete_wrong_size() {
    if !have_cxx() {
        return;
    }
    expect_abort(
        "sized_delete_wrong_size",
        "ft_malloc[PID]: ERROR: sized delete mismatch: ADDR (TINY, 24 bytes) released with size 32 in operator delete()",
    );
}

#[test]
fn cpp_containers_clean() {
    if !have_cxx() {
        return;
    }
    let out = run("cpp_containers_clean", &[], DEBUG);
    out.assert_ok_clean();
    assert_eq!(out.stdout, "500 2500 1009890\nOK\n");
}

// ---------------------------------------------------------------------------------------------
// Leaks at exit.

/// The lines of `lines` that start with `prefix`.
fn lines_with<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.starts_with(prefix)).collect()
}

/// One LEAK line for the 100 lost blocks, naming the call site; the summary; the exit status
/// stays the program's (a leak is reported, it is not an ERROR).
#[test]
fn leak_planted() {
    let out = run("leak_planted", &[], DEBUG);
    out.assert_success();
    assert_eq!(out.stdout, "OK\n", "{}", out.describe());
    let lines = masked_stderr(&out);
    let leaks = lines_with(&lines, "ft_malloc[PID]: LEAK: ");
    let want = format!(
        "ft_malloc[PID]: LEAK: 1300 bytes in 100 block(s) allocated by malloc() from {}+ADDR",
        exe("leak_planted")
    );
    assert_eq!(leaks, vec![&want], "{}", out.describe());
    assert_eq!(lines.first(), Some(&want), "{}", out.describe());
    let summary = lines_with(&lines, "ft_malloc[PID]: LEAK SUMMARY: ");
    assert_eq!(summary.len(), 1, "{}", out.describe());
    assert!(
        summary[0]
            .starts_with("ft_malloc[PID]: LEAK SUMMARY: 1300 bytes in 100 unreachable block(s)"),
        "{}",
        out.describe()
    );
    assert!(error_lines(&out).is_empty(), "{}", out.describe());
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("ft_malloc[PID]: REACHABLE: ")),
        "{}",
        out.describe()
    );
}

/// The same leak with debugging that keeps the thread caches on (`leaks` alone, or with a log):
/// a cache's arrays keep the addresses of the slots it handed out, and they are the
/// allocator's bookkeeping, not references from the program: all 100 blocks are leaks.
#[test]
fn leak_planted_with_thread_caches() {
    let dir = fresh_dir("leak_caches");
    let log = format!("leaks,log={}", dir.join("l.log").display());
    for debug in ["leaks", "leaks,stack=1", &log] {
        let out = run("leak_planted", &[], &[("MALLOC_DEBUG", debug)]);
        out.assert_success();
        let lines = masked_stderr(&out);
        let want = format!(
            "ft_malloc[PID]: LEAK: 1300 bytes in 100 block(s) allocated by malloc() from {}+ADDR",
            exe("leak_planted")
        );
        assert_eq!(
            lines_with(&lines, "ft_malloc[PID]: LEAK: "),
            vec![&want],
            "{debug}: {}",
            out.describe()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Leaks that hold the only pointers to other leaked blocks: the direct leaks come first
/// (valgrind's "definitely lost"), then the indirect ones, marked so; a ring of leaked blocks
/// has one block stand for it as a direct leak; the summary counts the indirect ones apart.
/// The figures are valgrind's for the same program: 144 bytes in 4 blocks definitely lost,
/// 256 bytes in 7 blocks indirectly lost.
#[test]
fn leaks_reachable_only_from_leaks_are_indirect() {
    let out = run("leak_indirect", &[], DEBUG);
    out.assert_success();
    assert_eq!(out.stdout, "OK\n", "{}", out.describe());
    let lines = masked_stderr(&out);
    let head = format!(
        "ft_malloc[PID]: LEAK: {{}} allocated by malloc() from {}+ADDR",
        exe("leak_indirect")
    );
    let leaks = lines_with(&lines, "ft_malloc[PID]: LEAK: ");
    let tail = ", indirectly lost (only leaked blocks point to them)";
    let want: Vec<String> = [
        ("64 bytes in 1 block(s)", ""),
        ("32 bytes in 1 block(s)", ""),
        ("32 bytes in 1 block(s)", ""),
        ("16 bytes in 1 block(s)", ""),
        ("96 bytes in 3 block(s)", tail),
        ("48 bytes in 1 block(s)", tail),
        ("48 bytes in 1 block(s)", tail),
        ("32 bytes in 1 block(s)", tail),
        ("32 bytes in 1 block(s)", tail),
    ]
    .iter()
    .map(|(n, t)| head.replace("{}", n) + t)
    .collect();
    assert_eq!(leaks, want.iter().collect::<Vec<_>>(), "{}", out.describe());
    let summary = lines_with(&lines, "ft_malloc[PID]: LEAK SUMMARY: ");
    assert_eq!(summary.len(), 1, "{}", out.describe());
    assert!(
        summary[0]
            .starts_with("ft_malloc[PID]: LEAK SUMMARY: 400 bytes in 11 unreachable block(s); ")
            && summary[0].ends_with(
                "; of the unreachable, 256 bytes in 7 block(s) indirectly lost (only other \
                 unreachable blocks point to them)"
            ),
        "{}",
        out.describe()
    );
    // A program with no leak pointing to another says nothing of indirect ones.
    let out = run("leak_planted", &[], DEBUG);
    assert!(!out.stderr.contains("indirectly"), "{}", out.describe());
}

/// `suppress=FILE`: the leaks whose stack a pattern matches (by function name) are left out,
/// indirect ones too; a line per pattern used and the summary say what they took. Every leak
/// suppressed: the summary says so in lower case (no LEAK). A file that cannot be read: one
/// warning, every leak reported.
#[test]
fn suppressed_leaks_are_left_out_and_counted() {
    let dir = fresh_dir("suppress");
    let file = dir.join("leaks.supp");
    std::fs::write(
        &file,
        "# known leaks\nleak:ring_node\n  leak:^tree_*$  \ninterceptor_via_fun:x\nleak:none_such\n",
    )
    .unwrap();
    let debug = format!("1,suppress={}", file.display());
    let out = run("leak_indirect", &[], &[("MALLOC_DEBUG", &debug)]);
    out.assert_success();
    let lines = masked_stderr(&out);
    let head = format!(
        "ft_malloc[PID]: LEAK: {{}} allocated by malloc() from {}+ADDR",
        exe("leak_indirect")
    );
    let want = [
        head.replace("{}", "64 bytes in 1 block(s)"),
        head.replace("{}", "32 bytes in 1 block(s)"),
        head.replace("{}", "96 bytes in 3 block(s)")
            + ", indirectly lost (only leaked blocks point to them)",
    ];
    assert_eq!(
        lines_with(&lines, "ft_malloc[PID]: LEAK: "),
        want.iter().collect::<Vec<_>>(),
        "{}",
        out.describe()
    );
    assert_eq!(
        lines_with(&lines, "ft_malloc[PID]: suppressed: "),
        vec![
            "ft_malloc[PID]: suppressed: 96 bytes in 3 block(s) by leak:ring_node",
            "ft_malloc[PID]: suppressed: 112 bytes in 3 block(s) by leak:^tree_*$",
        ],
        "{}",
        out.describe()
    );
    let summary = lines_with(&lines, "ft_malloc[PID]: LEAK SUMMARY: ");
    assert!(
        summary.len() == 1
            && summary[0].starts_with("ft_malloc[PID]: LEAK SUMMARY: 192 bytes in 5 unreachable")
            && summary[0].ends_with("; 208 bytes in 6 unreachable block(s) suppressed"),
        "{}",
        out.describe()
    );
    // Everything suppressed (a module path holds the pattern).
    std::fs::write(&file, "leak:leak_indirect\n").unwrap();
    let out = run("leak_indirect", &[], &[("MALLOC_DEBUG", &debug)]);
    let lines = masked_stderr(&out);
    assert!(
        lines_with(&lines, "ft_malloc[PID]: LEAK").is_empty(),
        "{}",
        out.describe()
    );
    let summary = lines_with(
        &lines,
        "ft_malloc[PID]: leak summary: 0 bytes in 0 unreachable",
    );
    assert!(
        summary.len() == 1
            && summary[0].ends_with("; 400 bytes in 11 unreachable block(s) suppressed"),
        "{}",
        out.describe()
    );
    // No such file.
    std::fs::remove_file(&file).unwrap();
    let out = run("leak_indirect", &[], &[("MALLOC_DEBUG", &debug)]);
    let lines = masked_stderr(&out);
    let warning = format!(
        "ft_malloc[PID]: WARNING: suppress={}: cannot read it (ENOENT: No such file or directory); \
         no leak is suppressed",
        file.display()
    );
    assert_eq!(
        lines_with(&lines, "ft_malloc[PID]: WARNING: "),
        vec![&warning],
        "{}",
        out.describe()
    );
    assert_eq!(
        lines_with(&lines, "ft_malloc[PID]: LEAK: ").len(),
        9,
        "{}",
        out.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The leaked block is the live block at the lowest address (dropped from a global array of 20,
/// the others kept): found like any other.
#[test]
fn leak_of_lowest_block() {
    let out = run("leak_of_lowest_block", &["lowest"], DEBUG);
    assert_one_5000_byte_leak(&out);
}

/// Control for the test above: the highest block dropped instead.
#[test]
fn leak_of_highest_block() {
    let out = run("leak_of_lowest_block", &["highest"], DEBUG);
    assert_one_5000_byte_leak(&out);
}

#[track_caller]
fn assert_one_5000_byte_leak(out: &Output) {
    out.assert_success();
    assert_eq!(out.stdout, "", "{}", out.describe());
    let lines = masked_stderr(out);
    let want = format!(
        "ft_malloc[PID]: LEAK: 5000 bytes in 1 block(s) allocated by malloc() from {}+ADDR",
        exe("leak_of_lowest_block")
    );
    assert_eq!(lines.first(), Some(&want), "{}", out.describe());
    let summary = "ft_malloc[PID]: LEAK SUMMARY: 5000 bytes in 1 unreachable block(s); 95000 bytes in 19 block(s) still reachable";
    assert!(lines.iter().any(|l| l == summary), "{}", out.describe());
}

/// Blocks still held at exit but reachable (stdio buffers, globals, an interior pointer, the
/// environment): nothing printed at all.
#[test]
fn leak_free_program() {
    let out = run("leak_free_program", &[], DEBUG);
    out.assert_ok_clean();
    assert_eq!(out.stdout, "node 9 some value\nOK\n");
}

/// leaks=all lists the reachable blocks (no LEAK line), with the program's own call sites.
#[test]
fn leak_free_program_leaks_all() {
    let out = run("leak_free_program", &[], &[("MALLOC_DEBUG", "1,leaks=all")]);
    out.assert_success();
    assert_eq!(out.stdout, "node 9 some value\nOK\n", "{}", out.describe());
    let lines = masked_stderr(&out);
    assert!(
        !lines.iter().any(|l| l.contains(": LEAK: ")),
        "{}",
        out.describe()
    );
    assert!(error_lines(&out).is_empty(), "{}", out.describe());
    let path = exe("leak_free_program");
    for (bytes, blocks) in [(300000, 1), (1000, 1), (560, 10)] {
        let want = format!(
            "ft_malloc[PID]: REACHABLE: {bytes} bytes in {blocks} block(s) allocated by malloc() from {path}+ADDR"
        );
        assert!(
            lines.contains(&want),
            "no line {want:?}: {}",
            out.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// on_error, report, check_every.

/// on_error=continue: a free that was refused (a pointer into a live block of each class,
/// misaligned or not; a double free) was still meant to free the block: no LEAK line for those
/// blocks, while the real leak is still reported.
#[test]
fn refused_frees_are_not_leaks() {
    for debug in [
        "1,on_error=continue",
        "full,on_error=continue",
        "1,on_error=exit:3",
    ] {
        let out = run("refused_free_not_leak", &[], &[("MALLOC_DEBUG", debug)]);
        assert_eq!(out.stdout, "OK\n", "{debug}: {}", out.describe());
        assert!(
            masked_stderr(&out)
                .iter()
                .any(|l| l == "ft_malloc[PID]: ERROR SUMMARY: 5 error(s)"),
            "{debug}: {}",
            out.describe()
        );
        let leaks: Vec<String> = masked_stderr(&out)
            .into_iter()
            .filter(|l| l.starts_with("ft_malloc[PID]: LEAK"))
            .collect();
        assert_eq!(leaks.len(), 2, "{debug}: {}", out.describe());
        assert!(
            leaks[0].starts_with(
                "ft_malloc[PID]: LEAK: 555 bytes in 1 block(s) allocated by malloc() from "
            ),
            "{debug}: {}",
            out.describe()
        );
        assert!(
            leaks[1]
                .starts_with("ft_malloc[PID]: LEAK SUMMARY: 555 bytes in 1 unreachable block(s)"),
            "{debug}: {}",
            out.describe()
        );
    }
}

/// Goes on after each report, one report per call site (3 double frees at site A, 1 at site B),
/// and the summary at exit counts all 4 with one line per site.
#[test]
fn on_error_continue_dedupes() {
    let out = run(
        "on_error_continue",
        &[],
        &[("MALLOC_DEBUG", "1,on_error=continue")],
    );
    out.assert_success();
    assert_eq!(out.stdout, "OK\n", "{}", out.describe());
    assert_eq!(
        error_lines(&out),
        vec![
            "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()",
            "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 100 bytes) in free()",
        ],
        "{}",
        out.describe()
    );
    let lines = masked_stderr(&out);
    let at = lines
        .iter()
        .position(|l| l == "ft_malloc[PID]: ERROR SUMMARY: 4 error(s)");
    let Some(at) = at else {
        panic!("no ERROR SUMMARY line: {}", out.describe())
    };
    let path = exe("on_error_continue");
    assert_eq!(
        lines[at + 1],
        format!("ft_malloc[PID]:   3 x double free from {path}+ADDR"),
        "{}",
        out.describe()
    );
    assert_eq!(
        lines[at + 2],
        format!("ft_malloc[PID]:   1 x double free from {path}+ADDR"),
        "{}",
        out.describe()
    );
    assert!(
        !lines.iter().any(|l| l.contains("aborting")),
        "{}",
        out.describe()
    );
}

#[test]
fn on_error_exit_3() {
    let out = run(
        "double_free_tiny",
        &[],
        &[("MALLOC_DEBUG", "1,on_error=exit:3")],
    );
    assert_eq!(out.status, Some(3), "{}", out.describe());
    assert_eq!(out.stdout, "continued\n", "{}", out.describe());
    let errors = error_lines(&out);
    assert_eq!(
        errors,
        vec!["ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()"],
        "{}",
        out.describe()
    );
    assert!(
        masked_stderr(&out).contains(&"ft_malloc[PID]: ERROR SUMMARY: 1 error(s)".to_string()),
        "{}",
        out.describe()
    );
}

/// exit:N changes the status only when there was an error.
#[test]
fn on_error_exit_3_clean_program() {
    run(
        "leak_free_program",
        &[],
        &[("MALLOC_DEBUG", "1,on_error=exit:3")],
    )
    .assert_ok_clean();
}

/// report=PATH with %p: the whole report goes to that file (named with the reporting pid),
/// nothing to stderr.
#[test]
fn report_to_file() {
    let dir = fresh_dir("report_to_file");
    let debug = format!("1,report={}/r.%p.txt", dir.display());
    let out = run("double_free_tiny", &[], &[("MALLOC_DEBUG", &debug)]);
    assert_eq!(out.signal, Some(SIGABRT), "{}", out.describe());
    assert_eq!(out.stderr, "", "{}", out.describe());
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(dir.join(&files[0])).unwrap();
    let pid = pid_of(&text).unwrap_or_else(|| panic!("no report line in {}:\n{text}", files[0]));
    assert_eq!(
        files[0],
        format!("r.{pid}.txt"),
        "the file is not named after the reporting pid:\n{text}"
    );
    let masked = mask(&text);
    let lines: Vec<&str> = masked.lines().collect();
    assert_eq!(
        lines[0], "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()",
        "{text}"
    );
    assert_eq!(lines.last(), Some(&ABORTING), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// check_every=1 verifies the heap on the next call: the overflow is found in malloc(), before
/// the program reaches free().
#[test]
fn check_every_1_finds_overflow_before_free() {
    let out = run(
        "check_every_overflow",
        &[],
        &[("MALLOC_DEBUG", "1,check_every=1")],
    );
    assert_abort_report(
        &out,
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 13 bytes) written past its end at offset 13 (1 byte past the end), found in malloc()",
    );
    assert_eq!(out.stdout, "", "{}", out.describe());
}

/// The same program without check_every: found only by free().
#[test]
fn check_every_off_finds_overflow_in_free() {
    let out = run("check_every_overflow", &[], DEBUG);
    assert_abort_report(
        &out,
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 13 bytes) written past its end at offset 13 (1 byte past the end), found in free()",
    );
    assert_eq!(out.stdout, "not caught before free\n", "{}", out.describe());
}

// ---------------------------------------------------------------------------------------------
// Fault injection.

const NTH_3: &str = "1 ok\n2 ok\n3 NULL ENOMEM\n4 ok\n5 ok\n6 ok\n";

#[test]
fn fail_nth_3() {
    let out = run("fail_nth", &[], &[("MALLOC_DEBUG", "fail=nth:3")]);
    out.assert_success();
    assert_eq!(out.stdout, NTH_3, "{}", out.describe());
    assert_eq!(out.stderr, "", "{}", out.describe());
}

#[test]
fn fail_nth_3_with_debugging() {
    let out = run("fail_nth", &[], &[("MALLOC_DEBUG", "1,fail=nth:3")]);
    out.assert_success();
    assert_eq!(out.stdout, NTH_3, "{}", out.describe());
    assert_eq!(out.stderr, "", "{}", out.describe());
}

#[test]
fn fail_size_1m() {
    let want = "malloc(1m-1) ok\nmalloc(1m) NULL ENOMEM\nmalloc(2m) NULL ENOMEM\ncalloc(1,1m) NULL ENOMEM\n\
                malloc(100) ok\nrealloc(100->1m) NULL ENOMEM\n";
    for debug in ["fail=size:1m", "1,fail=size:1m"] {
        let out = run("fail_size", &[], &[("MALLOC_DEBUG", debug)]);
        out.assert_success();
        assert_eq!(out.stdout, want, "MALLOC_DEBUG={debug}: {}", out.describe());
        assert_eq!(out.stderr, "", "MALLOC_DEBUG={debug}: {}", out.describe());
    }
    // Without fail, every request succeeds.
    let out = run("fail_size", &[], &[]);
    out.assert_success();
    assert!(!out.stdout.contains("NULL"), "{}", out.describe());
}

// ---------------------------------------------------------------------------------------------
// The MALLOC_DEBUG value itself.

/// help: the option table on stderr, then the program runs normally.
#[test]
fn help_prints_options() {
    let out = run("leak_free_program", &[], &[("MALLOC_DEBUG", "help")]);
    out.assert_success();
    assert_eq!(out.stdout, "node 9 some value\nOK\n", "{}", out.describe());
    for opt in [
        "check",
        "canary",
        "fill",
        "quarantine",
        "leaks",
        "on_error",
        "check_every",
        "report",
        "fail",
    ] {
        let prefix = format!("  {opt} ");
        assert!(
            out.stderr.lines().any(|l| l.starts_with(&prefix)),
            "option {opt} not listed: {}",
            out.describe()
        );
    }
    assert!(out.stderr.contains("MALLOC_DEBUG"), "{}", out.describe());
    // Every number's range.
    for range in [
        "  quarantine    [size 0-64g, ",
        "  on_error      [onerror N 0-255, ",
        "  check_every   [count 0-1000000000, ",
        "  fail          [fail N 1 or more, ",
        "  sample        [count 0-1000000, ",
        "  guard_budget  [size 0-64g, ",
        "  ring          [count 0-16777216, ",
        "  stack         [count 0-64, ",
        "  hexdump       [hexdump 0-1g, ",
    ] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with(range)),
            "{range:?} not in the help: {}",
            out.describe()
        );
    }
    assert!(
        out.stderr.contains("case-insensitive"),
        "{}",
        out.describe()
    );
    let reports = masked_stderr(&out)
        .into_iter()
        .filter(|l| {
            l.starts_with("ft_malloc[PID]: WARNING") || l.starts_with("ft_malloc[PID]: ERROR")
        })
        .count();
    assert_eq!(reports, 0, "{}", out.describe());
}

const BOGUS: &str =
    "ft_malloc[PID]: WARNING: MALLOC_DEBUG: ignoring 'bogus': unknown option; valid: ";

/// One warning for the unknown item; the rest of the value still applies (the double free is
/// an ERROR and aborts).
#[test]
fn unknown_option_warns_rest_applies() {
    let out = run("double_free_tiny", &[], &[("MALLOC_DEBUG", "1,bogus")]);
    let lines = masked_stderr(&out);
    assert!(lines[0].starts_with(BOGUS), "{}", out.describe());
    for opt in ["check", "canary", "quarantine", "on_error"] {
        assert!(
            lines[0][BOGUS.len()..].split(", ").any(|o| o == opt),
            "{opt} not in the valid list: {}",
            out.describe()
        );
    }
    assert_eq!(out.warning_lines().len(), 1, "{}", out.describe());
    assert_eq!(out.signal, Some(SIGABRT), "{}", out.describe());
    assert_eq!(
        error_lines(&out),
        vec!["ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()"],
        "{}",
        out.describe()
    );
    assert_eq!(
        lines[1],
        "ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()",
        "{}",
        out.describe()
    );
}

/// An unknown item alone: one warning line and nothing else.
#[test]
fn unknown_option_alone() {
    let out = run("leak_free_program", &[], &[("MALLOC_DEBUG", "bogus")]);
    out.assert_success();
    assert_eq!(out.stdout, "node 9 some value\nOK\n", "{}", out.describe());
    let lines = masked_stderr(&out);
    assert_eq!(lines.len(), 1, "{}", out.describe());
    assert!(lines[0].starts_with(BOGUS), "{}", out.describe());
}

/// A number out of its option's range: one warning line naming the valid range and the value
/// used instead (the nearest valid one); the program runs with it.
#[test]
fn out_of_range_values_warn_and_use_the_nearest() {
    let out = run(
        "leak_free_program",
        &[],
        &[(
            "MALLOC_DEBUG",
            "quarantine=99999g,backtrace=100,sample=0,check_every=0,ring=99999999",
        )],
    );
    out.assert_success();
    assert_eq!(out.stdout, "node 9 some value\nOK\n", "{}", out.describe());
    assert_eq!(
        masked_stderr(&out),
        vec![
            "ft_malloc[PID]: WARNING: MALLOC_DEBUG: 'quarantine=99999g': out of range (valid: 0-64g); using 64g",
            "ft_malloc[PID]: WARNING: MALLOC_DEBUG: 'backtrace=100': out of range (valid: 0-64); using 64",
            "ft_malloc[PID]: WARNING: MALLOC_DEBUG: 'ring=99999999': out of range (valid: 0-16777216); using 16777216",
        ],
        "{}",
        out.describe()
    );
    // exit:N past 255 is exit:255: the double free ends the program with 255.
    let out = run(
        "double_free_tiny",
        &[],
        &[("MALLOC_DEBUG", "1,on_error=exit:300")],
    );
    assert_eq!(out.status, Some(255), "{}", out.describe());
    assert_eq!(
        masked_stderr(&out)[0],
        "ft_malloc[PID]: WARNING: MALLOC_DEBUG: 'on_error=exit:300': out of range (valid: 0-255); using exit:255",
        "{}",
        out.describe()
    );
}

/// A ring bigger than the address space allows: one warning line says there is none (and why),
/// and the program runs.
#[test]
fn a_ring_without_memory_is_said() {
    let script = format!(
        "ulimit -v 300000 && LD_PRELOAD={} exec {}",
        common::lib().display(),
        compile("leak_free_program").display()
    );
    let out = common::Run::new("/bin/sh")
        .no_preload()
        .args(["-c", &script])
        .env("MALLOC_DEBUG", "ring=16777216")
        .go();
    out.assert_success();
    assert_eq!(out.stdout, "node 9 some value\nOK\n", "{}", out.describe());
    assert_eq!(
        masked_stderr(&out),
        vec![
            "ft_malloc[PID]: WARNING: ring: no memory for 16777216 events (1048576 KiB); reports \
             go without blocks' recent history (a smaller ring=N fits)"
        ],
        "{}",
        out.describe()
    );
}

/// Preset names, option names and keyword values are case-insensitive: `FULL` is `full`.
#[test]
fn names_and_presets_are_case_insensitive() {
    let out = run("double_free_tiny", &[], &[("MALLOC_DEBUG", "FULL")]);
    assert_eq!(out.signal, Some(SIGABRT), "{}", out.describe());
    assert!(out.warning_lines().is_empty(), "{}", out.describe());
    assert_eq!(
        error_lines(&out),
        vec!["ft_malloc[PID]: ERROR: double free of ADDR (GUARDED, 24 bytes) in free()"],
        "{}",
        out.describe()
    );
    let out = run(
        "double_free_tiny",
        &[],
        &[(
            "MALLOC_DEBUG",
            "Default,On_Error=Continue,NOLEAKS,Dump_Signal=usr1",
        )],
    );
    out.assert_success();
    assert_eq!(out.stdout, "continued\n", "{}", out.describe());
    assert!(out.warning_lines().is_empty(), "{}", out.describe());
    assert_eq!(error_lines(&out).len(), 1, "{}", out.describe());
}

/// MALLOC_DEBUG="" is MALLOC_DEBUG unset: a double free is one WARNING line, the program goes on.
#[test]
fn empty_malloc_debug_is_unset() {
    let empty = run("double_free_tiny", &[], &[("MALLOC_DEBUG", "")]);
    let unset = run("double_free_tiny", &[], &[]);
    for out in [&empty, &unset] {
        out.assert_success();
        assert_eq!(out.stdout, "continued\n", "{}", out.describe());
        assert_eq!(
            masked_stderr(out),
            vec!["ft_malloc[PID]: WARNING: free(): double free of ADDR (TINY, 24 bytes); ignored"],
            "{}",
            out.describe()
        );
    }
    // And a correct program prints nothing, leaks being off.
    run("leak_free_program", &[], &[("MALLOC_DEBUG", "")]).assert_ok_clean();
}

// ---------------------------------------------------------------------------------------------
// Real programs under MALLOC_DEBUG=1: their normal output (checked by common::real) and no
// ERROR line.

#[track_caller]
fn real_check(name: &str, f: real::Check) -> Option<Output> {
    let out = f(DEBUG)?;
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("ft_malloc[") && l.contains("]: ERROR"))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} under MALLOC_DEBUG=1 reported errors: {}",
        out.describe()
    );
    assert!(
        !out.stderr.contains("aborting"),
        "{name}: {}",
        out.describe()
    );
    Some(out)
}

#[test]
fn real_bash_string_loop() {
    real_check("bash", real::bash_string_loop);
}

#[test]
fn real_python_dicts_lists() {
    real_check("python3", real::python_dicts_lists);
}

#[test]
fn real_python_threads() {
    real_check("python3 threads", real::python_threads);
}

#[test]
fn real_perl_hash_200k() {
    real_check("perl", real::perl_hash_200k);
}

#[test]
fn real_git_init_commit_log() {
    real_check("git", real::git_init_commit_log);
}

#[test]
fn real_gcc_compile_and_run() {
    real_check("gcc", real::gcc_compile_and_run);
}

#[test]
fn real_clang_cxx_compile_and_run() {
    real_check("clang++", real::clang_cxx_compile_and_run);
}

#[test]
fn real_rustc_compile_and_run() {
    real_check("rustc", real::rustc_compile_and_run);
}

#[test]
fn real_sort_100k_lines() {
    real_check("sort", real::sort_100k_lines);
}

#[test]
fn real_sqlite3_10k_rows() {
    real_check("sqlite3", real::sqlite3_10k_rows);
}

// ---------------------------------------------------------------------------------------------
// Leaks of real programs against valgrind: the unreachable bytes and blocks of our LEAK SUMMARY
// equal valgrind's "definitely lost" and "indirectly lost" for the same command, each kind.

/// (bytes, blocks) definitely lost, then indirectly lost, according to valgrind's leak summary
/// on `stderr`.
fn valgrind_lost(stderr: &str) -> [(u64, u64); 2] {
    let num = |s: &str| s.replace(',', "").parse::<u64>().unwrap();
    let mut lost = [(0, 0); 2];
    for l in stderr.lines() {
        for (k, kind) in ["definitely lost: ", "indirectly lost: "]
            .iter()
            .enumerate()
        {
            if let Some(i) = l.find(kind) {
                // "definitely lost: 8,325 bytes in 30 blocks"
                let w: Vec<&str> = l[i + kind.len()..].split_whitespace().collect();
                lost[k] = (num(w[0]), num(w[3]));
            }
        }
    }
    lost
}

/// (bytes, blocks) directly unreachable, then indirectly, according to our `LEAK SUMMARY`
/// line; zeros without one.
fn ft_malloc_lost(out: &Output) -> [(u64, u64); 2] {
    let Some(l) = masked_stderr(out)
        .into_iter()
        .find(|l| l.starts_with("ft_malloc[PID]: LEAK SUMMARY: "))
    else {
        return [(0, 0); 2];
    };
    let w: Vec<&str> = l["ft_malloc[PID]: LEAK SUMMARY: ".len()..]
        .split_whitespace()
        .collect();
    let all: (u64, u64) = (w[0].parse().unwrap(), w[3].parse().unwrap());
    // "...; of the unreachable, 48132 bytes in 16 block(s) indirectly lost (...)"
    let indirect = match l.split_once("; of the unreachable, ") {
        Some((_, rest)) => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            (w[0].parse().unwrap(), w[3].parse().unwrap())
        }
        None => (0, 0),
    };
    [(all.0 - indirect.0, all.1 - indirect.1), indirect]
}

/// Runs `program args` under MALLOC_DEBUG=1 and under valgrind, returns both outputs after
/// checking both succeed with the same stdout and that we reported no ERROR.
fn leaks_vs_valgrind(
    program: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Option<(Output, Output)> {
    let valgrind = common::require("valgrind")?;
    let ours = common::Run::new(program)
        .args(args)
        .envs(envs)
        .envs(DEBUG)
        .go();
    ours.assert_success();
    assert!(error_lines(&ours).is_empty(), "{}", ours.describe());
    let vg = common::Run::new(valgrind)
        .args(["--leak-check=full", "--show-leak-kinds=definite,indirect"])
        .arg(program)
        .args(args)
        .envs(envs)
        .no_preload()
        .go();
    assert!(vg.success(), "valgrind run failed: {}", vg.describe());
    assert!(ours.stdout == vg.stdout, "stdout differs under valgrind");
    Some((ours, vg))
}

#[test]
fn real_sort_leaks_match_valgrind() {
    let Some(sort) = common::require("sort") else {
        return;
    };
    let dir = fresh_dir("sort_leaks");
    let file = dir.join("lines.txt");
    let mut x: u64 = 99;
    let mut text = String::new();
    for i in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!("{:016x} line {i}\n", x));
    }
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let Some((ours, vg)) = leaks_vs_valgrind(&sort, &[&file], &[("LC_ALL", "C")]) else {
        return;
    };
    assert_eq!(
        ft_malloc_lost(&ours),
        valgrind_lost(&vg.stderr),
        "ours:\n{}\nvalgrind:\n{}",
        ours.stderr,
        vg.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn real_perl_leaks_match_valgrind() {
    let Some(perl) = common::require("perl") else {
        return;
    };
    let script = r#"my %h; $h{"k$_"} = $_ for 1..20000; my $s = 0; $s += $h{"k$_"} for 1..20000;
        delete $h{"k$_"} for 1..10000; print scalar(keys %h), " $s\n";"#;
    let Some((ours, vg)) = leaks_vs_valgrind(&perl, &["-e", script], &[]) else {
        return;
    };
    assert_eq!(ours.stdout, "10000 200010000\n");
    assert_eq!(
        ft_malloc_lost(&ours),
        valgrind_lost(&vg.stderr),
        "ours:\n{}\nvalgrind:\n{}",
        ours.stderr,
        vg.stderr
    );
    // The leak check alone, with the thread caches on: the same figures.
    let alone = common::Run::new(&perl)
        .args(["-e", script])
        .env("MALLOC_DEBUG", "leaks")
        .go();
    alone.assert_success();
    assert_eq!(
        ft_malloc_lost(&alone),
        valgrind_lost(&vg.stderr),
        "leaks alone:\n{}\nvalgrind:\n{}",
        alone.stderr,
        vg.stderr
    );
}
