//! Signal handlers that call the allocator while their thread is inside it: with no debugging,
//! with the debugging presets and with an event log, a program whose SIGALRM/SIGPROF handlers
//! (every 50 us) malloc, realloc and free while two threads churn (and, in two tests, a third
//! forks) must run to its end and report nothing; so must eight threads that wait for the same
//! locks under allocating handlers while another thread forks. (glibc, measured with the first
//! program, hangs within a few calls: it is not async-signal-safe either.)

mod common;

use common::{Output, run};

/// Handler calls the program counted ("handler calls: N").
fn handler_calls(out: &Output) -> u64 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("handler calls: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no handler count: {}", out.describe()))
}

/// Runs the program for 2 seconds under `MALLOC_DEBUG=debug` (unset if None): it must finish
/// (a hang makes it say "stuck after N handler calls" and exit 3), print OK with nothing on
/// stderr, and its handlers must have run.
fn survives(debug: Option<&str>) {
    survives_with(debug, &["2"]);
}

fn survives_with(debug: Option<&str>, args: &[&str]) {
    let env: Vec<(&str, &str)> = debug.map(|d| ("MALLOC_DEBUG", d)).into_iter().collect();
    let out = run("signal_handler_mallocs", args, &env);
    out.assert_ok_clean();
    assert!(handler_calls(&out) > 0, "{}", out.describe());
}

#[test]
fn signal_handlers_allocate_debugging_off() {
    survives(None);
}

#[test]
fn signal_handlers_allocate_debug_preset() {
    survives(Some("1"));
}

#[test]
fn signal_handlers_allocate_full_preset() {
    survives(Some("full"));
}

/// Every event logged to a file (each event formatted into the thread's mapped chunk, by the
/// handlers too, which may interrupt their thread in the middle of a record).
#[test]
fn signal_handlers_allocate_with_log() {
    let dir = common::fresh_dir("signals_reentry_log");
    let debug = format!("1,log={}/run.log", dir.display());
    survives(Some(&debug));
}

/// The same while a third thread forks every millisecond (its child allocates, frees and
/// exits): the fork handlers take every lock of the allocator and of the log while the other
/// threads' handlers allocate and write their records. The log's lock must come last: a
/// handler that interrupted a thread inside an arena lock waits for it.
#[test]
fn signal_handlers_allocate_with_log_while_a_thread_forks() {
    let dir = common::fresh_dir("signals_reentry_fork_log");
    let debug = format!("1,log={}/run.%p.log", dir.display());
    survives_with(Some(&debug), &["2", "fork"]);
}

#[test]
fn signal_handlers_allocate_while_a_thread_forks_debugging_off() {
    survives_with(None, &["2", "fork"]);
}

/// Eight threads that free each other's blocks wait for the same locks while signal handlers
/// allocate on top of those waits and another thread forks every millisecond (the fork
/// handlers hold every lock meanwhile). A thread woken from a lock wait may run a handler that
/// waits for another lock before it takes the first: the first must not stay free with
/// sleepers nobody wakes (before such a handler passed the wake on, 6 runs of 8 stopped so).
fn waiters_survive(debug: Option<&str>) {
    let env: Vec<(&str, &str)> = debug.map(|d| ("MALLOC_DEBUG", d)).into_iter().collect();
    let out = run("signal_lock_waits", &["2", "8"], &env);
    out.assert_ok_clean();
    assert!(handler_calls(&out) > 0, "{}", out.describe());
}

#[test]
fn lock_waiters_under_allocating_handlers_debugging_off() {
    waiters_survive(None);
}

#[test]
fn lock_waiters_under_allocating_handlers_debug_preset() {
    waiters_survive(Some("1"));
}
