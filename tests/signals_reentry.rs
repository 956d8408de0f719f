//! Signal handlers that call the allocator while their thread is inside it: with no debugging,
//! with the debugging presets and with an event log, a program whose SIGALRM/SIGPROF handlers
//! (every 50 us) malloc, realloc and free while two threads churn (and, in two tests, a third
//! forks) must run to its end and report nothing; so must eight threads that wait for the same
//! locks under allocating handlers while another thread forks, and a program whose handler
//! forks while its thread may be writing the log. (glibc, measured with the first program,
//! hangs within a few calls: it is not async-signal-safe either.)

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

/// A signal handler forks while its thread may be inside the log's writer (a thread's first
/// lines go through the file's shared cursor under its lock; later ones are written in place).
/// Every child must run and exit 0, half of them from inside the handler, half once the code
/// the handler interrupted has gone on (a record in place finished in the child: before, its
/// chunk was unmapped under it and 3 runs of 8 crashed). One forked inside the file lock says
/// how many events it did not log, and gets its own file at its first event after the handler
/// returned (before, such a child aborted in the fork handler on every run). The parent's log
/// holds only whole lines. With the debug preset as well.
#[test]
fn fork_from_a_handler_that_interrupted_the_log() {
    for debug in ["log", "1,log"] {
        let dir = common::fresh_dir("signals_fork_log");
        let log = dir.join("run.log");
        let spec = format!("{debug}={}", log.display());
        let out = run("log_fork_in_handler", &["100"], &[("MALLOC_DEBUG", &spec)]);
        out.assert_success();
        assert_eq!(out.stdout, "OK\n", "{}", out.describe());
        let mut no_file = 0;
        for l in common::mask_report(&out.stderr).lines() {
            // (A child that exits inside the handler may have interrupted an arena's holder.)
            if l == "ft_malloc[PID]: WARNING: leak check skipped: the heap stayed busy at exit" {
                continue;
            }
            let why = l
                .strip_prefix("ft_malloc[PID]: WARNING: log: ")
                .and_then(|l| l.split_once(" event(s) of this process not logged: "))
                .map(|(_, why)| why);
            match why {
                Some(
                    "a signal handler that interrupted the log's writer forked it; it has no log \
                     file",
                ) => no_file += 1,
                Some(
                    "a signal handler that interrupted the log's writer forked it; its file was \
                     opened after them",
                ) => {}
                _ => panic!("{l}\n{}", out.describe()),
            }
        }
        let text = std::fs::read(&log).expect("the parent's log");
        assert!(!text.contains(&0), "NUL bytes in the parent's log");
        let text = String::from_utf8(text).expect("text");
        let mut events = 0;
        for l in text.lines() {
            let fields = l.split(' ').count();
            match l.as_bytes().first() {
                None | Some(b'#' | b'M' | b'S') => {}
                Some(b'E') if (7..=9).contains(&fields) => events += 1,
                _ => panic!("not a whole record: {l:?}"),
            }
        }
        assert!(events > 1000, "{events} events\n{}", out.describe());
        // Every child wrote a file of its own (run.log.PID) or said why not.
        let files = std::fs::read_dir(&dir).expect("dir").count() - 1;
        assert_eq!(files + no_file, 100, "{}", out.describe());
    }
}
