//! Slot pools: guarded blocks of at most `POOL_MAX_PAGES` data pages live in slots of
//! per-size pools, chunks of `guard | data | guard | data | ... | guard` reserved inaccessible,
//! one pool per data page count and guard size (`class_of`). A slot is taken under the
//! `LARGE` lock (`take`), opened without it (`slots::open_slot`: the slot is nobody's), and
//! published under it again (`open`). A freed slot goes back to its pool (`put_back`) when it
//! leaves the address-space quarantine, already closed, with no system call.
//!
//! ```text
//!  chunk: | guard | data 0 | guard | data 1 | guard | ... | data n-1 | guard |
//!  guard after:  slot i = data i + the guard behind it  (map_base = data)
//!  guard before: slot i = the guard in front + data i   (map_base = data - guard)
//! ```
//! Neighbouring guards and freed (PROT_NONE) slots merge into one kernel mapping, so a pooled
//! free slot costs no mapping of its own.
//!
//! # Invariants
//! - A free slot is inaccessible (PROT_NONE or guard markers), holds no pages, is `META` in the
//!   page map (so is all of a chunk but its used slots), and its descriptor (state FREE, user
//!   0, data address in `lo`) is on its class's free list, `LargeState::guarded.pools`.

use super::{layout, slots};
use crate::block::FREE;
use crate::large::{Large, LargeState, POOL_MAX_PAGES};
use crate::pagemap;
use crate::sys;

/// Address space reserved at a time for a pool (at least 8 slots); `POOL_CHUNK_FRUGAL` under an
/// address-space limit (`sys::space_limit`), which every pool's reserve counts against.
pub const POOL_CHUNK: usize = 4 << 20;
const POOL_CHUNK_FRUGAL: usize = 256 << 10;

/// The pool of slots with `data_len` bytes of data behind (or after) a `guard`-byte guard:
/// (0 for a one-page guard, 1 for a wider one; data pages - 1). None when such a block takes
/// no slot (more than `POOL_MAX_PAGES` data pages).
#[inline]
pub fn class_of(data_len: usize, guard: usize, page: usize) -> Option<(usize, usize)> {
    let pages = data_len / page;
    (1..=POOL_MAX_PAGES)
        .contains(&pages)
        .then_some(((guard > page) as usize, pages - 1))
}

/// A pool slot taken for a new block, still inaccessible (`take`).
pub struct PoolSlot {
    pub d: *mut Large,
    pub data: usize,
    pub data_len: usize,
    pub guard: usize,
    /// The block's alignment.
    pub a: usize,
    class: (usize, usize),
}

/// First half of the pool path: a slot of the pool of the block's data page count and guard
/// size, still inaccessible. The caller makes its data accessible (`slots::open_slot`, which
/// needs no lock) and finishes with `open`. A recycled slot already has its guard pages, and
/// its pages were given back when it was freed, so it reads as zero. None if the block does
/// not take a pool slot, or the pool cannot grow.
pub fn take(
    l: &mut LargeState,
    size: usize,
    cap: usize,
    align: usize,
    exact: bool,
) -> Option<PoolSlot> {
    let (a, guard, data_len) = layout::geometry(size, cap, align, exact)?;
    let class = class_of(data_len, guard, sys::page_size())?;
    take_class(l, class, a, guard, data_len)
}

/// `take` for a block of known geometry and class.
pub fn take_class(
    l: &mut LargeState,
    class: (usize, usize),
    a: usize,
    guard: usize,
    data_len: usize,
) -> Option<PoolSlot> {
    let slot = data_len + guard;
    let cls = l.guarded.pools[class.0][class.1];
    let (d, data) = if !cls.free.is_null() {
        let d = cls.free;
        // SAFETY: a pooled descriptor keeps the start of its slot's data in `lo`.
        unsafe {
            l.guarded.pools[class.0][class.1].free = (*d).next;
            (d, (*d).lo)
        }
    } else {
        if cls.next.checked_add(slot)? > cls.end {
            chunk(l, class, slot, guard)?;
        }
        let d = l.new_desc()?;
        let c = &mut l.guarded.pools[class.0][class.1];
        let data = c.next;
        c.next += slot;
        (d, data)
    };
    Some(PoolSlot {
        d,
        data,
        data_len,
        guard,
        a,
        class,
    })
}

/// Second half of the pool path: publishes the block in slot `s` (whose data the caller made
/// accessible when `ok`; otherwise the slot goes back to its pool).
pub fn open(
    l: &mut LargeState,
    s: PoolSlot,
    size: usize,
    align: usize,
    below: bool,
    exact: bool,
    ok: bool,
) -> Option<*mut Large> {
    let PoolSlot {
        d,
        data,
        data_len,
        guard,
        a,
        class,
    } = s;
    if !ok {
        put_back(l, class, d, data);
        return None;
    }
    let hi = data + data_len;
    let (map_base, user) = if below {
        (data - guard, (data + a - 1) & !(a - 1))
    } else {
        (data, (hi - size) & !(a - 1))
    };
    let desc = layout::descriptor(
        map_base,
        data_len + guard,
        hi,
        data,
        user,
        size,
        align,
        below,
        exact,
    );
    if !l.publish(d, desc) {
        pagemap::set_range(map_base, data_len + guard, pagemap::META);
        // SAFETY: the slot's data, made accessible by the caller and holding no block.
        unsafe { slots::close_slot(data, data_len) };
        put_back(l, class, d, data);
        return None;
    }
    Some(d)
}

/// Reserves a new chunk of inaccessible slots for a pool class (no memory is committed: the
/// pages are MAP_NORESERVE and inaccessible until a slot is handed out; see
/// `slots::close_chunk`). The whole chunk is `META` in the page map but for its used slots,
/// so the leak scanner does not read it (with guard markers it is a read-write mapping).
fn chunk(l: &mut LargeState, class: (usize, usize), slot: usize, guard: usize) -> Option<()> {
    let reserve = if sys::space_limit() == usize::MAX {
        POOL_CHUNK
    } else {
        POOL_CHUNK_FRUGAL
    };
    let n = (reserve / slot).max(8);
    let len = n.checked_mul(slot)?.checked_add(guard)?;
    let p = sys::map_anon(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_NORESERVE)?;
    // SAFETY: the mapping just made.
    let closed = unsafe { slots::close_chunk(p as usize, len, crate::config::get().markers) };
    if !closed || !pagemap::set_range(p as usize, len, pagemap::META) {
        pagemap::clear_range(p as usize, len);
        // SAFETY: as above; nothing uses it.
        unsafe { sys::unmap(p, len) };
        return None;
    }
    l.mapped_bytes += len;
    let c = &mut l.guarded.pools[class.0][class.1];
    c.next = p as usize + guard;
    c.end = p as usize + len;
    Some(())
}

/// Puts the descriptor of a free slot (inaccessible, not in the page map) on its class's free
/// list; the descriptor keeps the slot's data address in `lo`.
fn put_back(l: &mut LargeState, class: (usize, usize), d: *mut Large, data: usize) {
    let c = &mut l.guarded.pools[class.0][class.1];
    // SAFETY: d is unlinked and unregistered; it now only describes the free slot.
    unsafe {
        (*d).state = FREE;
        (*d).user = 0;
        (*d).lo = data;
        (*d).next = c.free;
    }
    c.free = d;
}

/// A pooled block leaves the address-space quarantine: its slot (closed when the block was
/// freed) goes back to its pool.
/// # Safety
/// `d` is a QUARANTINED pooled guarded descriptor on the live list, under the lock.
pub unsafe fn release(l: &mut LargeState, d: *mut Large) {
    // SAFETY: per the caller.
    let dr = unsafe { &*d };
    let (map_base, map_len, data, size) = (dr.map_base, dr.map_len, dr.lo, dr.size);
    let data_len = map_base + dr.usable_len - data;
    let guard = map_len - data_len;
    let Some(class) = class_of(data_len, guard, sys::page_size()) else {
        return;
    };
    pagemap::set_range(map_base, map_len, pagemap::META);
    l.unlink(d);
    l.live_bytes -= size;
    l.live_count -= 1;
    put_back(l, class, d, data);
}
