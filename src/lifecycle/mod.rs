//! Start-up: Uninit → Initializing → Ready on the first call of any entry point (a constructor
//! of another library can call malloc before ours runs). The constructor (`constructor`) and the
//! `.fini_array` destructor (`finalizer`) do the work that needs a running program (signal
//! handlers, environment clean-up, exit reports); `fork` registers the fork handlers, first of
//! all; `output` owns the report destination.
//!
//! # Invariants
//! The config and layout are written only by the thread that won the Uninit→Initializing
//! exchange, before `STATE` becomes Ready; every other thread waits for Ready first.

mod constructor;
mod finalizer;
mod foreign;
mod fork;
mod output;

pub use foreign::{Next, next};
pub use fork::register_atfork;

use crate::config;
use crate::debug::Layout;
use crate::heap;
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicU8, Ordering};

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// Makes sure the allocator is initialised; cheap once Ready.
#[inline(always)]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != READY {
        slow();
    }
}

#[cold]
#[unsafe(link_section = "ft_hot")]
fn slow() {
    match STATE.compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: our own TLS block.
            unsafe { (*tls::state()).initializing = 1 };
            init();
            STATE.store(READY, Ordering::Release);
            // SAFETY: our own TLS block.
            unsafe { (*tls::state()).initializing = 0 };
        }
        Err(_) => {
            // SAFETY: our own TLS block.
            if unsafe { (*tls::state()).initializing } != 0 {
                // Re-entered from our own init: defaults are in place, go on.
                return;
            }
            while STATE.load(Ordering::Acquire) != READY {
                sys::sched_yield();
            }
        }
    }
}

fn init() {
    sys::note_stderr();
    sys::page_size();
    crate::pagemap::init();
    heap::set_check_hook(crate::check::maybe_check_all);
    let mut value: &[u8] = sys::getenv_initial(b"MALLOC_DEBUG").unwrap_or(b"");
    if !value.is_empty() && sys::secure_mode() {
        value = b"";
    }
    let parsed = config::parse(value, &mut |item, why| config::warn_item(item, why));
    let mut c = parsed.config;
    c.log.absolute();
    c.report.absolute();
    c.suppress.absolute();
    // SAFETY: single-threaded init (module invariant).
    unsafe { config::set(c) };
    heap::init_arenas(sys::ncpus(), c.fast);
    if !c.enabled {
        // The plain layout and the stack depth (which a call that misses the thread cache
        // reads), written now so that the first malloc finds their pages present.
        // SAFETY: single-threaded init.
        unsafe { crate::debug::LAYOUT.set(Layout::PLAIN) };
        crate::site::set_depth(1);
        return;
    }
    // Reports must survive a program that closes stderr in an atexit handler: a copy of fd 2,
    // high and close-on-exec, used only while it still names the file it was made from.
    if let Ok(fd) = sys::dup_high(2)
        && !sys::SAVED_STDERR.set(fd)
    {
        sys::close(fd);
    }
    if c.report.is_set() {
        // SAFETY: single-threaded init (module invariant).
        unsafe { output::set_up(c.report) };
    }
    if parsed.help {
        config::print_help();
    }
    if c.suppress.is_set() {
        crate::leaks::check_suppressions(c.suppress.as_bytes());
    }
    crate::debug::canary::init(sys::random_u64());
    let page = sys::page_size();
    let canary = c.canary;
    let heavy = !c.light;
    let lay = Layout {
        front: if canary { 16 } else { 0 },
        tail: if canary { 1 } else { 0 },
        fill: c.fill,
        debug_meta: heavy,
        zone_guards: heavy,
        // Behind every LARGE block, a wide inaccessible region when blocks are checked: an
        // access a few KiB past its end still faults. Address space is cheap; no page is
        // touched, but such a block can neither grow in place nor keep its pages in the LARGE
        // cache when freed, so tracing alone (log, leaks, stats) does without it.
        large_guard: if heavy && !c.cached {
            crate::size_class::WIDE_GUARD.next_multiple_of(page)
        } else {
            0
        },
    };
    // SAFETY: single-threaded init.
    unsafe { crate::debug::LAYOUT.set(lay) };
    crate::guard::set_hooks(
        |meta, caller| *meta = heap::stamp_alloc(caller),
        heap::defer_guard_release,
    );
    crate::guard::init(&c);
    heap::set_sampling(c.fast && c.sample > 0);
    crate::large::region::allow_markers(c.markers);
    crate::site::set_depth(c.stack_depth());
    if heavy {
        crate::stats::TRACK.store(true, Ordering::Relaxed);
        crate::log::init(&c);
    }
}
