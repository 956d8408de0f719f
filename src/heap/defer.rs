//! Work left for later: a signal handler that interrupted its thread inside the allocator
//! cannot take the lock a free (or a release from a quarantine) needs (`Mutex::enter` says
//! no), so the work is left in the thread's deferred slots, and done by `drain::drain_deferred`
//! once the interrupted code holds no lock. This file writes the slots; `drain` runs them.

use crate::block::Op;
use crate::tls;
use core::sync::atomic::{AtomicBool, Ordering};

/// What a deferred slot asks for (bits 56.. of its word; the op is in bits 52..56, the
/// caller's site in the low 52 bits, `site::pack`).
pub(super) const DEFER_FREE: usize = 0;
pub(super) const DEFER_QUARANTINE_RELEASE: usize = 1;
pub(super) const DEFER_GUARD_RELEASE: usize = 2;
pub(super) const CALLER_BITS: u32 = 52;

/// Leaves work for later because `enter` said no to the lock it needs (a signal handler
/// interrupted this thread inside the allocator). Done by `drain_deferred` once the thread
/// holds no lock. With every slot taken (the thread's own and the shared overflow table) the
/// work is dropped (the block stays allocated, or quarantined), said once.
pub(super) fn defer(kind: usize, p: usize, op: Op, caller: usize) {
    let word = crate::site::pack(caller) | (op as usize) << CALLER_BITS | kind << 56;
    if !tls::push_deferred(p, word) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            let mut l: crate::fmt::Line<200> = crate::fmt::Line::new();
            crate::fmt::prefix(&mut l).s(
                b"WARNING: too many frees from signal handlers while their thread was inside malloc; some blocks stay allocated\n",
            );
            l.report();
        }
        return;
    }
    note_pending();
}

/// Marks that this thread has deferred work (see `drain::settle`).
pub(super) fn note_pending() {
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).pending = 1 };
}

/// Leaves the free of `p` for later (see `defer`).
pub(super) fn defer_free(p: usize, op: Op, caller: usize) {
    defer(DEFER_FREE, p, op, caller);
}

/// Leaves the release of the quarantined block `p` for later.
pub(super) fn defer_quarantine_release(p: usize) {
    defer(DEFER_QUARANTINE_RELEASE, p, Op::Free, 0);
}

/// Leaves the release of the guarded block `p` from the address-space quarantine for later.
pub fn defer_guard_release(p: usize) {
    defer(DEFER_GUARD_RELEASE, p, Op::Free, 0);
}
