//! `check_every=N`: heap checks made while other threads take, resize and free blocks see only
//! finished blocks (a block whose canaries or fill are still being written after its lock was
//! dropped is skipped), so a correct program gets no report.

mod common;

use common::run;

#[test]
fn check_every_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &[],
        &[("MALLOC_DEBUG", "1,check_every=100")],
    )
    .assert_ok_clean();
}

#[test]
fn check_every_often_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &["20000"],
        &[("MALLOC_DEBUG", "1,check_every=10")],
    )
    .assert_ok_clean();
}

#[test]
fn check_every_full_preset_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &["20000"],
        &[("MALLOC_DEBUG", "full,check_every=50")],
    )
    .assert_ok_clean();
}

/// An overflow of a LARGE block that is never freed: found by the heap check of the next call.
#[test]
fn check_every_finds_large_overflow_without_free() {
    let out = run(
        "check_large_overflow",
        &["every"],
        &[("MALLOC_DEBUG", "1,check_every=1")],
    );
    assert_eq!(out.signal, Some(6), "expected SIGABRT: {}", out.describe());
    assert_eq!(out.stdout, "", "{}", out.describe());
    let addr = large_addr(&out.stderr);
    let want = format!(
        "ERROR: heap overflow: {addr} (LARGE, 200000 bytes) written past its end at offset \
         200000 (1 byte past the end), found in malloc()"
    );
    assert!(
        out.stderr.lines().any(|l| l.ends_with(&want)),
        "no LARGE overflow report: {}",
        out.describe()
    );
}

/// The same overflow, found by the `check` command of show_alloc_mem_ex_cmd; the block is never
/// freed, so the check at exit reports it again, as an ERROR.
#[test]
fn check_command_finds_large_overflow() {
    let out = run("check_large_overflow", &["cmd"], &[("MALLOC_DEBUG", "1")]);
    assert_eq!(out.signal, Some(6), "expected SIGABRT: {}", out.describe());
    let addr = large_addr(&out.stderr);
    let want = format!(
        "ERROR: heap overflow: {addr} (LARGE, 200000 bytes) written past its end at offset \
         200000 (1 byte past the end), found at exit"
    );
    assert!(
        out.stderr.lines().any(|l| l.ends_with(&want)),
        "no LARGE overflow report at exit: {}",
        out.describe()
    );
    let at = format!(
        "{:#x}",
        usize::from_str_radix(&addr[2..], 16).unwrap() + 200000
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("check: overflow of block {addr} (200000 bytes) at {at}").as_str()),
        "{}",
        out.describe()
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("check: ") && l.ends_with(" blocks verified, 1 problem")),
        "{}",
        out.describe()
    );
}

/// The address the program printed as "ADDR large 0x...".
fn large_addr(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("ADDR large "))
        .expect("no ADDR line")
        .to_string()
}
