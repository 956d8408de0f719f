//! Freeing: validates a pointer under its owning lock, runs the debug checks (family, sized
//! delete, canaries: `debug::verify`), then releases the block, or puts it in a quarantine
//! (free fill and history written after the unlock; `Freeing` until then). A block whose
//! canaries were overwritten is kept for good instead.

use super::arena::{ARENAS, release_slot};
use super::defer::defer_free;
use super::lookup::{Held, NotHeld, freed_large, hold, with_history, zone_of};
use super::release::{large_fill_quarantine, quarantine, shard_budget};
use super::seq::{stamp_free, stamp_zone_free};
use crate::block::{
    FREEING, Family, Info, Op, OpFamily, PackedDebug, QUARANTINED, State, USED, publish_state,
};
use crate::config;
use crate::debug::dress::free_fill;
use crate::debug::layout::layout;
use crate::debug::verify::{self, Problem};
use crate::log::seq::next_seq;
use crate::pagemap;
use crate::report::{self, Bad};
use crate::sys;

/// Debug checks on a live block before it is freed or resized: family, sized delete (with
/// `check`), canaries. Returns the first problem found.
#[inline]
pub(super) fn debug_checks(info: &Info, op: Op, sized: usize) -> Option<Bad> {
    debug_checks_of(info, op, sized, true)
}

/// `debug_checks`, the family check only when `family`.
#[inline]
fn debug_checks_of(info: &Info, op: Op, sized: usize, family: bool) -> Option<Bad> {
    if config::get().check {
        let want = info.origin.family();
        let have = op.family();
        let ok = match op {
            Op::Realloc | Op::Reallocarray | Op::UsableSize => want == Family::Malloc,
            _ => want == have,
        };
        if !ok && family {
            return Some(Bad::Mismatch);
        }
        if sized != 0 && sized != info.size {
            return Some(Bad::SizedDelete(sized));
        }
    }
    match verify::live(info)? {
        Problem::Underflow(a) => Some(Bad::Underflow(a)),
        Problem::Overflow(a) | Problem::WriteAfterFree(a) => Some(Bad::Overflow(a)),
    }
}

/// The common case of free with debugging off: a live zone block, released under its arena
/// lock with no copy of its metadata. False sends the call to `deallocate` (LARGE blocks,
/// anything suspicious), which re-checks everything.
#[inline]
pub(super) fn free_fast_call(p: usize) -> bool {
    // Debugging off: into this thread's cache of free slots, without the arena lock.
    if !config::get().enabled && super::tcache::free(p) {
        return true;
    }
    let e = pagemap::get(p);
    let Some((ai, z)) = zone_of(e) else {
        return false;
    };
    // Refused (a signal handler inside the allocator): `deallocate` defers the free.
    let Some(mut a) = ARENAS[ai].enter() else {
        return false;
    };
    if pagemap::get(p) != e {
        return false;
    }
    // SAFETY: the entry is current under the arena lock, so z is a live zone of this arena.
    unsafe {
        let Some(idx) = (*z).index_of(p) else {
            return false;
        };
        let m = *(*z).meta(idx);
        if m.state != USED || (*z).slot_addr(idx) + m.front as usize != p {
            return false;
        }
        // A thread cache takes a block from USED by a compare-exchange without this lock: of
        // two racing frees of one block (a program bug), one only goes on.
        if core::sync::atomic::AtomicU8::from_ptr(&raw mut (*(*z).meta.add(idx)).state)
            .compare_exchange(
                USED,
                crate::block::FREE,
                core::sync::atomic::Ordering::AcqRel,
                core::sync::atomic::Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        release_slot(&mut a, z, idx);
    }
    true
}

/// Frees `p` (free, delete, realloc to 0). `sized` is the size a sized delete passed (0:
/// none). Returns the size of the block freed (0: none).
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) fn deallocate_call(p: usize, op: Op, caller: usize, sized: usize) -> usize {
    let cfg = config::get();
    if cfg.enabled && cfg.check_every > 0 {
        super::hooks::maybe_check_all();
    }
    // The free's sequence number is taken before the block can be released, so it is lower
    // than that of any allocation that reuses the slot (one of another thread, whose numbers
    // may lag behind, takes a higher one: `seq::next_above`). Its history takes it, or a
    // higher one when the block's allocation has a higher number (`seq::above`).
    let seq = if layout().debug_meta { next_seq() } else { 0 };
    // Debugging without dressing or quarantine: into this thread's cache, history written.
    if cfg.cached
        && let Some(size) = super::tcache::free_recorded(p, seq, caller)
    {
        crate::stats::sub_live(size);
        return size;
    }
    let held = match hold(p) {
        Ok(h) => h,
        Err(NotHeld::Busy) => {
            // A signal handler interrupted this thread inside the allocator: the free is done
            // (and checked, and logged) once the interrupted code holds no lock.
            defer_free(p, op, caller);
            return 0;
        }
        Err(NotHeld::Bad(bad, info)) => {
            let info = info.map(with_history);
            // No block there now, but a LARGE block was, freed for good: a double free.
            if bad == Bad::NotOurs
                && info.is_none()
                && cfg.enabled
                && let Some(first) = freed_large(p)
            {
                report::bad_pointer(op, p, Bad::DoubleFree, Some(&first), caller);
                return 0;
            }
            report::bad_pointer(op, p, bad, info.as_ref(), caller);
            // Going on: a pointer into a live block was meant to free it. The block stays in
            // use, but the leak check at exit does not count it.
            if let Some(i) = info
                && i.state == State::Used
                && matches!(bad, Bad::Interior | Bad::Misaligned)
                && !matches!(op, Op::Realloc | Op::Reallocarray)
            {
                super::refused::add(i.user, i.dbg.alloc_seq);
            }
            return 0;
        }
    };
    checked_free(held, p, op, caller, sized, seq, true)
}

/// Frees the held block `p` after its debug checks (`family`: the family check too); a
/// problem found is reported.
#[inline(always)]
fn checked_free(
    held: Held<'static>,
    p: usize,
    op: Op,
    caller: usize,
    sized: usize,
    seq: u64,
    family: bool,
) -> usize {
    let enabled = config::get().enabled;
    if enabled {
        let info = held.info();
        if let Some(bad) = debug_checks_of(&info, op, sized, family) {
            drop(held);
            let info = with_history(info);
            if bad == Bad::Mismatch && crate::debug::wrappers::explains(&info, op, caller) {
                return free_explained(p, op, caller, sized, seq);
            }
            report::bad_block(op, p, bad, &info, caller);
            // Going on (on_error=continue): a corrupted block is kept rather than reused.
            if matches!(bad, Bad::Overflow(_) | Bad::Underflow(_)) {
                return keep_freed(p, caller, seq);
            }
            return deallocate_unchecked(p, op, caller, seq);
        }
    }
    let size = finish_free(held, caller, seq);
    if enabled {
        crate::stats::sub_live(size);
    }
    size
}

/// Frees a block whose family mismatch a program's own operator new or delete around malloc or
/// free explains (no mismatch): held again, checked but for its family, released. Apart from
/// `checked_free` so that the common path keeps it inlined.
#[cold]
#[inline(never)]
fn free_explained(p: usize, op: Op, caller: usize, sized: usize, seq: u64) -> usize {
    match hold(p) {
        Ok(h) => checked_free(h, p, op, caller, sized, seq, false),
        Err(NotHeld::Busy) => {
            defer_free(p, op, caller);
            0
        }
        Err(NotHeld::Bad(..)) => 0,
    }
}

/// A block freed by the program whose canaries were found overwritten (and reported): the
/// allocator keeps it for good instead of reusing memory whose neighbourhood was written. It
/// becomes QUARANTINED without entering a quarantine ring, so nothing ever releases it; it is
/// freed as far as the program is concerned (not a leak, and a second free is a double free).
/// A zone block is filled with the free fill when filling is on, like any quarantined zone
/// block (`check_every` and the dumps verify it); LARGE ones are not read back. Returns its size.
fn keep_freed(p: usize, caller: usize, seq: u64) -> usize {
    let (size, zone) = match hold(p) {
        Ok(Held::Zone(mut a, z, idx, info)) => {
            // SAFETY: idx is a used slot of z, under the arena lock.
            unsafe {
                (*z).meta(idx).state = QUARANTINED;
                if let Some(d) = (*z).dbg(idx) {
                    stamp_zone_free(d, seq, caller);
                }
            }
            a.live_bytes -= info.size;
            (info.size, true)
        }
        Ok(Held::Large(mut l, d, info)) => {
            // SAFETY: d is a used descriptor under the LARGE lock.
            unsafe {
                (*d).state = QUARANTINED;
                stamp_free(d, seq, caller);
            }
            l.live_bytes -= info.size;
            (info.size, false)
        }
        Err(_) => return 0,
    };
    if zone {
        // SAFETY: the slot is ours for good now (kept, no longer the program's).
        unsafe { free_fill(p, size) };
    }
    crate::stats::sub_live(size);
    size
}

/// Frees a block whose debug checks were already reported.
fn deallocate_unchecked(p: usize, op: Op, caller: usize, seq: u64) -> usize {
    match hold(p) {
        Ok(h) => {
            let size = finish_free(h, caller, seq);
            crate::stats::sub_live(size);
            size
        }
        Err(NotHeld::Busy) => {
            defer_free(p, op, caller);
            0
        }
        Err(NotHeld::Bad(..)) => 0,
    }
}

/// Releases or quarantines a validated block; `seq` is the free's sequence number (0 without
/// debugging history).
#[unsafe(link_section = "ft_hot")]
fn finish_free(held: Held<'static>, caller: usize, seq: u64) -> usize {
    let lay = layout();
    let quarantined = config::get().quarantine > 0;
    match held {
        Held::Zone(mut a, z, idx, info) => {
            if quarantined {
                // FREEING until its history and fill are written after the unlock.
                // SAFETY: idx is a used slot of z, under the arena lock.
                let (dbg, state) = unsafe {
                    (*z).meta(idx).state = FREEING;
                    (
                        (*z).dbg(idx)
                            .map_or(core::ptr::null_mut(), |d| d as *mut PackedDebug),
                        &raw mut (*(*z).meta.add(idx)).state,
                    )
                };
                a.live_bytes -= info.size;
                if !dbg.is_null() {
                    // Its line is often cold: fetched while the block is filled.
                    crate::pad::prefetch(dbg as usize);
                }
                drop(a);
                // SAFETY: the block is ours (quarantined) and no longer the program's; its
                // state's zone lives while the block is in it.
                unsafe { free_fill(info.user, info.size) };
                if !dbg.is_null() {
                    // Written after the unlock (a cold line): the quarantined slot stays ours
                    // until we push it.
                    // SAFETY: the history entry of a slot only this call can release.
                    unsafe { stamp_zone_free(&mut *dbg, seq, caller) };
                }
                // SAFETY: as for the fill.
                unsafe { publish_state(state, State::Quarantined) };
                quarantine(info.user, info.size);
            } else {
                // SAFETY: idx is a used slot of z, under the arena lock; the block is still
                // ours under the lock.
                unsafe {
                    if let Some(d) = (*z).dbg(idx) {
                        stamp_zone_free(d, seq, caller);
                    }
                    free_fill(info.user, info.size);
                    release_slot(&mut a, z, idx);
                }
            }
            info.size
        }
        Held::Large(mut l, d, info) => {
            let guarded = info.guarded.is_guarded();
            // A LARGE block bigger than a quarantine shard would leave it at once: it goes
            // back to the cache like any other.
            let quarantined = quarantined && info.size <= shard_budget();
            let mut gone = (0, 0);
            if quarantined || guarded {
                // FREEING until its range is closed or filled after the unlock.
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe {
                    (*d).state = FREEING;
                    if lay.debug_meta {
                        stamp_free(d, seq, caller);
                    }
                    let base = (*d).map_base;
                    let ul = (*d).usable_len;
                    if guarded {
                        (*d).dirty = false;
                        gone = (base, ul);
                    } else if !large_fill_quarantine(info.size) {
                        // Freed LARGE memory becomes inaccessible: a later access faults
                        // instead of reading stale data. A quarantined block keeps its pages
                        // (bounded by the quarantine budget), so its reuse costs no page fault.
                        sys::protect(base as *mut u8, ul, false);
                    }
                }
                drop(l);
                if guarded {
                    // A guarded block's range becomes inaccessible and its pages go back to
                    // the system (unless the bank keeps them for the next big guarded block),
                    // without the LARGE lock held: the block is QUARANTINED and only the guard
                    // ring releases it, and its range is not reused while it sits there. (One
                    // mmap(MAP_FIXED, PROT_NONE) instead of the two calls measured slower: it
                    // unmaps and maps.) A pool slot takes one call with guard markers. A big
                    // block is banked only once inaccessible: the pages a new block takes from
                    // it arrive PROT_NONE, and that block opens its data only.
                    let (base, len) = gone;
                    // SAFETY: d stays QUARANTINED and ours until the ring releases it, which
                    // `guard::retire` below has not given it to yet; its range is ours and
                    // the program gave it up.
                    unsafe {
                        if crate::guard::pooled(&*d) {
                            crate::guard::close_slot(base, len);
                        } else {
                            sys::protect(base as *mut u8, len, false);
                            // Not banked when a signal handler interrupted this thread inside
                            // the LARGE lock.
                            let banked = crate::guard::bankable(d) && crate::guard::bank_put(d);
                            if !banked {
                                sys::discard(base as *mut u8, len);
                            }
                        }
                    }
                }
                if !guarded && large_fill_quarantine(info.size) {
                    // SAFETY: the quarantined block is ours; nobody else touches it.
                    unsafe { free_fill(info.user, info.size) };
                }
                // SAFETY: d is our FREEING descriptor (never unmapped).
                unsafe { publish_state(&raw mut (*d).state, State::Quarantined) };
                if guarded {
                    crate::guard::retire(info.user, info.size);
                } else {
                    quarantine(info.user, info.size);
                }
            } else {
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe {
                    if lay.debug_meta {
                        // Remembered where it was by `free`, for a later double free.
                        stamp_free(d, seq, caller);
                    }
                    l.free(d)
                };
            }
            info.size
        }
    }
}
