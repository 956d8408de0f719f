//! Event sequence numbers: one counter for the process, shared by the heap (a block's
//! allocation and free stamps) and the log (its events), so that a block's stamps name its
//! events in the log and the ring.
//!
//! While a log is written, every event takes the counter's next number: the log's numbers are
//! dense and in the order the events happened. Otherwise a thread takes a batch of numbers at
//! a time and hands them out itself, so that threads do not bounce the counter's cache line on
//! every call. A block's own stamps still rise: a thread whose next number is not above the
//! block's last stamp takes a new batch (`above`), whose numbers are above every number handed
//! out before. Numbers are unique either way; across blocks, events of different threads are
//! in order to within a batch.

use crate::pad::Padded;
use crate::tls;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Global event sequence number (debugging and logging only). Every call of every thread
/// takes one, or a batch, so it has its lines to itself.
pub static SEQ: Padded<AtomicU64> = Padded(AtomicU64::new(0));

/// `SEQ` moves by this much per batch when no log is written; a batch's numbers are the
/// `BATCH` - 1 above the counter's value it started from (a multiple of `BATCH`).
const BATCH: u64 = 64;

/// A thread's word (`ThreadState::seq_next`) holds its batch's index (`SEQ / BATCH` when it
/// was taken) above `SHIFT` bits, and below them `BATCH` plus its next number's offset in the
/// batch. The word has bit `BATCH` set while that number is in the batch. Past the batch, and
/// at zero (a new thread), the bit is clear and stays so for `BATCH` more increments: a signal
/// handler that interrupts the thread right after it ran past its batch cannot take a number
/// of another batch.
const SHIFT: u32 = BATCH.trailing_zeros() + 1;

/// Threads number their events from batches (set at init when no log is written).
static BATCHED: AtomicBool = AtomicBool::new(false);

/// Init (single-threaded): whether threads take numbers in batches (no log is written). The
/// counter starts batches at a multiple of `BATCH`.
pub(super) fn set_batched(on: bool) {
    if on {
        let s = SEQ.load(Ordering::Relaxed);
        SEQ.store(s.next_multiple_of(BATCH), Ordering::Relaxed);
    }
    BATCHED.store(on, Ordering::Relaxed);
}

/// A new event sequence number, remembered in this thread's state for the log record of the
/// same call (`take_seq`).
#[inline]
pub fn next_seq() -> u64 {
    let s = if BATCHED.load(Ordering::Relaxed) {
        from_batch()
    } else {
        SEQ.fetch_add(1, Ordering::Relaxed) + 1
    };
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).last_seq = s };
    s
}

/// A new event sequence number above `prev` (the last stamp of the block the event is about,
/// 0 if none): `next_seq`, or the first of a new batch when this thread's numbers lag behind.
#[inline]
pub fn next_above(prev: u64) -> u64 {
    above(next_seq(), prev)
}

/// `s`, a number this thread just took for a block's event, if it is above `prev` (the block's
/// last stamp); else a new number that is (the block came from a thread whose batch is ahead).
#[inline]
pub fn above(s: u64, prev: u64) -> u64 {
    if s > prev {
        return s;
    }
    let s = fresh();
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).last_seq = s };
    s
}

/// The next number of this thread's batch, or the first of a new batch. The number is taken
/// with one read-modify-write instruction on this thread's own word, which a signal handler
/// cannot split: a handler that interrupts this thread anywhere here takes another number.
#[inline]
fn from_batch() -> u64 {
    // SAFETY: our own TLS block, touched only by this thread and its signal handlers.
    let w = unsafe { bump(&raw mut (*tls::state()).seq_next) };
    if w & BATCH != 0 {
        return (w >> SHIFT) * BATCH + (w & (BATCH - 1));
    }
    fresh()
}

/// Adds one to `*p` and returns its value before, in one instruction.
/// # Safety
/// `p` is this thread's own word.
#[inline(always)]
unsafe fn bump(p: *mut u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut v: u64 = 1;
        // SAFETY: per the caller; no lock prefix: only this thread (and its signal handlers,
        // between instructions) touches the word.
        unsafe {
            core::arch::asm!("xadd qword ptr [{p}], {v}", p = in(reg) p, v = inout(reg) v,
                options(nostack))
        };
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: per the caller; every access to the word is atomic.
    unsafe {
        AtomicU64::from_ptr(p).fetch_add(1, Ordering::Relaxed)
    }
}

/// A number above every number handed out so far: the counter's next one (dense numbering), or
/// the first of a new batch, which becomes this thread's (a batch a signal handler installs
/// meanwhile is replaced, its numbers left unused).
#[cold]
fn fresh() -> u64 {
    if !BATCHED.load(Ordering::Relaxed) {
        return SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    }
    new_batch(2) - 1
}

/// Takes a new batch for this thread: its numbers start at the counter's value + 1, and this
/// thread's next number is the `k`th of them (1 or 2), which is returned.
#[inline]
fn new_batch(k: u64) -> u64 {
    let start = SEQ.fetch_add(BATCH, Ordering::Relaxed);
    let word = (start / BATCH) << SHIFT | (BATCH + k);
    // SAFETY: our own TLS block; the word is only written whole.
    unsafe {
        AtomicU64::from_ptr(&raw mut (*tls::state()).seq_next).store(word, Ordering::Relaxed)
    };
    start + k
}

/// Moves this thread's next numbers above every number handed out so far: its cache of free
/// slots takes slots that other threads freed, and the allocations of those need no look at
/// their free's number (`next_seq` is above it).
pub fn catch_up() {
    if BATCHED.load(Ordering::Relaxed) {
        new_batch(1);
    }
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
    let s = next_seq();
    // SAFETY: as above.
    unsafe { (*tls::state()).last_seq = 0 };
    s
}

/// At least the highest sequence number handed out so far, or that a thread may hand out from
/// the batch it holds.
#[inline]
pub fn last() -> u64 {
    SEQ.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64 as Max;

    /// Numbers in batches, for every test of this binary (set once: the counter is rounded).
    fn batched() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| set_batched(true));
    }

    /// With batches: every number is unique, each thread's numbers rise, and `above` gives a
    /// number above another thread's (the next allocation of a slot that thread freed).
    #[test]
    fn batched_numbers_are_unique_rise_and_pass_other_threads() {
        batched();
        let max = Max::new(0);
        let per: Vec<Vec<u64>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    sc.spawn(|| {
                        let mut v = Vec::new();
                        for i in 0..20_000 {
                            let s = if i % 500 == 499 {
                                let prev = max.load(Ordering::Relaxed);
                                let s = next_above(prev);
                                assert!(s > prev, "{s} after {prev}");
                                s
                            } else {
                                next_seq()
                            };
                            max.fetch_max(s, Ordering::Relaxed);
                            v.push(s);
                        }
                        v
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = per.iter().flatten().copied().collect();
        for v in &per {
            assert!(v.windows(2).all(|w| w[0] < w[1]));
        }
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a number was handed out twice");
        assert!(all[0] > 0 && *all.last().unwrap() <= last());
    }

    /// A signal handler that interrupts a thread right after its increment ran past its batch
    /// takes a new batch, not the next number (which belongs to another batch).
    #[test]
    fn past_a_batch_stays_invalid_for_a_handler() {
        batched();
        std::thread::spawn(|| {
            let first = next_seq();
            // SAFETY: this thread's own word.
            let word = unsafe { &mut (*tls::state()).seq_next };
            // The last number of this thread's batch is next.
            *word = (first / BATCH) << SHIFT | (2 * BATCH - 1);
            assert_eq!(next_seq(), first / BATCH * BATCH + BATCH - 1);
            // The interrupted code's increment, then the handler's call.
            // SAFETY: as above.
            unsafe { bump(&raw mut (*tls::state()).seq_next) };
            let top = last();
            let h = next_seq();
            assert!(h > top && last() > top, "{h} (counter {top})");
        })
        .join()
        .unwrap();
    }
}
