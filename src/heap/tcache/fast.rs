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
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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

/// malloc(n) from the cache: the newest slot of the class, its metadata written with one
/// store. None: the full path (a big request, no area, an empty class).
#[inline(always)]
pub fn malloc(n: usize, op: Op) -> Option<*mut u8> {
    if n > SMALL_MAX {
        return None;
    }
    let st = tls::state();
    let area = ready(st)?;
    let c = class_of(n);
    set_flags(st, BUSY);
    // SAFETY: our own area, busy. The first `count[c]` entries are CACHED slots of class
    // `c` that only this cache holds (a slot becomes CACHED by this thread's compare-exchange
    // from USED, or under its arena's lock in `refill`, and only a pop or a flush of the cache
    // that holds it changes it again), so the entry's metadata is written without reading it.
    let got = unsafe {
        let count = &(*area).count[c];
        let k = count.load(Ordering::Relaxed) as usize;
        if k == 0 {
            None
        } else {
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
            Some((e & !1) as *mut u8)
        }
    };
    set_flags(st, 0);
    if got.is_some() {
        drain::settle();
    }
    got
}

/// free(p) into the cache: a live zone block at the start of its slot goes USED → CACHED
/// (a compare-exchange: of two racing frees of one block, one only goes on) and its address
/// is pushed. False: the full path (no area, a full class, not such a block).
#[inline(always)]
pub fn free(p: usize) -> bool {
    let st = tls::state();
    let Some(area) = ready(st) else {
        return false;
    };
    let Some((_, z)) = zone_of(pagemap::get(p)) else {
        return false;
    };
    // SAFETY: zone headers stay mapped; a live block keeps its zone, and a stale or wild
    // pointer fails the checks (its slot is not USED, or not at `p`). Our own area, busy
    // from the first change of the cache.
    unsafe {
        let Some(i) = (*z).index_of(p) else {
            return false;
        };
        let w = meta_word(z, i);
        let m = BlockMeta::from_word(w.load(Ordering::Relaxed));
        let slot = (*z).slot_addr(i);
        if m.state != USED || slot + m.front as usize != p {
            return false;
        }
        let c = (*z).class as usize;
        set_flags(st, BUSY);
        let n = (*area).count[c].load(Ordering::Relaxed) as usize;
        let slots = (*area).slots[c];
        if n >= cap(c)
            || slots.is_null()
            || AtomicU8::from_ptr(&raw mut (*(*z).meta.add(i)).state)
                .compare_exchange(USED, CACHED, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            set_flags(st, 0);
            return false;
        }
        *slots.add(n) = [slot, (*z).meta.add(i) as usize];
        (*area).count[c].store(n as u32 + 1, Ordering::Relaxed);
        add(&(*area).live_blocks, -1);
        add(&(*area).live_bytes, -(m.size as isize));
    }
    set_flags(st, 0);
    drain::settle();
    true
}
