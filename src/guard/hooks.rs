//! What the guard layer needs from the heap above it, registered at start-up
//! (`set_hooks`, from init): the allocation stamp of a new block (sequence number, caller,
//! thread), and leaving a release for later when a signal handler interrupted this thread
//! inside the `LARGE` lock.

use crate::block::DebugMeta;
use core::sync::atomic::{AtomicUsize, Ordering};

static STAMP: AtomicUsize = AtomicUsize::new(0);
static DEFER_RELEASE: AtomicUsize = AtomicUsize::new(0);

/// Registers the heap's functions: `stamp(meta, caller)` writes a new block's debugging
/// history, `defer_release(p)` has `guard::release(p)` run once this thread holds no lock.
pub fn set_hooks(stamp: fn(&mut DebugMeta, usize), defer_release: fn(usize)) {
    STAMP.store(stamp as usize, Ordering::Release);
    DEFER_RELEASE.store(defer_release as usize, Ordering::Release);
}

/// Writes the allocation stamp of a new block to `meta` (left as it is before init).
#[inline]
pub fn stamp(meta: &mut DebugMeta, caller: usize) {
    let f = STAMP.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: the only value stored is a `fn(&mut DebugMeta, usize)` (set_hooks).
        let f = unsafe { core::mem::transmute::<usize, fn(&mut DebugMeta, usize)>(f) };
        f(meta, caller);
    }
}

/// Leaves the release of `p` for later; false before init (the caller releases nothing).
pub fn defer_release(p: usize) -> bool {
    let f = DEFER_RELEASE.load(Ordering::Acquire);
    if f == 0 {
        return false;
    }
    // SAFETY: the only value stored is a `fn(usize)` (set_hooks).
    let f = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
    f(p);
    true
}
