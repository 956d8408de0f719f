//! Call sites: what an allocator call records about where it came from. A site is one word:
//! the caller's return address, or — with whole stacks on (`stack=N`, N > 1) — the id of the
//! call's stack in the depot, tagged with `TAG`. Entry points make it (`here_at`) and pass it
//! down in place of the bare caller; histories, the quarantine, the ring and the reports keep
//! it as an opaque word, and only what prints or logs an address decodes it (`pc`, `frames`).
//!
//! # Invariants
//! - A tagged site always names a stored stack whose first frame is the caller: a stack the
//!   depot could not store (full, and not even the caller alone stored) is kept as the bare
//!   caller instead. So `pc` never loses the caller, and two sites are equal exactly when
//!   their stacks are (ids are unique per distinct stack), which is what reports group by.
//! - User-space code addresses are below 2^47 on x86-64 and aarch64, so a bare caller never
//!   has `TAG` set.
//! - `here_at` allocates nothing, takes no lock, and is safe in a signal handler (the unwinder
//!   and the depot are).

use crate::depot;
use crate::unwind;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Marks a site that is a depot id.
pub const TAG: usize = 1 << 63;
/// The deepest stack kept (`stack=N` is clamped to it).
pub const MAX_DEPTH: usize = 64;

/// Frames per stack; 1 = the caller alone (no unwinding).
static DEPTH: AtomicUsize = AtomicUsize::new(1);

/// Sets the depth (clamped to 1..=MAX_DEPTH). Called once at start-up.
pub fn set_depth(n: usize) {
    DEPTH.store(n.clamp(1, MAX_DEPTH), Ordering::Relaxed);
}

pub fn depth() -> usize {
    DEPTH.load(Ordering::Relaxed)
}

/// The caller's frame as an entry trampoline saw it, passed in two registers: the caller's
/// stack pointer once the call returns, and its frame pointer (callee-saved, so still the
/// caller's at the entry).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct At {
    pub sp: usize,
    pub fp: usize,
}

/// The site of the current allocator call whose return address is `caller` and whose frame
/// is `at`: `caller` itself with stacks off, else the tagged depot id of the stack from
/// `caller` outwards. The stack is unwound from the caller's frame itself, never through
/// ours; a frame seen before is answered from the stacks kept by the unwinder
/// (`unwind::recall`), the same stack without a walk.
#[inline(always)]
pub fn here_at(caller: usize, at: At) -> usize {
    let n = DEPTH.load(Ordering::Relaxed);
    if n <= 1 || caller == 0 {
        return caller;
    }
    capture_at(caller, at, n)
}

#[inline(never)]
fn capture_at(caller: usize, at: At, n: usize) -> usize {
    if let Some(id) = unwind::recall(caller, at.sp, at.fp, n) {
        return TAG | id as usize;
    }
    let mut buf = core::mem::MaybeUninit::<[usize; MAX_DEPTH]>::uninit();
    let frames = zeroed(&mut buf, n);
    let mut rec = unwind::Recording::new();
    let got = unwind::capture_at_recorded(frames, caller, at.sp, at.fp, &mut rec);
    let site = store(caller, &frames[..got]);
    if let Some(id) = id(site) {
        unwind::keep(&rec, at.sp, at.fp, n, &frames[..got], id);
    }
    site
}

/// The first `n` words of `buf`, zeroed (the rest, up to 512 bytes, stays unwritten: a stack
/// is often much shorter than the buffer).
#[inline(always)]
fn zeroed(buf: &mut core::mem::MaybeUninit<[usize; MAX_DEPTH]>, n: usize) -> &mut [usize] {
    let n = n.min(MAX_DEPTH);
    let p = buf.as_mut_ptr() as *mut usize;
    // SAFETY: p points to MAX_DEPTH words of buf and n <= MAX_DEPTH; the first n are written
    // before the slice over them is made.
    unsafe {
        core::ptr::write_bytes(p, 0, n);
        core::slice::from_raw_parts_mut(p, n)
    }
}

/// The site of a captured stack: its depot id, or the bare caller when there is none.
#[inline]
fn store(caller: usize, frames: &[usize]) -> usize {
    if frames.is_empty() {
        return caller;
    }
    let id = depot::put(frames);
    if id == depot::FULL || id == depot::NONE {
        return caller;
    }
    TAG | id as usize
}

/// The depot id of a tagged site, or None for a bare caller.
#[inline]
pub fn id(site: usize) -> Option<u32> {
    if site & TAG != 0 {
        Some((site & !TAG) as u32)
    } else {
        None
    }
}

/// The caller of a site: its first frame.
#[inline]
pub fn pc(site: usize) -> usize {
    match id(site) {
        Some(id) => depot::get(id).first().copied().unwrap_or(0),
        None => site,
    }
}

/// The frames of a site, innermost first: the stored stack, or the bare caller alone (`one`
/// holds it). Empty for no site (0).
pub fn frames(site: usize, one: &mut [usize; 1]) -> &[usize] {
    match id(site) {
        Some(id) => depot::get(id),
        None if site == 0 => &[],
        None => {
            one[0] = site;
            &one[..]
        }
    }
}

/// Bit that marks a depot id in a site packed into 52 bits (`pack`).
const PACKED_ID: usize = 1 << 51;

/// The site in 52 bits, for a word that keeps its top bits for itself (a deferred free).
#[inline]
pub fn pack(site: usize) -> usize {
    match id(site) {
        Some(id) => PACKED_ID | id as usize,
        None => site & (PACKED_ID - 1),
    }
}

/// The site that `pack` made `w` from.
#[inline]
pub fn unpack(w: usize) -> usize {
    if w & PACKED_ID != 0 {
        TAG | (w & 0xffff_ffff)
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_tagged() {
        let mut one = [0];
        assert_eq!(id(0x5555_1234), None);
        assert_eq!(pc(0x5555_1234), 0x5555_1234);
        assert_eq!(frames(0x5555_1234, &mut one), &[0x5555_1234]);
        assert!(frames(0, &mut one).is_empty());
        let stack = [0x7f00_0000_1000usize, 0x5555_0000_2000, 0x5555_0000_3000];
        let s = TAG | depot::put(&stack) as usize;
        assert_eq!(id(s).map(|i| i as usize), Some(s & !TAG));
        assert_eq!(pc(s), stack[0]);
        assert_eq!(frames(s, &mut one), &stack);
        assert_eq!(unpack(pack(s)), s);
        assert_eq!(unpack(pack(0x5555_1234)), 0x5555_1234);
        assert!(pack(s) < 1 << 52);
    }
}
