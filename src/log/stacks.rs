//! The `S` records of the log (docs/LOGFORMAT.md, "Stacks"): which call stacks this process's
//! log file has already defined, so each stack's frames are written once per file, the first
//! time an event names it.
//!
//! One bit per depot id, in a mapping made when the log is opened (sized by the depot's id
//! range: about 0.5 MiB for the default 64 MiB depot, touched only where ids fall). A forked
//! child, whose log is a file of its own, clears it.
//!
//! # Invariants
//! - A bit is set exactly once (`fetch_or`); the thread that set it writes the `S` record, so
//!   every stack an event names is defined once in the file (after the event when another
//!   thread wins the race and writes it a little later: readers accept either order).
//! - Ids past the bitmap (a depot grown beyond the range sized at start-up) are always written:
//!   a repeated `S` record defines the same frames again.

use crate::fmt::Line;
use crate::sys;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

static BITS: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());
static NBITS: AtomicUsize = AtomicUsize::new(0);

/// Ids below this are reserved by the depot (never a stored stack).
const FIRST_ID: usize = 1 << 16;

/// Maps the bitmap for ids up to `max_id`. Called once, single-threaded, at start-up.
pub fn init(max_id: usize) {
    let nbits = max_id.saturating_sub(FIRST_ID) + 1;
    let Some(len) = sys::page_round(nbits.div_ceil(8)) else {
        return;
    };
    if let Some(p) = sys::map(len) {
        BITS.store(p as *mut AtomicU64, Ordering::Relaxed);
        NBITS.store(len * 8, Ordering::Release);
    }
}

/// True the first time this file's events name stack `id` (the caller then writes its `S`
/// record); never for a reserved id (no frames to write).
#[inline]
pub fn first_time(id: u32) -> bool {
    if (id as usize) < FIRST_ID {
        return false;
    }
    let i = id as usize - FIRST_ID;
    let n = NBITS.load(Ordering::Acquire);
    if i >= n {
        return true;
    }
    let bits = BITS.load(Ordering::Relaxed);
    let m = 1u64 << (i % 64);
    // SAFETY: `i < n`, and the mapping holds `n` bits (set before NBITS, Release/Acquire).
    let w = unsafe { &*bits.add(i / 64) };
    // A plain load first: the bit of a stack seen before is set, and a locked read-modify-write
    // on every event would cost more than the rest of this check.
    w.load(Ordering::Relaxed) & m == 0 && w.fetch_or(m, Ordering::Relaxed) & m == 0
}

/// The number a stack of depot id `id` has in the log: the depot's ids start at `FIRST_ID`
/// (they encode where a record lies), the log's at 1, which saves four digits on every event.
/// Reserved ids (the depot was full) become 0, which no `S` record defines.
#[inline]
pub fn log_id(id: u32) -> u32 {
    id.saturating_sub(FIRST_ID as u32 - 1)
}

/// Fork child: its log is a new file, in which no stack is defined yet.
pub fn reset_in_child() {
    let n = NBITS.load(Ordering::Relaxed);
    if n > 0 {
        // SAFETY: our own mapping of n / 8 bytes (a page multiple); only this thread runs.
        unsafe { sys::discard(BITS.load(Ordering::Relaxed) as *mut u8, n / 8) };
    }
}

/// Formats the `S` record of stack `id` (`S <log id> 0xF,0xF...`). Frames that do not fit the line
/// are left out (a stack is at most 64 frames of 19 bytes).
pub fn record(l: &mut Line<1400>, id: u32, frames: &[usize]) {
    l.s(b"S ").u(log_id(id) as u64).c(b' ');
    for (i, &f) in frames.iter().enumerate() {
        if i > 0 {
            l.c(b',');
        }
        l.x(f);
    }
    l.c(b'\n');
}
