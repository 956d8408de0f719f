//! Emptying whole caches: at malloc_trim (the calling thread's), at a thread's exit (a pthread
//! key's destructor) and in a fork child (the parent's other threads'); and the live counts
//! the caches add to the arenas'.

use super::{AREAS, Area, BUSY, GONE, flush_all, set_flags};
use crate::tls::{self, ThreadState};
use core::sync::atomic::Ordering;

/// This thread's area, when it has one that may be emptied now (no allocator lock held, not
/// busy: a signal handler may have interrupted either).
fn attached(st: *mut ThreadState) -> Option<*mut Area> {
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).locks != 0 || (*st).tcache_flags != 0 {
            return None;
        }
        let a = (*st).tcache as *mut Area;
        (!a.is_null()).then_some(a)
    }
}

/// Gives this thread's cached slots back to the arenas (malloc_trim, or before a retry when a
/// mapping failed), unless a signal handler interrupted the cache or an allocator lock.
pub(in crate::heap) fn flush_mine() {
    let st = tls::state();
    let Some(area) = attached(st) else {
        return;
    };
    set_flags(st, BUSY);
    // SAFETY: our own area, busy, holding no lock.
    unsafe { flush_all(area) };
    set_flags(st, 0);
}

/// Thread exit (the key's destructor): the cache goes back to the arenas and the area to the
/// free ones; the thread's later calls (other destructors) take the locked paths.
pub(super) extern "C" fn thread_exit(_v: *mut libc::c_void) {
    let st = tls::state();
    let Some(area) = attached(st) else {
        return;
    };
    set_flags(st, BUSY | GONE);
    // SAFETY: our own area, busy, holding no lock; given up after it is empty.
    unsafe {
        flush_all(area);
        (*st).tcache = 0;
        (*area).owner.store(0, Ordering::Release);
    }
    set_flags(st, GONE);
}

/// Fork child (every lock reset): the caches of the parent's other threads, which do not exist
/// here, go back to the arenas (what a thread was changing at the fork may be lost: its slots
/// stay CACHED, counted in their zones) and their areas become free. The forking thread's
/// cache stays as it is.
pub(in crate::heap) fn after_fork_child() {
    // SAFETY: our own TLS block.
    let me = unsafe { (*tls::state()).tcache } as *mut Area;
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: areas are never unmapped; in the child no other thread uses them, and
        // every entry is checked before it is given back.
        unsafe {
            if a != me && (*a).owner.load(Ordering::Relaxed) != 0 {
                flush_all(a);
                (*a).owner.store(0, Ordering::Release);
            }
            a = (*a).next;
        }
    }
}

/// What the caches handed out minus what they took back: (live bytes, live blocks), to add
/// to the arenas' counts.
pub(in crate::heap) fn totals() -> (isize, isize) {
    let (mut b, mut n) = (0isize, 0isize);
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: areas are never unmapped; their counters are atomics.
        unsafe {
            b = b.wrapping_add((*a).live_bytes.load(Ordering::Relaxed));
            n = n.wrapping_add((*a).live_blocks.load(Ordering::Relaxed));
            a = (*a).next;
        }
    }
    (b, n)
}
