//! The allocator within a small stack: a coroutine whose stack ends at an inaccessible page
//! makes every kind of call (small and LARGE blocks, realloc, calloc, aligned blocks, frees of
//! another thread's blocks, refills from its arena's inbox, fork). With debugging off it needs no
//! more stack than glibc's malloc: the smallest stack glibc runs the program in (found here,
//! in 512-byte steps) plus 1 KiB. With debugging on, a first walk of a call stack takes up to
//! 2 KiB more: 4 KiB more is asked of it.

mod common;

use common::{Output, Run, compile};

fn on_stack(size: usize, debug: Option<&str>, preload: bool) -> Output {
    let mut r = Run::new(compile("coroutine_small_stack")).arg(size.to_string());
    if let Some(d) = debug {
        r = r.env("MALLOC_DEBUG", d);
    }
    if !preload {
        r = r.no_preload();
    }
    r.go()
}

#[test]
fn a_coroutine_on_a_small_stack_runs_as_under_glibc() {
    let glibc = (4096..=16384)
        .step_by(512)
        .find(|&s| on_stack(s, None, false).success())
        .expect("glibc runs the program within 16 KiB");
    let plain = on_stack(glibc + 1024, None, true);
    assert!(
        plain.success(),
        "stack {}: {}",
        glibc + 1024,
        plain.describe()
    );
    assert_eq!(plain.stdout, "OK\n", "{}", plain.describe());
    for debug in ["1", "full", "log=/dev/null", "leaks"] {
        let o = on_stack(glibc + 4096, Some(debug), true);
        assert!(
            o.success(),
            "{debug}, stack {}: {}",
            glibc + 4096,
            o.describe()
        );
        assert_eq!(o.stdout, "OK\n", "{debug}: {}", o.describe());
    }
}
