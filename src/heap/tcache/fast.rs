//! The shortest paths of malloc and free with debugging off, called first by the C entry
//! points: a pop from, or a push to, this thread's cache, with nothing else. Anything they do
//! not handle (no area yet, an empty or full class, a LARGE block, any doubt about the
//! pointer) returns None or false before anything has changed, and the call takes the full
//! path, which checks everything again.
//!
//! A thread has an area only once the allocator is initialised with debugging off (`attach`
//! runs from the plain paths alone), so a non-null area is all the configuration these paths
//! need to look at.

use super::{Area, BUSY, add, cap, meta_word, set_flags};
use crate::block::{BlockMeta, CACHED, NO_LINK, Op, USED};
use crate::heap::drain;
use crate::heap::lookup::zone_of;
use crate::pagemap;
use crate::size_class::{SMALL_MAX, class_of};
use crate::tls::{self, ThreadState};
use crate::zone::Zone;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};

/// This thread's area when the fast paths may use it: it has one, holds no allocator lock and
/// is not changing its cache (a signal handler that interrupted either finds them set).
#[inline(always)]
fn ready(st: *mut ThreadState) -> Option<*mut Area> {
    // SAFETY: our own TLS block.
    unsafe {
        let a = (*st).tcache as *mut Area;
        if a.is_null() || (*st).locks != 0 || (*st).tcache_flags != 0 {
            return None;
        }
        Some(a)
    }
}

/// Takes the newest slot of class `c` and makes it a block of `n` bytes allocated by `op`:
/// the slot's address, bit 0 set when it was never used (zero memory). None: the class is
/// empty.
/// # Safety
/// `area` is this thread's, busy. The first `count[c]` entries are CACHED slots of class
/// `c` that only this cache holds (a slot becomes CACHED by this thread's compare-exchange
/// from USED, or under its arena's lock in `refill`, and only a pop or a flush of the cache
/// that holds it changes it again), so the entry's metadata is written without reading it.
#[inline(always)]
unsafe fn take(area: *mut Area, c: usize, n: usize, op: Op) -> Option<usize> {
    // SAFETY: per the caller.
    unsafe {
        let count = &(*area).count[c];
        let k = count.load(Ordering::Relaxed) as usize;
        if k == 0 {
            return None;
        }
        let [e, meta] = *(*area).slots[c].add(k - 1);
        count.store(k as u32 - 1, Ordering::Relaxed);
        let m = BlockMeta {
            size: n as u16,
            front: 0,
            state: USED,
            origin: op as u8,
            link: NO_LINK,
        };
        AtomicU64::from_ptr(meta as *mut u64).store(m.as_word(), Ordering::Release);
        add(&(*area).live_blocks, 1);
        add(&(*area).live_bytes, n as isize);
        Some(e)
    }
}

/// malloc(n) (or calloc, `op`) from the cache: the slot's address, bit 0 set when its memory
/// was never used. None: the full path (a big request, no area, an empty class).
#[inline(always)]
fn alloc(n: usize, op: Op) -> Option<usize> {
    if n > SMALL_MAX {
        return None;
    }
    let st = tls::state();
    let area = ready(st)?;
    set_flags(st, BUSY);
    // SAFETY: our own area, busy.
    let got = unsafe { take(area, class_of(n), n, op) };
    set_flags(st, 0);
    if got.is_some() {
        drain::settle();
    }
    got
}

/// malloc(n) from the cache; None: the full path.
#[inline(always)]
pub fn malloc(n: usize) -> Option<*mut u8> {
    alloc(n, Op::Malloc).map(|e| (e & !1) as *mut u8)
}

/// calloc(k, s) from the cache, zeroed unless never used; None: the full path (which also
/// answers an overflowing product).
#[inline(always)]
pub fn calloc(k: usize, s: usize) -> Option<*mut u8> {
    let n = k.checked_mul(s)?;
    let e = alloc(n, Op::Calloc)?;
    let p = (e & !1) as *mut u8;
    if e & 1 == 0 {
        // SAFETY: the block is ours now, `n` bytes from `p` within its slot.
        unsafe { core::ptr::write_bytes(p, 0, n) };
    }
    Some(p)
}

/// The live zone block at `p` (at the start of its slot, as every block is with debugging
/// off): its zone, index and metadata. None: anything else.
/// # Safety
/// None beyond the page map's: zone headers stay mapped, and a stale or wild pointer fails
/// the checks (its slot is not USED, or not at `p`).
#[inline(always)]
unsafe fn live(p: usize) -> Option<(*mut Zone, usize, BlockMeta)> {
    let (_, z) = zone_of(pagemap::get(p))?;
    // SAFETY: per the caller.
    unsafe {
        let i = (*z).index_of(p)?;
        let m = BlockMeta::from_word(meta_word(z, i).load(Ordering::Relaxed));
        if m.state != USED || m.front != 0 || (*z).slot_addr(i) != p {
            return None;
        }
        Some((z, i, m))
    }
}

/// Whether class `c` of `area` has room for one more entry.
/// # Safety
/// `area` is this thread's, busy.
#[inline(always)]
unsafe fn room(area: *mut Area, c: usize) -> bool {
    // SAFETY: per the caller.
    unsafe {
        ((*area).count[c].load(Ordering::Relaxed) as usize) < cap(c) && !(*area).slots[c].is_null()
    }
}

/// Makes the live block `(z, i, m)` at `p` CACHED and pushes it (the class has room): false
/// when its state is no longer USED (another thread freed it meanwhile).
/// # Safety
/// `area` is this thread's, busy; `room` said yes for the block's class.
#[inline(always)]
unsafe fn put(area: *mut Area, p: usize, z: *mut Zone, i: usize, m: BlockMeta) -> bool {
    // SAFETY: per the caller; the metadata of a slot of a mapped zone.
    unsafe {
        let meta = (*z).meta.add(i);
        if AtomicU8::from_ptr(&raw mut (*meta).state)
            .compare_exchange(USED, CACHED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let c = (*z).class as usize;
        let n = (*area).count[c].load(Ordering::Relaxed) as usize;
        *(*area).slots[c].add(n) = [p, meta as usize];
        (*area).count[c].store(n as u32 + 1, Ordering::Relaxed);
        add(&(*area).live_blocks, -1);
        add(&(*area).live_bytes, -(m.size as isize));
    }
    true
}

/// realloc(p, n) of a live TINY or SMALL block to a TINY or SMALL size, with the same
/// outcome as the full path: resized in place when it still fits its slot and the class
/// suits (`reallocate`), else moved to a block from the cache (with the same headroom as
/// `move_block`) and the old one cached. None: the full path, nothing changed.
#[inline(always)]
pub fn realloc(p: usize, n: usize) -> Option<*mut u8> {
    if p == 0 || n == 0 || n > SMALL_MAX {
        return None;
    }
    let st = tls::state();
    let area = ready(st)?;
    // SAFETY: `live` validates `p`; our own area, busy from the first change of the cache.
    unsafe {
        let (z, i, m) = live(p)?;
        let (slot_len, class) = ((*z).block_size as usize, (*z).class as usize);
        if n <= slot_len && (class_of(n) == class || n * 2 > slot_len) {
            // In place: the size alone changes (as under the lock, where a cache's
            // compare-exchange of the state byte is not excluded either).
            AtomicU16::from_ptr(&raw mut (*(*z).meta.add(i)).size)
                .store(n as u16, Ordering::Relaxed);
            add(&(*area).live_bytes, n as isize - m.size as isize);
            drain::settle();
            return Some(p as *mut u8);
        }
        let old = m.size as usize;
        let cap = if n <= old { n } else { n + n / 2 };
        set_flags(st, BUSY);
        let q = if room(area, class) {
            take(area, class_of(cap.min(SMALL_MAX)), n, Op::Realloc)
        } else {
            None
        };
        let Some(q) = q else {
            set_flags(st, 0);
            return None;
        };
        let q = q & !1;
        core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, old.min(n));
        if !put(area, p, z, i, m) {
            // Freed by another thread meanwhile (a program bug): the new block goes back
            // and the full path reports the pointer.
            let c = class_of(cap.min(SMALL_MAX));
            let k = (*area).count[c].load(Ordering::Relaxed) as usize;
            let entry = &mut *(*area).slots[c].add(k);
            // Written to: no longer known to be zero.
            entry[0] = q;
            let meta = entry[1];
            let cached = BlockMeta {
                state: CACHED,
                ..BlockMeta::EMPTY
            };
            AtomicU64::from_ptr(meta as *mut u64).store(cached.as_word(), Ordering::Release);
            (*area).count[c].store(k as u32 + 1, Ordering::Relaxed);
            add(&(*area).live_blocks, -1);
            add(&(*area).live_bytes, -(n as isize));
            set_flags(st, 0);
            return None;
        }
        set_flags(st, 0);
        drain::settle();
        Some(q as *mut u8)
    }
}

/// free(p) into the cache: a live zone block goes USED → CACHED (a compare-exchange: of two
/// racing frees of one block, one only goes on) and its address is pushed. False: the full
/// path (no area, a full class, not such a block).
#[inline(always)]
pub fn free(p: usize) -> bool {
    let st = tls::state();
    let Some(area) = ready(st) else {
        return false;
    };
    // SAFETY: `live` validates `p`; our own area, busy from the first change of the cache.
    unsafe {
        let Some((z, i, m)) = live(p) else {
            return false;
        };
        set_flags(st, BUSY);
        if !room(area, (*z).class as usize) || !put(area, p, z, i, m) {
            set_flags(st, 0);
            return false;
        }
    }
    set_flags(st, 0);
    drain::settle();
    true
}
