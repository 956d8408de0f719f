//! The page map: from any address, in two loads, what of ours lives on that page.
//! A two-level radix tree over page numbers: a static first level (in .bss, pages touched only
//! where used) and second-level leaves mapped on first use and never unmapped. A leaf has a
//! guard page on each side (`sys::map_guarded`): entries name headers and descriptors, and an
//! overflow of a neighbouring mapping must not forge them.
//!
//! Entry encoding (`usize`, 0 = not ours):
//! - zone page:  `zone_header_address | arena << 1` (headers are 64-byte aligned, arena < 32)
//! - LARGE page: `descriptor_address | 1` (descriptors are 64-byte aligned)
//! - `META`:     our own metadata (skipped by the leak scanner)
//!
//! # Invariants
//! An entry is set before the memory it describes is handed out and cleared (under the owner's
//! lock) before that memory is unmapped. Readers without the lock must re-check under it.

use crate::sys;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const ADDR_BITS: u32 = 48;
const L2_BITS: u32 = 18;
const L1_LEN: usize = 1 << (ADDR_BITS - 12 - L2_BITS);
const L2_LEN: usize = 1 << L2_BITS;

pub const META: usize = 2;

/// What a page-map entry names (the one place that knows the encoding above).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// Not ours, or our own metadata.
    None,
    /// A zone data page: the owning arena and the zone header's address.
    Zone { arena: usize, zone: usize },
    /// A LARGE (or guarded) block: its descriptor's address.
    Large(usize),
}

/// Alignment of zone headers, which leaves the low bits of an entry for the LARGE flag and
/// the arena index.
pub const HEADER_ALIGN: usize = 64;
const ARENA_MASK: usize = HEADER_ALIGN / 2 - 1;
/// Arenas the heap may use: each needs an index in a zone entry.
pub const MAX_ARENAS: usize = 16;
const _: () = assert!(MAX_ARENAS <= ARENA_MASK + 1);

/// The entry for a data page of the zone whose header is at `header` (`HEADER_ALIGN` aligned).
#[inline]
pub fn zone_entry(header: usize, arena: usize) -> usize {
    debug_assert!(header.is_multiple_of(HEADER_ALIGN) && arena <= ARENA_MASK);
    header | (arena << 1)
}

/// The entry for a page of the LARGE block described at `desc` (64-byte aligned).
#[inline]
pub fn large_entry(desc: usize) -> usize {
    desc | 1
}

/// Decodes an entry.
#[inline]
pub fn decode(e: usize) -> Owner {
    if e == 0 || e == META {
        Owner::None
    } else if e & 1 == 1 {
        Owner::Large(e & !1)
    } else {
        Owner::Zone {
            arena: (e >> 1) & ARENA_MASK,
            zone: e & !(HEADER_ALIGN - 1),
        }
    }
}

static L1: [AtomicPtr<AtomicUsize>; L1_LEN] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; L1_LEN];
/// First-level entries per bit of `L1_USED`: a page of them (4 KiB pages).
const L1_GROUP: usize = 512;
/// A bit per group of `L1_GROUP` first-level entries, set once one of them has a leaf: walking
/// the leaves reads only those groups, not the whole first level (2 MiB, whose every page
/// would fault in).
static L1_USED: [AtomicU64; L1_LEN / L1_GROUP / 64] =
    [const { AtomicU64::new(0) }; L1_LEN / L1_GROUP / 64];
static SHIFT: AtomicUsize = AtomicUsize::new(12);

#[unsafe(link_section = "ft_hot")]
pub fn init() {
    SHIFT.store(
        sys::page_size().trailing_zeros() as usize,
        Ordering::Relaxed,
    );
    guard_statics();
    // Warm the first-level slot of the region where the kernel places mappings (next to this
    // library's own code): the first zone's entry almost surely shares its page, so the first
    // malloc does not fault on our table. Init is single-threaded, so the store races nothing.
    if let Some((i1, _)) = split(init as *const () as usize) {
        L1[i1].store(L1[i1].load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Puts a guard page right after this library's static data, where the kernel may later place
/// a mapping of user data: an underflow off such a mapping would otherwise rewrite the first
/// level of this table, the arenas' lists or the saved signal handler (they live in `.bss`).
/// Below the library is its read-only ELF header, which already faults. Nothing is done when
/// the page is taken.
fn guard_statics() {
    let mut end = 0usize;
    sys::image::each_segment(|_, e, _| end = end.max(e));
    if end == 0 {
        return;
    }
    let Some(end) = sys::page_round(end) else {
        return;
    };
    sys::guard_at(end, sys::page_size());
}

#[inline]
fn split(addr: usize) -> Option<(usize, usize)> {
    let pn = addr >> SHIFT.load(Ordering::Relaxed);
    let i1 = pn >> L2_BITS;
    if i1 >= L1_LEN {
        return None;
    }
    Some((i1, pn & (L2_LEN - 1)))
}

/// The entry for the page holding `addr` (0 if none).
#[inline]
pub fn get(addr: usize) -> usize {
    let Some((i1, i2)) = split(addr) else {
        return 0;
    };
    let leaf = L1[i1].load(Ordering::Acquire);
    if leaf.is_null() {
        return 0;
    }
    // SAFETY: leaves are L2_LEN entries long and never unmapped; i2 < L2_LEN.
    unsafe { (*leaf.add(i2)).load(Ordering::Acquire) }
}

fn leaf_for(i1: usize) -> Option<*mut AtomicUsize> {
    let leaf = L1[i1].load(Ordering::Acquire);
    if !leaf.is_null() {
        return Some(leaf);
    }
    let bytes = L2_LEN * core::mem::size_of::<AtomicUsize>();
    let fresh = sys::map_guarded(bytes)? as *mut AtomicUsize;
    // The group's bit before the leaf is published: whoever sees the leaf (a fork child, the
    // leak scan) sees the bit. A bit set by a thread that loses the race below is harmless.
    let g = i1 / L1_GROUP;
    L1_USED[g / 64].fetch_or(1 << (g % 64), Ordering::Release);
    match L1[i1].compare_exchange(
        core::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // Not entered as META: a leaf holds only addresses of zone headers and descriptors,
        // never of blocks, and writing 512 entries would touch pages for nothing.
        Ok(_) => Some(fresh),
        Err(other) => {
            // SAFETY: `fresh` was mapped just above and never published.
            unsafe { sys::unmap_guarded(fresh as *mut u8, bytes) };
            Some(other)
        }
    }
}

/// Sets the entries of every page of `[addr, addr+len)` to `v`. Returns false if a leaf could
/// not be mapped (the caller then gives the memory back).
#[unsafe(link_section = "ft_hot")]
pub fn set_range(addr: usize, len: usize, v: usize) -> bool {
    let shift = SHIFT.load(Ordering::Relaxed);
    let first = addr >> shift;
    let last = (addr + len.max(1) - 1) >> shift;
    let mut pn = first;
    while pn <= last {
        let i1 = pn >> L2_BITS;
        if i1 >= L1_LEN {
            return false;
        }
        let Some(leaf) = leaf_for(i1) else {
            return false;
        };
        let end = last.min(((i1 + 1) << L2_BITS) - 1);
        while pn <= end {
            // SAFETY: the leaf is live and pn & mask < L2_LEN.
            unsafe { (*leaf.add(pn & (L2_LEN - 1))).store(v, Ordering::Release) };
            pn += 1;
        }
    }
    true
}

/// Clears the entries of `[addr, addr+len)`.
#[unsafe(link_section = "ft_hot")]
pub fn clear_range(addr: usize, len: usize) {
    let shift = SHIFT.load(Ordering::Relaxed);
    let first = addr >> shift;
    let last = (addr + len.max(1) - 1) >> shift;
    for pn in first..=last {
        let i1 = pn >> L2_BITS;
        if i1 >= L1_LEN {
            return;
        }
        let leaf = L1[i1].load(Ordering::Acquire);
        if !leaf.is_null() {
            // SAFETY: as in get().
            unsafe { (*leaf.add(pn & (L2_LEN - 1))).store(0, Ordering::Release) };
        }
    }
}

/// Calls `f(start, len)` for the page map's own memory: the first level and every leaf with
/// its guard pages (the leak scanner skips them; they hold no block addresses, reading their
/// untouched pages would only fault them in, and the guards fault).
pub fn for_each_table(mut f: impl FnMut(usize, usize)) {
    f(L1.as_ptr() as usize, core::mem::size_of_val(&L1));
    let page = sys::page_size();
    let leaf = L2_LEN * core::mem::size_of::<AtomicUsize>();
    for (w, used) in L1_USED.iter().enumerate() {
        let mut bits = used.load(Ordering::Acquire);
        while bits != 0 {
            let g = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            for e in &L1[g * L1_GROUP..(g + 1) * L1_GROUP] {
                let p = e.load(Ordering::Acquire);
                if !p.is_null() {
                    f(p as usize - page, leaf + 2 * page);
                }
            }
        }
    }
}

/// `map_guarded` for the allocator's own bookkeeping (rings, tables, scratch, zone metadata,
/// descriptors): the pages, guards included, are entered in the page map as `META`, so the
/// leak scanner neither takes the pointers stored there for references from the program nor
/// reads the guards.
#[unsafe(link_section = "ft_hot")]
pub fn map_internal(len: usize) -> Option<*mut u8> {
    let p = sys::map_guarded(len)?;
    let page = sys::page_size();
    let span = sys::page_round(len)? + 2 * page;
    if !set_range(p as usize - page, span, META) {
        clear_range(p as usize - page, span);
        // SAFETY: mapped just above, never handed out.
        unsafe { sys::unmap_guarded(p, len) };
        return None;
    }
    Some(p)
}

/// Gives back what `map_internal(len)` returned.
/// # Safety
/// `p` came from `map_internal(len)` and nothing uses it any more.
pub unsafe fn unmap_internal(p: *mut u8, len: usize) {
    let page = sys::page_size();
    let span = sys::page_round(len).unwrap_or(len) + 2 * page;
    clear_range(p as usize - page, span);
    // SAFETY: per the caller.
    unsafe { sys::unmap_guarded(p, len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_entries_decode_to_their_header_and_arena() {
        for arena in 0..MAX_ARENAS {
            for header in [64usize, 0x7f00_1234_5640, (1 << 47) - HEADER_ALIGN] {
                let e = zone_entry(header, arena);
                assert_eq!(e & 1, 0);
                assert_eq!(
                    decode(e),
                    Owner::Zone {
                        arena,
                        zone: header
                    }
                );
            }
        }
    }

    #[test]
    fn large_entries_and_empty_ones_decode() {
        let d = 0x7f00_0000_1040usize;
        assert_eq!(decode(large_entry(d)), Owner::Large(d));
        assert_eq!(decode(0), Owner::None);
        assert_eq!(decode(META), Owner::None);
        // The largest arena index still leaves the LARGE flag clear.
        assert_eq!(zone_entry(HEADER_ALIGN, ARENA_MASK) & 1, 0);
    }

    #[test]
    fn set_get_and_clear_a_range() {
        // Addresses of a mapping of our own, so the range is nobody else's in this process.
        let page = sys::page_size();
        SHIFT.store(page.trailing_zeros() as usize, Ordering::Relaxed);
        let p = sys::map(4 * page).unwrap() as usize;
        let v = zone_entry(0x1000 * HEADER_ALIGN, 3);
        assert!(set_range(p + page, 2 * page, v));
        assert_eq!(get(p), 0);
        assert_eq!(get(p + page), v);
        assert_eq!(get(p + 3 * page - 1), v);
        assert_eq!(get(p + 3 * page), 0);
        clear_range(p + page, 2 * page);
        assert_eq!(get(p + page), 0);
        assert_eq!(get(p + 2 * page), 0);
        // SAFETY: mapped above, not used any more.
        unsafe { sys::unmap(p as *mut u8, 4 * page) };
        // Beyond the 48-bit address space: no entry, and none can be set.
        assert_eq!(get(1 << 48), 0);
        assert!(!set_range(1 << 48, page, v));
    }
}
