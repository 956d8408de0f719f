//! Event sequence numbers: one global counter that orders allocations, frees and log events,
//! and the number the current call took, kept in its thread's state for the log record of the
//! same call.

use crate::block::DebugMeta;
use crate::tls;
use core::sync::atomic::{AtomicU64, Ordering};

/// Global event sequence number (debugging and logging only).
pub static SEQ: AtomicU64 = AtomicU64::new(0);

/// A new event sequence number, remembered in this thread's state for the log record of the
/// same call (`take_seq`).
#[inline]
pub fn next_seq() -> u64 {
    let s = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).last_seq = s };
    s
}

/// The sequence number the heap gave to this thread's current event, or a new one.
#[inline]
pub fn take_seq() -> u64 {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe {
        let s = (*st).last_seq;
        if s != 0 {
            (*st).last_seq = 0;
            return s;
        }
    }
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

/// The history of a block allocated now by `caller` on this thread.
#[inline]
pub fn stamp_alloc(caller: usize) -> DebugMeta {
    DebugMeta {
        alloc_seq: next_seq(),
        free_seq: 0,
        alloc_caller: caller,
        free_caller: 0,
        alloc_tid: tls::tid(),
        free_tid: 0,
    }
}
