//! The shape of a guarded block: its alignment, its guard size and data length, and its
//! descriptor (guard after the block, before it, or after it with no alignment).

use crate::block::{GuardAt, Op};
use crate::large::{Large, MAX_PIECES};
use crate::sys;

/// Alignment of a guarded block: an explicit one is kept; otherwise 16 bytes from 16 bytes up,
/// as glibc gives (Rust's standard library asks malloc for 16-aligned memory of any size from
/// 16 up, and hashbrown's tables fault with less), 8 below (no object of fewer than 16 bytes
/// needs more), or 1 with `guard=exact`.
pub fn align_of(size: usize, align: usize, exact: bool) -> usize {
    if align > 0 {
        return align.max(if exact { 1 } else { 8 }).next_power_of_two();
    }
    if exact {
        return 1;
    }
    if size == 0 || size >= MALLOC_ALIGN {
        MALLOC_ALIGN
    } else {
        8
    }
}

/// The alignment a guarded block of `size` bytes made by `op` must have, before `align_of`
/// rounds it: the explicit one; for plain `operator new` and `new[]`, 16 bytes
/// (`__STDCPP_DEFAULT_NEW_ALIGNMENT__` on 64-bit Linux) even below 16 bytes, as C++ promises;
/// 0 (by size) for the C functions. `guard=exact` keeps 1.
pub fn requested_align(size: usize, align: usize, op: Op, exact: bool) -> usize {
    if align == 0 && !exact && size < MALLOC_ALIGN && matches!(op, Op::New | Op::NewArr) {
        MALLOC_ALIGN
    } else {
        align
    }
}

/// What glibc's malloc and plain `operator new` promise on 64-bit Linux.
const MALLOC_ALIGN: usize = 2 * core::mem::size_of::<usize>();

/// Alignment, guard size and data length (page multiple, the block's room rounded up to its
/// alignment: its end at a page boundary, the block starts aligned) of a guarded block; None on
/// overflow.
pub fn geometry(
    size: usize,
    cap: usize,
    align: usize,
    exact: bool,
) -> Option<(usize, usize, usize)> {
    let page = sys::page_size();
    let a = align_of(size, align, exact);
    // Big blocks get a wide inaccessible region (an access a few KiB off still faults).
    let guard = if size > crate::size_class::SMALL_MAX {
        crate::size_class::WIDE_GUARD.next_multiple_of(page)
    } else {
        page
    };
    let room = cap.max(size).max(1);
    let data_len = if a > page {
        sys::page_round(room)?.checked_add(a)?
    } else {
        sys::page_round(room.checked_next_multiple_of(a)?)?
    };
    if data_len.checked_add(guard)? > isize::MAX as usize {
        return None;
    }
    Some((a, guard, data_len))
}

/// The descriptor of a new guarded block: its mapping (or pool slot) `[map_base,
/// map_base + map_len)`, accessible part `[lo, hi)`, guard below or after it.
#[allow(clippy::too_many_arguments)]
pub fn descriptor(
    map_base: usize,
    map_len: usize,
    hi: usize,
    lo: usize,
    user: usize,
    size: usize,
    align: usize,
    below: bool,
    exact: bool,
) -> Large {
    Large {
        map_base,
        map_len,
        usable_len: hi - map_base,
        lo,
        guarded: if below {
            GuardAt::Below
        } else if exact {
            GuardAt::Exact
        } else {
            GuardAt::After
        },
        user,
        size,
        align,
        state: crate::block::USED,
        origin: 0,
        dirty: false,
        seams: [0; MAX_PIECES],
        vmas: 2,
        loose: false,
        next: core::ptr::null_mut(),
        prev: core::ptr::null_mut(),
        dbg: crate::block::DebugMeta::EMPTY,
    }
}

/// A guarded block's data pages, `[lo, hi)` of its descriptor.
pub fn data_pages(d: &Large) -> usize {
    (d.map_base + d.usable_len - d.lo) / sys::page_size()
}

/// Whether a guarded block lives in a pool slot (rather than a mapping of its own): pool
/// slots are exactly the blocks of at most `POOL_MAX_PAGES` data pages.
pub fn pooled(d: &Large) -> bool {
    d.guarded.is_guarded() && data_pages(d) <= crate::large::POOL_MAX_PAGES
}
