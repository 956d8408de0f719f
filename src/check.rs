//! `check_every=N`: every N calls, verify the whole heap (canaries of live blocks, fill of
//! quarantined ones) and report the first problem.
//!
//! A block is checked only in a final state (`USED`, `QUARANTINED`): the state is read with
//! acquire and published by the thread that dresses the block only once its canaries or fill
//! are written, so a block taken or freed a moment ago (`ALLOCATING`, `FREEING`) is skipped,
//! never seen half-dressed.

use crate::block::Info;
use crate::debug::verify::Problem;
use crate::heap::{self, ARENAS, NARENAS};
use core::sync::atomic::{AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);

pub fn maybe_check_all() {
    let n = crate::config::get().check_every;
    if n == 0 || (COUNT.fetch_add(1, Ordering::Relaxed) + 1) % n != 0 {
        return;
    }
    check_all(false);
}

/// Verifies every block; returns the number of problems (reports them unless `quiet`).
pub fn check_all(quiet: bool) -> usize {
    let mut problems = 0usize;
    let mut first: Option<(Info, u8, usize)> = None;
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        // An arena this thread holds (check from a signal handler) is skipped.
        let Some(g) = a.enter() else {
            continue;
        };
        let mut z = g.all;
        while !z.is_null() {
            // SAFETY: zones of this arena, under its lock.
            let zr = unsafe { &*z };
            for i in 0..zr.hiwater as usize {
                let info = heap::zone_info(zr, i);
                if let Some((kind, at)) = verify(&info) {
                    problems += 1;
                    if first.is_none() {
                        first = Some((info, kind, at));
                    }
                }
            }
            z = zr.all_next;
        }
    }
    if let Some((info, kind, at)) = first {
        if !quiet {
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
    }
    problems
}

/// (kind, address): 0 overflow, 1 underflow, 2 write after free (`debug::verify::block`).
pub fn verify(info: &Info) -> Option<(u8, usize)> {
    match crate::debug::verify::block(info)? {
        Problem::Overflow(a) => Some((0, a)),
        Problem::Underflow(a) => Some((1, a)),
        Problem::WriteAfterFree(a) => Some((2, a)),
    }
}
