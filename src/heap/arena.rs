//! Arenas: up to `MAX_ARENAS`, each with its own lock, zones and counters; a thread sticks to
//! the arena chosen at its first call (round robin). The zone lists of an arena (`partial`
//! per class, `all`) and the zone policy when a slot is returned (at most one spare empty zone
//! per class).
//!
//! # Invariants
//! - A zone is on `partial[class]` iff it has room; `empties[class]` counts its zones with no
//!   used block; at most one empty zone per class is kept, the others are unmapped.
//! - All fields are changed only under the arena's lock.

use crate::lock::{Guard, Mutex};
use crate::pad::Padded;
use crate::size_class::NCLASSES;
use crate::tls;
use crate::zone::{MetaCache, Zone};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Arenas at most (the page map has room for this many arena indices).
pub const MAX_ARENAS: usize = crate::pagemap::MAX_ARENAS;

pub struct Arena {
    pub(super) partial: [*mut Zone; NCLASSES],
    pub(super) empties: [u16; NCLASSES],
    pub all: *mut Zone,
    pub live_bytes: usize,
    pub live_blocks: usize,
    pub zones: usize,
    pub mapped: usize,
    /// Metadata of this arena's zones (kept out of the data's way, see `zone`).
    pub meta: MetaCache,
}

// SAFETY: the raw zone pointers are only followed under the arena's lock.
unsafe impl Send for Arena {}

impl Arena {
    const EMPTY: Arena = Arena {
        partial: [core::ptr::null_mut(); NCLASSES],
        empties: [0; NCLASSES],
        all: core::ptr::null_mut(),
        live_bytes: 0,
        live_blocks: 0,
        zones: 0,
        mapped: 0,
        meta: MetaCache::EMPTY,
    };
}

/// Each arena on cache lines of its own: its owner writes its lock and lists on every call, and
/// other threads take its lock to free their blocks.
pub static ARENAS: [Padded<Mutex<Arena>>; MAX_ARENAS] =
    [const { Padded(Mutex::new(Arena::EMPTY)) }; MAX_ARENAS];
pub static NARENAS: AtomicUsize = AtomicUsize::new(1);
static NEXT_ARENA: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of arenas (init): one when the thread caches keep every block they free
/// (`shared`: debugging off, or light options), whichever thread allocated it. A thread then
/// reuses what it frees, and the slots it gives back serve every thread's refills, where with
/// an arena per thread the slots one thread freed of another's piled up in that other arena
/// while the first carved new ones in its own. Otherwise two per CPU, so that the threads of
/// the locked paths seldom wait for each other.
pub fn init_arenas(ncpu: usize, shared: bool) {
    let n = if shared {
        1
    } else {
        (ncpu * 2).clamp(1, MAX_ARENAS)
    };
    NARENAS.store(n, Ordering::Relaxed);
    // Warm the first arena's page at start (every program allocates): the first malloc then
    // faults only on its zone.
    drop(ARENAS[0].lock());
}

#[inline]
fn my_arena() -> usize {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).arena == 0 {
            let n = NARENAS.load(Ordering::Relaxed);
            (*st).arena = (NEXT_ARENA.fetch_add(1, Ordering::Relaxed) % n) as u32 + 1;
        }
        (*st).arena as usize - 1
    }
}

/// Locks this thread's arena, or another one if `enter` says no (a signal handler that
/// interrupted malloc on this thread must not wait for itself, nor for another thread while
/// its own holds a lock). When no arena in use can be had, one more arena is put in use.
/// None only when all `MAX_ARENAS` are.
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) fn lock_arena() -> Option<(usize, Guard<'static, Arena>)> {
    let a = my_arena();
    if let Some(g) = ARENAS[a].enter() {
        return Some((a, g));
    }
    let mut n = NARENAS.load(Ordering::Relaxed);
    loop {
        for k in 1..n {
            let b = (a + k) % n;
            if let Some(g) = ARENAS[b].enter() {
                return Some((b, g));
            }
        }
        if n >= MAX_ARENAS {
            return None;
        }
        // Inspectors iterate over NARENAS arenas: the new one is seen by them from now on.
        n = match NARENAS.compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => n + 1,
            Err(m) => m,
        };
    }
}

#[inline]
pub(super) fn push_partial(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is a live zone of this arena, under its lock.
    unsafe {
        let c = (*z).class as usize;
        (*z).prev = core::ptr::null_mut();
        (*z).next = a.partial[c];
        if !a.partial[c].is_null() {
            (*a.partial[c]).prev = z;
        }
        a.partial[c] = z;
        (*z).in_partial = true;
    }
}

#[inline]
pub(super) fn unlink_partial(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is on the partial list of its class, under the arena lock.
    unsafe {
        let c = (*z).class as usize;
        if !(*z).prev.is_null() {
            (*(*z).prev).next = (*z).next;
        } else {
            a.partial[c] = (*z).next;
        }
        if !(*z).next.is_null() {
            (*(*z).next).prev = (*z).prev;
        }
        (*z).next = core::ptr::null_mut();
        (*z).prev = core::ptr::null_mut();
        (*z).in_partial = false;
    }
}

pub(super) fn link_all(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is a new zone of this arena, under its lock.
    unsafe {
        (*z).all_next = a.all;
        (*z).all_prev = core::ptr::null_mut();
        if !a.all.is_null() {
            (*a.all).all_prev = z;
        }
    }
    a.all = z;
}

pub(super) fn unlink_all(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is on the arena's list of all zones, under its lock.
    unsafe {
        if !(*z).all_prev.is_null() {
            (*(*z).all_prev).all_next = (*z).all_next;
        } else {
            a.all = (*z).all_next;
        }
        if !(*z).all_next.is_null() {
            (*(*z).all_next).all_prev = (*z).all_prev;
        }
    }
}

/// Unmaps the empty zone `z` of `a` (taken off its lists).
/// # Safety
/// Under the arena lock; `z` is an empty zone of `a`, on its partial list.
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn destroy_empty(a: &mut Arena, z: *mut Zone) {
    unlink_partial(a, z);
    unlink_all(a, z);
    a.zones -= 1;
    // SAFETY: per the caller.
    unsafe {
        a.mapped -= (*z).map_len;
        Zone::destroy(z, &mut a.meta);
    }
}

/// Returns the slot to its zone and applies the zone policy (partial list, one spare).
/// # Safety
/// Under the arena lock; `idx` is a used or quarantined slot of `z`, which belongs to `a`.
#[inline]
pub(super) unsafe fn release_slot(a: &mut Arena, z: *mut Zone, idx: usize) {
    // SAFETY: per the caller.
    unsafe {
        let size = (*z).meta(idx).size as usize;
        // Wrapping: a block a thread cache handed out is counted there, not here (the sums
        // of `heap::totals` are right).
        a.live_bytes = a.live_bytes.wrapping_sub(size);
        a.live_blocks = a.live_blocks.wrapping_sub(1);
        return_slot(a, z, idx);
    }
}

/// Gives slot `idx` back to its zone and applies the zone policy (partial list, one spare
/// empty zone per class), leaving the live counters alone.
/// # Safety
/// Under the arena lock; `idx` is a slot of `z`, which belongs to `a`, that is taken (used,
/// quarantined or in a thread cache).
#[inline]
pub(super) unsafe fn return_slot(a: &mut Arena, z: *mut Zone, idx: usize) {
    // SAFETY: per the caller.
    unsafe {
        (*z).give(idx);
        if !(*z).in_partial {
            push_partial(a, z);
        }
        if (*z).nused == 0 {
            let c = (*z).class as usize;
            if a.empties[c] >= 1 {
                destroy_empty(a, z);
            } else {
                a.empties[c] += 1;
            }
        }
    }
}

/// Takes a slot of class `c` from arena `a` (index `ai`), from its first zone with room or a
/// new zone: (zone, index, fresh), fresh meaning never used (zero memory). The slot's
/// metadata is the caller's to set; the live counters are left alone. None when a mapping
/// failed.
/// # Safety
/// Under the arena lock.
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn take_slot(
    a: &mut Arena,
    ai: usize,
    c: usize,
    debug_meta: bool,
    guards: bool,
) -> Option<(*mut Zone, usize, bool)> {
    let mut z = a.partial[c];
    if z.is_null() {
        z = Zone::create(c, ai, debug_meta, guards, &mut a.meta)?;
        link_all(a, z);
        push_partial(a, z);
        a.empties[c] += 1;
        a.zones += 1;
        // SAFETY: z was just created.
        a.mapped += unsafe { (*z).map_len };
    }
    // SAFETY: z is a live zone of this arena with room (it is on the partial list), under
    // the lock.
    unsafe {
        let zr = &mut *z;
        if zr.nused == 0 {
            a.empties[c] -= 1;
        }
        let Some((i, fresh)) = zr.take() else {
            if zr.nused == 0 {
                a.empties[c] += 1;
            }
            return None;
        };
        if !zr.has_room() {
            unlink_partial(a, z);
        }
        if debug_meta && zr.nfree > 0 {
            // The next allocation of the class takes the head of this zone's free list.
            zr.prefetch_slot(zr.free_head as usize);
        }
        Some((z, i, fresh))
    }
}

/// Releases the spare empty zones of every arena this thread can lock (malloc_trim); returns
/// whether any was.
pub(super) fn trim_zones() -> bool {
    let mut freed = false;
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        // Locks this thread holds (malloc_trim from a signal handler) are skipped.
        let Some(mut g) = a.enter() else {
            continue;
        };
        let mut z = g.all;
        while !z.is_null() {
            // SAFETY: zones of this arena under its lock.
            let next = unsafe { (*z).all_next };
            // SAFETY: as above.
            if unsafe { (*z).nused } == 0 {
                // SAFETY: as above; an empty zone is on the partial list.
                unsafe {
                    let c = (*z).class as usize;
                    g.empties[c] -= 1;
                    destroy_empty(&mut g, z);
                }
                freed = true;
            }
            z = next;
        }
    }
    freed
}

/// Live bytes, live blocks and mapped bytes of the arenas whose lock can be had now.
pub(super) fn arena_totals() -> (usize, usize, usize) {
    let (mut b, mut n, mut m) = (0, 0, 0);
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        if let Some(g) = a.try_lock() {
            b = g.live_bytes.wrapping_add(b);
            n = g.live_blocks.wrapping_add(n);
            m += g.mapped;
        }
    }
    (b, n, m)
}
