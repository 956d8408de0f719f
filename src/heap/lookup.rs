//! Finding a block: what a page-map entry names, the `Info` of a zone slot or a LARGE
//! descriptor, how a pointer relates to the block it falls in (`classify`), and a live block
//! held under its owning lock (`hold`) or read without it (`peek`).

use super::arena::{ARENAS, Arena, MAX_ARENAS};
use crate::block::{DebugMeta, GuardAt, Info, Kind, Op, State, load_state};
use crate::debug::layout::layout;
use crate::large::{LARGE, Large, LargeState};
use crate::lock::Guard;
use crate::pagemap;
use crate::report::Bad;
use crate::size_class::MIN_ALIGN;
use crate::sys;
use crate::zone::Zone;

pub fn zone_info(z: &Zone, idx: usize) -> Info {
    let mut i = zone_info_lean(z, idx);
    // SAFETY: idx < nblocks, checked by the caller (index_of).
    i.dbg = unsafe { z.dbg(idx).map(|d| d.get()).unwrap_or(DebugMeta::EMPTY) };
    i
}

/// `zone_info` without the debugging history (one cache line less on the hot paths; reports
/// fetch the history again with `with_history`).
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) fn zone_info_lean(z: &Zone, idx: usize) -> Info {
    // SAFETY: idx < nblocks, checked by index_of. The state byte is read on its own (acquire):
    // it may be published by a thread dressing the block outside the lock.
    let (m, state) = unsafe {
        (
            *z.meta(idx),
            load_state(&raw const (*z.meta.add(idx)).state),
        )
    };
    let front = layout().front;
    let slot = z.slot_addr(idx);
    Info {
        user: slot + m.front as usize,
        size: m.size as usize,
        slot,
        slot_end: slot + z.block_size as usize,
        check_end: if idx + 1 < z.nblocks as usize && front > 0 {
            slot + z.block_size as usize + front
        } else {
            slot + z.block_size as usize
        },
        state,
        origin: Op::from_u8(m.origin).unwrap_or(Op::Malloc),
        kind: if z.is_tiny() { Kind::Tiny } else { Kind::Small },
        zone_base: z.data,
        dbg: DebugMeta::EMPTY,
        guarded: GuardAt::No,
    }
}

#[inline]
pub fn large_info(d: &Large) -> Info {
    let end = d.map_base + d.usable_len;
    // SAFETY: the state byte of a live descriptor (descriptors are never unmapped).
    let state = unsafe { load_state(&raw const d.state) };
    Info {
        user: d.user,
        size: d.size,
        slot: d.lo,
        slot_end: end,
        check_end: if d.guarded.is_guarded() {
            end
        } else {
            end.min(d.user + d.size + sys::page_size())
        },
        state,
        origin: Op::from_u8(d.origin).unwrap_or(Op::Malloc),
        kind: Kind::Large,
        zone_base: d.map_base,
        dbg: d.dbg,
        guarded: d.guarded,
    }
}

/// Classifies `p` against a block `info` that contains it.
fn classify(p: usize, info: &Info) -> Result<(), Bad> {
    if p == info.user {
        return match info.state {
            State::Used => Ok(()),
            _ => Err(Bad::DoubleFree),
        };
    }
    if info.state != State::Used {
        return Err(if !p.is_multiple_of(MIN_ALIGN) {
            Bad::Misaligned
        } else {
            Bad::InsideFreed
        });
    }
    if !p.is_multiple_of(MIN_ALIGN) {
        Err(Bad::Misaligned)
    } else {
        Err(Bad::Interior)
    }
}

/// Finds the block holding `p` without changing anything (dumps, reports, leak scan).
/// Caller holds the right lock or accepts a racy read.
pub fn find(p: usize) -> Option<Info> {
    match pagemap::decode(pagemap::get(p)) {
        pagemap::Owner::None => None,
        pagemap::Owner::Large(d) => {
            // SAFETY: descriptors are never unmapped.
            let d = unsafe { &*(d as *const Large) };
            if d.user == 0 {
                return None;
            }
            Some(large_info(d))
        }
        pagemap::Owner::Zone { zone, .. } => {
            // SAFETY: the entry points at a zone header (racy readers accept a stale view).
            let z = unsafe { &*(zone as *const Zone) };
            let idx = z.index_of(p)?;
            Some(zone_info(z, idx))
        }
    }
}

/// The arena and zone a page-map entry names, if it names a zone of a valid arena.
#[inline]
pub(super) fn zone_of(e: usize) -> Option<(usize, *mut Zone)> {
    match pagemap::decode(e) {
        pagemap::Owner::Zone { arena, zone } if arena < MAX_ARENAS => {
            Some((arena, zone as *mut Zone))
        }
        _ => None,
    }
}

/// Starts loading what a checked free of `p` reads first: the slot's metadata and history and
/// the slot's first and last lines (its fill and canaries). Called before the call's stack is
/// captured, so that these cache misses overlap that work; without a stack to capture (plain
/// mode's C++ delete, `stack=1`) the lookup that follows at once would only be done twice, so
/// nothing is asked.
#[inline]
pub fn prefetch_free(p: usize) {
    if crate::site::depth() <= 1 {
        return;
    }
    let Some((_, z)) = zone_of(pagemap::get(p)) else {
        return;
    };
    // SAFETY: zone headers lie in metadata chunks, which are never unmapped. Read without the
    // arena lock, a header that changes meanwhile gives a useless address at worst, and a
    // prefetch never faults.
    let z = unsafe { &*z };
    let Some(idx) = z.index_of(p) else {
        return;
    };
    z.prefetch_slot(idx);
}

/// A validated live block, with its lock still held.
pub(super) enum Held<'a> {
    Zone(Guard<'a, Arena>, *mut Zone, usize, Info),
    Large(Guard<'a, LargeState>, *mut Large, Info),
}

impl Held<'_> {
    #[inline]
    pub(super) fn info(&self) -> Info {
        match self {
            Held::Zone(_, _, _, i) | Held::Large(_, _, i) => *i,
        }
    }
}

/// The LARGE block last freed for good at `p`, as a freed block's `Info` with its history,
/// if the ring of freed blocks still remembers it. For a pointer that names no block now.
pub(super) fn freed_large(p: usize) -> Option<Info> {
    let f = LARGE.enter()?.freed.last_at(p)?;
    Some(Info {
        user: f.user,
        size: f.size,
        slot: f.user,
        slot_end: f.user + f.size,
        check_end: f.user + f.size,
        state: State::Free,
        origin: Op::from_u8(f.origin).unwrap_or(Op::Malloc),
        kind: Kind::Large,
        zone_base: f.map_base,
        dbg: f.dbg,
        guarded: f.guarded,
    })
}

/// `info` with the block's debugging history, read again (for a report).
pub fn with_history(info: Info) -> Info {
    match find(info.user) {
        Some(full) if full.user == info.user => Info {
            dbg: full.dbg,
            ..info
        },
        _ => info,
    }
}

/// Why `hold` gives no block.
pub(super) enum NotHeld {
    /// `enter` said no to the owning lock: a signal handler interrupted this thread inside
    /// the allocator (see `Mutex::enter`).
    Busy,
    /// A bad pointer, with the block it falls in if any.
    Bad(Bad, Option<Info>),
}

/// Looks `p` up and validates it under the owning lock.
#[inline]
#[unsafe(link_section = "ft_hot")]
pub(super) fn hold(p: usize) -> Result<Held<'static>, NotHeld> {
    let e = pagemap::get(p);
    if let pagemap::Owner::Large(d) = pagemap::decode(e) {
        let Some(mut l) = LARGE.enter() else {
            return Err(NotHeld::Busy);
        };
        if pagemap::get(p) != e {
            return Err(NotHeld::Bad(Bad::NotOurs, None));
        }
        l.adopt_loose();
        let d = d as *mut Large;
        // SAFETY: the entry is current under the lock, so d is a live descriptor.
        let info = large_info(unsafe { &*d });
        return match classify(p, &info) {
            Ok(()) => Ok(Held::Large(l, d, info)),
            Err(b) => Err(NotHeld::Bad(b, Some(info))),
        };
    }
    let Some((ai, z)) = zone_of(e) else {
        return Err(NotHeld::Bad(Bad::NotOurs, None));
    };
    let Some(a) = ARENAS[ai].enter() else {
        return Err(NotHeld::Busy);
    };
    if pagemap::get(p) != e {
        return Err(NotHeld::Bad(Bad::NotOurs, None));
    }
    // SAFETY: the entry is current under the arena lock, so z is a live zone of that arena.
    let zr = unsafe { &*z };
    let Some(idx) = zr.index_of(p) else {
        return Err(NotHeld::Bad(Bad::NotOurs, None));
    };
    let info = zone_info_lean(zr, idx);
    if info.state == State::Free && idx as u16 >= zr.hiwater {
        return Err(NotHeld::Bad(Bad::NotOurs, None));
    }
    match classify(p, &info) {
        Ok(()) => Ok(Held::Zone(a, z, idx, info)),
        Err(b) => Err(NotHeld::Bad(b, Some(info))),
    }
}

/// `hold` for a call that cannot take the owning lock (a signal handler that interrupted its
/// thread inside the allocator): the block is read without the lock. The block is the
/// caller's (realloc, malloc_usable_size of a live block) and the interrupted code is not
/// changing it unless the program races on it; a bad pointer is classified as well as a racy
/// read allows.
#[inline]
pub(super) fn peek(p: usize) -> Result<Info, (Bad, Option<Info>)> {
    let Some(info) = find(p) else {
        return Err((Bad::NotOurs, None));
    };
    match classify(p, &info) {
        Ok(()) => Ok(info),
        Err(b) => Err((b, Some(info))),
    }
}
