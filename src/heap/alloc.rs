//! Allocation: checks a request, picks a guarded block, a zone class or a LARGE block, takes
//! it under its lock and dresses it after the unlock (`debug::dress`). A block whose dressing
//! is written after its lock is dropped stays `Allocating` until then.

use super::arena::{lock_arena, take_slot};
use super::defer::note_pending;
use super::seq::stamp_alloc;
use crate::block::{ALLOCATING, BlockMeta, DebugMeta, Op, PackedDebug, State, USED, publish_state};
use crate::config::{self, Fail};
use crate::debug::dress::Dress;
use crate::debug::layout::layout;
use crate::large::{LARGE, LargeState};
use crate::log::seq::{next_above, next_seq};
use crate::report;
use crate::size_class::{MIN_ALIGN, SMALL_MAX, aligned_class, class_of};
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

fn fail_injected(size: usize) -> bool {
    let c = config::get();
    match c.fail {
        Fail::Off => false,
        Fail::Nth(n) => CALLS.fetch_add(1, Ordering::Relaxed) + 1 == n,
        Fail::Every(n) => (CALLS.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n),
        Fail::Size(s) => size as u64 >= s,
    }
}

/// Allocates `size` bytes aligned to `align` (a power of two; <= 16 means the default),
/// choosing the zone class for `cap >= size` bytes (realloc growth headroom). Returns null
/// with errno set on failure.
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) fn allocate_cap(
    size: usize,
    cap: usize,
    align: usize,
    op: Op,
    caller: usize,
    zero: bool,
) -> *mut u8 {
    let cfg = config::get();
    if size > isize::MAX as usize {
        if cfg.enabled {
            report::absurd_size(op, size, caller);
        }
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    if cfg.enabled {
        if cfg.fail != Fail::Off && fail_injected(size) {
            sys::set_errno(libc::ENOMEM);
            return core::ptr::null_mut();
        }
        if cfg.check_every > 0 {
            super::hooks::maybe_check_all();
        }
    }
    let mut p = place(size, cap, align, op, caller, zero);
    if p.is_null() && super::reclaim::reclaim(size) {
        p = place(size, cap, align, op, caller, zero);
    }
    if p.is_null() {
        sys::set_errno(libc::ENOMEM);
    } else if cfg.enabled {
        crate::stats::add_live(size);
    }
    p
}

/// Places a checked request: a guarded block when the guard modes want one, else a zone slot
/// or a LARGE block. Null when a mapping failed.
#[unsafe(link_section = "ft_hot")]
fn place(size: usize, cap: usize, align: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    if config::get().enabled
        && crate::guard::wants(size, align)
        && let Some(p) = crate::guard::allocate(size, cap, align, op, caller, zero)
    {
        return p as *mut u8;
    }
    let lay = layout();
    let align = align.max(MIN_ALIGN);
    // Zone slots of an aligned class are aligned, so there the front canary of an aligned block
    // fills a whole alignment unit (at most a page). A LARGE block keeps the usual front canary:
    // its range is placed so that the user pointer is aligned (`LargeState::alloc`), and the
    // canary never grows with the alignment.
    let front = if lay.front > 0 && align <= sys::page_size() {
        lay.front.max(align)
    } else {
        lay.front
    };
    let Some(need) = front
        .checked_add(size)
        .and_then(|n| n.checked_add(lay.tail))
    else {
        return core::ptr::null_mut();
    };
    let class = if align <= MIN_ALIGN {
        let want = need + (cap - size);
        if need <= SMALL_MAX {
            Some(class_of(want.min(SMALL_MAX)))
        } else {
            None
        }
    } else if align <= sys::page_size() {
        aligned_class(need, align)
    } else {
        None
    };
    match class {
        Some(c) => zone_alloc(c, size, front, op, caller, zero),
        None => large_alloc(size, cap.max(size), align, lay.front, op, caller, zero),
    }
}

fn zone_alloc(c: usize, size: usize, front: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    // Debugging off, or on without dressing or quarantine (`cached`): this thread's cache of
    // free slots first, without the arena lock.
    let cfg = config::get();
    if (cfg.fast || cfg.cached)
        && let Some(p) = super::tcache::alloc(c, size, front, op, zero)
    {
        if cfg.cached {
            record_alloc(p as usize, caller);
        }
        return p;
    }
    let lay = layout();
    let Some((ai, mut a)) = lock_arena() else {
        return core::ptr::null_mut();
    };
    // With debugging on, the block is dressed after the unlock: Allocating until then.
    let dressed = config::get().enabled;
    // SAFETY: under the arena lock.
    let Some((z, i, fresh)) =
        (unsafe { take_slot(&mut a, ai, c, lay.debug_meta, lay.zone_guards) })
    else {
        return core::ptr::null_mut();
    };
    // SAFETY: i is the slot of z just taken, under the lock.
    let (slot, slot_end, next_exists, dbg, state) = unsafe {
        let zr = &mut *z;
        *zr.meta(i) = BlockMeta {
            size: size as u16,
            front: front as u16,
            state: if dressed { ALLOCATING } else { USED },
            origin: op as u8,
            link: crate::block::NO_LINK,
        };
        let dbg = zr
            .dbg(i)
            .map_or(core::ptr::null_mut(), |d| d as *mut PackedDebug);
        let slot = zr.slot_addr(i);
        (
            slot,
            slot + zr.block_size as usize,
            i + 1 < zr.nblocks as usize,
            dbg,
            &raw mut (*zr.meta.add(i)).state,
        )
    };
    a.live_bytes += size;
    a.live_blocks += 1;
    if !dbg.is_null() {
        // Its line is often cold: fetched while the block is dressed.
        crate::pad::prefetch(dbg as usize);
    }
    drop(a);
    let user = slot + front;
    // A fresh slot reads as zero (with filling on, it is cleared all the same). Without
    // debugging, only calloc has anything to dress.
    // SAFETY: [slot, slot_end), the next slot's front canary if never used, and the slot's
    // history entry are ours alone.
    unsafe {
        if dressed || zero {
            Dress::zone(slot, slot_end, user, size, fresh && next_exists)
                .new_block(zero, fresh && !lay.fill);
        }
        if !dbg.is_null() {
            // The history is written after the unlock: a miss on its line inside the lock
            // would stall the unlock. The slot is ours alone until we return it. Its sequence
            // number is taken now, after the slot left the free list, and above the free that
            // put the slot there.
            (*dbg).set_alloc(next_above((*dbg).last_stamp()), caller, tls::tid());
        }
        if dressed {
            // The zone lives while this block is in it.
            publish_state(state, State::Used);
        }
    }
    user as *mut u8
}

/// Writes the allocation into the history of the zone block at `p`, just taken from this
/// thread's cache (`cached` config).
fn record_alloc(p: usize, caller: usize) {
    let Some((_, z)) = super::lookup::zone_of(crate::pagemap::get(p)) else {
        return;
    };
    // SAFETY: the zone stays mapped while its block is in use, and the block (with its history
    // entry) is this call's until it returns it.
    unsafe {
        if let Some(i) = (*z).index_of(p)
            && let Some(d) = (*z).dbg(i)
        {
            // Above the slot's free: this thread freed it, or its cache took it in a refill
            // (`tcache::refill`).
            d.set_alloc(next_seq(), caller, tls::tid());
        }
    }
}

fn large_alloc(
    size: usize,
    cap: usize,
    align: usize,
    front: usize,
    op: Op,
    caller: usize,
    zero: bool,
) -> *mut u8 {
    let lay = layout();
    // Headroom for a block that grows by realloc is mapped as spare tail (pages untouched).
    let tail = if lay.tail > 0 { lay.tail.max(8) } else { 0 } + (cap - size);
    let dressed = config::get().enabled;
    let (d, clean) = match LARGE.enter() {
        Some(mut l) => {
            let Some((d, clean)) = l.alloc(size, align, front, tail, lay.large_guard) else {
                return core::ptr::null_mut();
            };
            // SAFETY: d is the fresh descriptor, under the LARGE lock.
            unsafe {
                (*d).origin = op as u8;
                if lay.debug_meta {
                    (*d).dbg = stamp_alloc(caller);
                }
                if dressed {
                    (*d).state = ALLOCATING;
                }
            }
            (d, clean)
        }
        None => {
            // A signal handler interrupted this thread inside the allocator: a mapping of
            // its own, put on the live list once this thread holds no lock.
            let dbg = if lay.debug_meta {
                stamp_alloc(caller)
            } else {
                DebugMeta::EMPTY
            };
            let state = if dressed { ALLOCATING } else { USED };
            let Some(d) =
                LargeState::alloc_loose(size, align, front, tail, lay.large_guard, op, dbg, state)
            else {
                return core::ptr::null_mut();
            };
            note_pending();
            (d, true)
        }
    };
    // SAFETY: d is a descriptor only this call changes now (its block is not handed out).
    let (user, base, end) = unsafe { ((*d).user, (*d).map_base, (*d).map_base + (*d).usable_len) };
    // SAFETY: the mapping is ours and owned by this call now. Clean pages read as zero (with
    // filling on, they are cleared all the same).
    unsafe {
        if dressed || zero {
            Dress::large(base, end, user, size).new_block(zero, clean && !lay.fill);
        }
        if dressed {
            publish_state(&raw mut (*d).state, State::Used);
        }
    }
    user as *mut u8
}
