//! The fault handler's view of the heap: from a fault address, with no lock (descriptors are
//! never unmapped, zone headers live in metadata chunks that stay mapped, and a torn read only
//! spoils a report), the block the fault is about — the one whose mapping it hit, or the one
//! on the nearer side of the inaccessible memory of ours it lies in: a guarded block's guard
//! page, the guard between two pool slots, the region behind a LARGE block, a zone's guard
//! page.

use super::Block;
use crate::block::holds_no_block;
use crate::large::Large;
use crate::pagemap::{self, Owner};
use crate::zone::Zone;

/// What the inaccessible memory a fault hit is, next to the block it is blamed on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Region {
    /// A guarded block's guard page (or a guard between pool slots).
    GuardPage,
    /// The inaccessible region behind a LARGE block.
    LargeRegion,
    /// The guard page before or after a zone's blocks.
    ZoneGuard,
}

/// A fault near our memory, as `fault_lookup` finds it.
#[derive(Clone, Copy)]
pub struct Fault {
    /// The block the fault is about: the one whose accessible part holds the address, else the
    /// nearer of the blocks on either side of the inaccessible run it lies in.
    pub block: Block<'static>,
    /// The inaccessible memory next to the block (how a report names where the fault hit).
    pub region: Region,
    /// The address lies in a mapping of ours (a LARGE or guarded block's, a pool's): no program
    /// has business there. False for a zone's guard page, which the page map does not cover.
    pub ours: bool,
}

/// Pages scanned on each side of a fault for the blocks around it: the widest inaccessible
/// run of ours, the region behind a LARGE block, and a page.
fn scan_pages() -> usize {
    crate::size_class::WIDE_GUARD.div_ceil(crate::sys::page_size()) + 2
}

/// The inaccessible memory around a LARGE or guarded block.
fn region_of(b: &Block) -> Region {
    if b.guarded.is_guarded() {
        Region::GuardPage
    } else {
        Region::LargeRegion
    }
}

/// The page-map owner of the page at `q`, decoded.
fn owner(q: usize) -> (usize, Owner) {
    let e = pagemap::get(q);
    (e, pagemap::decode(e))
}

/// A LARGE or guarded descriptor's block, its mapping and accessible part, if `q` lies in its
/// mapping and it holds a block (read without a lock).
fn mapping_at(d: usize, q: usize) -> Option<(Block<'static>, usize, usize)> {
    let d = d as *mut Large;
    // SAFETY: descriptors are never unmapped; a torn read only spoils a report.
    let (user, base, len, lo, hi) = unsafe {
        let r = &*d;
        (
            r.user,
            r.map_base,
            r.map_len,
            r.lo,
            r.map_base + r.usable_len,
        )
    };
    if user == 0 || q < base || q >= base + len {
        return None;
    }
    // SAFETY: as above.
    Some((unsafe { Block::of_mapping(d) }, lo, hi))
}

/// The last (`last`) or first block of a zone that is not free (FREE or CACHED).
fn zone_end_block(z: &'static Zone, last: bool) -> Option<Block<'static>> {
    let n = (z.hiwater as usize).min(z.nblocks as usize);
    let mut pick = |i: usize| {
        let b = Block::in_zone(z, i);
        (!holds_no_block(b.byte)).then_some(b)
    };
    if last {
        (0..n).rev().find_map(&mut pick)
    } else {
        (0..n).find_map(&mut pick)
    }
}

/// The block whose accessible part ends at or below `addr`, with that end, when only
/// inaccessible memory of ours lies between them (`addr`'s own page may be a zone's guard).
fn block_below(addr: usize, here_ours: bool) -> Option<(Block<'static>, usize, Region)> {
    let page = crate::sys::page_size();
    let first = addr & !(page - 1);
    for k in 0..scan_pages() {
        let q = first.checked_sub(k * page)?;
        match owner(q).1 {
            Owner::Large(d) => {
                let (b, lo, hi) = mapping_at(d, q)?;
                if hi <= addr && (here_ours || mapping_at(d, addr).is_some()) {
                    return Some((b, hi, region_of(&b)));
                }
                if lo <= addr {
                    return None; // in its accessible part
                }
                // Its guard below: the block below it is further down.
            }
            Owner::Zone { zone, .. } => {
                // SAFETY: zone headers live in metadata chunks that stay mapped; racy.
                let z: &'static Zone = unsafe { &*(zone as *const Zone) };
                let end = z.data + z.data_len;
                if end > addr || addr >= z.map_base + z.map_len {
                    return None;
                }
                return zone_end_block(z, true).map(|b| (b, end, Region::ZoneGuard));
            }
            Owner::None => {
                // Our own metadata and pool guards go on; memory that is not ours stops the
                // search, unless it is the fault's own page (a zone's guard page).
                if k > 0 && owner(q).0 != pagemap::META {
                    return None;
                }
            }
        }
    }
    None
}

/// The block whose accessible part starts above `addr`, with that start, when only
/// inaccessible memory of ours lies between them (`addr`'s own page may be a zone's guard).
fn block_above(addr: usize, here_ours: bool) -> Option<(Block<'static>, usize, Region)> {
    let page = crate::sys::page_size();
    let first = addr & !(page - 1);
    for k in 0..scan_pages() {
        let q = first.checked_add(k * page)?;
        match owner(q).1 {
            Owner::Large(d) => {
                let (b, lo, hi) = mapping_at(d, q)?;
                if lo > addr && (here_ours || mapping_at(d, addr).is_some()) {
                    return Some((b, lo, region_of(&b)));
                }
                if hi > addr {
                    return None; // in its accessible part
                }
                // Its guard or region after it: the block above it is further up.
            }
            Owner::Zone { zone, .. } => {
                // SAFETY: as in `block_below`.
                let z: &'static Zone = unsafe { &*(zone as *const Zone) };
                if z.data <= addr || addr < z.map_base {
                    return None;
                }
                return zone_end_block(z, false).map(|b| (b, z.data, Region::ZoneGuard));
            }
            Owner::None => {
                if k > 0 && owner(q).0 != pagemap::META {
                    return None;
                }
            }
        }
    }
    None
}

/// The block a fault at `addr` is about, read without a lock (for the fault handler:
/// descriptors are never unmapped, zone headers stay mapped, and a torn read only spoils a
/// report):
/// - `addr` in the accessible part of a LARGE or guarded block's mapping: that block (a live
///   one there is no guard fault; a freed one is a use after free);
/// - `addr` in inaccessible memory of ours — a guarded block's guard page, the guard between
///   two pool slots, the region behind a LARGE block, a zone's guard page — the block on the
///   nearer side of it: the one whose accessible part ends below `addr`, or the one whose
///   accessible part starts above it, whichever edge is nearer (a run off a block's end
///   faults at the first byte past its accessible part, a run before a block's start at the
///   last byte before it). Ties go to the block below.
pub fn fault_lookup(addr: usize) -> Option<Fault> {
    let (e, here) = owner(addr);
    let mut ours = e == pagemap::META;
    if let Owner::Large(d) = here
        && let Some((b, lo, hi)) = mapping_at(d, addr)
    {
        if addr >= lo && addr < hi {
            return Some(Fault {
                block: b,
                region: region_of(&b),
                ours: true,
            });
        }
        ours = true;
    }
    let below = block_below(addr, ours);
    let above = block_above(addr, ours);
    let (block, region) = match (below, above) {
        (Some((b, end, r)), Some((a, start, s))) => {
            if addr - end <= start - 1 - addr {
                (b, r)
            } else {
                (a, s)
            }
        }
        (Some((b, _, r)), None) => (b, r),
        (None, Some((a, _, s))) => (a, s),
        (None, None) => return None,
    };
    Some(Fault {
        block,
        region,
        ours,
    })
}
