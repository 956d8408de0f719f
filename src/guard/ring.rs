//! The address-space quarantine: a bounded FIFO of freed guarded blocks (their user pointers)
//! kept PROT_NONE and mapped, so a use after free faults. At most `RING_CAP` blocks and
//! `RING_MAX_BYTES` of address space; the oldest leave first. This file only keeps the FIFO
//! and its lock; what leaving means (back to a pool, or unmapped) is `guard::block`'s.
//!
//! # Invariants
//! - The ring holds user pointers of QUARANTINED guarded LARGE descriptors; they are released
//!   only after this lock is dropped.
//! - The ring's weight is the sum of the costs (without the `POOLED` flag) of the entries held.

use crate::fifo::{self, Weigh};
use crate::lock::Mutex;
use crate::sys;
use core::sync::atomic::{AtomicUsize, Ordering};

const RING_CAP: usize = 32768;
/// Address space held by freed guarded blocks before the oldest is released: `RING_MAX_BYTES`,
/// or an eighth of the address-space limit if less (`init`, `sys::space_limit`), so that the
/// freed blocks never take the address space a program that runs under glibc within its limit
/// needs.
const RING_MAX_BYTES: usize = 512 << 20;
static MAX_BYTES: AtomicUsize = AtomicUsize::new(RING_MAX_BYTES);

/// Sets the ring's address-space bound from the address-space limit (init).
pub fn init() {
    MAX_BYTES.store(
        RING_MAX_BYTES.min(sys::space_limit() / 8),
        Ordering::Relaxed,
    );
}

/// Flag in an entry's cost (a multiple of the page size): the block is in a pool slot.
pub const POOLED: usize = 1;

/// An entry weighs its cost without the `POOLED` flag.
struct Cost;
impl Weigh for Cost {
    #[inline]
    fn weigh(cost: usize) -> usize {
        cost & !POOLED
    }
}

/// The FIFO of (user pointer, cost) entries; its weight is the address space they hold.
pub struct Ring(fifo::Ring<[(usize, usize); RING_CAP], Cost>);

static RING: Mutex<Ring> = Mutex::new(Ring::EMPTY);

/// Blocks that leave the ring when one enters: at most this many at a time.
pub const OUT_MAX: usize = 8;

impl Ring {
    pub const EMPTY: Ring = Ring(fifo::Ring::new([(0, 0); RING_CAP]));

    #[inline]
    fn pop(&mut self) -> Option<usize> {
        self.0.pop().map(|(p, _)| p)
    }

    /// Appends `p` (of `cost` bytes of address space, `POOLED` flag included); writes the
    /// blocks that must leave to `out` and returns how many: the oldest when the ring is
    /// full, and unless `nested`, the oldest beyond the byte bound (one at least stays).
    #[inline]
    pub fn push(
        &mut self,
        p: usize,
        cost: usize,
        nested: bool,
        out: &mut [usize; OUT_MAX],
    ) -> usize {
        let mut n = 0;
        if self.0.is_full() {
            out[n] = self.pop().unwrap_or(0);
            n += 1;
        }
        self.0.push(p, cost);
        let max = MAX_BYTES.load(Ordering::Relaxed);
        while !nested && self.0.weight() > max && self.0.len() > 1 && n < out.len() {
            out[n] = self.pop().unwrap_or(0);
            n += 1;
        }
        n
    }
}

/// Enters `p` in the ring (see `Ring::push`); None when a signal handler interrupted this
/// thread inside the ring's lock.
#[inline]
pub fn push(p: usize, cost: usize, nested: bool, out: &mut [usize; OUT_MAX]) -> Option<usize> {
    let mut r = RING.enter()?;
    Some(r.push(p, cost, nested, out))
}

/// Takes the oldest block out of the ring; None if it is empty (or its lock is this thread's).
#[inline]
pub fn pop_oldest() -> Option<usize> {
    RING.enter()?.pop()
}

pub fn lock_forever() {
    RING.lock_forever();
}

pub fn unlock_forever() {
    // SAFETY: taken by lock_forever on this thread (fork prepare).
    unsafe { RING.force_unlock() };
}

pub fn reset() {
    // SAFETY: fork child, single thread.
    unsafe { RING.reset() };
}

/// The ring's own storage (skipped by the leak scanner).
pub fn range() -> (usize, usize) {
    (
        &RING as *const Mutex<Ring> as usize,
        core::mem::size_of::<Mutex<Ring>>(),
    )
}
