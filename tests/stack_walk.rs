//! `backtrace=N` walks frame pointers: on a stack that is not its thread's (a coroutine's, made
//! with makecontext), starting from a garbage frame pointer that points just past that stack, the
//! walk must stop short and never fault, with or without a log file.

mod common;

use common::{fresh_dir, run};

#[test]
fn backtrace_on_coroutine_stacks() {
    run(
        "backtrace_coroutine",
        &[],
        &[("MALLOC_DEBUG", "1,backtrace=8")],
    )
    .assert_ok_clean();
}

#[test]
fn backtrace_on_coroutine_stacks_logged() {
    let dir = fresh_dir("backtrace_coroutine_logged");
    let log = dir.join("events.log");
    let debug = format!("1,backtrace=8,log={}", log.display());
    run("backtrace_coroutine", &[], &[("MALLOC_DEBUG", &debug)]).assert_ok_clean();
    let text = std::fs::read(&log).expect("log written");
    let events = text
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"E "))
        .count();
    // 4 coroutine runs of 50 rounds of 5 calls each, and more on the main stacks.
    assert!(events >= 1000, "{events} events logged");
    let _ = std::fs::remove_dir_all(&dir);
}
