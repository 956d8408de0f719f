//! The constructors: ours (early) registers the fork handlers if no registration came first,
//! initialises if no call did, installs the signal handlers and cleans the environment
//! (`nochildren`); the announce constructor writes the `start` line of `FT_MALLOC_ANNOUNCE`.

use super::ensure;
use super::fork::register_fork_handlers;
use crate::config;

/// Constructor: runs once libc is up. Registers our fork handlers if no registration came first
/// (see the module header), initialises if no call did, and does the work that needs a running
/// program (signal handlers, environment; with debugging off, the heap's warm-up).
#[ctor::ctor(unsafe, priority = early, body(link_section = "ft_hot"))]
fn early_init() {
    register_fork_handlers();
    ensure();
    super::foreign::resolve();
    let c = config::get();
    if !c.enabled {
        crate::heap::warm_up();
        return;
    }
    if c.nochildren {
        strip_environment();
    }
    #[cfg(not(test))]
    crate::segv::install();
    // What reports look up first (where `_dl_find_object` is): ready before a report from a
    // signal handler, or on a small thread stack, needs it.
    crate::symbols::init();
    super::foreign::warn();
    crate::dump::install_signal(c.dump_signal);
}

/// Constructor: reads `FT_MALLOC_ANNOUNCE` and writes the `start` line, once the allocator is
/// ready.
#[cfg(not(test))]
#[ctor::ctor(unsafe, body(link_section = "ft_hot"))]
fn announce_start() {
    ensure();
    crate::announce::start_from_env();
}

unsafe extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// `nochildren`: removes LD_PRELOAD and MALLOC_DEBUG from `environ` in place (no allocation),
/// so programs this one execs run without the library.
fn strip_environment() {
    // SAFETY: environ is a NULL-terminated array owned by libc; we only move pointers within it,
    // before the program's main runs (constructor), when no other thread exists.
    unsafe {
        let env = environ;
        if env.is_null() {
            return;
        }
        let mut r = 0;
        let mut w = 0;
        while !(*env.add(r)).is_null() {
            let s = *env.add(r) as *const u8;
            let drop_it = starts_with(s, b"LD_PRELOAD=") || starts_with(s, b"MALLOC_DEBUG=");
            if !drop_it {
                *env.add(w) = *env.add(r);
                w += 1;
            }
            r += 1;
        }
        *env.add(w) = core::ptr::null_mut();
    }
}

/// # Safety
/// `s` is a NUL-terminated string.
unsafe fn starts_with(s: *const u8, pre: &[u8]) -> bool {
    for (i, &c) in pre.iter().enumerate() {
        // SAFETY: we stop at the first mismatch, which a NUL byte is, so we never read past it.
        if unsafe { *s.add(i) } != c {
            return false;
        }
    }
    true
}
