//! Quarantine: freed blocks are held back (FIFO, bounded by bytes and by entries) before their
//! slot can be reused, so a double free or a write after free is still visible. The blocks that
//! leave it are handed back to the caller (`push` returns them as a `Batch`, `pop` one at a
//! time), which verifies their free fill and releases them.
//!
//! The quarantine is split in `SHARDS` rings (picked by the freeing thread's arena), each with
//! its share of the budget, so threads that free at the same time do not queue on one lock.
//!
//! # Invariants
//! A ring is mapped once, on first use. Entries are user pointers of blocks whose state is
//! QUARANTINED. The caller releases evicted blocks after this lock is dropped (that takes arena
//! locks). A signal
//! handler that interrupted this thread inside a shard's lock uses another shard.

use crate::fifo::{self, Slots, Weigh};
use crate::lock::{Guard, Mutex};
use crate::pad::Padded;
use core::mem::MaybeUninit;

const SHARDS: usize = 4;
const CAP: usize = 1 << 14;
/// Blocks leave the quarantine in batches: once it is over budget, the oldest are released
/// until it is 1/16 under budget (at most this many at a time), one arena lock per batch.
const EVICT_BATCH: usize = 64;

/// A ring's `CAP` entries, mapped on first use (null until then: no room).
struct Mapped(*mut (usize, usize));
// SAFETY: the entries are only touched under the ring's lock.
unsafe impl Send for Mapped {}

impl Slots for Mapped {
    const CAP: usize = CAP;
    #[inline]
    fn slots(&self) -> &[(usize, usize)] {
        if self.0.is_null() {
            return &[];
        }
        // SAFETY: CAP entries mapped for this ring alone, touched only under its lock.
        unsafe { core::slice::from_raw_parts(self.0, CAP) }
    }
    #[inline]
    fn slots_mut(&mut self) -> &mut [(usize, usize)] {
        if self.0.is_null() {
            return &mut [];
        }
        // SAFETY: as above; `&mut self` is the lock holder's.
        unsafe { core::slice::from_raw_parts_mut(self.0, CAP) }
    }
}

/// A block counts at least 16 bytes against the budget.
struct Footprint;
impl Weigh for Footprint {
    #[inline]
    fn weigh(size: usize) -> usize {
        size.max(16)
    }
}

/// A shard: the FIFO of (user pointer, size) entries; its weight is the bytes it holds.
struct Ring(fifo::Ring<Mapped, Footprint>);

/// Each shard on cache lines of its own (threads of different arenas free into different
/// shards).
static QS: [Padded<Mutex<Ring>>; SHARDS] = [const {
    Padded(Mutex::new(Ring(fifo::Ring::new(Mapped(
        core::ptr::null_mut(),
    )))))
}; SHARDS];

/// Locks this thread's shard, or another one if this thread holds it (a signal handler that
/// interrupted a quarantine operation); None if it holds them all.
fn lock_shard() -> Option<Guard<'static, Ring>> {
    // SAFETY: our own TLS block.
    let a = unsafe { (*crate::tls::state()).arena } as usize;
    (0..SHARDS).find_map(|k| QS[(a + k) % SHARDS].enter())
}

/// Maps a ring's entries on first use; false if the system refuses.
fn ensure_buf(q: &mut Ring) -> bool {
    let slots = q.0.storage_mut();
    if slots.0.is_null() {
        let bytes = CAP * core::mem::size_of::<(usize, usize)>();
        match crate::pagemap::map_internal(bytes) {
            Some(b) => slots.0 = b as *mut (usize, usize),
            None => return false,
        }
    }
    true
}

/// Smallest budget of a shard when the quarantine adapts to the heap.
const MIN_SHARD: usize = 256 << 10;

/// Bytes of quarantine each shard holds. A set size is fixed; the default (4 MiB, from the
/// `1` preset) is a ceiling that scales with the heap: a shard holds at most an eighth of the
/// live bytes, never less than 256 KiB, so a small program does not pay several times its heap
/// in cache misses and memory for blocks it freed long ago. `live`: the heap's live bytes now.
pub fn shard_budget(live: usize) -> usize {
    let q = crate::config::get().quarantine;
    let fixed = q as usize / SHARDS;
    if q != crate::config::DEFAULT_QUARANTINE {
        return fixed;
    }
    fixed.min((live / 8).max(MIN_SHARD))
}

/// Blocks evicted from the quarantine, oldest first, with their sizes: the caller releases them.
/// Only the first `n` entries are written (an empty batch costs no 1 KiB of zeroes on every
/// free).
pub struct Batch {
    n: usize,
    out: [MaybeUninit<(usize, usize)>; EVICT_BATCH],
}

impl Batch {
    /// An empty batch. (A function, not a constant: a constant's uninitialised entries are
    /// written as zeroes all the same.)
    #[inline(always)]
    pub fn empty() -> Batch {
        Batch {
            n: 0,
            out: [const { MaybeUninit::uninit() }; EVICT_BATCH],
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[(usize, usize)] {
        // SAFETY: the first n entries are written (`put`), and MaybeUninit<T> has T's layout.
        unsafe { core::slice::from_raw_parts(self.out.as_ptr() as *const (usize, usize), self.n) }
    }

    /// Appends an entry (the caller checked `n < EVICT_BATCH`).
    #[inline]
    fn put(&mut self, e: (usize, usize)) {
        self.out[self.n] = MaybeUninit::new(e);
        self.n += 1;
    }
}

/// Puts a freed block in quarantine and gives the oldest ones beyond the shard's `budget`
/// (`shard_budget`) back in `out`
/// (an empty batch, the caller's), for the caller to release. False: the block could not be
/// held (this thread holds every shard, or the ring is full or cannot be mapped), and the
/// caller releases it at once.
pub fn push(p: usize, size: usize, budget: usize, out: &mut Batch) -> bool {
    // A signal handler that interrupted this thread inside the allocator evicts nothing: the
    // evicted blocks' arenas would be busy for it (see `requeue`), so the ring grows a little
    // over budget instead, until the next push made outside a handler.
    let nested = crate::lock::holds_any();
    let Some(mut q) = lock_shard() else {
        return false;
    };
    if !ensure_buf(&mut q) || q.0.is_full() {
        // (Full only with blocks `requeue` put back.)
        return false;
    }
    q.admit(p, size, budget, nested, out);
    true
}

impl Ring {
    /// Appends a freed block; unless `nested`, evicts the oldest blocks once the ring is over
    /// `budget` bytes (or full) until it is 1/16 under it, at most `EVICT_BATCH` of them, into
    /// the empty batch `b`.
    fn admit(&mut self, p: usize, size: usize, budget: usize, nested: bool, b: &mut Batch) {
        let q = &mut self.0;
        q.push(p, size);
        if !nested && (q.weight() > budget || q.is_full()) {
            let low = budget - budget / 16;
            while (q.weight() > low || q.len() + EVICT_BATCH > CAP) && b.n < EVICT_BATCH {
                let Some(e) = q.pop() else { break };
                b.put(e);
            }
        }
    }
}

/// Puts blocks that were leaving the quarantine back in (newest end), without releasing any:
/// their arena's lock could not be taken (a signal handler interrupted this thread inside the
/// allocator, see `Mutex::enter`). Returns how many were taken (from the start of `ps`).
pub fn requeue(ps: &[(usize, usize)]) -> usize {
    let Some(mut q) = lock_shard() else {
        return 0;
    };
    if !ensure_buf(&mut q) {
        return 0;
    }
    let mut n = 0;
    for &(p, size) in ps {
        if !q.0.push(p, size) {
            break;
        }
        n += 1;
    }
    n
}

/// Takes the oldest block of the first shard that holds any (and that this thread does not
/// hold), for the caller to release: emptying the quarantine (at exit, so the fills are
/// verified, or to give memory back) is popping until None.
pub fn pop() -> Option<usize> {
    for q in QS.iter() {
        let Some(mut q) = q.enter() else {
            continue;
        };
        if let Some((p, _)) = q.0.pop() {
            return Some(p);
        }
    }
    None
}

/// Calls `f` for every quarantined pointer (check_every, dumps). Takes the lock briefly.
pub fn for_each(mut f: impl FnMut(usize, usize)) {
    for q in QS.iter() {
        let Some(q) = q.try_lock() else { continue };
        for (p, s) in q.0.iter() {
            f(p, s);
        }
    }
}

pub fn stats() -> (usize, usize) {
    let (mut n, mut b) = (0, 0);
    for q in QS.iter() {
        if let Some(q) = q.try_lock() {
            n += q.0.len();
            b += q.0.weight();
        }
    }
    (n, b)
}

pub fn lock_forever() {
    for q in QS.iter() {
        q.lock_forever();
    }
}
pub fn unlock_forever() {
    for q in QS.iter() {
        // SAFETY: taken by lock_forever on this thread (fork prepare).
        unsafe { q.force_unlock() };
    }
}
pub fn reset() {
    for q in QS.iter() {
        // SAFETY: fork child, single thread.
        unsafe { q.reset() };
    }
}

#[cfg(test)]
mod tests;
