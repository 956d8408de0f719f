//! The heap walker: the one place that knows where blocks live — slots of TINY/SMALL zones,
//! plain LARGE blocks and guarded blocks (both LARGE descriptors) — and which allocator locks
//! make reading them safe. Every inspector (check, leaks, dump, cmd, segv) sees the heap
//! through it as `Block`s, so they all agree on what a block is and where it lies.
//!
//! Ways in, one per locking need:
//! - `View::take`: every lock tried a bounded number of times, never one this thread holds
//!   (a signal handler or a debugger may have stopped its holder): the dumps and commands.
//!   `complete` says whether part of the heap was left out.
//! - `View::take_all`: every lock or none (the leak scan, which marks blocks).
//! - `each_entered`: one lock at a time, taken as the allocator takes it (`Mutex::enter`):
//!   `check_every`, which runs inside malloc and free.
//! - `fault_lookup` (`fault.rs`): no lock at all, for the fault handler (a racy read it can
//!   afford), which also finds the blocks on either side of the inaccessible memory a fault hit.
//!
//! A walk yields every block that is not FREE: USED, QUARANTINED, and the transitional
//! ALLOCATING and FREEING ones, which each inspector treats as it sees fit. A zone slot held
//! in a thread cache (CACHED) is free: it is not yielded. The state is read
//! once per visit (acquire, as `block::load_state` reads it), before anything the state
//! publishes.
//!
//! # Invariants
//! A `Block<'a>` is only followed while the locks of the view (or walk) that made it are held;
//! zones and live LARGE descriptors do not change under them. Whoever takes the LARGE lock
//! adopts the blocks `alloc_loose` left aside first (see `large/loose.rs`), so the live list is whole.

use crate::block::{DebugMeta, FREE, GuardAt, Info, Kind, State, holds_no_block};
use crate::heap::{self, ARENAS, Arena, MAX_ARENAS, NARENAS};
use crate::large::{LARGE, Large, LargeState};
use crate::lock::Guard;
use crate::pagemap::{self, Owner};
use crate::zone::Zone;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU8, Ordering};

pub mod fault;

/// Reads a block's state byte as stored, the leak scan's mark bit included, with the acquire
/// of `block::load_state` (a thread dressing the block outside its lock publishes it).
/// # Safety
/// As for `block::load_state`.
#[inline]
unsafe fn load_byte(state: *const u8) -> u8 {
    // SAFETY: per the caller; every concurrent write of this byte is atomic or made under the
    // lock the reader holds.
    unsafe { AtomicU8::from_ptr(state as *mut u8) }.load(Ordering::Acquire)
}

#[derive(Clone, Copy)]
enum Place {
    Zone(*const Zone, usize),
    Mapping(*mut Large),
}

/// One block, as read during a walk.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    pub user: usize,
    /// Requested size.
    pub size: usize,
    /// TINY or SMALL (a zone slot), LARGE (a mapping: plain or guarded).
    pub kind: Kind,
    /// Where the guard page of a guarded block is (`GuardAt::No` for every other block).
    pub guarded: GuardAt,
    /// The state this visit read (a byte the leak scan marked reads as `Free`, see `byte`).
    pub state: State,
    /// The state byte as stored (the leak scan's mark bit included).
    pub byte: u8,
    /// The call that allocated it (`Op` as a byte).
    pub origin: u8,
    place: Place,
    _locks: PhantomData<&'a ()>,
}

impl<'a> Block<'a> {
    /// Slot `i` of zone `z`.
    fn in_zone(z: &'a Zone, i: usize) -> Block<'a> {
        // SAFETY: i < hiwater <= nblocks (or found by `index_of`); the state byte alone may be
        // published outside the lock, hence its own acquire load.
        let (m, byte) = unsafe { (*z.meta(i), load_byte(&raw const (*z.meta.add(i)).state)) };
        Block {
            user: z.slot_addr(i) + m.front as usize,
            size: m.size as usize,
            kind: if z.is_tiny() { Kind::Tiny } else { Kind::Small },
            guarded: GuardAt::No,
            state: State::from_u8(byte),
            byte,
            origin: m.origin,
            place: Place::Zone(z, i),
            _locks: PhantomData,
        }
    }

    /// The block of a LARGE descriptor.
    /// # Safety
    /// `d` is a descriptor (descriptors are never unmapped).
    unsafe fn of_mapping(d: *mut Large) -> Block<'a> {
        // SAFETY: per the caller; the state byte is read on its own, as for zone slots.
        unsafe {
            let byte = load_byte(&raw const (*d).state);
            Block {
                user: (*d).user,
                size: (*d).size,
                kind: Kind::Large,
                guarded: (*d).guarded,
                state: State::from_u8(byte),
                byte,
                origin: (*d).origin,
                place: Place::Mapping(d),
                _locks: PhantomData,
            }
        }
    }

    /// The zone holding the block, for a TINY or SMALL block.
    pub fn zone(&self) -> Option<&'a Zone> {
        match self.place {
            // SAFETY: a live zone, under the walk's locks (module invariant).
            Place::Zone(z, _) => Some(unsafe { &*z }),
            Place::Mapping(_) => None,
        }
    }

    /// The descriptor of a LARGE or guarded block.
    pub fn mapping(&self) -> Option<&'a Large> {
        match self.place {
            Place::Zone(..) => None,
            // SAFETY: descriptors are never unmapped; under the walk's locks it is live.
            Place::Mapping(d) => Some(unsafe { &*d }),
        }
    }

    /// The accessible extent of the block: its slot (front canary to the slot's end), or the
    /// accessible part of its mapping.
    pub fn extent(&self) -> (usize, usize) {
        match self.place {
            Place::Zone(z, i) => {
                // SAFETY: as in `zone`.
                let z = unsafe { &*z };
                let slot = z.slot_addr(i);
                (slot, slot + z.block_size as usize)
            }
            Place::Mapping(d) => {
                // SAFETY: as in `mapping`.
                let d = unsafe { &*d };
                (d.lo, d.map_base + d.usable_len)
            }
        }
    }

    /// Everything the reports need: extents, canary range, history. Its state is the one this
    /// visit read.
    pub fn info(&self) -> Info {
        let mut info = match self.place {
            // SAFETY: as in `zone`; i < nblocks.
            Place::Zone(z, i) => heap::zone_info(unsafe { &*z }, i),
            // SAFETY: as in `mapping`.
            Place::Mapping(d) => heap::large_info(unsafe { &*d }),
        };
        info.state = self.state;
        info
    }

    /// The allocation history; None for a zone without debugging metadata.
    pub fn history(&self) -> Option<DebugMeta> {
        match self.place {
            // SAFETY: as in `zone`; i < nblocks.
            Place::Zone(z, i) => unsafe { (*z).dbg(i).map(|d| d.get()) },
            // SAFETY: as in `mapping`.
            Place::Mapping(d) => Some(unsafe { (*d).dbg }),
        }
    }

    /// True if the bytes of the block can be read (a freed LARGE or guarded block is
    /// PROT_NONE).
    pub fn readable(&self) -> bool {
        self.state == State::Used || (self.state == State::Quarantined && self.kind != Kind::Large)
    }

    /// The state byte itself, for the leak scan's mark (written only with every lock held).
    pub fn state_byte(&self) -> *mut u8 {
        match self.place {
            // SAFETY: as in `zone`; the metadata lives outside the zone header, written
            // through its own pointer.
            Place::Zone(z, i) => unsafe { &raw mut (*(*z).meta.add(i)).state },
            // SAFETY: as in `mapping`.
            Place::Mapping(d) => unsafe { &raw mut (*d).state },
        }
    }
}

/// `Block::readable` for a block known by its `Info` (the same rule).
pub fn readable(info: &Info) -> bool {
    info.state == State::Used
        || (info.state == State::Quarantined
            && info.kind != Kind::Large
            && !info.guarded.is_guarded())
}

/// The blocks of one arena's zones, in the order of its zone list.
fn arena_blocks<'a>(a: &'a Arena, f: &mut impl FnMut(&Block<'a>)) {
    let mut z = a.all;
    while !z.is_null() {
        // SAFETY: zones of an arena whose lock the caller holds.
        let zr: &'a Zone = unsafe { &*z };
        zone_blocks(zr, f);
        z = zr.all_next;
    }
}

fn zone_blocks<'a>(z: &'a Zone, f: &mut impl FnMut(&Block<'a>)) {
    for i in 0..z.hiwater as usize {
        let b = Block::in_zone(z, i);
        if !holds_no_block(b.byte) {
            f(&b);
        }
    }
}

/// The LARGE and guarded blocks, in the order of the live list.
fn large_blocks<'a>(l: &'a LargeState, f: &mut impl FnMut(&Block<'a>)) {
    let mut d = l.live;
    while !d.is_null() {
        // SAFETY: live descriptors under the LARGE lock, held by the caller.
        let b = unsafe { Block::of_mapping(d) };
        if b.byte != FREE {
            f(&b);
        }
        // SAFETY: as above.
        d = unsafe { (*d).next };
    }
}

/// Visits every block, taking one lock at a time as the allocator does (`Mutex::enter`): an
/// arena (or the LARGE state) this thread holds already, or that stays busy while this thread
/// holds another lock, is skipped.
pub fn each_entered(mut f: impl FnMut(&Block)) {
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        let Some(g) = a.enter() else {
            continue;
        };
        arena_blocks(&g, &mut f);
    }
    if let Some(mut l) = LARGE.enter() {
        l.adopt_loose();
        large_blocks(&l, &mut f);
    }
}

/// Allocator locks held together, for a walk of all they cover.
pub struct View {
    arenas: [Option<Guard<'static, Arena>>; MAX_ARENAS],
    large: Option<Guard<'static, LargeState>>,
    /// Every lock is held: nothing was left out.
    pub complete: bool,
}

impl View {
    const NONE: View = View {
        arenas: [const { None }; MAX_ARENAS],
        large: None,
        complete: true,
    };

    /// Every lock that can be had in a bounded number of attempts (none this thread holds
    /// already).
    pub fn take() -> View {
        let mut v = View::NONE;
        for (i, a) in ARENAS
            .iter()
            .enumerate()
            .take(NARENAS.load(Ordering::Relaxed))
        {
            if !a.held_by_me() {
                v.arenas[i] = a.try_lock();
            }
            v.complete &= v.arenas[i].is_some();
        }
        if !LARGE.held_by_me() {
            v.large = LARGE.try_lock();
        }
        v.complete &= v.large.is_some();
        v.adopt_loose();
        v
    }

    /// Every lock, each tried a bounded number of times, or none (given up at the first that
    /// stays busy).
    pub fn take_all() -> Option<View> {
        let mut v = View::NONE;
        for (i, a) in ARENAS
            .iter()
            .enumerate()
            .take(NARENAS.load(Ordering::Relaxed))
        {
            v.arenas[i] = Some(a.try_lock()?);
        }
        v.large = Some(LARGE.try_lock()?);
        v.adopt_loose();
        Some(v)
    }

    fn adopt_loose(&mut self) {
        if let Some(l) = &mut self.large {
            l.adopt_loose();
        }
    }

    /// The arenas this view holds.
    pub fn arenas(&self) -> impl Iterator<Item = &Arena> {
        self.arenas.iter().flatten().map(|g| &**g)
    }

    /// Calls `f(start, len)` for the whole mapping of each zone of the arenas this view holds
    /// (its guards, and data pages that no block reached yet).
    pub fn each_zone_mapping(&self, mut f: impl FnMut(usize, usize)) {
        for a in self.arenas() {
            let mut z = a.all;
            while !z.is_null() {
                // SAFETY: zones of an arena whose lock this view holds.
                let zr = unsafe { &*z };
                f(zr.map_base, zr.map_len);
                z = zr.all_next;
            }
        }
    }

    /// The LARGE state, if this view holds it.
    pub fn large(&self) -> Option<&LargeState> {
        self.large.as_deref()
    }

    /// Every block this view covers: zones arena by arena, then LARGE and guarded blocks.
    pub fn each<'a>(&'a self, mut f: impl FnMut(&Block<'a>)) {
        for a in self.arenas() {
            arena_blocks(a, &mut f);
        }
        if let Some(l) = self.large() {
            large_blocks(l, &mut f);
        }
    }

    /// Every block this view covers, zones and LARGE blocks in increasing address order (the
    /// blocks of a zone in slot order).
    pub fn in_order<'a>(&'a self, mut f: impl FnMut(&Block<'a>)) {
        let mut last = 0usize;
        loop {
            let mut best = usize::MAX;
            let mut bz: Option<&'a Zone> = None;
            let mut bl: *mut Large = core::ptr::null_mut();
            for a in self.arenas() {
                let mut z = a.all;
                while !z.is_null() {
                    // SAFETY: zones of an arena this view holds.
                    let zr: &'a Zone = unsafe { &*z };
                    if zr.data > last && zr.data < best {
                        best = zr.data;
                        bz = Some(zr);
                    }
                    z = zr.all_next;
                }
            }
            if let Some(l) = self.large() {
                let mut d = l.live;
                while !d.is_null() {
                    // SAFETY: live descriptors under the LARGE lock this view holds.
                    let u = unsafe { (*d).user };
                    if u > last && u < best {
                        best = u;
                        bl = d;
                        bz = None;
                    }
                    // SAFETY: as above.
                    d = unsafe { (*d).next };
                }
            }
            if best == usize::MAX {
                return;
            }
            match bz {
                Some(z) => zone_blocks(z, &mut f),
                None => {
                    // SAFETY: a live descriptor found above, still under this view's lock.
                    let b = unsafe { Block::of_mapping(bl) };
                    if b.byte != FREE {
                        f(&b);
                    }
                }
            }
            last = best;
        }
    }

    /// The block (not FREE) whose slot or mapping holds `addr`, found through the page map,
    /// if this view holds its lock. The address may be anywhere in its slot or mapping (front
    /// canary, slack, the inaccessible region after a LARGE block): callers check the range
    /// they care about.
    pub fn at(&self, addr: usize) -> Option<Block<'_>> {
        let b = match pagemap::decode(pagemap::get(addr)) {
            Owner::None => return None,
            Owner::Zone { arena, zone } => {
                self.arenas.get(arena)?.as_ref()?;
                // SAFETY: the arena's lock is held, so its page-map entries are current and
                // `zone` is one of its live zones.
                let z: &Zone = unsafe { &*(zone as *const Zone) };
                let i = z.index_of(addr).filter(|&i| i < z.hiwater as usize)?;
                let b = Block::in_zone(z, i);
                // A slot in a thread cache is free.
                if holds_no_block(b.byte) {
                    return None;
                }
                b
            }
            Owner::Large(d) => {
                self.large.as_ref()?;
                let d = d as *mut Large;
                // SAFETY: under the LARGE lock the entry is current: a live descriptor.
                if unsafe { (*d).user } == 0 {
                    return None;
                }
                // SAFETY: as above.
                unsafe { Block::of_mapping(d) }
            }
        };
        (b.byte != FREE).then_some(b)
    }

    /// The block (not FREE) whose accessible extent (`Block::extent`) holds `addr`.
    pub fn find(&self, addr: usize) -> Option<Block<'_>> {
        self.at(addr).filter(|b| {
            let (lo, hi) = b.extent();
            addr >= lo && addr < hi
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Op;

    /// A TINY, a SMALL and a LARGE block of this process's heap: each walk yields them with
    /// their kind and size, and the lookups find them from any byte inside.
    #[test]
    fn walks_and_lookups_agree_on_zone_and_large_blocks() {
        crate::pagemap::init();
        let sizes = [24usize, 1000, 200_000];
        let kinds = [Kind::Tiny, Kind::Small, Kind::Large];
        let p = sizes.map(|n| heap::allocate(n, 16, Op::Malloc, 0, false) as usize);
        assert!(p.iter().all(|&p| p != 0));
        let v = View::take();
        assert!(v.complete);
        for (i, &u) in p.iter().enumerate() {
            let mut seen = [0usize; 2];
            v.each(|b| seen[0] += (b.user == u) as usize);
            v.in_order(|b| seen[1] += (b.user == u) as usize);
            assert_eq!(seen, [1, 1], "block {i} walked once by each walk");
            for a in [u, u + sizes[i] / 2, u + sizes[i] - 1] {
                let b = v.find(a).expect("found from inside");
                assert_eq!(
                    (b.user, b.size, b.kind, b.state),
                    (u, sizes[i], kinds[i], State::Used)
                );
                assert!(b.readable());
                assert_eq!(b.info().user, u);
            }
        }
        let mut last = 0;
        v.in_order(|b| {
            assert!(b.extent().0 >= last, "in address order");
            last = b.extent().0;
        });
        let local = 0u8;
        assert!(v.find(&local as *const u8 as usize).is_none());
        drop(v);
        let mut entered = 0;
        each_entered(|b| entered += p.contains(&b.user) as usize);
        assert_eq!(entered, 3);
        for u in p {
            heap::deallocate(u, Op::Free, 0, 0);
        }
        let v = View::take();
        v.each(|b| assert!(!p.contains(&b.user) || b.state != State::Used));
    }
}
