//! The `.fini_array` destructors: the exit reports (check of every block, log flush, quarantine drain, leaks, dump,
//! stats, error summary, announce `exit` line) and the `on_error=exit:N` exit status; with
//! debugging off, only the announce `exit` line.

use crate::config::{self, OnError};
use crate::sys;
use core::sync::atomic::Ordering;

#[unsafe(link_section = "ft_hot")]
extern "C" fn fini() {
    if !config::get().enabled {
        return;
    }
    // The leak scan reads this thread's stack from this frame up (see `report_at_exit`): the
    // work is done in the frames below, out of line, so that none of its locals lie above.
    exit_reports(sys::frame_address());
}

#[inline(never)]
fn exit_reports(floor: usize) {
    let c = config::get();
    let _e = sys::ErrnoGuard::new();
    // Blocks broken and never freed: found before the drain (which would report a freed block
    // an overflow ran into before the block it ran from) and before the leak report.
    if c.check {
        crate::check::at_exit();
    }
    if c.quarantine > 0 {
        crate::heap::drain_quarantine();
    }
    if c.leaks > 0 {
        crate::leaks::report_at_exit(c.leaks >= 2, floor);
    }
    if c.dump_at_exit {
        crate::dump::dump_to_reports();
    }
    if c.stats {
        crate::dump::stats_line();
    }
    if c.on_error != OnError::Abort {
        crate::report::summary_at_exit();
    }
    super::foreign::warn_at_exit();
    super::foreign::announce_exit();
    crate::log::close_at_exit();
    if let OnError::Exit(n) = c.on_error
        && crate::report::ERRORS.load(Ordering::Relaxed) > 0
    {
        // Our destructor runs before libc flushes stdio at exit: flush it first.
        // SAFETY: fflush(NULL) flushes every open stream; nothing is freed or allocated.
        unsafe { libc::fflush(core::ptr::null_mut()) };
        sys::exit_now(n);
    }
}

#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = fini;

/// With debugging off the library's exit handler does nothing: the `exit` line comes from here.
#[cfg(not(test))]
#[unsafe(link_section = "ft_hot")]
extern "C" fn announce_fini() {
    if !config::get().enabled {
        super::foreign::announce_exit();
    }
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".fini_array")]
static ANNOUNCE_FINI: extern "C" fn() = announce_fini;
