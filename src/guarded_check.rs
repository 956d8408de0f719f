//! The exit check of guarded blocks: with `check` on, every live guarded block's canaries —
//! the whole accessible part of its pages in front of it and the slack behind it up to its
//! guard page — are verified once at exit, before the leak report, so an underwrite (or, with
//! the guard below, an overwrite of the slack) of a block that is never freed is still seen.
//! Each corrupted block is an ERROR with its history (`on_error=continue`: once per allocation
//! site).
//!
//! The blocks are read under the LARGE lock, taken as the allocator takes it, and reported
//! after it is released (a bounded number, from a stack array: nothing is allocated).

use crate::block::Info;
use crate::debug::verify::{self, Problem};
use crate::report::{self, Bad};
use crate::walk;

/// Corrupted blocks reported at most (the rest are counted in the error total).
const MAX_REPORTED: usize = 16;

/// Verifies the live guarded blocks; returns how many were corrupted (each reported, up to
/// `MAX_REPORTED`). The leak scan that follows reads the stack above its own frame as the
/// program's, so the stack this check used is wiped before it returns: a copy of a block's
/// address left there would keep a leaked block reachable.
pub fn at_exit() -> usize {
    if !crate::config::get().check {
        return 0;
    }
    let n = check_and_report();
    wipe_stack();
    n
}

/// Zeroes the stack below the caller's frame, where `check_and_report` ran.
#[inline(never)]
fn wipe_stack() {
    let mut words = [0usize; WIPE_WORDS];
    for w in words.iter_mut() {
        // SAFETY: a word of this frame's own array.
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    core::hint::black_box(&words);
}

/// Words of stack `wipe_stack` zeroes (8 KiB): more than `check_and_report` and its callees
/// use.
const WIPE_WORDS: usize = 1024;

#[inline(never)]
fn check_and_report() -> usize {
    let mut found: [Option<(Info, Problem)>; MAX_REPORTED] = [None; MAX_REPORTED];
    let mut n = 0usize;
    walk::each_guarded_entered(|b| {
        if !b.readable() {
            return;
        }
        let info = b.info();
        if let Some(p) = verify::live(&info) {
            if n < MAX_REPORTED {
                found[n] = Some((info, p));
            }
            n += 1;
        }
    });
    for (info, p) in found.iter().flatten() {
        let bad = match *p {
            Problem::Overflow(a) => Bad::Overflow(a),
            Problem::Underflow(a) => Bad::Underflow(a),
            Problem::WriteAfterFree(_) => continue,
        };
        report::bad_block_at_exit(bad, info);
    }
    if n > MAX_REPORTED {
        report::ERRORS.fetch_add((n - MAX_REPORTED) as u64, core::sync::atomic::Ordering::Relaxed);
    }
    n
}
