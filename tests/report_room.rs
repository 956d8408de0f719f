//! Reports and dumps made on a thread with a 16 KiB stack (glibc's smallest), each the first of
//! its process to look up symbols: the report is the whole one that a thread with a 1 MiB stack
//! gets, and the program ends as it does there (the abort of `on_error`, or the fault it dies
//! of), never of a fault in our own code.

mod common;

use common::{Output, Run, compile, mask_report};

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;

/// A report as the two runs compare it: addresses, the pid and every number (thread ids,
/// offsets in the program) masked.
fn masked(s: &str) -> String {
    let mut out = String::new();
    let mut digits = false;
    for ch in mask_report(s).chars() {
        if ch.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            out.push(ch);
            digits = false;
        }
    }
    out
}

fn run(case: &str, debug: &str, stack: usize) -> Output {
    Run::new(compile("report_small_stack"))
        .args([case, &stack.to_string()])
        .env("MALLOC_DEBUG", debug)
        .go()
}

#[test]
fn reports_and_dumps_on_a_16k_thread_stack_are_whole() {
    // (case, MALLOC_DEBUG, signal it ends with (None: exit 0), a line the report must hold)
    let cases = [
        ("double", "1", Some(SIGABRT), "ERROR: double free of"),
        ("double", "full", Some(SIGABRT), "ERROR: double free of"),
        ("waf", "1", Some(SIGABRT), "ERROR: write after free:"),
        (
            "waf",
            "full",
            Some(SIGSEGV),
            "ERROR: use after free (write)",
        ),
        ("wild", "1", Some(SIGSEGV), "ERROR: wild pointer:"),
        ("wild", "full", Some(SIGSEGV), "ERROR: wild pointer:"),
        ("dump", "1", None, "Total :"),
        ("dump", "full", None, "Total :"),
    ];
    for (case, debug, signal, line) in cases {
        let small = run(case, debug, 16 << 10);
        if small.stdout.contains("refused") {
            println!("skipped: {}", small.stdout.trim());
            return;
        }
        let big = run(case, debug, 1 << 20);
        let what = format!("{case} {debug}: {}", small.describe());
        assert_eq!(small.signal, signal, "{what}");
        assert_eq!(big.signal, signal, "{case} {debug}: {}", big.describe());
        if signal.is_none() {
            assert_eq!(small.status, Some(0), "{what}");
            assert!(small.stdout.ends_with("dumped\n"), "{what}");
        }
        let text = |o: &Output| format!("{}{}", o.stdout, o.stderr);
        assert!(text(&small).contains(line), "{what}");
        // The call stacks were looked up (the frames name the program's functions).
        assert!(text(&small).contains("small_thread"), "{what}");
        if signal.is_some() {
            assert_eq!(masked(&small.stderr), masked(&big.stderr), "{what}");
        } else {
            // A dump's hexdumps and mapping count differ from run to run; its lines do not.
            assert_eq!(
                small.stdout.lines().count(),
                big.stdout.lines().count(),
                "{what}"
            );
        }
    }
}
