//! Call counters: calls per operation, failed allocations and the histogram of requested
//! sizes, counted for every event while debugging is on (dumps print them). The operations and
//! the histogram's buckets are the format crate's, so the log reader counts the same way.

use crate::tls;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use ft_format::{HIST_BUCKETS as HIST, OP_COUNT, Op, bucket};

pub use ft_format::{HIST_BUCKETS, bucket_range as hist_range};

/// Calls per entry point and a power-of-two histogram of requested sizes, striped by thread
/// so that counting does not bounce one cache line between cores. The first `STRIPES - 1`
/// threads each own a stripe and count with plain load/store (no locked instruction); later
/// threads share the last stripe and count with atomic adds.
#[repr(C, align(128))]
struct Stripe {
    calls: [AtomicU64; OP_COUNT],
    fails: AtomicU64,
    hist: [AtomicU64; HIST],
}
const STRIPES: usize = 32;
static NEXT_STRIPE: AtomicU32 = AtomicU32::new(0);
static STATS: [Stripe; STRIPES] = [const {
    Stripe {
        calls: [const { AtomicU64::new(0) }; OP_COUNT],
        fails: AtomicU64::new(0),
        hist: [const { AtomicU64::new(0) }; HIST],
    }
}; STRIPES];

/// This thread's stripe, and whether it owns it alone.
#[inline]
fn stripe() -> (&'static Stripe, bool) {
    let st = tls::state();
    // SAFETY: our own TLS block.
    let mut k = unsafe { (*st).stripe };
    if k == 0 {
        k = (NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize).min(STRIPES - 1) as u32 + 1;
        // SAFETY: as above.
        unsafe { (*st).stripe = k };
    }
    let i = k as usize - 1;
    (&STATS[i], i < STRIPES - 1)
}

/// Adds one to a counter of a stripe: a plain read-modify-write on an owned stripe (only this
/// thread writes it; readers may see a count one behind), an atomic add on the shared one.
#[inline]
fn bump(c: &AtomicU64, owned: bool) {
    if owned {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one event of this thread: its call, the bucket of the size an allocation asked for
/// (`usize::MAX`: a size that overflowed, not counted) and a failed allocation (`out` 0).
#[inline]
pub(super) fn count(op: Op, size: usize, out: usize) {
    let (st, owned) = stripe();
    bump(&st.calls[op as usize], owned);
    let alloc_like = op.allocates();
    if alloc_like && size != usize::MAX {
        bump(&st.hist[bucket(size as u64)], owned);
    }
    if alloc_like && out == 0 && size != 0 {
        bump(&st.fails, owned);
    }
}

/// Calls of `op` counted since start (all threads).
pub fn calls(op: Op) -> u64 {
    STATS
        .iter()
        .map(|s| s.calls[op as usize].load(Ordering::Relaxed))
        .sum()
}

/// Events counted since start (calls of every operation).
pub fn events() -> u64 {
    Op::ALL.iter().map(|&op| calls(op)).sum()
}

/// Calls that allocate (all operations but the frees and `malloc_usable_size`) since start.
pub fn allocations() -> u64 {
    Op::ALL
        .iter()
        .filter(|op| op.allocates())
        .map(|&op| calls(op))
        .sum()
}

/// Failed allocations (NULL returned) since start.
pub fn failures() -> u64 {
    STATS.iter().map(|s| s.fails.load(Ordering::Relaxed)).sum()
}

/// Allocations whose requested size fell in bucket `k` (`ft_format::bucket`).
pub fn hist(k: usize) -> u64 {
    STATS
        .iter()
        .map(|s| {
            s.hist
                .get(k)
                .map(|h| h.load(Ordering::Relaxed))
                .unwrap_or(0)
        })
        .sum()
}
