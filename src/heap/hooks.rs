//! Calls the heap makes into the modules above it, registered at start-up (`lifecycle`): the
//! heap names none of them.

use core::sync::atomic::{AtomicUsize, Ordering};

/// `check_every=N`: called on every allocator call with debugging on (the hook counts).
static CHECK: AtomicUsize = AtomicUsize::new(0);

/// Registers the function that verifies the whole heap every N calls (init).
pub fn set_check_hook(f: fn()) {
    CHECK.store(f as usize, Ordering::Relaxed);
}

/// Runs the `check_every` hook, if one is registered.
#[inline]
pub(super) fn maybe_check_all() {
    let f = CHECK.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: the only values stored are 0 and a `fn()` (`set_check_hook`).
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
        f();
    }
}
