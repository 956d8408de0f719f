//! Giving memory back: what freed blocks still hold, when a mapping failed (`reclaim`) or the
//! program asks (`trim`, malloc_trim); and the totals mallinfo reports.

use super::arena::{arena_totals, trim_zones};
use super::release::drain_quarantine;
use crate::large::LARGE;
use crate::sys;

/// A mapping failed for a request of `size` bytes: gives back the address space that freed
/// blocks still hold — the address-space quarantine of guarded blocks (up to 512 MiB of
/// inaccessible ranges), the ordinary quarantine, the LARGE cache and bank, spare empty zones
/// — so that the request can be tried once more before the answer is ENOMEM. Returns whether
/// it is worth a retry. Nothing is done for a request that nothing could make fit (beyond
/// RLIMIT_AS, or RAM and swap together: the kernel refuses such a mapping whatever we hold),
/// so probing huge sizes does not flush the quarantines, nor while this thread holds one of our
/// locks (a signal handler that interrupted the allocator or the log on this thread: the locks
/// a reclaim needs may be held for the length of a fork by the forking thread, which may be
/// waiting for the lock this thread holds).
pub(super) fn reclaim(size: usize) -> bool {
    if size > sys::rlimit_as() || size > sys::ram_and_swap() {
        return false;
    }
    if crate::lock::holds_any() {
        return false;
    }
    let mut any = crate::guard::release_all();
    if crate::debug::quarantine::stats().0 > 0 {
        drain_quarantine();
        any = true;
    }
    trim() || any
}

/// Releases the calling thread's cache of free slots, the cached LARGE mappings and the spare
/// empty zones (malloc_trim).
pub fn trim() -> bool {
    // This thread's cache of free slots first (its slots may empty zones).
    super::tcache::flush_mine();
    // Locks this thread holds (malloc_trim from a signal handler) are skipped.
    let large = LARGE.enter().is_some_and(|mut l| l.trim() > 0);
    trim_zones() || large
}

/// Totals for mallinfo and stats: (live bytes, live blocks, mapped bytes).
pub fn totals() -> (usize, usize, usize) {
    let (mut b, mut n, mut m) = arena_totals();
    // What the thread caches handed out and took back is counted in their areas.
    let (tb, tn) = super::tcache::totals();
    b = b.wrapping_add_signed(tb);
    n = n.wrapping_add_signed(tn);
    if let Some(l) = LARGE.try_lock() {
        b += l.live_bytes;
        n += l.live_count;
        m += l.mapped_bytes;
    }
    (b, n, m)
}
