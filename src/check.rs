//! Verifying blocks: `check_every=N` (every N calls, the whole heap: canaries of live blocks,
//! TINY, SMALL, LARGE and guarded, and the fill of quarantined ones; the first problem is
//! reported), and the one rule the dumps and the `check` command apply to a block.
//!
//! A block is checked only in a final state (`USED`, `QUARANTINED`) and where it can be read
//! (`walk::Block::readable`): the state is read with acquire and published by the thread that
//! dresses the block only once its canaries or fill are written, so a block taken or freed a
//! moment ago (`ALLOCATING`, `FREEING`) is skipped, never seen half-dressed.

use crate::block::Info;
use crate::debug::verify::Problem;
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
    let (kind, at) = verify(&info)?;
    Some((info, kind, at))
}

/// Whether the block carries canaries: every block when canaries are on, guarded ones always.
pub fn canaries(info: &Info) -> bool {
    crate::debug::LAYOUT.get().canaries() || info.guarded.is_guarded()
}

/// (kind, address): 0 overflow, 1 underflow, 2 write after free (`debug::verify::block`).
/// The block must be readable (`walk::readable`), under its lock.
pub fn verify(info: &Info) -> Option<(u8, usize)> {
    match crate::debug::verify::block(info)? {
        Problem::Overflow(a) => Some((0, a)),
        Problem::Underflow(a) => Some((1, a)),
        Problem::WriteAfterFree(a) => Some((2, a)),
    }
}
