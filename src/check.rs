//! Verifying blocks: `check_every=N` (every N calls, the whole heap: canaries of live blocks,
//! TINY, SMALL, LARGE and guarded, and the fill of quarantined ones; the first problem is
//! reported), and the one rule the dumps and the `check` command apply to a block.
//!
//! A block is checked only in a final state (`USED`, `QUARANTINED`) and where it can be read
//! (`walk::Block::readable`): the state is read with acquire and published by the thread that
//! dresses the block only once its canaries or fill are written, so a block taken or freed a
//! moment ago (`ALLOCATING`, `FREEING`) is skipped, never seen half-dressed.

use crate::block::{QUARANTINED, USED};
use crate::heap::{self, Info};
use crate::walk::{self, Block};
use core::sync::atomic::{AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);

pub fn maybe_check_all() {
    let n = crate::config::get().check_every;
    if n == 0 || !(COUNT.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n) {
        return;
    }
    check_all(false);
}

/// Verifies every block; returns the number of problems (reports the first unless `quiet`).
pub fn check_all(quiet: bool) -> usize {
    let mut problems = 0usize;
    let mut first: Option<(Info, u8, usize)> = None;
    // Arenas and the LARGE state one at a time; one this thread holds (a check from a signal
    // handler) is skipped.
    walk::each_entered(|b| {
        if let Some(p) = block(b) {
            problems += 1;
            if first.is_none() {
                first = Some(p);
            }
        }
    });
    if let Some((info, kind, at)) = first
        && !quiet
    {
        match kind {
            0 => crate::report::bad_block(
                crate::block::Op::Malloc,
                info.user,
                crate::report::Bad::Overflow(at),
                &info,
                0,
            ),
            1 => crate::report::bad_block(
                crate::block::Op::Malloc,
                info.user,
                crate::report::Bad::Underflow(at),
                &info,
                0,
            ),
            _ => crate::report::write_after_free(&info, at),
        }
    }
    problems
}

/// Verifies a walked block if it can be read: its info and the problem, if any (see
/// `verify`).
pub fn block(b: &Block) -> Option<(Info, u8, usize)> {
    if !b.readable() {
        return None;
    }
    let info = b.info();
    let (kind, at) = verify(&info, canaries(&info), heap::LAYOUT.get().fill)?;
    Some((info, kind, at))
}

/// Whether the block carries canaries: every block when canaries are on, guarded ones always.
pub fn canaries(info: &Info) -> bool {
    let lay = heap::LAYOUT.get();
    lay.front > 0 || lay.tail > 0 || info.guarded != 0
}

/// (kind, address): 0 overflow, 1 underflow, 2 write after free.
pub fn verify(info: &Info, canaries: bool, fill: bool) -> Option<(u8, usize)> {
    // SAFETY: the caller passes a readable block (`walk::readable`), under its lock.
    unsafe {
        if info.state == USED && (canaries || info.guarded != 0) {
            let front_from = if info.guarded != 0 {
                info.slot.max(info.user.saturating_sub(16))
            } else {
                info.slot
            };
            if let Some(a) = crate::canary::check(front_from, info.user) {
                return Some((1, a));
            }
            if let Some(a) = crate::canary::check(info.user + info.size, info.check_end) {
                return Some((0, a));
            }
        } else if info.state == QUARANTINED
            && fill
            && let Some(a) = crate::canary::check_fill(
                info.user,
                info.user + info.size,
                crate::canary::FREE_FILL,
            )
        {
            return Some((2, a));
        }
    }
    None
}
