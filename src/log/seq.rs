//! Event sequence numbers: one counter for the process, shared by the heap (a block's
//! allocation and free stamps) and the log (its events), so that a block's stamps name its
//! events in the log and the ring.

use crate::pad::Padded;
use crate::tls;
use core::sync::atomic::{AtomicU64, Ordering};

/// Global event sequence number (debugging and logging only). Every call of every thread
/// takes one, so it has its lines to itself.
pub static SEQ: Padded<AtomicU64> = Padded(AtomicU64::new(0));

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

/// The last sequence number handed out.
#[inline]
pub fn last() -> u64 {
    SEQ.load(Ordering::Relaxed)
}
