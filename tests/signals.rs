//! Signals around the fault explainer: a SIGSEGV/SIGBUS that was sent, or a fault that is not
//! ours, gets the program's own disposition exactly as without the library (ignored, its handler
//! with its mask and flags, or the default action).

mod common;

use common::{Output, Run, compile};
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
            assert_eq!(o.stderr, "", "{arg} {mode:?}: {}", o.describe());
        }
    }
}
