//! Giving cached slots back to their arenas: the older half of a full class, the slots of
//! other arenas a cache holds (through the arenas' inboxes), and whole caches at malloc_trim
//! (the calling thread's), at a thread's exit (a pthread key's destructor) and in a fork child
//! (the parent's other threads'); and the live counts the caches add to the arenas'.

use super::area::{AREAS, Area, BUSY, Entry, GONE, REMOTE, SLOW, class_slots, room, set_flags};
use crate::block::CACHED;
use crate::heap::arena::{ARENAS, return_slot};
use crate::heap::lookup::zone_of;
use crate::pagemap;
use crate::size_class::NCLASSES;
use crate::tls::{self, ThreadState};
use crate::zone::Zone;
use core::sync::atomic::{AtomicU8, Ordering};

/// The zone and index of slot `s` if it is a CACHED slot (checked again before each use).
/// # Safety
/// None beyond what the page map promises: zone headers stay mapped (metadata chunks are
/// never unmapped), so a stale entry only fails the checks.
#[inline(always)]
unsafe fn cached_slot(s: usize) -> Option<(usize, *mut Zone, usize)> {
    let (ai, z) = zone_of(pagemap::get(s))?;
    // SAFETY: per the caller; a CACHED slot keeps its zone mapped.
    unsafe {
        let i = (*z).index_of(s)?;
        if (*z).slot_addr(i) != s {
            return None;
        }
        let state = AtomicU8::from_ptr(&raw mut (*(*z).meta.add(i)).state);
        (state.load(Ordering::Acquire) == CACHED).then_some((ai, z, i))
    }
}

/// Gives the `k` oldest of the `n` entries of class `c` back to their arenas; returns the count
/// left.
/// # Safety
/// As for `push`; `k <= n <= MAX_SLOTS`.
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn flush(area: *mut Area, c: usize, n: usize, k: usize) -> usize {
    // SAFETY: per the caller.
    unsafe {
        let slots = class_slots(area, c);
        give_back(&mut slots[..k]);
        slots.copy_within(k..n, 0);
    }
    n - k
}

/// Holds the CACHED slot `e` (its address and metadata entry) of another arena; the slots
/// held go back to their arenas first when `REMOTE` are.
/// # Safety
/// As for `flush`; `e` was made CACHED by this thread.
#[inline(always)]
pub(super) unsafe fn hold_remote(area: *mut Area, e: Entry) {
    // SAFETY: per the caller.
    unsafe {
        let mut n = ((*area).remote_n.load(Ordering::Relaxed) as usize).min(REMOTE);
        if n == REMOTE {
            give_remote(area, n);
            n = 0;
        }
        (*area).remote[n] = e;
        (*area).remote_n.store(n as u32 + 1, Ordering::Relaxed);
    }
}

/// Gives the `n` slots of other arenas that `area` holds back to them: to their inboxes, else
/// to the arenas.
/// # Safety
/// As for `give_back`.
#[cold]
#[inline(never)]
#[unsafe(link_section = "ft_hot")]
unsafe fn give_remote(area: *mut Area, n: usize) {
    // SAFETY: per the caller.
    unsafe {
        let es = &mut (&mut (*area).remote)[..n];
        super::inbox::post(es);
        give_back(es);
        (*area).remote_n.store(0, Ordering::Relaxed);
    }
}

/// Returns the CACHED slots of `entries` to their arenas, one lock per arena, zeroing the
/// entries. Stale entries (a program's racing double free) are dropped; slots whose arena lock
/// cannot be had (a fork child whose forking handler interrupted that lock's holder) stay
/// CACHED for good, counted in their zone.
/// # Safety
/// Entries came from a cache; the caller owns them (its own cache, busy, or a fork child's).
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn give_back(entries: &mut [Entry]) {
    while let Some(k) = entries.iter().position(|e| e[0] != 0) {
        let first = entries[k][0];
        // Whatever happens below, this entry is done: every round makes progress.
        entries[k][0] = 0;
        let Some((ai, _)) = zone_of(pagemap::get(first & !1)) else {
            continue;
        };
        let mut g = ARENAS[ai].enter();
        let mut one = [first];
        let rest = entries[k..].iter_mut().map(|e| &mut e[0]);
        for e in one.iter_mut().chain(rest) {
            if *e == 0 {
                continue;
            }
            // SAFETY: per the caller; checked again under the lock.
            match unsafe { cached_slot(*e & !1) } {
                Some((bi, _, _)) if bi != ai => continue,
                Some((_, z, i)) => {
                    if let Some(a) = g.as_mut() {
                        // SAFETY: a CACHED slot of a zone of arena `ai`, under its lock.
                        unsafe { return_slot(a, z, i) };
                    }
                }
                None => {}
            }
            *e = 0;
        }
        drop(g);
    }
}

/// Empties every class of `area`, and the slots of other arenas it holds, into the arenas.
/// # Safety
/// As for `give_back`.
unsafe fn flush_all(area: *mut Area) {
    // SAFETY: per the caller.
    unsafe {
        let n = ((*area).remote_n.load(Ordering::Relaxed) as usize).min(REMOTE);
        if n > 0 {
            give_remote(area, n);
        }
    }
    for c in 0..NCLASSES {
        // SAFETY: per the caller.
        unsafe {
            let n = ((*area).count[c].load(Ordering::Relaxed) as usize).min(room(area, c));
            let slots = (*area).slots[c];
            if n > 0 && !slots.is_null() {
                give_back(core::slice::from_raw_parts_mut(slots, n));
                (*area).count[c].store(0, Ordering::Relaxed);
            }
        }
    }
}

/// This thread's area, when it has one that may be emptied now (no allocator lock held, not
/// busy: a signal handler may have interrupted either).
fn attached(st: *mut ThreadState) -> Option<*mut Area> {
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).locks != 0 || (*st).tcache_flags & !SLOW != 0 {
            return None;
        }
        let a = (*st).tcache as *mut Area;
        (!a.is_null()).then_some(a)
    }
}

/// Gives this thread's cached slots, and the slots waiting in the arenas' inboxes, back to the
/// arenas (malloc_trim, or before a retry when a mapping failed), unless a signal handler
/// interrupted the cache or an allocator lock.
pub fn flush_mine() {
    let st = tls::state();
    let Some(area) = attached(st) else {
        return;
    };
    set_flags(st, BUSY);
    // SAFETY: our own area, busy, holding no lock; entries out of an inbox are ours.
    unsafe {
        flush_all(area);
        super::inbox::drain(|es| give_back(es));
    }
    set_flags(st, 0);
}

/// Thread exit (the key's destructor): the cache goes back to the arenas and the area to the
/// free ones; the thread's later calls (other destructors) take the locked paths.
#[unsafe(link_section = "ft_hot")]
pub(super) extern "C" fn thread_exit(_v: *mut libc::c_void) {
    let st = tls::state();
    let Some(area) = attached(st) else {
        return;
    };
    set_flags(st, BUSY | GONE);
    // SAFETY: our own area, busy, holding no lock; given up after it is empty.
    unsafe {
        flush_all(area);
        (*st).tcache = 0;
        (*area).owner.store(0, Ordering::Release);
    }
    set_flags(st, GONE);
}

/// Fork child (every lock reset): the caches of the parent's other threads, which do not exist
/// here, go back to the arenas (what a thread was changing at the fork may be lost: its slots
/// stay CACHED, counted in their zones) and their areas become free. The forking thread's
/// cache stays as it is.
pub fn after_fork_child() {
    // SAFETY: our own TLS block.
    let me = unsafe { (*tls::state()).tcache } as *mut Area;
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: areas are never unmapped; in the child no other thread uses them, and
        // every entry is checked before it is given back.
        unsafe {
            if a != me && (*a).owner.load(Ordering::Relaxed) != 0 {
                flush_all(a);
                (*a).owner.store(0, Ordering::Release);
            }
            a = (*a).next;
        }
    }
}

/// What the caches handed out minus what they took back: (live bytes, live blocks), to add
/// to the arenas' counts.
pub fn totals() -> (isize, isize) {
    let (mut b, mut n) = (0isize, 0isize);
    let mut a = AREAS.load(Ordering::Acquire);
    while !a.is_null() {
        // SAFETY: areas are never unmapped; their counters are atomics.
        unsafe {
            b = b.wrapping_add((*a).live_bytes.load(Ordering::Relaxed));
            n = n.wrapping_add((*a).live_blocks.load(Ordering::Relaxed));
            a = (*a).next;
        }
    }
    (b, n)
}
