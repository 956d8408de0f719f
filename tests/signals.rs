//! Signals around the fault explainer and the dump signal: a SIGSEGV/SIGBUS that was sent, or a
//! fault that is not ours, gets the program's own disposition exactly as without the library
//! (ignored, its handler with its mask and flags, or the default action); `dump_signal` refuses
//! the signals a dump handler must not take, with one warning, and the program runs as usual.

mod common;

use common::{Output, Run, compile, run};
use std::time::Duration;

const SIGSEGV: i32 = 11;

/// `MALLOC_DEBUG` values: unset (no explainer installed: the kernel's own behaviour, the
/// reference), and the two presets that install it.
const MODES: &[Option<&str>] = &[None, Some("1"), Some("full")];

fn disposition(arg: &str, mode: Option<&str>) -> Output {
    let mut r = Run::new(compile("segv_disposition"))
        .arg(arg)
        .timeout(Duration::from_secs(30));
    if let Some(m) = mode {
        r = r.env("MALLOC_DEBUG", m);
    }
    r.go()
}

#[test]
fn sent_segv_and_bus_are_ignored_under_sig_ign() {
    for &mode in MODES {
        let o = disposition("ignore", mode);
        o.assert_ok_clean();
        assert_eq!(
            o.stdout,
            "SIGSEGV ignored\nSIGBUS ignored\ndispositions kept\nOK\n",
            "mode {mode:?}: {}",
            o.describe()
        );
    }
}

#[test]
fn sent_segv_and_bus_reach_the_program_handler_with_its_mask_and_flags() {
    for &mode in MODES {
        let o = disposition("handler", mode);
        o.assert_ok_clean();
        assert_eq!(
            o.stdout,
            "SIGSEGV handler: calls 1, SIGUSR1 blocked 1, SIGSEGV blocked 1, reset 1\n\
             after it: SIGUSR1 blocked 0, SIGSEGV blocked 0\n\
             SIGBUS handler: calls 2, SIGUSR2 blocked 1, SIGBUS blocked 0\n\
             after it: SIGUSR2 blocked 0\nOK\n",
            "mode {mode:?}: {}",
            o.describe()
        );
    }
}

#[test]
fn sent_segv_under_sig_dfl_kills() {
    for &mode in MODES {
        let o = disposition("default", mode);
        assert_eq!(o.signal, Some(SIGSEGV), "mode {mode:?}: {}", o.describe());
        assert_eq!(o.stdout, "killing\n", "mode {mode:?}: {}", o.describe());
        assert_eq!(o.stderr, "", "mode {mode:?}: {}", o.describe());
    }
}

/// A fault that is not ours gets the default action; a real fault cannot be ignored either: the
/// process dies of it.
#[test]
fn foreign_fault_kills_even_under_sig_ign() {
    for arg in ["fault", "ignored_fault"] {
        for &mode in MODES {
            let o = disposition(arg, mode);
            assert_eq!(o.signal, Some(SIGSEGV), "{arg} {mode:?}: {}", o.describe());
            assert_eq!(o.stdout, "faulting\n", "{arg} {mode:?}: {}", o.describe());
            // With debugging on, one line says the fault is none of ours; else nothing.
            let ours: Vec<&str> = o.stderr.lines().collect();
            if mode.is_some() {
                assert_eq!(ours.len(), 1, "{arg} {mode:?}: {}", o.describe());
                assert!(
                    ours[0].contains(" is not in ft_malloc's memory"),
                    "{arg} {mode:?}: {}",
                    o.describe()
                );
            } else {
                assert_eq!(o.stderr, "", "{arg} {mode:?}: {}", o.describe());
            }
        }
    }
}

/// The refused dump signals, by number and by name.
const REFUSED: &[&str] = &[
    "11", "SEGV", "SIGSEGV", "7", "SIGBUS", "4", "ILL", "8", "SIGFPE", "9", "KILL", "19", "STOP",
    "32", "33",
];

#[test]
fn dump_signal_refuses_fault_and_uncatchable_signals() {
    for v in REFUSED {
        let o = run(
            "leak_free_program",
            &[],
            &[("MALLOC_DEBUG", &format!("1,dump_signal={v}"))],
        );
        o.assert_success();
        assert_eq!(o.stdout, "node 9 some value\nOK\n", "{v}: {}", o.describe());
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{v}: {}", o.describe());
        assert!(common::is_warning_line(lines[0]), "{v}: {}", o.describe());
        assert!(
            lines[0].ends_with(&format!(
                "WARNING: MALLOC_DEBUG: ignoring 'dump_signal={v}': a fault signal, KILL, STOP \
                 or glibc's own cannot be the dump signal; valid: USR1, USR2, HUP, INT, QUIT, \
                 TERM, ALRM, PROF, WINCH, TRAP (SIG prefix optional) or a number 1-64 other \
                 than 4 (ILL), 7 (BUS), 8 (FPE), 9 (KILL), 11 (SEGV), 19 (STOP), 32, 33 \
                 (glibc's)"
            )),
            "{v}: {}",
            o.describe()
        );
    }
}

/// With dump_signal=11, a fault that is not ours (a write to a read-only page) kills the process
/// at once: a dump handler on SIGSEGV would return to the faulting instruction and dump again,
/// forever.
#[test]
fn dump_signal_segv_does_not_turn_a_fault_into_endless_dumps() {
    for mode in [
        "1,dump_signal=11",
        "full,dump_signal=SIGSEGV",
        "1,dump_signal=BUS",
    ] {
        let o = Run::new(compile("segv_disposition"))
            .arg("fault")
            .env("MALLOC_DEBUG", mode)
            .timeout(Duration::from_secs(10))
            .go();
        assert_eq!(o.signal, Some(SIGSEGV), "{mode}: {}", o.describe());
        assert_eq!(o.stdout, "faulting\n", "{mode}: {}", o.describe());
        // The refused option, and the line on a fault that is none of ours: no dump.
        assert_eq!(o.stderr.lines().count(), 2, "{mode}: {}", o.describe());
        assert_eq!(o.warning_lines().len(), 1, "{mode}: {}", o.describe());
        assert!(
            o.stderr.contains(" is not in ft_malloc's memory"),
            "{mode}: {}",
            o.describe()
        );
    }
}
