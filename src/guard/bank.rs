//! The page bank: page recycling for big guarded blocks. A freed guarded block that has a
//! mapping of its own (more than `POOL_MAX_PAGES` data pages, guard after it) may keep its
//! pages while its address range sits in the address-space quarantine (PROT_NONE, so an access
//! still faults): later big guarded blocks take them with `mremap` instead of faulting in (and
//! clearing) fresh ones, as Electric Fence reuses its freed pages, but at a new address. A
//! block is built on up to `MAX_PIECES` banked ranges, so the bank drains into new blocks
//! rather than holding pages while fresh ones are faulted in. Each range is one kernel mapping
//! (older kernels move one at a time): a block built on pieces gives one range per piece
//! (`Large::seams`). Bounded by `BANK_SLOTS` ranges and 8 to 64 MiB (half the LARGE bytes);
//! the smallest ranges are given back to make room.
//!
//! `Bank`'s methods are bookkeeping only (the pages they give back go through the caller's
//! `discard`); the bank itself is `LargeState::guarded.bank`, under the `LARGE` lock.
//!
//! # Invariants
//! - A banked range belongs to a QUARANTINED guarded block still in the address-space
//!   quarantine; the block forgets its ranges (`forget`) before its mapping is unmapped.
//! - `bytes` is the sum of the lengths of the non-empty entries.

use crate::large::{Bank, Banked, LARGE, Large, LargeState, MAX_PIECES, POOL_MAX_PAGES};
use crate::sys;

/// Bytes of pages the bank may hold: half the live LARGE bytes, between these bounds.
const BANK_MIN_BYTES: usize = 8 << 20;
const BANK_MAX_BYTES: usize = 64 << 20;

/// A banked range taken for a new block: `[addr, addr + len)`; `cut`: the rest of the range,
/// beyond what was asked, to give back (its block's mapping is then split once more).
#[derive(Debug, PartialEq)]
pub struct Piece {
    pub addr: usize,
    pub len: usize,
    pub cut: Option<(usize, usize)>,
    pub desc: *mut Large,
}

impl Bank {
    /// Banks the data `[base, base + len)` of the freed block `desc`, split into kernel
    /// mappings at `seams` (page counts from `base`, 0 = unused), within `budget` bytes: the
    /// smallest ranges are given back (`discard`) to make room. False if it cannot be banked.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        desc: *mut Large,
        base: usize,
        len: usize,
        seams: &[u16],
        page: usize,
        budget: usize,
        discard: &mut impl FnMut(usize, usize),
    ) -> bool {
        if self.off || len > budget {
            return false;
        }
        let mut cuts = [0usize; MAX_PIECES + 2];
        let mut n = 1;
        for &s in seams.iter().filter(|&&s| s != 0).take(MAX_PIECES) {
            cuts[n] = s as usize * page;
            n += 1;
        }
        cuts[n] = len;
        while self.bytes + len > budget || self.slots.iter().filter(|e| e.addr == 0).count() < n {
            if !self.evict_smallest(discard) {
                return false;
            }
        }
        for w in cuts[..=n].windows(2) {
            if let Some(e) = self.slots.iter_mut().find(|e| e.addr == 0) {
                *e = Banked {
                    addr: base + w[0],
                    len: w[1] - w[0],
                    desc,
                };
            }
        }
        self.bytes += len;
        true
    }

    /// Takes a banked range for (the rest of) a block, `need` bytes: the smallest at least
    /// that big, else the biggest. A range is taken once (which bounds the mappings a freed
    /// block splits into): pages beyond `need` come back as `cut`.
    pub fn take(&mut self, need: usize) -> Option<Piece> {
        let mut fit = usize::MAX;
        let mut big = usize::MAX;
        for (i, e) in self.slots.iter().enumerate() {
            if e.addr == 0 {
                continue;
            }
            if e.len >= need {
                if self.slots.get(fit).is_none_or(|f| e.len < f.len) {
                    fit = i;
                }
            } else if self.slots.get(big).is_none_or(|b| e.len > b.len) {
                big = i;
            }
        }
        let i = if fit != usize::MAX { fit } else { big };
        let e = *self.slots.get(i)?;
        self.slots[i] = Banked::EMPTY;
        self.bytes -= e.len;
        let k = e.len.min(need);
        Some(Piece {
            addr: e.addr,
            len: k,
            cut: (e.len > k).then_some((e.addr + k, e.len - k)),
            desc: e.desc,
        })
    }

    /// Gives back the smallest banked range; false if there is none.
    pub fn evict_smallest(&mut self, discard: &mut impl FnMut(usize, usize)) -> bool {
        let mut small = usize::MAX;
        for (i, e) in self.slots.iter().enumerate() {
            if e.addr != 0 && self.slots.get(small).is_none_or(|s| e.len < s.len) {
                small = i;
            }
        }
        let Some(e) = self.slots.get_mut(small) else {
            return false;
        };
        discard(e.addr, e.len);
        self.bytes -= e.len;
        *e = Banked::EMPTY;
        true
    }

    /// Forgets the banked ranges of `d` (about to be unmapped).
    pub fn forget(&mut self, d: *mut Large) {
        for e in self.slots.iter_mut() {
            if e.addr != 0 && e.desc == d {
                self.bytes -= e.len;
                *e = Banked::EMPTY;
            }
        }
    }

    /// Gives every banked range back.
    pub fn clear(&mut self, discard: &mut impl FnMut(usize, usize)) {
        for e in self.slots.iter_mut() {
            if e.addr != 0 {
                discard(e.addr, e.len);
                *e = Banked::EMPTY;
            }
        }
        self.bytes = 0;
    }
}

/// Gives back pages of a banked range.
fn discard(p: usize, len: usize) {
    // SAFETY: a banked range is a freed block's, ours while we hold the lock.
    unsafe { sys::discard(p as *mut u8, len) };
}

/// Whether a freed guarded block may keep its pages in the bank: a mapping of its own with
/// the guard after it, and data small enough for `seams` to locate its mappings. Reads only
/// fields that do not change while the block is quarantined, so no lock is needed.
/// # Safety
/// `d` is a QUARANTINED guarded descriptor that the address-space quarantine has not
/// released.
pub unsafe fn bankable(d: *const Large) -> bool {
    // SAFETY: per the caller, these fields are stable.
    let (guarded, base, usable, lo) =
        unsafe { ((*d).guarded, (*d).map_base, (*d).usable_len, (*d).lo) };
    let pages = (base + usable - lo) / sys::page_size();
    guarded.after() && pages > POOL_MAX_PAGES && pages <= u16::MAX as usize
}

/// Banks the pages of `d` (a `bankable` guarded block being freed, already PROT_NONE); false
/// when they are not kept (the caller gives them back), also when a signal handler
/// interrupted this thread inside the `LARGE` lock.
/// # Safety
/// As for `bankable`.
pub unsafe fn put(d: *mut Large) -> bool {
    let Some(mut l) = LARGE.enter() else {
        return false;
    };
    let l = &mut *l;
    let budget = (l.live_bytes / 2).clamp(BANK_MIN_BYTES, BANK_MAX_BYTES);
    // SAFETY: d is live per the caller, and we hold the lock.
    let dr = unsafe { &*d };
    let (base, len, seams) = (dr.map_base, dr.usable_len, dr.seams);
    l.guarded.bank.put(
        d,
        base,
        len,
        &seams,
        sys::page_size(),
        budget,
        &mut |p, n| discard(p, n),
    )
}

/// A new guarded mapping of `map_len` bytes whose first `data_len` are accessible, built on
/// banked pages; None when the bank is empty or the kernel refuses. Returns the mapping and
/// where its data mappings meet (page counts from its start, 0 = unused).
pub fn map_recycled(
    l: &mut LargeState,
    data_len: usize,
    map_len: usize,
) -> Option<(usize, [u16; MAX_PIECES])> {
    let page = sys::page_size();
    if data_len / page > u16::MAX as usize || l.guarded.bank.bytes == 0 {
        return None;
    }
    let p = sys::map_none(map_len)?;
    let mut seams = [0u16; MAX_PIECES];
    let mut done = 0;
    let mut pieces = 0;
    while done < data_len && pieces < MAX_PIECES {
        let Some(piece) = l.guarded.bank.take(data_len - done) else {
            break;
        };
        if let Some((rest, n)) = piece.cut {
            discard(rest, n);
            // Moving part of its mapping splits it in two.
            // SAFETY: a banked range's descriptor is QUARANTINED and stays so while its range
            // is banked (under the lock).
            unsafe { (*piece.desc).vmas += 1 };
            super::budget::count_vmas(1);
        }
        let (src, k) = (piece.addr, piece.len);
        // SAFETY: a banked range is a freed block's, ours while we hold the lock; the
        // destination is inside the reservation the kernel just made for us.
        if !unsafe { sys::move_pages(src as *mut u8, k, (p as usize + done) as *mut u8) } {
            if sys::errno() == libc::EINVAL {
                // A kernel without MREMAP_DONTUNMAP (before Linux 5.7): no recycling.
                l.guarded.bank.off = true;
            }
            discard(src, k);
            break;
        }
        done += k;
        if done < data_len {
            seams[pieces] = (done / page) as u16;
        }
        pieces += 1;
    }
    // The moved pages arrive PROT_NONE like their source, and the rest of the reservation is
    // PROT_NONE: one call opens the data (recycled and fresh) and leaves the guard.
    // SAFETY: the reservation made above.
    if done > 0 && unsafe { sys::protect(p, data_len, true) } {
        return Some((p as usize, seams));
    }
    // SAFETY: as above (moved pages, if any, are dropped with it).
    unsafe { sys::unmap(p, map_len) };
    None
}

/// Gives every banked page back (malloc_trim; `large::set_trim_hook`).
pub fn trim(l: &mut LargeState) {
    l.guarded.bank.clear(&mut |p, n| discard(p, n));
}
