//! Verifying blocks: `check_every=N` (every N calls, the whole heap: canaries of live blocks,
//! TINY, SMALL, LARGE and guarded, and the fill of quarantined ones; the first problem is
//! reported), the check at exit (`at_exit`), and the one rule the dumps and the `check`
//! command apply to a block.
//!
//! A block is checked only in a final state (`USED`, `QUARANTINED`) and where it can be read
//! (`walk::Block::readable`): the state is read with acquire and published by the thread that
//! dresses the block only once its canaries or fill are written, so a block taken or freed a
//! moment ago (`ALLOCATING`, `FREEING`) is skipped, never seen half-dressed.

use crate::block::{Info, State};
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

/// Most corrupted blocks the check at exit reports (the lowest addresses).
const AT_EXIT_MAX: usize = 32;

/// The check at exit (with `check`), before the quarantine is drained and leaks are looked
/// for: every readable live block's canaries and every readable quarantined block's free fill,
/// once each (blocks on inaccessible pages are skipped). Each corrupted block is reported
/// once, in address order: an overflow that ran over the blocks after it is reported first as
/// the overflow of the block it started from. Then `on_error` applies as for any report. A
/// quarantined block reported here gets its fill back, so the drain does not report it again.
/// Out of line, so that its list of blocks found is not in the frame of the exit reports while
/// the leak check runs (a thread's stack may be small).
#[inline(never)]
pub fn at_exit() {
    let mut found: [Option<(Info, u8, usize)>; AT_EXIT_MAX] = [None; AT_EXIT_MAX];
    let mut n = 0;
    walk::each_entered(|b| {
        let Some(p) = block(b) else {
            return;
        };
        if n < AT_EXIT_MAX {
            found[n] = Some(p);
            n += 1;
            return;
        }
        // Full: keep the lowest addresses.
        let mut hi = 0;
        for (i, f) in found.iter().enumerate() {
            if let (Some(f), Some(h)) = (f, &found[hi])
                && f.0.user > h.0.user
            {
                hi = i;
            }
        }
        if let Some(h) = &found[hi]
            && p.0.user < h.0.user
        {
            found[hi] = Some(p);
        }
    });
    let found = &mut found[..n];
    found.sort_unstable_by_key(|f| f.map_or(usize::MAX, |f| f.0.user));
    let mut refill = false;
    for &(info, kind, at) in found.iter().flatten() {
        match kind {
            0 => crate::report::bad_block_at_exit(crate::report::Bad::Overflow(at), &info),
            1 => crate::report::bad_block_at_exit(crate::report::Bad::Underflow(at), &info),
            _ => {
                // Worded as the drain that follows would word it (a LARGE block's fill, not
                // readable here, is checked there).
                crate::report::write_after_free(&info, at);
                refill = true;
            }
        }
    }
    if refill {
        walk::each_entered(|b| {
            let reported = found
                .iter()
                .flatten()
                .any(|f| f.1 == 2 && f.0.user == b.user && f.0.size == b.size);
            if reported && b.state == State::Quarantined && b.readable() {
                // SAFETY: a quarantined block, readable (checked above), under its lock; no
                // longer the program's.
                unsafe { crate::debug::dress::free_fill(b.user, b.size) };
            }
        });
    }
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
