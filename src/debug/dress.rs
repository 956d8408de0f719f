//! Dressing a block: what a new or resized block gets before the program sees it — its front
//! and tail canaries, the alloc fill (at most `LARGE_FILL_MAX` bytes) or the zeroing calloc
//! asks for — and the free fill of a block the program gave up. The heap and the guarded
//! allocator describe the block (`Dress`); the bytes are written here, and only here.

use super::canary::{self, ALLOC_FILL, FREE_FILL};
use super::layout::{LARGE_FILL_MAX, guarded_front, layout};

/// A block to dress: its canary ranges `[front, user)` and `[user + size, tail_end)` (empty
/// when the layout has no canaries), and whether the layout fills (read once, with the rest).
#[derive(Clone, Copy)]
pub struct Dress {
    pub front: usize,
    pub user: usize,
    pub size: usize,
    pub tail_end: usize,
    pub fill: bool,
}

impl Dress {
    /// A zone block at `user` in the slot `[slot, slot_end)`. `next_front`: the next slot was
    /// never used, so its front canary is written too (an overflow that runs past this slot is
    /// then seen when this block is checked).
    #[inline(always)]
    pub fn zone(slot: usize, slot_end: usize, user: usize, size: usize, next_front: bool) -> Dress {
        let lay = layout();
        if !lay.canaries() {
            return Dress::bare(user, size, lay.fill);
        }
        Dress {
            front: slot,
            user,
            size,
            tail_end: if next_front && lay.front > 0 {
                slot_end + lay.front
            } else {
                slot_end
            },
            fill: lay.fill,
        }
    }

    /// A LARGE block at `user` in the accessible range `[base, end)`: the tail canary runs to
    /// the end of the tail area, at most one page.
    #[inline(always)]
    pub fn large(base: usize, end: usize, user: usize, size: usize) -> Dress {
        let lay = layout();
        if !lay.canaries() {
            return Dress::bare(user, size, lay.fill);
        }
        Dress {
            front: base,
            user,
            size,
            tail_end: end.min(user + size + crate::sys::page_size()),
            fill: lay.fill,
        }
    }

    /// A guarded block at `user` in the accessible range `[lo, hi)`: canaries whatever the
    /// layout, in the bytes of its pages before it (`guarded_front`) and up to its guard page.
    #[inline(always)]
    pub fn guarded(lo: usize, hi: usize, user: usize, size: usize) -> Dress {
        Dress {
            front: guarded_front(lo),
            user,
            size,
            tail_end: hi,
            fill: layout().fill,
        }
    }

    /// No canaries.
    #[inline(always)]
    fn bare(user: usize, size: usize, fill: bool) -> Dress {
        Dress {
            front: user,
            user,
            size,
            tail_end: user + size,
            fill,
        }
    }

    /// The same block without its front canary (a resize in place, which leaves it as it is).
    #[inline(always)]
    pub fn tail_only(self) -> Dress {
        Dress {
            front: self.user,
            ..self
        }
    }

    /// Dresses a new block: canaries, then zeroes it (`zero`, unless `clean`: its bytes are
    /// known to read as zero) or fills it with the alloc fill when the layout fills.
    /// # Safety
    /// Both canary ranges and the block are writable memory that only the caller holds.
    #[inline(always)]
    pub unsafe fn new_block(&self, zero: bool, clean: bool) {
        // SAFETY: per the caller.
        unsafe {
            self.canaries();
            if zero {
                if !clean {
                    canary::fill(self.user, self.size, 0);
                }
            } else if self.fill {
                canary::fill(self.user, self.size.min(LARGE_FILL_MAX), ALLOC_FILL);
            }
        }
    }

    /// Dresses a block resized from `old` bytes (which keep the program's data): canaries, and
    /// the alloc fill over the bytes it grew by when the layout fills.
    /// # Safety
    /// As for `new_block`.
    #[inline(always)]
    pub unsafe fn resized(&self, old: usize) {
        // SAFETY: per the caller.
        unsafe {
            self.canaries();
            if self.fill && self.size > old {
                canary::fill(
                    self.user + old,
                    (self.size - old).min(LARGE_FILL_MAX),
                    ALLOC_FILL,
                );
            }
        }
    }

    /// # Safety
    /// As for `new_block`.
    #[inline(always)]
    unsafe fn canaries(&self) {
        // SAFETY: per the caller. (Empty ranges, the common case without canaries, cost no
        // call.)
        unsafe {
            if self.front < self.user {
                canary::write(self.front, self.user);
            }
            if self.tail_end > self.user + self.size {
                canary::write(self.user + self.size, self.tail_end);
            }
        }
    }
}

/// Fills a freed block with the free fill when the layout fills (verified when it leaves the
/// quarantine).
/// # Safety
/// `[user, user + size)` is writable memory no longer the program's, held by the caller.
#[inline]
pub unsafe fn free_fill(user: usize, size: usize) {
    if layout().fill {
        // SAFETY: per the caller.
        unsafe { canary::fill(user, size, FREE_FILL) };
    }
}
