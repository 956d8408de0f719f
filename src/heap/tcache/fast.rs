//! The shortest paths of malloc and free with debugging off, called first by the C entry
//! points: a pop from, or a push to, this thread's cache, with nothing else. Anything they do
//! not handle (no area yet, an empty or full class, a LARGE block, any doubt about the
//! pointer) returns None or false before anything has changed, and the call takes the full
//! path, which checks everything again.
//!
//! The caller (`heap`) ends each call done here with the usual `drain::settle`.
//!
//! A thread has an area only once the allocator is initialised (`attach` runs from the paths
//! below these), and with debugging on (but for light options: `Config::fast`) its flags carry
//! SLOW for good, so a non-null area and clear flags are all the configuration these paths need
//! to look at, but for `sample=N`: malloc and calloc count its countdown down (`SAMPLING`), and
//! leave the call the countdown reaches to the full path, which guards that block.

use super::area::{Area, BUSY, add, meta_word, remote, room, set_flags_fast as set_flags};
use super::whole::hold_remote;
use crate::block::{BlockMeta, CACHED, NO_LINK, Op, USED};
use crate::heap::lookup::zone_of;
use crate::pagemap;
use crate::size_class::{NCLASSES, SMALL_MAX, class_of};
use crate::tls::{self, ThreadState};
use crate::zone::Zone;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};

/// `sample=N` with the fast paths on (set once at start-up): an allocation served here counts
/// the thread's countdown (`ThreadState::sample_left`) down, and one that finds it at 0 takes
/// the full path, where `guard::wants` guards it and starts the next countdown.
static SAMPLING: AtomicBool = AtomicBool::new(false);

/// Start-up: whether the fast paths count `sample=N` down.
pub fn set_sampling(on: bool) {
    SAMPLING.store(on, Ordering::Relaxed);
}

/// `class_of(n)` for `n <= BY16_MAX`, by steps of 16 bytes (every class size up to there is a
/// multiple of 16, so a request rounded up to 16 bytes has the class it had).
const BY16_MAX: usize = 1024;
const BY16: [u8; BY16_MAX / 16 + 1] = {
    let mut t = [0u8; BY16_MAX / 16 + 1];
    let mut k = 0;
    while k < t.len() {
        t[k] = class_of(k * 16) as u8;
        k += 1;
    }
    t
};

/// The class of a request of `n <= SMALL_MAX` bytes: `class_of`, by a table for the
/// commonest sizes.
#[inline(always)]
fn class_for(n: usize) -> usize {
    if n <= BY16_MAX {
        BY16[n.div_ceil(16)] as usize
    } else {
        class_of(n)
    }
}

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
/// `c` that only this cache holds (a slot becomes CACHED by this thread's free from USED, or
/// under its arena's lock in `refill`, and only a pop or a flush of the cache that holds it
/// changes it again), so the entry's metadata is written without reading it.
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
    let sampling = SAMPLING.load(Ordering::Relaxed);
    // SAFETY: our own TLS block.
    if sampling && unsafe { (*st).sample_left } == 0 {
        return None;
    }
    set_flags(st, BUSY);
    // SAFETY: our own area, busy.
    let got = unsafe { take(area, class_for(n), n, op) };
    set_flags(st, 0);
    if sampling && got.is_some() {
        // SAFETY: our own TLS block (a signal handler's allocation in between counted its own).
        unsafe { (*st).sample_left = (*st).sample_left.saturating_sub(1) };
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

/// The zone and index of the slot that starts at `p`. None: no such slot.
/// # Safety
/// None beyond the page map's: zone headers stay mapped, so a stale or wild pointer only
/// fails the checks here or later (its slot is not USED).
#[inline(always)]
unsafe fn slot_at(p: usize) -> Option<(*mut Zone, usize)> {
    let (_, z) = zone_of(pagemap::get(p))?;
    // SAFETY: per the caller.
    unsafe {
        let i = (*z).index_of(p)?;
        ((*z).slot_addr(i) == p).then_some((z, i))
    }
}

/// The live block at `p` (at the start of its slot, as every zone block is with debugging
/// off): its zone, index and metadata. None: anything else.
/// # Safety
/// As for `slot_at`.
#[inline(always)]
unsafe fn live(p: usize) -> Option<(*mut Zone, usize, BlockMeta)> {
    // SAFETY: per the caller.
    unsafe {
        let (z, i) = slot_at(p)?;
        let m = BlockMeta::from_word(meta_word(z, i).load(Ordering::Relaxed));
        (m.state == USED && m.front == 0).then_some((z, i, m))
    }
}

/// Makes slot `i` of `z` CACHED if it holds a live block at its start: its metadata entry and
/// the block's metadata as it was. None, nothing changed: its state is not USED (not a live
/// block, or another thread freed it meanwhile). The compare-exchange comes first: the slot's
/// metadata line is fetched once, for writing (it often comes from another core's cache).
/// # Safety
/// `(z, i)` from `slot_at`.
#[inline(always)]
unsafe fn claim(z: *mut Zone, i: usize) -> Option<(*mut BlockMeta, BlockMeta)> {
    // SAFETY: per the caller; the metadata of a slot of a mapped zone.
    unsafe {
        let meta = (*z).meta.add(i);
        let state = AtomicU8::from_ptr(&raw mut (*meta).state);
        state
            .compare_exchange(USED, CACHED, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        let m = BlockMeta::from_word(meta_word(z, i).load(Ordering::Relaxed));
        if m.front != 0 {
            // Not a block at its slot's start after all (never so with debugging off): as it
            // was.
            let _ = state.compare_exchange(CACHED, USED, Ordering::AcqRel, Ordering::Relaxed);
            return None;
        }
        Some((meta, m))
    }
}

/// `claim` for a slot of this thread's home arena, the commonest free: a load and a store,
/// without the locked instruction. A second free of the block finds its state CACHED or FREE
/// and is refused; only two frees of one block at the same instant (a data race in the
/// program, or a signal handler that interrupts this free between its load and its store) can
/// both pass, as in glibc's thread cache.
/// # Safety
/// As for `claim`.
#[inline(always)]
unsafe fn claim_home(z: *mut Zone, i: usize) -> Option<(*mut BlockMeta, BlockMeta)> {
    // SAFETY: per the caller; the metadata of a slot of a mapped zone.
    unsafe {
        let meta = (*z).meta.add(i);
        let m = BlockMeta::from_word(meta_word(z, i).load(Ordering::Acquire));
        if m.state != USED || m.front != 0 {
            return None;
        }
        AtomicU8::from_ptr(&raw mut (*meta).state).store(CACHED, Ordering::Release);
        Some((meta, m))
    }
}

/// Makes the block at `p`, slot `i` of `z`, CACHED and pushes it: false, nothing changed,
/// when its class is full or `claim` refuses the slot.
/// # Safety
/// `area` is this thread's, busy; `(z, i)` from `slot_at(p)`, a slot of this thread's home
/// arena (`put_far` holds the others apart).
#[inline(always)]
unsafe fn put(area: *mut Area, p: usize, z: *mut Zone, i: usize) -> bool {
    // SAFETY: per the caller; the metadata of a slot of a mapped zone.
    unsafe {
        let c = (*z).class as usize;
        if c >= NCLASSES {
            return false;
        }
        let count = &(*area).count[c];
        let (n, slots) = (count.load(Ordering::Relaxed) as usize, (*area).slots[c]);
        if n >= room(area, c) || slots.is_null() {
            return false;
        }
        let Some((meta, m)) = claim_home(z, i) else {
            return false;
        };
        *slots.add(n) = [p, meta as usize];
        count.store(n as u32 + 1, Ordering::Relaxed);
        add(&(*area).live_blocks, -1);
        add(&(*area).live_bytes, -(m.size as isize));
    }
    true
}

/// `put` for a block of another arena: made CACHED and held apart until it goes to its arena
/// (`hold_remote`); false, nothing changed, when `claim` refuses it. Out of line, so that
/// the common free keeps its registers.
/// # Safety
/// As for `put`, but for the arena.
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
unsafe fn put_far(area: *mut Area, p: usize, z: *mut Zone, i: usize) -> bool {
    // SAFETY: per the caller; the metadata of a slot of a mapped zone.
    unsafe {
        let Some((meta, m)) = claim(z, i) else {
            return false;
        };
        hold_remote(area, [p, meta as usize]);
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
    // With `sample=N`, the full path, whose moves are allocations the countdown counts.
    if p == 0 || n == 0 || n > SMALL_MAX || SAMPLING.load(Ordering::Relaxed) {
        return None;
    }
    let st = tls::state();
    let area = ready(st)?;
    // SAFETY: `live` validates `p`; our own area, busy from the first change of the cache.
    unsafe {
        let (z, i, m) = live(p)?;
        if remote(st, (*z).arena as usize) {
            return None;
        }
        let (slot_len, class) = ((*z).block_size as usize, (*z).class as usize);
        if n <= slot_len && (class_for(n) == class || n * 2 > slot_len) {
            // In place: the size alone changes (as under the lock, where a cache's
            // compare-exchange of the state byte is not excluded either).
            AtomicU16::from_ptr(&raw mut (*(*z).meta.add(i)).size)
                .store(n as u16, Ordering::Relaxed);
            // The area's counter changes with the busy flag set, as every change of it.
            set_flags(st, BUSY);
            add(&(*area).live_bytes, n as isize - m.size as isize);
            set_flags(st, 0);
            return Some(p as *mut u8);
        }
        let old = m.size as usize;
        let want = if n <= old { n } else { n + n / 2 };
        set_flags(st, BUSY);
        let c = class_for(want.min(SMALL_MAX));
        // The old block's class needs room (the new one's frees one if it is the same).
        let k = (*area).count[class].load(Ordering::Relaxed) as usize;
        let q = if class < NCLASSES && (k < room(area, class) || c == class) {
            take(area, c, n, Op::Realloc)
        } else {
            None
        };
        let Some(q) = q else {
            set_flags(st, 0);
            return None;
        };
        let q = q & !1;
        // The whole usable size moves (what malloc_usable_size reports, `realloc::usable_from`).
        let usable = slot_len - m.front as usize;
        core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, usable.min(n));
        if !put(area, p, z, i) {
            // Freed by another thread meanwhile (a program bug), or no room after all: the
            // new block goes back and the full path reports the pointer.
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
        Some(q as *mut u8)
    }
}

/// free(p) into the cache: a live zone block goes USED → CACHED (`claim_home`, or `claim` for
/// another arena's block) and its address is pushed. False: the full path (no area, a full
/// class, not such a block).
#[inline(always)]
pub fn free(p: usize) -> bool {
    let st = tls::state();
    let Some(area) = ready(st) else {
        return false;
    };
    // SAFETY: `slot_at` finds the slot, `put` checks its state; our own area, busy from the
    // first change of the cache.
    unsafe {
        let Some((z, i)) = slot_at(p) else {
            return false;
        };
        // A block of another arena (its zone says which, next to its class): held apart, out
        // of line.
        if remote(st, (*z).arena as usize) {
            set_flags(st, BUSY);
            let done = put_far(area, p, z, i);
            set_flags(st, 0);
            return done;
        }
        set_flags(st, BUSY);
        if !put(area, p, z, i) {
            set_flags(st, 0);
            return false;
        }
    }
    set_flags(st, 0);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_table_agrees_with_class_of() {
        for n in 0..=SMALL_MAX {
            assert_eq!(class_for(n), class_of(n), "n={n}");
        }
    }
}
