//! Blocks leaving a quarantine: the heap puts a freed block in `debug::quarantine`, which
//! hands back the oldest blocks beyond its budget; each has its free fill verified
//! (`debug::verify`, with no lock held for a batch) and is really released, one arena lock for
//! all the blocks of a batch in the same arena. A write after free found there is reported.

use super::arena::{ARENAS, Arena, release_slot};
use super::defer::defer_quarantine_release;
use super::lookup::{large_info, with_history, zone_info_lean, zone_of};
use crate::block::{Info, QUARANTINED, State, load_state};
use crate::debug::layout::{LARGE_FILL_MAX, layout};
use crate::debug::quarantine as q;
use crate::debug::verify::{self, Problem};
use crate::large::{LARGE, Large};
use crate::pad::prefetch;
use crate::pagemap;
use crate::report;
use crate::sys;
use crate::zone::Zone;

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
    let mut out = q::Batch::empty();
    if q::push(p, size, shard_budget(), &mut out) {
        if !out.as_slice().is_empty() {
            release_many(out.as_slice());
        }
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

/// Most blocks a batch holds (`q::Batch`): one bit each in the masks of `release_many`.
const MANY: usize = 64;
/// `release_many`'s arena of a block that is not a zone block.
const NOT_ZONE: u8 = u8::MAX;
const _: () = assert!(super::arena::MAX_ARENAS < NOT_ZONE as usize);

/// `release` of many blocks (a batch leaving the quarantine, oldest first, with their sizes).
/// The free fill of each zone block is verified first with no lock held (a block that left the
/// quarantine is ours alone, and its zone lives while it holds it), the block a few places
/// ahead prefetched meanwhile, and its metadata line fetched for the locked part. Then the
/// blocks are released under one lock per arena (in order within an arena), however the
/// arenas interleave in the batch: up to and including the first block whose fill was
/// written, which is reported once its arena lock is dropped; then the rest, likewise.
#[inline(never)]
fn release_many(ps: &[(usize, usize)]) {
    const AHEAD: usize = 4;
    let ps = &ps[..ps.len().min(MANY)];
    // The arena of each zone block (`NOT_ZONE`: `release` takes it), and which ones had their
    // fill written.
    let mut arena = [NOT_ZONE; MANY];
    // The zone and slot of each zone block, found here once: its zone lives and its geometry
    // does not change while it holds the quarantined block.
    let mut at = [(core::ptr::null_mut::<Zone>(), 0usize); MANY];
    let mut bad_mask = 0u64;
    for &(p, n) in ps.iter().take(AHEAD) {
        prefetch_block(p, n);
    }
    for (i, &(p, n)) in ps.iter().enumerate() {
        if let Some(&(p, n)) = ps.get(i + AHEAD) {
            prefetch_block(p, n);
        }
        let Some((ai, z)) = zone_of(pagemap::get(p)) else {
            continue;
        };
        // SAFETY: the block is QUARANTINED and ours alone (it left the ring under its lock),
        // so its zone lives and its geometry does not change; its bytes are readable.
        unsafe {
            // A block at no slot is no block of ours: `release` finds nothing to do either.
            let Some(idx) = (*z).index_of(p) else {
                continue;
            };
            arena[i] = ai as u8;
            at[i] = (z, idx);
            prefetch((*z).meta.add(idx) as usize);
            if verify::free_fill_changed(p, n).is_some() {
                bad_mask |= 1 << i;
            }
        }
    }
    let mut start = 0;
    while start < ps.len() {
        // Up to the next block whose fill was written.
        let later = bad_mask & !((1u64 << start) - 1);
        let end = if later == 0 {
            ps.len()
        } else {
            later.trailing_zeros() as usize + 1
        };
        if let Some((info, addr)) = release_run(ps, &arena, &at, start, end, later != 0) {
            report::write_after_free(&with_history(info), addr);
        }
        start = end;
    }
}

/// Releases the blocks `ps[start..end]` of `release_many` (`arena`: their arenas; `at`: the
/// zone and slot of each zone block), one arena lock for all the blocks of an arena. When
/// `last_bad` (the last block's fill was written), returns that block, if it was released, and
/// its first changed byte, for the caller to report.
fn release_run(
    ps: &[(usize, usize)],
    arena: &[u8; MANY],
    at: &[(*mut Zone, usize); MANY],
    start: usize,
    end: usize,
    last_bad: bool,
) -> Option<(Info, usize)> {
    let mut reported = None;
    let all = if end - start == MANY {
        u64::MAX
    } else {
        ((1u64 << (end - start)) - 1) << start
    };
    let mut left = all;
    while left != 0 {
        let i = left.trailing_zeros() as usize;
        if arena[i] == NOT_ZONE {
            release(ps[i].0);
            left &= !(1 << i);
            continue;
        }
        let ai = arena[i] as usize;
        // The blocks of this arena still to release.
        let mut mine = 0u64;
        let mut m = left;
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            if arena[j] as usize == ai {
                mine |= 1 << j;
            }
        }
        left &= !mine;
        let Some(mut a) = ARENAS[ai].enter() else {
            // A signal handler interrupted this thread inside the allocator: the blocks go
            // back to the quarantine (or wait until this thread holds no lock).
            let mut back = [(0usize, 0usize); MANY];
            let mut k = 0;
            while mine != 0 {
                back[k] = ps[mine.trailing_zeros() as usize];
                mine &= mine - 1;
                k += 1;
            }
            let taken = q::requeue(&back[..k]);
            for &(p, _) in &back[taken..k] {
                defer_quarantine_release(p);
            }
            continue;
        };
        while mine != 0 {
            let j = mine.trailing_zeros() as usize;
            mine &= mine - 1;
            // The written block is verified again under the lock, for its report.
            let check = last_bad && j == end - 1;
            let (z, idx) = at[j];
            // SAFETY: under the lock of arena ai, which owns z (`release_many`); idx is a slot
            // of z.
            if let Some(r) = unsafe { release_at(&mut a, z, idx, ps[j].0, check) } {
                reported = Some(r);
            }
        }
    }
    reported
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

/// Releases the quarantined block `p` at slot `idx` of zone `z`, after verifying its free fill
/// when `verify` (else the caller did). Returns the block as it was and the first changed byte of its fill if that was
/// found written.
/// # Safety
/// Under the lock of the arena that owns `z`; `idx` is a slot of `z`.
#[inline]
unsafe fn release_at(
    a: &mut Arena,
    z: *mut Zone,
    idx: usize,
    p: usize,
    verify: bool,
) -> Option<(Info, usize)> {
    // SAFETY: per the caller; the state byte is read on its own, as `zone_info_lean` does.
    unsafe {
        let m = (*z).meta.add(idx);
        if load_state(&raw const (*m).state) != State::Quarantined
            || (*z).slot_addr(idx) + (*m).front as usize != p
        {
            return None;
        }
        let bad = if verify {
            let info = zone_info_lean(&*z, idx);
            fill_changed(&info).map(|addr| (info, addr))
        } else {
            None
        };
        a.live_bytes += (*m).size as usize; // release_slot subtracts it again
        release_slot(a, z, idx);
        bad
    }
}

/// Releases the quarantined zone block `p` of arena `ai` (whose lock the caller holds), after
/// verifying its free fill; returns the block as it was and the first changed byte of its fill
/// if that was found written (None: not such a block, or its fill intact).
fn release_zone_block(a: &mut Arena, ai: usize, p: usize) -> Option<(Info, usize)> {
    let (bi, z) = zone_of(pagemap::get(p))?;
    if bi != ai {
        return None;
    }
    // SAFETY: the entry is current under the arena lock, so z is a live zone of this arena;
    // idx is one of its slots.
    unsafe {
        let idx = (*z).index_of(p)?;
        release_at(a, z, idx, p, true)
    }
}
