//! Doing deferred work (see `defer`): at the end of every allocator call, once the thread
//! holds no lock, the frees and releases that signal handlers left for it.

use super::defer::{CALLER_BITS, DEFER_FREE, DEFER_QUARANTINE_RELEASE};
use super::free::deallocate_call;
use super::release::release;
use crate::block::Op;
use crate::large::LARGE;
use crate::sys;
use crate::tls;
use core::sync::atomic::{Ordering, compiler_fence};

/// End of every allocator call: does the work signal handlers left for this thread, if any,
/// once it holds no lock. This point, not the unlock that brings the count to 0, because
/// there the interrupted code may be in the middle of something the drained frees would
/// touch again (the log's cursor, for one). Not inside a drain (its own calls, or a handler
/// that interrupted it): the drain takes new work until there is none, and one level of it
/// keeps the work in flight bounded however fast handlers add more.
#[inline(always)]
pub(super) fn settle() {
    // SAFETY: our own TLS block.
    if unsafe { (*tls::state()).pending != 0 } {
        settle_pending();
    }
}

#[cold]
#[inline(never)]
fn settle_pending() {
    let st = tls::state();
    // SAFETY: our own TLS block.
    if unsafe { (*st).locks == 0 && (*st).draining == 0 } {
        drain_deferred();
    }
}

/// Does the work signal handlers left for this thread (from `settle`), and adopts the LARGE
/// blocks they made.
#[cold]
pub fn drain_deferred() {
    let _keep = sys::ErrnoGuard::new();
    // Asynchronous signals wait while the drain runs: handlers that interrupt its frees
    // (inside their locks) would defer more work, and under a storm of them (a handler that
    // takes longer than its timer's period) the drain would never catch up.
    let _quiet = sys::SignalsBlocked::new();
    let st = tls::state();
    // The interrupted call may still log its event with the sequence number it took.
    // SAFETY: our own TLS block.
    let seq = unsafe { (*st).last_seq };
    // SAFETY: as above.
    unsafe { (*st).draining = 1 };
    loop {
        // Cleared before looking: work deferred from here on sets it again.
        // SAFETY: as above.
        unsafe { (*st).pending = 0 };
        compiler_fence(Ordering::SeqCst);
        if crate::large::has_loose()
            && let Some(mut l) = LARGE.enter()
        {
            l.adopt_loose();
        }
        let mut work = [(0usize, 0usize); tls::DEFERRED_SLOTS];
        let n = tls::take_deferred(&mut work);
        if n == 0 {
            break;
        }
        for &(p, word) in &work[..n] {
            run_deferred(p, word);
        }
    }
    compiler_fence(Ordering::SeqCst);
    // SAFETY: as above.
    unsafe {
        (*st).draining = 0;
        (*st).last_seq = seq;
    }
}

/// One deferred entry of `drain_deferred`.
fn run_deferred(p: usize, word: usize) {
    let op = Op::from_u8((word >> CALLER_BITS) as u8 & 15).unwrap_or(Op::Malloc);
    let caller = crate::site::unpack(word & ((1 << CALLER_BITS) - 1));
    match word >> 56 {
        DEFER_FREE => {
            let size = deallocate_call(p, op, caller, 0);
            // The old block of a realloc is part of the realloc's own log event.
            if size != 0 && !matches!(op, Op::Realloc | Op::Reallocarray) {
                crate::log::event(op, p, 0, size, 0, caller);
            }
        }
        DEFER_QUARANTINE_RELEASE => release(p),
        _ => crate::guard::release(p),
    }
}
