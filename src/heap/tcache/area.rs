//! A thread cache's area and what every part of the cache shares: the per-class capacities,
//! the busy flag, the list of all areas, and the slot metadata seen as one atomic word.

use crate::size_class::{NCLASSES, class_size, is_tiny};
use crate::tls::ThreadState;
use crate::zone::Zone;
use core::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, Ordering, compiler_fence};

/// Slots a TINY class holds at most (a thread's TINY classes: 765 KiB of free slots at most),
/// and slots and bytes of slots a SMALL class holds at most (the biggest class, 16 KiB, keeps
/// 4). Two threads that trade 16..512-byte blocks free about a thousand of the other's blocks
/// per round and allocate as many in the next: with 48 slots a TINY class gave half of them
/// back to the zones and took them again every round.
pub(super) const TINY_SLOTS: usize = 255;
pub(super) const SMALL_SLOTS: usize = 48;
pub(super) const SMALL_BYTES: usize = 64 << 10;
/// Slots a refill takes at most (and half the class's capacity).
pub(super) const REFILL_MAX: usize = 32;
/// Slots a thread's first refill of a class takes (then twice as many each time, up to half the
/// class's capacity or `REFILL_MAX`): a thread that makes a few blocks of many sizes does not
/// hold a page or more of each class that it never uses, which with thousands of threads added
/// up to more than the program's own memory.
pub(super) const FIRST_FILL: usize = 1;
/// Freed slots of other arenas a cache holds before it gives them back together.
pub(super) const REMOTE: usize = 64;
/// Entries of a class's first array (one cache line); the array of the class's full capacity
/// replaces it when the class holds more (`widen`). So a thread that keeps a slot or two of
/// many classes has their arrays side by side on one page, not one page per four classes.
const FIRST_ROOM: usize = 4;

/// `tcache_flags`: the thread is changing its cache (BUSY); its exit flushed it, and it gets
/// no other (GONE); its cache serves the full paths alone (SLOW: debugging is on, `cached`
/// config, and every call must be recorded), set for good with the area.
pub(super) const BUSY: u32 = 1;
pub(super) const GONE: u32 = 2;
pub(super) const SLOW: u32 = 4;

/// Slots each class may hold.
const CAPS: [u8; NCLASSES] = {
    let (mut t, mut c) = ([0u8; NCLASSES], 0);
    while c < NCLASSES {
        let n = SMALL_BYTES / class_size(c);
        t[c] = if is_tiny(c) {
            TINY_SLOTS
        } else if n > SMALL_SLOTS {
            SMALL_SLOTS
        } else {
            n
        } as u8;
        c += 1;
    }
    t
};

/// Slots class `c` may hold.
#[inline(always)]
pub(super) const fn cap(c: usize) -> usize {
    CAPS[c] as usize
}

/// One thread's cache.
#[repr(C)]
pub(super) struct Area {
    /// The next area of `AREAS` (written before the area is published, never changed).
    pub(super) next: *mut Area,
    /// 1 while a thread owns the area, 0 when it is free to take.
    pub(super) owner: AtomicU32,
    /// Blocks handed out minus blocks taken back by this area's owners, and their bytes.
    pub(super) live_blocks: AtomicIsize,
    pub(super) live_bytes: AtomicIsize,
    /// Bytes of the area carved so far, this header included (`class_slots`).
    pub(super) carved: usize,
    pub(super) count: [AtomicU32; NCLASSES],
    /// Slots the next refill of each class takes (0: none yet; `refill`).
    pub(super) fill: [u8; NCLASSES],
    /// Each class's array, carved from the rest of the area at the class's first use (null
    /// before) with `room(c)` entries: `FIRST_ROOM` (or `cap(c)` if less), then `cap(c)`.
    pub(super) slots: [*mut Entry; NCLASSES],
    /// Entries of each class's array (0: none yet).
    pub(super) room: [u8; NCLASSES],
    /// Freed slots of other arenas' zones (`remote`), given back to their arenas once
    /// `REMOTE` are held: a thread reuses the slots of its own arena only, so two threads do
    /// not write the same metadata lines and slot lines by turns.
    pub(super) remote_n: AtomicU32,
    pub(super) remote: [Entry; REMOTE],
}

/// A cached slot: its address (bit 0 set: never used, zero memory) and its metadata entry
/// (so that taking it needs no page-map lookup; the entry's state is checked all the same).
pub(super) type Entry = [usize; 2];

/// Entries of class `c`'s first array.
const fn first_room(c: usize) -> usize {
    if cap(c) < FIRST_ROOM {
        cap(c)
    } else {
        FIRST_ROOM
    }
}

/// Bytes of an area: its header and every class's arrays (the first and the full one).
pub(super) const AREA_LEN: usize = {
    let (mut n, mut c) = (core::mem::size_of::<Area>(), 0);
    while c < NCLASSES {
        n += (first_room(c) + cap(c)) * core::mem::size_of::<Entry>();
        c += 1;
    }
    n
};

/// Carves `n` entries from the rest of `area`.
/// # Safety
/// `area` is this thread's, busy; the area's carvings stay within `AREA_LEN` (each class
/// carves its first array once and its full one at most once).
unsafe fn carve(area: *mut Area, n: usize) -> *mut Entry {
    // SAFETY: per the caller.
    unsafe {
        let p = (area as usize + (*area).carved) as *mut Entry;
        (*area).carved += n * core::mem::size_of::<Entry>();
        p
    }
}

/// The array of class `c` in `area` (`room(c)` entries), carved at first use.
/// # Safety
/// `area` is this thread's, busy.
#[inline(always)]
pub(super) unsafe fn class_slots(area: *mut Area, c: usize) -> &'static mut [Entry] {
    // SAFETY: per the caller; the arrays lie inside the area's mapping (`AREA_LEN`).
    unsafe {
        let mut p = (*area).slots[c];
        if p.is_null() {
            p = carve(area, first_room(c));
            (*area).slots[c] = p;
            (*area).room[c] = first_room(c) as u8;
        }
        core::slice::from_raw_parts_mut(p, (*area).room[c] as usize)
    }
}

/// Gives class `c` its array of full capacity (`cap(c)` entries) if it has less, its first
/// `count` entries copied; returns the class's array.
/// # Safety
/// As for `class_slots`.
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn widen(area: *mut Area, c: usize) -> &'static mut [Entry] {
    // SAFETY: per the caller.
    unsafe {
        let old = class_slots(area, c);
        if old.len() >= cap(c) {
            return old;
        }
        let p = carve(area, cap(c));
        let n = ((*area).count[c].load(Ordering::Relaxed) as usize).min(old.len());
        core::ptr::copy_nonoverlapping(old.as_ptr(), p, n);
        (*area).slots[c] = p;
        (*area).room[c] = cap(c) as u8;
        core::slice::from_raw_parts_mut(p, cap(c))
    }
}

/// Entries of class `c`'s array now (0: none yet).
/// # Safety
/// `area` is this thread's.
#[inline(always)]
pub(super) unsafe fn room(area: *mut Area, c: usize) -> usize {
    // SAFETY: per the caller.
    unsafe { (*area).room[c] as usize }
}

/// Every area ever mapped (pushed only, never unlinked).
pub(super) static AREAS: AtomicPtr<Area> = AtomicPtr::new(core::ptr::null_mut());

/// Sets BUSY and GONE to those of `v`, keeping SLOW.
#[inline(always)]
pub(super) fn set_flags(st: *mut ThreadState, v: u32) {
    // SAFETY: our own TLS block.
    let slow = unsafe { (*st).tcache_flags } & SLOW;
    set_flags_fast(st, v | slow);
}

/// Sets the flags to `v` (the fast paths, which run only while they are all clear).
#[inline(always)]
pub(super) fn set_flags_fast(st: *mut ThreadState, v: u32) {
    // A signal handler sees the flag set before any change of the cache, and cleared after.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: our own TLS block.
    unsafe { (*st).tcache_flags = v };
    compiler_fence(Ordering::SeqCst);
}

/// Slot `i`'s metadata entry as one atomic word (entries are 8-aligned, `BlockMeta`).
/// # Safety
/// `i < nblocks` of a zone header that stays mapped.
#[inline(always)]
pub(super) unsafe fn meta_word(z: *mut Zone, i: usize) -> &'static AtomicU64 {
    // SAFETY: per the caller.
    unsafe { AtomicU64::from_ptr((*z).meta.add(i) as *mut u64) }
}

/// Whether a slot of arena `ai` belongs to another arena than this thread's home arena (the
/// one its refills lock first). A thread with no home yet keeps every slot.
#[inline(always)]
pub(super) fn remote(st: *mut ThreadState, ai: usize) -> bool {
    // SAFETY: our own TLS block.
    let home = unsafe { (*st).arena } as usize;
    home != 0 && home != ai + 1
}

/// Adds `d` to a counter only this thread writes.
#[inline(always)]
pub(super) fn add(v: &AtomicIsize, d: isize) {
    v.store(v.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}
