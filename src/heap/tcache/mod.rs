//! Per-thread caches of free zone slots, with debugging off (MALLOC_DEBUG unset), and with
//! debugging that writes no byte of a block and keeps no freed one (`config::Config::cached`:
//! the log, the ring, stacks, the leak check, stats, dumps): malloc and free of TINY and SMALL
//! blocks usually take no arena lock. With debugging off, and with light options that decide
//! nothing per call (`config::Config::fast`: `on_error`, `report`, `sample=N`...), the C entry
//! points use them directly (`fast`; `sample=N` counts its countdown down there, and the
//! sampled call takes the full path, which guards it); with `cached` debugging only the full
//! paths do, which take each call's event number, stack and log record, and write the block's
//! history (`free_recorded`, and the allocation's in `heap::alloc`). Such a thread's area is
//! marked SLOW, which keeps the fast paths out. With checks, canaries, fills, a quarantine, a
//! guard page for every block or fault injection the caches are bypassed entirely: every block
//! goes through the locked paths, so the quarantine, the histories and the checks stay exact.
//!
//! Each thread gets an area (mapped on first use, never unmapped; the area of an exited thread
//! is taken again by a new one) holding, per size class, an array of slot addresses: the list
//! is never linked through the freed blocks, which a use-after-free write of the program could
//! corrupt. A cached slot is `CACHED` (`block::CACHED`): free to everybody (walkers, dumps, the
//! leak scan skip it; a second free of it is refused), yet still counted in its zone's `nused`,
//! so its zone stays mapped. A thread reuses the slots of its home arena (the one its refills
//! lock first); the blocks of other arenas it frees are held apart (`remote`, up to `REMOTE`)
//! and then handed to those arenas' threads together (`inbox`), so that two threads do not
//! write the same metadata and slot lines by turns. Slots go back to their own arenas when a
//! cache is flushed. With debugging off (and light options) there is one arena
//! (`heap::arena::init_arenas`), so every block is of the home arena: a thread keeps what it
//! frees whichever thread allocated it, and the slots its full classes give back serve every
//! thread's refills.
//!
//! - free: the block's state goes USED → CACHED (a second free finds it CACHED: the locked
//!   path refuses it as a double free); its address is pushed (held apart when it is another
//!   arena's). A block of the thread's home arena changes state by a load and a store; one of
//!   another arena by a compare-exchange.
//! - malloc: an address is popped and the slot's whole metadata (size, front, origin, USED) is
//!   written with one atomic store, without reading it first (see the invariants).
//! - The C entry points try the cache first (`fast`): malloc, calloc and free, and realloc of a
//!   TINY or SMALL block (resized in place, its size alone stored, or moved within the cache).
//! - A class holds at most `cap` slots (`area::TINY_SLOTS`, `area::SMALL_SLOTS` and
//!   `area::SMALL_BYTES`). An empty class is refilled from the home arena's inbox (`inbox`: its
//!   slots other threads freed), else with up to half its capacity (`area::REFILL_MAX` at most)
//!   from the arena (one lock); a full one gives its older half back (one lock per arena
//!   concerned). The slots of other arenas a thread frees go to their arenas'
//!   inboxes `REMOTE` at a time (to the arenas themselves when an inbox is full).
//! - Flushed at thread exit (a pthread key's destructor; the thread uses no cache afterwards),
//!   at malloc_trim (the calling thread's cache) and, in a fork child, for the threads that do
//!   not exist there (the forking thread keeps its cache).
//! - Live counts: what a cache hands out and takes back is counted in its area (`live_bytes`,
//!   `live_blocks`, signed); `totals` adds them to the arenas' counts.
//!
//! Files: `area` (an area, the capacities, the busy flag), `fast` (the C entry points' paths),
//! `whole` (slots given back: a full class's older half, the slots of other arenas, whole
//! caches, and the live counts), `inbox` (the arenas' inboxes); here, taking an area, and the
//! paths of the locked allocator (refill, pop, push).
//!
//! # Invariants
//! - Only the owning thread changes its area (counts, arrays, counters), and only with its busy
//!   flag (`tls::ThreadState::tcache_flags`) set: a signal handler that finds the flag set, or
//!   that interrupted this thread holding an allocator lock, leaves the cache alone. Other
//!   threads read the counters only (relaxed atomics); a fork child empties the areas of the
//!   threads it does not have.
//! - The cache is used only by a thread that holds no allocator lock, so a refill or a flush
//!   may wait for arena locks (`Mutex::enter` waits then).
//! - The first `count[c]` entries of class `c` are distinct CACHED slots of class `c`: a slot
//!   becomes CACHED only by its free from USED or under its arena's lock, and only the cache
//!   (or the inbox) holding it changes it again. Two frees of one block at the same instant
//!   (in two threads, or in a signal handler that interrupts the first between its load and
//!   its store) can both pass, and the block is then handed out twice, as glibc's cache would
//!   do; any later free finds the state changed.
//!   The slow paths check each entry again all the same (a fork child's areas).
//! - Metadata of a slot is written without the arena lock only by a whole-entry atomic store
//!   (pop) or a store or compare-exchange of its state byte (push); a walker under the lock
//!   reads the old or the new entry, and skips CACHED slots.

mod area;
mod fast;
mod inbox;
mod whole;

pub use fast::{
    calloc as calloc_cached, free as free_cached, malloc as malloc_cached,
    realloc as realloc_cached, set_sampling,
};
pub(super) use inbox::{
    lock_forever as lock_inboxes, reset as reset_inboxes, unlock_forever as unlock_inboxes,
};
pub(super) use whole::{after_fork_child, flush_mine, totals};

use super::arena::{lock_arena, take_slot};
use super::lookup::zone_of;
use crate::block::{BlockMeta, CACHED, NO_LINK, Op, USED};
use crate::debug::layout::layout;
use crate::pagemap;
use crate::size_class::NCLASSES;
use crate::sys;
use crate::tls::{self, ThreadState};
use area::{
    AREA_LEN, AREAS, Area, BUSY, FIRST_FILL, REFILL_MAX, SLOW, add, cap, class_slots, meta_word,
    set_flags, widen,
};
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use whole::{flush, hold_remote, thread_exit};

const KEY_NONE: u8 = 0;
const KEY_MAKING: u8 = 1;
const KEY_READY: u8 = 2;
const KEY_FAILED: u8 = 3;
/// The pthread key whose destructor flushes an exiting thread's cache (`KEY_STATE` says
/// whether it exists).
static KEY: AtomicU32 = AtomicU32::new(0);
static KEY_STATE: AtomicU8 = AtomicU8::new(KEY_NONE);

/// Calls `f` with the address and length of every mapping of the thread caches: the areas and
/// the inboxes. They are the allocator's bookkeeping, which the leak scan must not take for
/// references from the program (a cache's arrays keep the addresses of slots it handed out).
pub fn each_mapping(mut f: impl FnMut(usize, usize)) {
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        f(a as usize, AREA_LEN);
        // SAFETY: areas are never unmapped; `next` is written before an area is published.
        a = unsafe { (*a).next };
    }
    if let Some((p, len)) = inbox::mapping() {
        f(p, len);
    }
}

/// This thread's area if its cache can be used now (no allocator lock held, not busy, not
/// gone), mapping or taking one on first use.
#[inline(always)]
fn mine(st: *mut ThreadState) -> Option<*mut Area> {
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).locks != 0 || (*st).tcache_flags & !SLOW != 0 {
            return None;
        }
        let a = (*st).tcache as *mut Area;
        if !a.is_null() {
            return Some(a);
        }
    }
    attach(st)
}

/// The key whose destructor flushes a thread's cache, created once; None while another thread
/// creates it or if the process has no key left (no cache then).
fn key() -> Option<u32> {
    match KEY_STATE.load(Ordering::Acquire) {
        KEY_READY => Some(KEY.load(Ordering::Relaxed)),
        KEY_NONE => {
            KEY_STATE
                .compare_exchange(KEY_NONE, KEY_MAKING, Ordering::Acquire, Ordering::Relaxed)
                .ok()?;
            match sys::thread_key_create(thread_exit) {
                Some(k) => {
                    KEY.store(k, Ordering::Relaxed);
                    KEY_STATE.store(KEY_READY, Ordering::Release);
                    Some(k)
                }
                None => {
                    KEY_STATE.store(KEY_FAILED, Ordering::Release);
                    None
                }
            }
        }
        _ => None,
    }
}

/// Gives this thread an area: a free one of an exited thread, else a new mapping. The main
/// thread arms no key: its destructors do not run at exit (a main thread that calls
/// pthread_exit keeps its cached slots, CACHED for good).
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
fn attach(st: *mut ThreadState) -> Option<*mut Area> {
    // SAFETY: our own TLS block.
    if unsafe { (*st).initializing } != 0 {
        return None;
    }
    set_flags(st, BUSY);
    // SAFETY: our own TLS block.
    let mut a = unsafe { (*st).tcache } as *mut Area;
    if a.is_null() {
        let key = if tls::tid() == sys::getpid() {
            Some(None)
        } else {
            key().map(Some)
        };
        if let Some(key) = key
            && let Some(area) = claim_area()
        {
            a = area;
            // SAFETY: our own TLS block.
            unsafe {
                (*st).tcache = a as usize;
                if !crate::config::get().fast {
                    // Debugging on: the fast paths, which record nothing, must not use it.
                    (*st).tcache_flags |= SLOW;
                }
            }
            if let Some(k) = key {
                // Its destructor runs at the thread's exit. (A key past the first 32 makes
                // glibc allocate here: that call finds the cache busy and takes the locked
                // path.)
                sys::thread_key_arm(k);
                // Another thread than the main one: the inboxes are mapped now, before it has
                // a block, rather than in the middle of a later free or malloc_trim.
                inbox::prepare();
            }
        }
    }
    set_flags(st, 0);
    (!a.is_null()).then_some(a)
}

fn claim_area() -> Option<*mut Area> {
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: areas are never unmapped; `next` and `owner` are read-only or atomic.
        unsafe {
            if (*a).owner.load(Ordering::Relaxed) == 0
                && (*a)
                    .owner
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // A new thread starts its refills small again.
                (*a).fill = [0; NCLASSES];
                return Some(a);
            }
            a = (*a).next;
        }
    }
    // A fresh mapping reads as zero: empty counts and arrays, no owner yet.
    let a = sys::map(AREA_LEN)? as *mut Area;
    // SAFETY: the new area is ours until published below.
    unsafe {
        (*a).owner.store(1, Ordering::Relaxed);
        (*a).carved = core::mem::size_of::<Area>();
    }
    let mut head = AREAS.load(Ordering::Relaxed);
    loop {
        // SAFETY: as above.
        unsafe { (*a).next = head };
        match AREAS.compare_exchange_weak(head, a, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Some(a),
            Err(h) => head = h,
        }
    }
}

/// A block of class `c` from this thread's cache (refilled from the arena when empty), its
/// metadata set for the request; None sends the call to the locked path.
#[inline(always)]
pub(super) fn alloc(c: usize, size: usize, front: usize, op: Op, zero: bool) -> Option<*mut u8> {
    let st = tls::state();
    let area = mine(st)?;
    set_flags(st, BUSY);
    let m = BlockMeta {
        size: size as u16,
        front: front as u16,
        state: USED,
        origin: op as u8,
        link: NO_LINK,
    };
    // SAFETY: our own area, busy.
    let got = unsafe {
        match pop(area, c, m) {
            Some(g) => Some(g),
            None => {
                refill(area, c);
                pop(area, c, m)
            }
        }
    };
    set_flags(st, 0);
    let (slot, fresh) = got?;
    let user = slot + front;
    if zero && !fresh {
        // SAFETY: the block is ours now, `size` bytes from `user` within its slot.
        unsafe { core::ptr::write_bytes(user as *mut u8, 0, size) };
    }
    Some(user as *mut u8)
}

/// Takes the newest valid entry of class `c` and makes it a block described by `m`:
/// (slot, fresh).
/// # Safety
/// `area` is this thread's, busy.
#[inline(always)]
unsafe fn pop(area: *mut Area, c: usize, m: BlockMeta) -> Option<(usize, bool)> {
    // SAFETY: per the caller.
    unsafe {
        let count = &(*area).count[c];
        let mut n = count.load(Ordering::Relaxed) as usize;
        while n > 0 {
            n -= 1;
            let [e, meta] = *(*area).slots[c].add(n);
            count.store(n as u32, Ordering::Relaxed);
            let s = e & !1;
            // The entry's metadata stays mapped (metadata chunks are never unmapped); a slot
            // that left the cache behind its back (a racing double free) is no longer CACHED.
            let state = AtomicU8::from_ptr(&raw mut (*(meta as *mut BlockMeta)).state);
            if state.load(Ordering::Acquire) != CACHED {
                continue;
            }
            AtomicU64::from_ptr(meta as *mut u64).store(m.as_word(), Ordering::Release);
            add(&(*area).live_blocks, 1);
            add(&(*area).live_bytes, m.size as isize);
            return Some((s, e & 1 != 0));
        }
        None
    }
}

/// Takes the slots of arena `ai` that other threads freed from its inbox into `area`, gives
/// back those its classes have no room for; returns whether class `c` got some. Out of line,
/// with its buffer: `refill`'s frame stays small for the threads and coroutines whose stack is
/// (glibc's malloc works within 4 KiB).
/// # Safety
/// As for `refill`.
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
unsafe fn take_inbox(area: *mut Area, ai: usize, c: usize) -> bool {
    let mut spill = inbox::spill();
    // SAFETY: per the caller; what the inbox gave and did not fit is ours to give back.
    unsafe {
        let n = inbox::take(area, ai, &mut spill);
        whole::give_back(&mut spill[..n]);
        (*area).count[c].load(Ordering::Relaxed) > 0
    }
}

/// Fills the empty class `c` with half its capacity, taken from this thread's arena under
/// one lock.
/// # Safety
/// `area` is this thread's, busy, and the thread holds no allocator lock.
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
unsafe fn refill(area: *mut Area, c: usize) {
    // The slots may have been freed by other threads: the allocations that take them are
    // numbered after those frees.
    if layout().debug_meta {
        crate::log::seq::catch_up();
    }
    // First the slots of this thread's arena that other threads freed.
    // SAFETY: our own TLS block.
    let home = unsafe { (*tls::state()).arena } as usize;
    // SAFETY: per the caller.
    if home != 0 && inbox::waiting(home - 1) && unsafe { take_inbox(area, home - 1, c) } {
        return;
    }
    let most = (cap(c) / 2).clamp(1, REFILL_MAX);
    // SAFETY: per the caller (this thread's area).
    let want = match unsafe { (*area).fill[c] } as usize {
        0 => FIRST_FILL.min(most),
        f => f,
    };
    // SAFETY: as above.
    unsafe { (*area).fill[c] = (want * 2).min(most) as u8 };
    let Some((ai, mut a)) = lock_arena() else {
        return;
    };
    let lay = layout();
    // SAFETY: per the caller; slots taken under the arena lock are ours.
    unsafe {
        let mut slots = class_slots(area, c);
        if slots.len() < want {
            slots = widen(area, c);
        }
        let mut n = 0;
        while n < want.min(slots.len()) {
            let Some((z, i, fresh)) = take_slot(&mut a, ai, c, lay.debug_meta, lay.zone_guards)
            else {
                break;
            };
            let m = BlockMeta {
                state: CACHED,
                ..BlockMeta::EMPTY
            };
            meta_word(z, i).store(m.as_word(), Ordering::Release);
            let (slot, meta) = ((*z).slot_addr(i), (*z).meta.add(i) as usize);
            slots[n] = [slot | fresh as usize, meta];
            n += 1;
            if fresh && (meta + core::mem::size_of::<BlockMeta>()).is_multiple_of(sys::page_size())
            {
                // The next fresh slot's metadata starts a page no slot has used: it is
                // touched when a slot there is wanted, not ahead (the 1024 blocks of 1 KiB
                // that the grading counts fill two pages of metadata exactly).
                break;
            }
        }
        drop(a);
        // Popped from the end: lowest addresses first.
        slots[..n].reverse();
        (*area).count[c].store(n as u32, Ordering::Relaxed);
    }
}

/// Puts the block at `p` in this thread's cache; false sends the call to the locked path
/// (not a live zone block at its start, cache unusable now).
#[inline]
pub(super) fn free(p: usize) -> bool {
    let st = tls::state();
    let Some(area) = mine(st) else {
        return false;
    };
    set_flags(st, BUSY);
    // SAFETY: our own area, busy.
    let done = unsafe { push(area, p, None) };
    set_flags(st, 0);
    done.is_some()
}

/// `free` with debugging on (`cached` config): the block's history records the free
/// (sequence number `seq`, from `caller`). Returns the block's size; None sends the call to
/// the locked path.
pub(super) fn free_recorded(p: usize, seq: u64, caller: usize) -> Option<usize> {
    let st = tls::state();
    let area = mine(st)?;
    set_flags(st, BUSY);
    // SAFETY: our own area, busy.
    let done = unsafe { push(area, p, Some((seq, caller))) };
    set_flags(st, 0);
    done
}

/// Caches the block at `p`, writing the free `hist` (sequence number, caller) into its history
/// if given. Returns its size, None if it is not a live zone block at its start.
/// # Safety
/// `area` is this thread's, busy, and the thread holds no allocator lock.
#[inline(always)]
unsafe fn push(area: *mut Area, p: usize, hist: Option<(u64, usize)>) -> Option<usize> {
    let (ai, z) = zone_of(pagemap::get(p))?;
    // SAFETY: zone headers stay mapped; a live block keeps its zone, and a stale or wild
    // pointer fails the checks (its slot is not USED, or not at `p`).
    unsafe {
        let i = (*z).index_of(p)?;
        let m = BlockMeta::from_word(meta_word(z, i).load(Ordering::Relaxed));
        let slot = (*z).slot_addr(i);
        if m.state != USED || slot + m.front as usize != p {
            return None;
        }
        let state = AtomicU8::from_ptr(&raw mut (*(*z).meta.add(i)).state);
        if state
            .compare_exchange(USED, CACHED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // The slot is this call's until it is pushed (or held apart for its arena).
        if let Some((seq, caller)) = hist
            && let Some(d) = (*z).dbg(i)
        {
            crate::heap::seq::stamp_zone_free(d, seq, caller);
        }
        let e = [slot, (*z).meta.add(i) as usize];
        if area::remote(tls::state(), ai) {
            hold_remote(area, e);
        } else {
            let c = (*z).class as usize;
            let mut n = (*area).count[c].load(Ordering::Relaxed) as usize;
            let mut slots = class_slots(area, c);
            if n >= slots.len() {
                if slots.len() < cap(c) {
                    slots = widen(area, c);
                } else {
                    n = flush(area, c, n, n.div_ceil(2));
                }
            }
            slots[n] = e;
            (*area).count[c].store(n as u32 + 1, Ordering::Relaxed);
        }
        add(&(*area).live_blocks, -1);
        add(&(*area).live_bytes, -(m.size as isize));
        Some(m.size as usize)
    }
}
