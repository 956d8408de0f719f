//! The inaccessible region behind a debugging-mode LARGE block: guard markers where the
//! configuration allows them (`markers`, on by default) and the kernel has them (Linux 6.13:
//! no kernel mapping is split, so such blocks are carved from shared chunks like plain ones),
//! else PROT_NONE.

use crate::sys;
use core::sync::atomic::{AtomicBool, Ordering};

/// Guard markers are allowed for regions (set once at start-up).
static ALLOWED: AtomicBool = AtomicBool::new(true);

/// Sets whether regions may be guard markers (start-up, from the configuration).
pub fn allow_markers(on: bool) {
    ALLOWED.store(on, Ordering::Relaxed);
}

/// Whether regions are guard markers now (so blocks with one are carved from shared chunks).
#[inline]
pub fn markers() -> bool {
    ALLOWED.load(Ordering::Relaxed) && sys::has_markers()
}

/// Makes `[p, p + len)` a region: inaccessible.
/// # Safety
/// `[p, p + len)` is page aligned, part of a private anonymous mapping of ours, and holds
/// nothing anybody needs.
pub unsafe fn close(p: usize, len: usize) {
    // SAFETY: per the caller.
    unsafe {
        if ALLOWED.load(Ordering::Relaxed) {
            sys::guard_pages(p as *mut u8, len);
        } else {
            sys::protect(p as *mut u8, len, false);
        }
    }
}

/// Makes a region, made by `close`, accessible again.
/// # Safety
/// As for `close`.
pub unsafe fn open(p: usize, len: usize) {
    // SAFETY: per the caller.
    unsafe {
        if ALLOWED.load(Ordering::Relaxed) {
            sys::unguard_pages(p as *mut u8, len);
        } else {
            sys::protect(p as *mut u8, len, true);
        }
    }
}
