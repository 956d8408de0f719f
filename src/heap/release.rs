//! Blocks leaving a quarantine: the heap puts a freed block in `debug::quarantine`, which
//! hands back the oldest blocks beyond its budget; each has its free fill verified
//! (`debug::verify`) and is really released, one arena lock for a run of blocks of the same
//! arena. A write after free found there is reported, and the block is leaked rather than
//! reused.

use super::arena::{ARENAS, Arena, release_slot};
use super::defer::defer_quarantine_release;
use super::lookup::{large_info, with_history, zone_info_lean, zone_of};
use crate::block::{Info, QUARANTINED, State};
use crate::debug::layout::{LARGE_FILL_MAX, layout};
use crate::debug::quarantine as q;
use crate::debug::verify::{self, Problem};
use crate::large::{LARGE, Large};
use crate::pagemap;
use crate::report;
use crate::sys;

/// A quarantined LARGE block of this size is filled and checked like a zone block instead of
/// being made inaccessible: up to `LARGE_FILL_MAX` bytes a fill costs less than the two
/// mprotect calls (and the split mappings) it replaces.
#[inline]
pub(super) fn large_fill_quarantine(size: usize) -> bool {
    layout().fill && size <= LARGE_FILL_MAX
}

/// Bytes of quarantine a shard holds now (it may scale with the live bytes).
#[inline]
pub(super) fn shard_budget() -> usize {
    let live = crate::stats::LIVE.load(core::sync::atomic::Ordering::Relaxed);
    q::shard_budget(live.max(0) as usize)
}

/// Puts the freed block `p` (QUARANTINED) in the quarantine and releases what leaves it; a
/// block the quarantine cannot hold is released at once.
#[inline]
pub(super) fn quarantine(p: usize, size: usize) {
    let mut out = q::Batch::EMPTY;
    if q::push(p, size, shard_budget(), &mut out) {
        release_many(out.as_slice());
    } else {
        release(p);
    }
}

/// Empties the quarantine (at exit, so the fills are verified; or to give memory back),
/// oldest first. Returns whether it held anything.
pub fn drain_quarantine() -> bool {
    let mut any = false;
    while let Some(p) = q::pop() {
        release(p);
        any = true;
    }
    any
}

/// The first changed byte of a quarantined block's free fill.
#[inline]
fn fill_changed(info: &Info) -> Option<usize> {
    match verify::quarantined(info)? {
        Problem::WriteAfterFree(a) | Problem::Overflow(a) | Problem::Underflow(a) => Some(a),
    }
}

/// Really releases a block leaving the quarantine; verifies its free fill first.
pub(super) fn release(p: usize) {
    let e = pagemap::get(p);
    if let pagemap::Owner::Large(d) = pagemap::decode(e) {
        let Some(mut l) = LARGE.enter() else {
            defer_quarantine_release(p);
            return;
        };
        if pagemap::get(p) != e {
            return;
        }
        l.adopt_loose();
        let d = d as *mut Large;
        // SAFETY: live descriptor under the lock.
        unsafe {
            if (*d).state != QUARANTINED || (*d).user != p {
                return;
            }
            if (*d).guarded.is_guarded() {
                // Guarded blocks leave through the guard ring (a pool slot must never reach
                // `LargeState::free`, which would unmap part of its pool).
                drop(l);
                crate::guard::release(p);
                return;
            } else if large_fill_quarantine((*d).size) {
                // (`large_info` carries the block's history.)
                let info = large_info(&*d);
                if let Some(addr) = fill_changed(&info) {
                    // Reported with the block still quarantined (its history intact); the
                    // block is leaked rather than reused.
                    drop(l);
                    report::write_after_free(&info, addr);
                    return;
                }
                l.free(d);
            } else {
                sys::protect((*d).map_base as *mut u8, (*d).usable_len, true);
                l.free(d);
            }
        }
        return;
    }
    let Some((ai, _)) = zone_of(e) else {
        return;
    };
    let Some(mut a) = ARENAS[ai].enter() else {
        defer_quarantine_release(p);
        return;
    };
    let bad = release_zone_block(&mut a, ai, p);
    drop(a);
    if let Some((info, addr)) = bad {
        report::write_after_free(&with_history(info), addr);
    }
}

/// `release` of many blocks (a batch leaving the quarantine, oldest first, with their sizes):
/// one arena lock for a run of blocks of the same arena; the memory of the block a few places
/// ahead is prefetched while one is checked.
fn release_many(ps: &[(usize, usize)]) {
    const AHEAD: usize = 4;
    for &(p, n) in ps.iter().take(AHEAD) {
        prefetch_block(p, n);
    }
    let mut i = 0;
    while i < ps.len() {
        let e = pagemap::get(ps[i].0);
        let Some((ai, _)) = zone_of(e) else {
            release(ps[i].0);
            i += 1;
            continue;
        };
        let Some(mut a) = ARENAS[ai].enter() else {
            // A signal handler interrupted this thread inside the allocator: the blocks go
            // back to the quarantine (or wait until this thread holds no lock).
            let start = i;
            while i < ps.len() && zone_of(pagemap::get(ps[i].0)).is_some_and(|(bi, _)| bi == ai) {
                i += 1;
            }
            let back = q::requeue(&ps[start..i]);
            for &(p, _) in &ps[start + back..i] {
                defer_quarantine_release(p);
            }
            continue;
        };
        let mut bad = None;
        while i < ps.len() && bad.is_none() {
            match zone_of(pagemap::get(ps[i].0)) {
                Some((bi, _)) if bi == ai => {}
                _ => break,
            }
            if let Some(&(p, n)) = ps.get(i + AHEAD) {
                prefetch_block(p, n);
            }
            bad = release_zone_block(&mut a, ai, ps[i].0);
            i += 1;
        }
        drop(a);
        if let Some((info, addr)) = bad {
            report::write_after_free(&with_history(info), addr);
        }
    }
}

/// Prefetches the cache lines of a zone-sized block (at most 1 KiB of it).
#[inline(always)]
fn prefetch_block(p: usize, n: usize) {
    let end = p + n.min(1024);
    let mut a = p & !63;
    while a < end {
        prefetch(a);
        a += 64;
    }
}

#[inline(always)]
fn prefetch(p: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Releases the quarantined zone block `p` of arena `ai` (whose lock the caller holds) after
/// verifying its free fill; returns the block and the first changed byte if it was written.
fn release_zone_block(a: &mut Arena, ai: usize, p: usize) -> Option<(Info, usize)> {
    let (bi, z) = zone_of(pagemap::get(p))?;
    if bi != ai {
        return None;
    }
    // SAFETY: the entry is current under the arena lock, so z is a live zone of this arena.
    let idx = unsafe { (*z).index_of(p) }?;
    // SAFETY: as above.
    let info = zone_info_lean(unsafe { &*z }, idx);
    if info.state != State::Quarantined || info.user != p {
        return None;
    }
    let bad = fill_changed(&info);
    // SAFETY: quarantined slot of z under the lock.
    unsafe {
        a.live_bytes += info.size; // release_slot subtracts it again
        release_slot(a, z, idx);
    }
    bad.map(|addr| (info, addr))
}
