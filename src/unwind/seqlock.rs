//! The writer's side of the seqlock entries the unwinder keeps (recently found objects in
//! `module`, kept stacks in `memo`): `seq` is odd while a writer fills the entry; a reader keeps
//! what it read only when `seq` was the same even value before and after.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Takes the entry whose sequence word is `seq` for writing: the even value it had, or None
/// when another writer has it (or this thread, interrupted by a signal handler that walks):
/// the caller then gives up rather than wait.
#[inline]
pub fn claim(seq: &AtomicUsize) -> Option<usize> {
    let s0 = seq.load(Ordering::Relaxed);
    if s0 & 1 != 0 {
        return None;
    }
    seq.compare_exchange(s0, s0 + 1, Ordering::Acquire, Ordering::Relaxed)
        .ok()
}

/// Ends the write `claim` began with `s0`: the entry is complete.
#[inline]
pub fn publish(seq: &AtomicUsize, s0: usize) {
    seq.store(s0 + 2, Ordering::Release);
}
