//! allocate / deallocate / reallocate / usable_size: picks a zone class or LARGE, applies the
//! debugging layer (canaries, fill, quarantine, history) when MALLOC_DEBUG asks for it.
//!
//! Threads: up to `MAX_ARENAS` arenas, each with its own lock and zones; a thread sticks to the
//! arena chosen at its first call (round robin). A block is always returned to the arena that
//! owns its zone (the page-map entry carries the arena index), so cross-thread frees are safe.
//!
//! # Invariants
//! - A zone is on `partial[class]` iff it has room; `empties[class]` counts its zones with no
//!   used block; at most one empty zone per class is kept, the others are unmapped.
//! - Reports are written after the arena lock is released (a report may abort, and the
//!   program's SIGABRT handler may call malloc).
//! - No path waits for a lock its own thread holds, nor, holding one, for another (see
//!   `lock.rs`). A signal handler that interrupted this thread inside the allocator, when
//!   `Mutex::enter` says no, takes another way: allocation from another arena (or a LARGE
//!   mapping of its own, `LargeState::alloc_loose`), and a free (or a release from a
//!   quarantine) left in this thread's deferred slots (`defer`), done by `drain_deferred` as
//!   soon as the interrupted code holds no lock.
//! - With debugging on, a block whose dressing (canaries, fill, history) is written after its
//!   lock is dropped stays `ALLOCATING`/`FREEING` until then (`block::publish_state`).

use crate::block::{
    ALLOCATING, BlockMeta, DebugMeta, FREE, FREEING, Family, Op, PackedDebug, QUARANTINED, USED,
    load_state, publish_state,
};
use crate::canary::{self, ALLOC_FILL, FREE_FILL};
use crate::config::{self, Fail};
use crate::large::{LARGE, Large, LargeState};
use crate::lock::{Guard, Mutex};
use crate::pagemap;
use crate::report::{self, Bad};
use crate::size_class::{MIN_ALIGN, NCLASSES, SMALL_MAX, aligned_class, class_of, class_size};
use crate::sys;
use crate::tls;
use crate::zone::Zone;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, compiler_fence};

pub const MAX_ARENAS: usize = 16;

pub struct Arena {
    partial: [*mut Zone; NCLASSES],
    empties: [u16; NCLASSES],
    pub all: *mut Zone,
    pub live_bytes: usize,
    pub live_blocks: usize,
    pub zones: usize,
    pub mapped: usize,
    /// Metadata of this arena's zones (kept out of the data's way, see `zone.rs`).
    pub meta: crate::zone::MetaCache,
}

// SAFETY: the raw zone pointers are only followed under the arena's lock.
unsafe impl Send for Arena {}

impl Arena {
    const EMPTY: Arena = Arena {
        partial: [core::ptr::null_mut(); NCLASSES],
        empties: [0; NCLASSES],
        all: core::ptr::null_mut(),
        live_bytes: 0,
        live_blocks: 0,
        zones: 0,
        mapped: 0,
        meta: crate::zone::MetaCache::EMPTY,
    };
}

pub static ARENAS: [Mutex<Arena>; MAX_ARENAS] = [const { Mutex::new(Arena::EMPTY) }; MAX_ARENAS];
pub static NARENAS: AtomicUsize = AtomicUsize::new(1);
static NEXT_ARENA: AtomicUsize = AtomicUsize::new(0);
/// Global event sequence number (debugging and logging only).
pub static SEQ: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Layout parameters of the debugging layer, fixed at init.
pub struct Layout {
    /// Bytes of front canary before each block (0 or 16).
    pub front: usize,
    /// Minimum bytes of tail canary (0 or 1).
    pub tail: usize,
    pub fill: bool,
    pub debug_meta: bool,
    pub zone_guards: bool,
    pub large_guard: usize,
}

pub static LAYOUT: crate::config::Once<Layout> = crate::config::Once::new(Layout {
    front: 0,
    tail: 0,
    fill: false,
    debug_meta: false,
    zone_guards: false,
    large_guard: 0,
});

#[inline]
fn layout() -> &'static Layout {
    LAYOUT.get()
}

/// Sets the number of arenas (init).
pub fn init_arenas(ncpu: usize) {
    NARENAS.store((ncpu * 2).clamp(1, MAX_ARENAS), Ordering::Relaxed);
    // Warm the first arena's page at start (every program allocates): the first malloc then
    // faults only on its zone.
    drop(ARENAS[0].lock());
}

#[inline]
fn my_arena() -> usize {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).arena == 0 {
            let n = NARENAS.load(Ordering::Relaxed);
            (*st).arena = (NEXT_ARENA.fetch_add(1, Ordering::Relaxed) % n) as u32 + 1;
        }
        (*st).arena as usize - 1
    }
}

/// Locks this thread's arena, or another one if `enter` says no (a signal handler that
/// interrupted malloc on this thread must not wait for itself, nor for another thread while
/// its own holds a lock). When no arena in use can be had, one more arena is put in use.
/// None only when all `MAX_ARENAS` are.
fn lock_arena() -> Option<(usize, Guard<'static, Arena>)> {
    let a = my_arena();
    if let Some(g) = ARENAS[a].enter() {
        return Some((a, g));
    }
    let mut n = NARENAS.load(Ordering::Relaxed);
    loop {
        for k in 1..n {
            let b = (a + k) % n;
            if let Some(g) = ARENAS[b].enter() {
                return Some((b, g));
            }
        }
        if n >= MAX_ARENAS {
            return None;
        }
        // Inspectors iterate over NARENAS arenas: the new one is seen by them from now on.
        n = match NARENAS.compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => n + 1,
            Err(m) => m,
        };
    }
}

// ------------------------------------------------------------------ deferred work

/// What a deferred slot asks for (bits 56.. of its word; the op is in bits 52..56, the
/// caller in the low 52 bits).
const DEFER_FREE: usize = 0;
const DEFER_QUARANTINE_RELEASE: usize = 1;
const DEFER_GUARD_RELEASE: usize = 2;
const CALLER_BITS: u32 = 52;

/// Leaves work for later because `enter` said no to the lock it needs (a signal handler
/// interrupted this thread inside the allocator). Done by `drain_deferred` once the thread
/// holds no lock. With every slot taken (the thread's own and the shared overflow table) the
/// work is dropped (the block stays allocated, or quarantined), said once.
fn defer(kind: usize, p: usize, op: Op, caller: usize) {
    let word = (caller & ((1 << CALLER_BITS) - 1)) | (op as usize) << CALLER_BITS | kind << 56;
    if !tls::push_deferred(p, word) {
        static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            let mut l: crate::fmt::Line<200> = crate::fmt::Line::new();
            crate::fmt::prefix(&mut l).s(
                b"WARNING: too many frees from signal handlers while their thread was inside malloc; some blocks stay allocated\n",
            );
            l.report();
        }
        return;
    }
    note_pending();
}

/// Marks that this thread has deferred work (see `settle`).
fn note_pending() {
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).pending = 1 };
}

/// End of every allocator call: does the work signal handlers left for this thread, if any,
/// once it holds no lock. This point, not the unlock that brings the count to 0, because
/// there the interrupted code may be in the middle of something the drained frees would
/// touch again (the log's cursor, for one). Not inside a drain (its own calls, or a handler
/// that interrupted it): the drain takes new work until there is none, and one level of it
/// keeps the work in flight bounded however fast handlers add more.
#[inline(always)]
fn settle() {
    // SAFETY: our own TLS block.
    if unsafe { (*tls::state()).pending != 0 } {
        settle_pending();
    }
}

#[cold]
#[inline(never)]
fn settle_pending() {
    let st = tls::state();
    // SAFETY: our own TLS block.
    if unsafe { (*st).locks == 0 && (*st).draining == 0 } {
        drain_deferred();
    }
}

/// Leaves the free of `p` for later (see `defer`).
fn defer_free(p: usize, op: Op, caller: usize) {
    defer(DEFER_FREE, p, op, caller);
}

/// Leaves the release of the guarded block `p` from the address-space quarantine for later.
pub fn defer_guard_release(p: usize) {
    defer(DEFER_GUARD_RELEASE, p, Op::Free, 0);
}

/// Does the work signal handlers left for this thread (from `settle`), and adopts the LARGE
/// blocks they made.
#[cold]
pub fn drain_deferred() {
    let _keep = sys::ErrnoGuard::new();
    // Asynchronous signals wait while the drain runs: handlers that interrupt its frees
    // (inside their locks) would defer more work, and under a storm of them (a handler that
    // takes longer than its timer's period) the drain would never catch up.
    let _quiet = sys::SignalsBlocked::new();
    let st = tls::state();
    // The interrupted call may still log its event with the sequence number it took.
    // SAFETY: our own TLS block.
    let seq = unsafe { (*st).last_seq };
    // SAFETY: as above.
    unsafe { (*st).draining = 1 };
    loop {
        // Cleared before looking: work deferred from here on sets it again.
        // SAFETY: as above.
        unsafe { (*st).pending = 0 };
        compiler_fence(Ordering::SeqCst);
        if crate::large::has_loose()
            && let Some(mut l) = LARGE.enter()
        {
            l.adopt_loose();
        }
        let mut work = [(0usize, 0usize); tls::DEFERRED_SLOTS];
        let n = tls::take_deferred(&mut work);
        if n == 0 {
            break;
        }
        for &(p, word) in &work[..n] {
            run_deferred(p, word);
        }
    }
    compiler_fence(Ordering::SeqCst);
    // SAFETY: as above.
    unsafe {
        (*st).draining = 0;
        (*st).last_seq = seq;
    }
}

/// One deferred entry of `drain_deferred`.
fn run_deferred(p: usize, word: usize) {
    let op = Op::from_u8((word >> CALLER_BITS) as u8 & 15);
    let caller = word & ((1 << CALLER_BITS) - 1);
    match word >> 56 {
        DEFER_FREE => {
            let size = deallocate(p, op, caller, 0);
            // The old block of a realloc is part of the realloc's own log event.
            if size != 0 && !matches!(op, Op::Realloc | Op::Reallocarray) {
                crate::log::event(op, p, 0, size, 0, caller);
            }
        }
        DEFER_QUARANTINE_RELEASE => quarantine_release(p),
        _ => crate::guard::release(p),
    }
}

fn push_partial(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is a live zone of this arena, under its lock.
    unsafe {
        let c = (*z).class as usize;
        (*z).prev = core::ptr::null_mut();
        (*z).next = a.partial[c];
        if !a.partial[c].is_null() {
            (*a.partial[c]).prev = z;
        }
        a.partial[c] = z;
        (*z).in_partial = true;
    }
}

fn unlink_partial(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is on the partial list of its class, under the arena lock.
    unsafe {
        let c = (*z).class as usize;
        if !(*z).prev.is_null() {
            (*(*z).prev).next = (*z).next;
        } else {
            a.partial[c] = (*z).next;
        }
        if !(*z).next.is_null() {
            (*(*z).next).prev = (*z).prev;
        }
        (*z).next = core::ptr::null_mut();
        (*z).prev = core::ptr::null_mut();
        (*z).in_partial = false;
    }
}

fn link_all(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is a new zone of this arena, under its lock.
    unsafe {
        (*z).all_next = a.all;
        (*z).all_prev = core::ptr::null_mut();
        if !a.all.is_null() {
            (*a.all).all_prev = z;
        }
    }
    a.all = z;
}

fn unlink_all(a: &mut Arena, z: *mut Zone) {
    // SAFETY: z is on the arena's list of all zones, under its lock.
    unsafe {
        if !(*z).all_prev.is_null() {
            (*(*z).all_prev).all_next = (*z).all_next;
        } else {
            a.all = (*z).all_next;
        }
        if !(*z).all_next.is_null() {
            (*(*z).all_next).all_prev = (*z).all_prev;
        }
    }
}

/// Returns the slot to its zone and applies the zone policy (partial list, one spare).
/// # Safety
/// Under the arena lock; `idx` is a used or quarantined slot of `z`, which belongs to `a`.
unsafe fn release_slot(a: &mut Arena, z: *mut Zone, idx: usize) {
    // SAFETY: per the caller.
    unsafe {
        let size = (*z).meta(idx).size as usize;
        a.live_bytes -= size;
        a.live_blocks -= 1;
        (*z).give(idx);
        if !(*z).in_partial {
            push_partial(a, z);
        }
        if (*z).nused == 0 {
            let c = (*z).class as usize;
            if a.empties[c] >= 1 {
                unlink_partial(a, z);
                unlink_all(a, z);
                a.zones -= 1;
                a.mapped -= (*z).map_len;
                Zone::destroy(z, &mut a.meta);
            } else {
                a.empties[c] += 1;
            }
        }
    }
}

/// Where a valid block lives, and a copy of what we know about it.
#[derive(Clone, Copy)]
pub struct Info {
    pub user: usize,
    pub size: usize,
    /// Start and end of the accessible slot (front canary to the end of the tail).
    pub slot: usize,
    pub slot_end: usize,
    /// End of the canary region checked after the block: the slot's end plus the next slot's
    /// front canary when there is a next slot in the zone (catches overflows that run into it).
    pub check_end: usize,
    pub state: u8,
    pub origin: Op,
    /// 0 TINY, 1 SMALL, 2 LARGE.
    pub kind: u8,
    pub zone_base: usize,
    pub dbg: DebugMeta,
    /// 0 plain; 1 guard page after the block; 2 guard page before it.
    pub guarded: u8,
}

pub const TINY: u8 = 0;
pub const SMALL: u8 = 1;
pub const LARGE_KIND: u8 = 2;

pub fn zone_info(z: &Zone, idx: usize) -> Info {
    let mut i = zone_info_lean(z, idx);
    // SAFETY: idx < nblocks, checked by the caller (index_of).
    i.dbg = unsafe { z.dbg(idx).map(|d| d.get()).unwrap_or(DebugMeta::EMPTY) };
    i
}

/// `zone_info` without the debugging history (one cache line less on the hot paths; reports
/// fetch the history again with `with_history`).
fn zone_info_lean(z: &Zone, idx: usize) -> Info {
    // SAFETY: idx < nblocks, checked by index_of. The state byte is read on its own (acquire):
    // it may be published by a thread dressing the block outside the lock.
    let (m, state) = unsafe {
        (
            *z.meta(idx),
            load_state(&raw const (*z.meta.add(idx)).state),
        )
    };
    let dbg = DebugMeta::EMPTY;
    let slot = z.slot_addr(idx);
    Info {
        user: slot + m.front as usize,
        size: m.size as usize,
        slot,
        slot_end: slot + z.block_size as usize,
        check_end: if idx + 1 < z.nblocks as usize && layout().front > 0 {
            slot + z.block_size as usize + layout().front
        } else {
            slot + z.block_size as usize
        },
        state,
        origin: Op::from_u8(m.origin),
        kind: if z.is_tiny() { TINY } else { SMALL },
        zone_base: z.data,
        dbg,
        guarded: 0,
    }
}

pub fn large_info(d: &Large) -> Info {
    let end = d.map_base + d.usable_len;
    // SAFETY: the state byte of a live descriptor (descriptors are never unmapped).
    let state = unsafe { load_state(&raw const d.state) };
    Info {
        user: d.user,
        size: d.size,
        slot: d.lo,
        slot_end: end,
        check_end: if d.guarded != 0 {
            end
        } else {
            end.min(d.user + d.size + sys::page_size())
        },
        state,
        origin: Op::from_u8(d.origin),
        kind: LARGE_KIND,
        zone_base: d.map_base,
        dbg: d.dbg,
        guarded: d.guarded,
    }
}

/// Classifies `p` against a block `info` that contains it.
fn classify(p: usize, info: &Info) -> Result<(), Bad> {
    if p == info.user {
        return match info.state {
            USED => Ok(()),
            _ => Err(Bad::DoubleFree),
        };
    }
    if info.state != USED {
        return Err(if p % MIN_ALIGN != 0 {
            Bad::Misaligned
        } else {
            Bad::InsideFreed
        });
    }
    if p % MIN_ALIGN != 0 {
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
fn zone_of(e: usize) -> Option<(usize, *mut Zone)> {
    match pagemap::decode(e) {
        pagemap::Owner::Zone { arena, zone } if arena < MAX_ARENAS => {
            Some((arena, zone as *mut Zone))
        }
        _ => None,
    }
}

fn fail_injected(size: usize) -> bool {
    let c = config::get();
    match c.fail {
        Fail::Off => false,
        Fail::Nth(n) => CALLS.fetch_add(1, Ordering::Relaxed) + 1 == n,
        Fail::Every(n) => (CALLS.fetch_add(1, Ordering::Relaxed) + 1) % n == 0,
        Fail::Size(s) => size as u64 >= s,
    }
}

/// A new event sequence number, remembered in this thread's state for the log record of the
/// same call (`take_seq`).
#[inline]
pub fn next_seq() -> u64 {
    let s = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).last_seq = s };
    s
}

/// The sequence number the heap gave to this thread's current event, or a new one.
#[inline]
pub fn take_seq() -> u64 {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe {
        let s = (*st).last_seq;
        if s != 0 {
            (*st).last_seq = 0;
            return s;
        }
    }
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

pub fn stamp_alloc(caller: usize) -> DebugMeta {
    DebugMeta {
        alloc_seq: next_seq(),
        free_seq: 0,
        alloc_caller: caller,
        free_caller: 0,
        alloc_tid: tls::tid(),
        free_tid: 0,
    }
}

/// Allocates `size` bytes aligned to `align` (a power of two; <= 16 means the default).
/// Returns null with errno set on failure.
pub fn allocate(size: usize, align: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    let p = allocate_cap(size, size, align, op, caller, zero);
    settle();
    p
}

/// `allocate` choosing the zone class for `cap >= size` bytes (realloc growth headroom).
fn allocate_cap(
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
            crate::check::maybe_check_all();
        }
    }
    let mut p = place(size, cap, align, op, caller, zero);
    if p.is_null() && reclaim(size) {
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
fn place(size: usize, cap: usize, align: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    if config::get().enabled && crate::guard::wants(size, align) {
        if let Some(p) = crate::guard::allocate(size, cap, align, op, caller, zero) {
            return p as *mut u8;
        }
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

/// A mapping failed for a request of `size` bytes: gives back the address space that freed
/// blocks still hold — the address-space quarantine of guarded blocks (up to 512 MiB of
/// inaccessible ranges), the ordinary quarantine, the LARGE cache and bank, spare empty zones
/// — so that the request can be tried once more before the answer is ENOMEM. Returns whether
/// it is worth a retry. Nothing is done for a request that nothing could make fit (beyond
/// RLIMIT_AS, or RAM and swap together: the kernel refuses such a mapping whatever we hold),
/// so probing huge sizes does not flush the quarantines, nor from inside one of our own locks
/// (a signal handler that interrupted the allocator on this thread).
fn reclaim(size: usize) -> bool {
    if size > sys::rlimit_as() || size > sys::ram_and_swap() {
        return false;
    }
    if LARGE.held_by_me()
        || ARENAS.iter().any(|a| a.held_by_me())
        || crate::guard::held_by_me()
        || crate::quarantine::held_by_me()
    {
        return false;
    }
    let mut any = crate::guard::release_all();
    if crate::quarantine::stats().0 > 0 {
        crate::quarantine::drain();
        any = true;
    }
    trim() || any
}

fn zone_alloc(c: usize, size: usize, front: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    let lay = layout();
    let Some((ai, mut a)) = lock_arena() else {
        return core::ptr::null_mut();
    };
    // With debugging on, the block is dressed after the unlock: ALLOCATING until then.
    let dressed = config::get().enabled;
    let mut z = a.partial[c];
    if z.is_null() {
        let Some(nz) = Zone::create(c, ai, lay.debug_meta, lay.zone_guards, &mut a.meta) else {
            return core::ptr::null_mut();
        };
        z = nz;
        link_all(&mut a, z);
        push_partial(&mut a, z);
        a.empties[c] += 1;
        a.zones += 1;
        // SAFETY: z was just created.
        a.mapped += unsafe { (*z).map_len };
    }
    // SAFETY: z is a live zone of this arena with room, under the lock.
    let (slot, fresh, next_exists, dbg, state) = unsafe {
        let zr = &mut *z;
        if zr.nused == 0 {
            a.empties[c] -= 1;
        }
        let Some((i, fresh)) = zr.take() else {
            if zr.nused == 0 {
                a.empties[c] += 1;
            }
            return core::ptr::null_mut();
        };
        if !zr.has_room() {
            unlink_partial(&mut a, z);
        }
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
        (
            zr.slot_addr(i),
            fresh,
            i + 1 < zr.nblocks as usize,
            dbg,
            &raw mut (*zr.meta.add(i)).state,
        )
    };
    a.live_bytes += size;
    a.live_blocks += 1;
    drop(a);
    if !dbg.is_null() {
        // The history is written after the unlock: its line is often cold, and a store miss
        // inside the lock would stall the unlock. The slot is ours alone until we return it.
        // Its sequence number is taken now, after the slot left the free list, so it is higher
        // than that of the free that put the slot there.
        // SAFETY: the slot's history entry, owned by this call like the slot.
        unsafe { (*dbg).set_alloc(next_seq(), caller, tls::tid()) };
    }
    let user = slot + front;
    // SAFETY: the slot [slot, slot + class size) is ours and now owned by this call.
    unsafe {
        if lay.front > 0 || lay.tail > 0 {
            canary::write(slot, user);
            canary::write(user + size, slot + class_size(c));
            if fresh && lay.front > 0 && next_exists {
                // The next slot was never used: give it its front canary now, so an overflow
                // that runs past this slot is seen when this block is checked.
                canary::write(slot + class_size(c), slot + class_size(c) + lay.front);
            }
        }
        if zero {
            if !fresh || lay.fill {
                core::ptr::write_bytes(user as *mut u8, 0, size);
            }
        } else if lay.fill {
            core::ptr::write_bytes(user as *mut u8, ALLOC_FILL, size);
        }
        if dressed {
            // The zone lives while this block is in it.
            publish_state(state, USED);
        }
    }
    user as *mut u8
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
    let (user, slot, slot_end) =
        unsafe { ((*d).user, (*d).map_base, (*d).map_base + (*d).usable_len) };
    // SAFETY: the mapping is ours and owned by this call now.
    unsafe {
        if lay.front > 0 || lay.tail > 0 {
            canary::write(slot, user);
            // Canary up to the end of the tail area (bounded: at most one page).
            canary::write(user + size, slot_end.min(user + size + sys::page_size()));
        }
        if zero {
            if !clean || lay.fill {
                core::ptr::write_bytes(user as *mut u8, 0, size);
            }
        } else if lay.fill {
            core::ptr::write_bytes(user as *mut u8, ALLOC_FILL, size.min(LARGE_FILL_MAX));
        }
        if dressed {
            publish_state(&raw mut (*d).state, USED);
        }
    }
    user as *mut u8
}

/// Alloc fill of LARGE blocks covers at most this many bytes (fresh LARGE pages read as zero,
/// and freed ones become inaccessible).
pub use crate::block::LARGE_FILL_MAX;

/// A validated live block, with its lock still held.
enum Held<'a> {
    Zone(crate::lock::Guard<'a, Arena>, *mut Zone, usize, Info),
    Large(
        crate::lock::Guard<'a, crate::large::LargeState>,
        *mut Large,
        Info,
    ),
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
enum NotHeld {
    /// `enter` said no to the owning lock: a signal handler interrupted this thread inside
    /// the allocator (see `Mutex::enter`).
    Busy,
    /// A bad pointer, with the block it falls in if any.
    Bad(Bad, Option<Info>),
}

/// Looks `p` up and validates it under the owning lock.
fn hold(p: usize) -> Result<Held<'static>, NotHeld> {
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
    if info.state == FREE && idx as u32 >= zr.hiwater {
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
fn peek(p: usize) -> Result<Info, (Bad, Option<Info>)> {
    let Some(info) = find(p) else {
        return Err((Bad::NotOurs, None));
    };
    match classify(p, &info) {
        Ok(()) => Ok(info),
        Err(b) => Err((b, Some(info))),
    }
}

/// Debug checks on a live block before it is freed or resized: family, sized delete, canaries.
/// Returns the first problem found.
fn debug_checks(info: &Info, op: Op, sized: usize) -> Option<Bad> {
    let cfg = config::get();
    let lay = layout();
    if cfg.check {
        let want = info.origin.family();
        let have = op.family();
        let ok = match op {
            Op::Realloc | Op::Reallocarray | Op::UsableSize => want == Family::Malloc,
            _ => want == have,
        };
        if !ok {
            return Some(Bad::Mismatch);
        }
        if sized != 0 && sized != info.size {
            return Some(Bad::SizedDelete(sized));
        }
    }
    if lay.front > 0 || lay.tail > 0 || info.guarded != 0 {
        // A guarded block has canary bytes only in the 16 bytes before it (the rest of its
        // first page is unused) and in the alignment gap up to its guard page.
        let front_from = if info.guarded != 0 {
            info.slot.max(info.user.saturating_sub(16))
        } else {
            info.slot
        };
        // SAFETY: the slot is ours and readable.
        unsafe {
            if let Some(a) = canary::check(front_from, info.user) {
                return Some(Bad::Underflow(a));
            }
            if let Some(a) = canary::check(info.user + info.size, info.check_end) {
                return Some(Bad::Overflow(a));
            }
        }
    }
    None
}

/// The common case of free with debugging off: a live zone block, released under its arena
/// lock with no copy of its metadata. False sends the call to `deallocate` (LARGE blocks,
/// anything suspicious), which re-checks everything.
#[inline]
pub fn free_fast(p: usize) -> bool {
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
        release_slot(&mut a, z, idx);
    }
    drop(a);
    settle();
    true
}

/// Frees `p` (free, delete, realloc to 0). `sized` is the size a sized delete passed (0: none).
pub fn deallocate(p: usize, op: Op, caller: usize, sized: usize) -> usize {
    let size = deallocate_call(p, op, caller, sized);
    settle();
    size
}

fn deallocate_call(p: usize, op: Op, caller: usize, sized: usize) -> usize {
    let cfg = config::get();
    if cfg.enabled && cfg.check_every > 0 {
        crate::check::maybe_check_all();
    }
    // The free's sequence number is taken before the block can be released, so it is lower
    // than that of any allocation that reuses the slot.
    let seq = if layout().debug_meta { next_seq() } else { 0 };
    let held = match hold(p) {
        Ok(h) => h,
        Err(NotHeld::Busy) => {
            // A signal handler interrupted this thread inside the allocator: the free is done
            // (and checked, and logged) once the interrupted code holds no lock.
            defer_free(p, op, caller);
            return 0;
        }
        Err(NotHeld::Bad(bad, info)) => {
            report::bad_pointer(op, p, bad, info.map(with_history).as_ref(), caller);
            return 0;
        }
    };
    if cfg.enabled {
        let info = match &held {
            Held::Zone(_, _, _, i) | Held::Large(_, _, i) => *i,
        };
        if let Some(bad) = debug_checks(&info, op, sized) {
            drop(held);
            report::bad_block(op, p, bad, &with_history(info), caller);
            // Going on (on_error=continue): a corrupted block is kept rather than reused.
            if matches!(bad, Bad::Overflow(_) | Bad::Underflow(_)) {
                return keep_freed(p, caller, seq);
            }
            return deallocate_unchecked(p, op, caller, seq);
        }
    }
    let size = finish_free(held, op, caller, seq);
    if cfg.enabled {
        crate::stats::sub_live(size);
    }
    size
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
                    d.set_free(seq, caller, tls::tid());
                }
            }
            a.live_bytes -= info.size;
            (info.size, true)
        }
        Ok(Held::Large(mut l, d, info)) => {
            // SAFETY: d is a used descriptor under the LARGE lock.
            unsafe {
                (*d).state = QUARANTINED;
                (*d).dbg.free_seq = seq;
                (*d).dbg.free_caller = caller;
                (*d).dbg.free_tid = tls::tid();
            }
            l.live_bytes -= info.size;
            (info.size, false)
        }
        Err(_) => return 0,
    };
    if zone && layout().fill {
        // SAFETY: the slot is ours for good now (kept, no longer the program's).
        unsafe { core::ptr::write_bytes(p as *mut u8, FREE_FILL, size) };
    }
    crate::stats::sub_live(size);
    size
}

/// Frees a block whose debug checks were already reported.
fn deallocate_unchecked(p: usize, op: Op, caller: usize, seq: u64) -> usize {
    match hold(p) {
        Ok(h) => {
            let size = finish_free(h, op, caller, seq);
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
fn finish_free(held: Held<'static>, op: Op, caller: usize, seq: u64) -> usize {
    let lay = layout();
    let quarantine = config::get().quarantine > 0;
    match held {
        Held::Zone(mut a, z, idx, info) => {
            if quarantine {
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
                drop(a);
                if !dbg.is_null() {
                    // Written after the unlock (a cold line): the quarantined slot stays ours
                    // until we push it.
                    // SAFETY: the history entry of a slot only this call can release.
                    unsafe { (*dbg).set_free(seq, caller, tls::tid()) };
                }
                if lay.fill {
                    // SAFETY: the block is ours (quarantined) and no longer the program's.
                    unsafe { core::ptr::write_bytes(info.user as *mut u8, FREE_FILL, info.size) };
                }
                // SAFETY: the block's state; its zone lives while the block is in it.
                unsafe { publish_state(state, QUARANTINED) };
                crate::quarantine::push(info.user, info.size);
            } else {
                // SAFETY: idx is a used slot of z, under the arena lock.
                unsafe {
                    if let Some(d) = (*z).dbg(idx) {
                        d.set_free(seq, caller, tls::tid());
                    }
                }
                if lay.fill {
                    // SAFETY: the block is still ours under the lock.
                    unsafe { core::ptr::write_bytes(info.user as *mut u8, FREE_FILL, info.size) };
                }
                // SAFETY: idx is a used slot of z, under the arena lock.
                unsafe { release_slot(&mut a, z, idx) };
            }
            let _ = op;
            info.size
        }
        Held::Large(mut l, d, info) => {
            let guarded = info.guarded != 0;
            // A LARGE block bigger than a quarantine shard would leave it at once: it goes
            // back to the cache like any other.
            let quarantine = quarantine && info.size <= crate::quarantine::shard_budget();
            let mut gone = (0, 0);
            if quarantine || guarded {
                // FREEING until its range is closed or filled after the unlock.
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe {
                    (*d).state = FREEING;
                    if lay.debug_meta {
                        (*d).dbg.free_seq = seq;
                        (*d).dbg.free_caller = caller;
                        (*d).dbg.free_tid = tls::tid();
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
                    unsafe { core::ptr::write_bytes(info.user as *mut u8, FREE_FILL, info.size) };
                }
                // SAFETY: d is our FREEING descriptor (never unmapped).
                unsafe { publish_state(&raw mut (*d).state, QUARANTINED) };
                if guarded {
                    crate::guard::retire(info.user, info.size);
                } else {
                    crate::quarantine::push(info.user, info.size);
                }
            } else {
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe { l.free(d) };
            }
            info.size
        }
    }
}

/// A quarantined LARGE block of this size is filled and checked like a zone block instead of
/// being made inaccessible: up to `LARGE_FILL_MAX` bytes a fill costs less than the two
/// mprotect calls (and the split mappings) it replaces.
#[inline]
fn large_fill_quarantine(size: usize) -> bool {
    layout().fill && size <= LARGE_FILL_MAX
}

/// Really releases a block leaving the quarantine; verifies its free fill first.
pub fn quarantine_release(p: usize) {
    let e = pagemap::get(p);
    if let pagemap::Owner::Large(d) = pagemap::decode(e) {
        let Some(mut l) = LARGE.enter() else {
            defer(DEFER_QUARANTINE_RELEASE, p, Op::Free, 0);
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
            if (*d).guarded != 0 {
                // Guarded blocks leave through the guard ring (a pool slot must never reach
                // `LargeState::free`, which would unmap part of its pool).
                drop(l);
                crate::guard::release(p);
                return;
            } else if large_fill_quarantine((*d).size) {
                let info = large_info(&*d);
                let bad = canary::check_fill(info.user, info.user + info.size, FREE_FILL);
                if let Some(addr) = bad {
                    // Reported with the block still quarantined (its history intact); the
                    // block is leaked rather than reused.
                    let info = Info {
                        dbg: (*d).dbg,
                        ..info
                    };
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
        defer(DEFER_QUARANTINE_RELEASE, p, Op::Free, 0);
        return;
    };
    let bad = release_quarantined_zone(&mut a, ai, p);
    drop(a);
    if let Some((info, addr)) = bad {
        report::write_after_free(&with_history(info), addr);
    }
}

/// `quarantine_release` of many blocks (a batch leaving the quarantine, oldest first, with
/// their sizes): one arena lock for a run of blocks of the same arena; the memory of the block
/// a few places ahead is prefetched while one is checked.
pub fn quarantine_release_many(ps: &[(usize, usize)]) {
    const AHEAD: usize = 4;
    for &(p, n) in ps.iter().take(AHEAD) {
        prefetch_block(p, n);
    }
    let mut i = 0;
    while i < ps.len() {
        let e = pagemap::get(ps[i].0);
        let Some((ai, _)) = zone_of(e) else {
            quarantine_release(ps[i].0);
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
            let back = crate::quarantine::requeue(&ps[start..i]);
            for &(p, _) in &ps[start + back..i] {
                defer(DEFER_QUARANTINE_RELEASE, p, Op::Free, 0);
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
            bad = release_quarantined_zone(&mut a, ai, ps[i].0);
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
fn release_quarantined_zone(a: &mut Arena, ai: usize, p: usize) -> Option<(Info, usize)> {
    let lay = layout();
    let (bi, z) = zone_of(pagemap::get(p))?;
    if bi != ai {
        return None;
    }
    // SAFETY: the entry is current under the arena lock, so z is a live zone of this arena.
    let idx = unsafe { (*z).index_of(p) }?;
    // SAFETY: as above.
    let info = zone_info_lean(unsafe { &*z }, idx);
    if info.state != QUARANTINED || info.user != p {
        return None;
    }
    let bad = if lay.fill {
        // SAFETY: the quarantined slot is ours.
        unsafe { canary::check_fill(info.user, info.user + info.size, FREE_FILL) }
    } else {
        None
    };
    // SAFETY: quarantined slot of z under the lock.
    unsafe {
        a.live_bytes += info.size; // release_slot subtracts it again
        release_slot(a, z, idx);
    }
    bad.map(|addr| (info, addr))
}

/// realloc: `p` may be null (malloc) and `n` may be 0 (free).
pub fn reallocate(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    let q = reallocate_call(p, n, op, caller);
    settle();
    q
}

fn reallocate_call(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    if p == 0 {
        return allocate(n, 0, op, caller, false);
    }
    if n == 0 {
        deallocate(p, op, caller, 0);
        return core::ptr::null_mut();
    }
    let cfg = config::get();
    if n > isize::MAX as usize {
        if cfg.enabled {
            report::absurd_size(op, n, caller);
        }
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    let lay = layout();
    let held = match hold(p) {
        Ok(h) => h,
        Err(NotHeld::Busy) => return realloc_reentered(p, n, op, caller),
        Err(NotHeld::Bad(bad, info)) => {
            report::bad_pointer(op, p, bad, info.map(with_history).as_ref(), caller);
            return core::ptr::null_mut();
        }
    };
    let info = match &held {
        Held::Zone(_, _, _, i) | Held::Large(_, _, i) => *i,
    };
    if cfg.enabled {
        if let Some(bad) = debug_checks(&info, op, 0) {
            drop(held);
            report::bad_block(op, p, bad, &with_history(info), caller);
            return core::ptr::null_mut();
        }
        if crate::guard::is_guarded(info.guarded) {
            if let Held::Large(mut l, d, _) = held {
                // SAFETY: d is a used guarded descriptor under the LARGE lock.
                if let Some(q) = unsafe { crate::guard::resize(&mut l, d, n) } {
                    // SAFETY: as above; its canaries move with it (ALLOCATING until then).
                    let (lo, hi) = unsafe {
                        (*d).state = ALLOCATING;
                        ((*d).lo, (*d).map_base + (*d).usable_len)
                    };
                    drop(l);
                    // SAFETY: [lo, hi) is the accessible part of the block's own mapping.
                    unsafe {
                        canary::write(q + n, hi);
                        canary::write(lo.max(q.saturating_sub(16)), q);
                        if lay.fill && n > info.size {
                            core::ptr::write_bytes(
                                (q + info.size) as *mut u8,
                                ALLOC_FILL,
                                (n - info.size).min(LARGE_FILL_MAX),
                            );
                        }
                        publish_state(&raw mut (*d).state, USED);
                    }
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                    return q as *mut u8;
                }
            }
            return move_block(p, &info, n, op, caller);
        }
    }
    match held {
        Held::Zone(mut a, z, idx, info) => {
            let room = info.slot_end - info.user - lay.tail;
            // SAFETY: z is live under the lock.
            let class = unsafe { (*z).class as usize };
            let need = (info.user - info.slot) + n + lay.tail;
            if n <= room && (need > SMALL_MAX || class_of(need) == class || n * 2 > room) {
                // SAFETY: used slot of z under the lock; with debugging on its tail canary
                // moves after the unlock (ALLOCATING until then).
                let state = unsafe {
                    let m = (*z).meta(idx);
                    m.size = n as u16;
                    if cfg.enabled {
                        m.state = ALLOCATING;
                    }
                    &raw mut m.state
                };
                a.live_bytes = a.live_bytes - info.size + n;
                drop(a);
                if cfg.enabled {
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                }
                if lay.tail > 0 {
                    // SAFETY: the slot is ours; the tail moves with the new size.
                    unsafe { canary::write(p + n, info.slot_end) };
                }
                if lay.fill && n > info.size {
                    // SAFETY: as above.
                    unsafe {
                        core::ptr::write_bytes(
                            (p + info.size) as *mut u8,
                            ALLOC_FILL,
                            n - info.size,
                        )
                    };
                }
                if cfg.enabled {
                    // SAFETY: the state of our block, live in its zone.
                    unsafe { publish_state(state, USED) };
                }
                return p as *mut u8;
            }
            drop(a);
            move_block(p, &info, n, op, caller)
        }
        Held::Large(mut l, d, info) => {
            if lay.front == 0 && lay.tail == 0 && n > SMALL_MAX / 2 {
                // SAFETY: d is a used descriptor without front offset or guard.
                if let Some(q) = unsafe { l.resize(d, n, 0) } {
                    if cfg.enabled {
                        crate::stats::sub_live(info.size);
                        crate::stats::add_live(n);
                    }
                    return q as *mut u8;
                }
            } else if n > SMALL_MAX / 2 && n + lay.tail.max(8) <= info.slot_end - info.user {
                // Debugging on: the block still fits its mapping (before the guard region).
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe {
                    (*d).size = n;
                    (*d).state = ALLOCATING;
                }
                l.live_bytes = l.live_bytes - info.size + n;
                drop(l);
                crate::stats::sub_live(info.size);
                crate::stats::add_live(n);
                // SAFETY: the mapping up to slot_end is ours and accessible.
                unsafe {
                    if n > info.size && lay.fill {
                        let f = (n - info.size).min(LARGE_FILL_MAX);
                        core::ptr::write_bytes((p + info.size) as *mut u8, ALLOC_FILL, f);
                    }
                    if lay.tail > 0 {
                        canary::write(p + n, info.slot_end.min(p + n + sys::page_size()));
                    }
                    publish_state(&raw mut (*d).state, USED);
                }
                return p as *mut u8;
            } else if n > info.size && n > SMALL_MAX / 2 && info.guarded == 0 {
                // Debugging on, the block must grow past its mapping: move its pages with
                // mremap (no copy, no new page faults). No headroom: the region behind must
                // start right after the block's last page.
                let tail = lay.tail.max(8);
                // SAFETY: d is a used unguarded descriptor under the LARGE lock.
                if let Some(q) = unsafe { l.grow_with_region(d, n, tail) } {
                    // SAFETY: as above.
                    let end = unsafe {
                        (*d).state = ALLOCATING;
                        (*d).map_base + (*d).usable_len
                    };
                    drop(l);
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                    // SAFETY: the block's accessible range [q, end) is ours.
                    unsafe {
                        if lay.fill {
                            let f = (n - info.size).min(LARGE_FILL_MAX);
                            core::ptr::write_bytes((q + info.size) as *mut u8, ALLOC_FILL, f);
                        }
                        if lay.tail > 0 {
                            canary::write(q + n, end.min(q + n + sys::page_size()));
                        }
                        publish_state(&raw mut (*d).state, USED);
                    }
                    return q as *mut u8;
                }
            }
            drop(l);
            move_block(p, &info, n, op, caller)
        }
    }
}

/// realloc of a block whose lock `enter` refused (a signal handler interrupted this thread
/// inside the allocator): the block moves to a new one (another arena, or a mapping of its
/// own) and the old one is freed once the interrupted code holds no lock.
fn realloc_reentered(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    let info = match peek(p) {
        Ok(i) => i,
        Err((bad, info)) => {
            report::bad_pointer(op, p, bad, info.as_ref(), caller);
            return core::ptr::null_mut();
        }
    };
    let q = allocate_cap(n, n, 0, op, caller, false);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live and at least min(old, n) bytes long; they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q, info.size.min(n)) };
    defer_free(p, op, caller);
    q
}

fn move_block(p: usize, info: &Info, n: usize, op: Op, caller: usize) -> *mut u8 {
    // A block that grows by realloc gets headroom, so the next few reallocs stay in place. A
    // LARGE one gets room to double (buffers often grow by doubling; the headroom is address
    // space whose pages are only touched when the block grows into them), except with
    // debugging on.
    let lay = layout();
    let cap = if n <= info.size {
        n
    } else if n > SMALL_MAX && (lay.front > 0 || lay.tail > 0) {
        // Debugging: no headroom for LARGE blocks, whose inaccessible region must follow the
        // block's last page (they grow by mremap instead, see `reallocate`).
        n
    } else if n > SMALL_MAX {
        n.saturating_mul(2)
    } else {
        n + n / 2
    };
    let q = allocate_cap(n, cap, 0, op, caller, false);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live and at least min(old, n) bytes long; they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q, info.size.min(n)) };
    deallocate(p, op, caller, 0);
    q
}

/// malloc_usable_size.
pub fn usable_size(p: usize, caller: usize) -> usize {
    let n = usable_size_call(p, caller);
    settle();
    n
}

fn usable_size_call(p: usize, caller: usize) -> usize {
    if p == 0 {
        return 0;
    }
    let lay = layout();
    let cfg = config::get();
    let info = match hold(p) {
        Ok(held) => match held {
            Held::Zone(_, _, _, i) | Held::Large(_, _, i) => i,
        },
        Err(e) => {
            let (bad, info) = match e {
                NotHeld::Bad(bad, info) => (bad, info),
                // A signal handler interrupted this thread inside the block's lock.
                NotHeld::Busy => match peek(p) {
                    Ok(i) => return usable_from(&i),
                    Err(b) => b,
                },
            };
            report::bad_pointer(
                Op::UsableSize,
                p,
                bad,
                info.map(with_history).as_ref(),
                caller,
            );
            return 0;
        }
    };
    if cfg.enabled && cfg.check {
        if let Some(bad) = debug_checks(&info, Op::UsableSize, 0) {
            report::bad_block(Op::UsableSize, p, bad, &with_history(info), caller);
            return 0;
        }
    }
    let _ = lay;
    usable_from(&info)
}

/// The usable size of a live block: its size when bytes after it are checked (canaries,
/// guard), else the rest of its slot.
fn usable_from(info: &Info) -> usize {
    if layout().tail > 0 || crate::guard::is_guarded(info.guarded) {
        return info.size;
    }
    info.slot_end - info.user
}

/// Totals for mallinfo and stats: (live bytes, live blocks, mapped bytes).
pub fn totals() -> (usize, usize, usize) {
    let (mut b, mut n, mut m) = (0, 0, 0);
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        if let Some(g) = a.try_lock(100) {
            b += g.live_bytes;
            n += g.live_blocks;
            m += g.mapped;
        }
    }
    if let Some(l) = LARGE.try_lock(100) {
        b += l.live_bytes;
        n += l.live_count;
        m += l.mapped_bytes;
    }
    (b, n, m)
}

/// Releases the cached LARGE mappings and the spare empty zones (malloc_trim).
pub fn trim() -> bool {
    // Locks this thread holds (malloc_trim from a signal handler) are skipped.
    let mut freed = LARGE.enter().is_some_and(|mut l| l.trim() > 0);
    for a in ARENAS.iter().take(NARENAS.load(Ordering::Relaxed)) {
        let Some(mut g) = a.enter() else {
            continue;
        };
        let mut z = g.all;
        while !z.is_null() {
            // SAFETY: zones of this arena under its lock.
            let next = unsafe { (*z).all_next };
            // SAFETY: as above.
            if unsafe { (*z).nused } == 0 {
                // SAFETY: as above; an empty zone is on the partial list.
                unsafe {
                    let c = (*z).class as usize;
                    unlink_partial(&mut g, z);
                    unlink_all(&mut g, z);
                    g.empties[c] -= 1;
                    g.zones -= 1;
                    g.mapped -= (*z).map_len;
                    Zone::destroy(z, &mut g.meta);
                }
                freed = true;
            }
            z = next;
        }
    }
    freed
}

/// Fork: take every allocator lock (prepare), release (parent) or reset (child).
pub fn lock_all() {
    crate::leaks::before_fork();
    crate::guard::lock_forever();
    crate::quarantine::lock_forever();
    for a in ARENAS.iter() {
        a.lock_forever();
    }
    LARGE.lock_forever();
}

pub fn unlock_all() {
    // SAFETY: lock_all took these locks on this thread.
    unsafe {
        LARGE.force_unlock();
        for a in ARENAS.iter() {
            a.force_unlock();
        }
    }
    crate::quarantine::unlock_forever();
    crate::guard::unlock_forever();
}

pub fn reset_all() {
    // SAFETY: fork child: we are the only thread.
    unsafe {
        LARGE.reset();
        for a in ARENAS.iter() {
            a.reset();
        }
    }
    crate::quarantine::reset();
    crate::guard::reset();
    crate::leaks::after_fork_child();
}
