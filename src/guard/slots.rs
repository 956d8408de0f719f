//! How pool slots are opened and closed: with page-table guard markers where the kernel has
//! them (`MADV_GUARD_INSTALL`, Linux 6.13: a chunk stays one read-write kernel mapping
//! whatever its slots do), else with mprotect (and madvise to give pages back). The first
//! pool chunk decides, once.

use crate::sys;
use core::sync::atomic::{AtomicU8, Ordering};

/// 0 not known yet, `MARKERS` or `PROTECT` (each used slot splits its chunk's mapping).
static SLOTS: AtomicU8 = AtomicU8::new(0);
const MARKERS: u8 = 1;
const PROTECT: u8 = 2;

/// Whether pool slots use guard markers (none decided yet: false).
#[inline]
pub fn markers() -> bool {
    SLOTS.load(Ordering::Relaxed) == MARKERS
}

/// Makes a new pool chunk inaccessible, deciding at the first one between guard markers
/// (`try_markers`: the configuration allows them) and mprotect. False if neither works.
/// # Safety
/// `[p, p + len)` is a new private anonymous read-write mapping of ours.
pub unsafe fn close_chunk(p: usize, len: usize, try_markers: bool) -> bool {
    if SLOTS.load(Ordering::Relaxed) != PROTECT && try_markers {
        // SAFETY: the caller's new mapping.
        if unsafe { sys::install_markers(p as *mut u8, len) } {
            SLOTS.store(MARKERS, Ordering::Relaxed);
            // No huge page may cover slots (a huge page has no guard markers inside).
            // SAFETY: as above.
            unsafe { sys::huge_pages(p as *mut u8, len, false) };
            return true;
        }
        SLOTS.store(PROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above.
    unsafe { sys::protect(p as *mut u8, len, false) }
}

/// Makes a pool slot's data accessible (its pages read as zero). False if the kernel refuses.
/// # Safety
/// `[data, data + len)` is the data of a free pool slot that only the caller holds.
pub unsafe fn open_slot(data: usize, len: usize) -> bool {
    if markers() {
        // SAFETY: per the caller.
        unsafe { sys::remove_markers(data as *mut u8, len) }
    } else {
        // SAFETY: per the caller.
        unsafe { sys::protect(data as *mut u8, len, true) }
    }
}

/// Makes a pool slot's range inaccessible and gives its pages back (one call with markers).
/// # Safety
/// `[p, p + len)` is (part of) a pool slot that holds no block the program may use.
pub unsafe fn close_slot(p: usize, len: usize) {
    if markers() {
        // SAFETY: per the caller.
        unsafe { sys::install_markers(p as *mut u8, len) };
    } else {
        // SAFETY: per the caller.
        unsafe {
            sys::protect(p as *mut u8, len, false);
            sys::discard(p as *mut u8, len);
        }
    }
}
