//! Verifying a block: the canaries of a live block (guarded blocks have theirs in every byte
//! of their pages before them and up to their guard page), the free fill of a quarantined one. The one place
//! that knows which bytes of a block must still hold what its dressing wrote.

use super::canary::{self, FREE_FILL};
use super::layout::{guarded_front, layout};
use crate::block::{Info, State};

/// What verifying a block found: the first changed byte, and what it belonged to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// A canary after the block.
    Overflow(usize),
    /// A canary before the block.
    Underflow(usize),
    /// The free fill of a quarantined block.
    WriteAfterFree(usize),
}

/// Verifies a live block's canaries (front first), if it has any.
/// The block's accessible range must be readable.
#[inline]
pub fn live(info: &Info) -> Option<Problem> {
    let guarded = info.guarded.is_guarded();
    if !layout().canaries() && !guarded {
        return None;
    }
    let front_from = if guarded {
        guarded_front(info.slot)
    } else {
        info.slot
    };
    // SAFETY: the slot (or the accessible part of the block's mapping) is ours and readable.
    unsafe {
        if let Some(a) = canary::check(front_from, info.user) {
            return Some(Problem::Underflow(a));
        }
        if let Some(a) = canary::check(info.user + info.size, info.check_end) {
            return Some(Problem::Overflow(a));
        }
    }
    None
}

/// Verifies a quarantined block's free fill, if the layout fills.
/// The block must be readable.
#[inline]
pub fn quarantined(info: &Info) -> Option<Problem> {
    // SAFETY: the block is ours (quarantined) and readable per the caller.
    unsafe { free_fill_changed(info.user, info.size) }.map(Problem::WriteAfterFree)
}

/// The first changed byte of the free fill of the quarantined block of `size` bytes at `user`
/// (None when intact, or when the layout does not fill).
/// # Safety
/// The block is readable.
#[inline]
pub unsafe fn free_fill_changed(user: usize, size: usize) -> Option<usize> {
    if !layout().fill {
        return None;
    }
    // SAFETY: per the caller.
    unsafe { canary::check_fill(user, user + size, FREE_FILL) }
}

/// Verifies a block in a final state: canaries when it is in use, fill when quarantined;
/// nothing for other states (a block being dressed is skipped, never seen half-dressed).
/// The block must be readable.
pub fn block(info: &Info) -> Option<Problem> {
    match info.state {
        State::Used => live(info),
        State::Quarantined => quarantined(info),
        _ => None,
    }
}
