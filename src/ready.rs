//! Start-up state: whether the allocator is initialised (Uninit → Initializing → Ready), kept
//! low so that any module can make sure of it. The initialisation itself is the start-up
//! code's (`init`), which registers it here (`set_init`) before the state first leaves Uninit.
//!
//! # Invariants
//! `STATE` leaves Uninit only through the registered initialisation; before any registration
//! nothing of the allocator has run (no block exists, every default applies).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

pub const UNINIT: u8 = 0;
pub const INITIALIZING: u8 = 1;
pub const READY: u8 = 2;

pub static STATE: AtomicU8 = AtomicU8::new(UNINIT);
/// The initialisation (a `fn()`), 0 until registered.
static INIT: AtomicUsize = AtomicUsize::new(0);

/// Registers the initialisation that `ensure` runs.
pub fn set_init(f: fn()) {
    INIT.store(f as usize, Ordering::Release);
}

/// Makes sure the allocator is initialised; cheap once Ready.
#[inline(always)]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != READY {
        slow();
    }
}

#[cold]
fn slow() {
    let f = INIT.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: a non-zero value was stored by `set_init` from a `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
        f();
    }
}
