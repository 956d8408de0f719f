//! TINY and SMALL zones: one mapping per zone that holds its blocks and nothing else, each zone
//! serving one size class (a slab). A zone's metadata — its header (`Zone`), one `BlockMeta`
//! per slot and, with debugging, one `PackedDebug` per slot — lives apart, in metadata chunks
//! with a guard page at each end (`sys::map_guarded`), so no overflow or underflow of user
//! data can reach it, whatever the kernel places next to a zone.
//!
//! ```text
//!  data mapping (map_base):   |guard?| slot 0 | slot 1 | ... | slot n-1 |guard?|
//!  metadata chunk:  |guard| head, Zone, Zone... | BlockMeta[n] | PackedDebug[n]? | ... |guard|
//! ```
//! With debugging on, guard pages (PROT_NONE) also sit before and after the data, so an
//! overflow faults at once instead of running into the next zone's blocks.
//!
//! Headers are packed together, 32 to a 4 KiB page (the chunk's first page, then pages of the
//! chunk taken as needed), and a zone's arrays start on a page of their own when they span a
//! page or more: the first slots' entries then fill whole pages, and a new zone costs no page
//! for its header once another zone's header has touched that page.
//!
//! Slots are handed out from a LIFO list of freed slots (linked through `BlockMeta::link`),
//! else by bumping `bump`; indices at or above `hiwater` were never used, so their metadata is
//! still zero. Data pages are entered in the page map as `bump` reaches them (`reg_end`), so
//! a zone costs the pages its blocks use, the pages of their entries and a share of a page of
//! headers.
//!
//! Headers and arrays are carved from chunks kept per arena (`MetaCache`, under the arena
//! lock): a freed zone's header and arrays are cleared (what its slots used, up to `hiwater`)
//! and kept together for the next zone of its class, so metadata needs no lock of its own and
//! no system call per zone.
//! (A chunk is `map_guarded`, not `map_internal`: the leak scanner finds chunks through
//! `MetaCache::for_each_chunk` rather than the page map.)
//!
//! # Invariants
//! - `meta[i].state == USED` exactly for the slots that are handed out; `nused` counts them.
//! - The free list from `free_head` holds `nfree` distinct indices `< bump` whose state is FREE.
//! - Data pages below `reg_end` are in the page map; their entries name this header (with the
//!   arena index) while the zone is mapped. The header is `HEADER_ALIGN` aligned.
//! - Metadata entries at or above `hiwater` are zero; a cached header is all zero but its
//!   `next` link, its `meta` (its arrays, all zero) and `data_len` (their length).
//! - All fields are changed only under the owning arena's lock.

use crate::block::{BlockMeta, PackedDebug};
use crate::pad::prefetch;
use crate::pagemap;
use crate::size_class::{
    MAGIC_SHIFT, NCLASSES, class_size, div_magic, frugal_zone_size, is_tiny, zone_size,
};
use crate::sys;

/// A zone's header: on its first cache line what finding a slot from a pointer reads (every
/// free), on its second what the locked paths write (lists, counts). Threads that share an
/// arena refill and flush the same zones: their writes then leave the line every free reads
/// alone. Slot indices fit in 16 bits (`free_head` links them, `NO_LINK` above them).
#[repr(C, align(64))]
pub struct Zone {
    pub data: usize,
    pub data_len: usize,
    pub magic: u64,
    pub meta: *mut BlockMeta,
    /// The data mapping (with its guard pages, if any).
    pub map_base: usize,
    pub map_len: usize,
    pub block_size: u32,
    pub nblocks: u32,
    pub class: u8,
    pub arena: u8,
    pub dbg: *mut PackedDebug,
    /// Data below this address is entered in the page map.
    pub reg_end: usize,
    /// Links in the arena's list of zones with free slots of this class (`next` also links
    /// cached headers).
    pub next: *mut Zone,
    pub prev: *mut Zone,
    /// Links in the arena's list of all zones.
    pub all_next: *mut Zone,
    pub all_prev: *mut Zone,
    pub bump: u32,
    pub nused: u32,
    pub nfree: u16,
    pub hiwater: u16,
    pub in_partial: bool,
    pub free_head: u16,
}

const _: () = assert!(core::mem::size_of::<Zone>() == 128);
const _: () = assert!(core::mem::align_of::<Zone>() == pagemap::HEADER_ALIGN);

/// The layout of a zone's arrays, `BlockMeta[n]` first: (dbg, len), the offset of the
/// histories and the arrays' size. Histories start on a cache line: a 32-byte record never
/// straddles two.
fn meta_layout(n: usize, debug_meta: bool) -> (usize, usize) {
    let end = n * core::mem::size_of::<BlockMeta>();
    let dbg = end.next_multiple_of(64);
    let len = if debug_meta {
        dbg + n * core::mem::size_of::<PackedDebug>()
    } else {
        end
    };
    (dbg, len.next_multiple_of(64))
}

/// Where arrays of `len` bytes go in a chunk whose free part starts at `next` (64-byte
/// aligned): on a page of their own when they span a page or would cross a page boundary.
fn arrays_at(next: usize, len: usize, page: usize) -> usize {
    if len >= page || next % page + len > page {
        next.next_multiple_of(page)
    } else {
        next
    }
}

/// Bytes of a metadata chunk (more when one zone's metadata needs more).
const META_CHUNK: usize = 256 << 10;

/// The first bytes of a metadata chunk: the arena's chunks are linked through it, so the leak
/// scanner can skip them (they hold zone addresses, never references from the program). Chunks
/// are not entered in the page map: for the first zone of a program that would cost a page of
/// page-map leaf of its own, since the kernel may place the chunk far from the zone.
#[repr(C, align(64))]
struct ChunkHead {
    next: *mut ChunkHead,
    /// Bytes of the chunk (page multiple), this head included, its guard pages not.
    len: usize,
}

/// An arena's zone metadata: freed headers (with their arrays) by class, the unused rest of
/// its newest chunk and of its page of headers, and all its chunks. Chunks are never unmapped
/// (the pages of big freed arrays are given back).
pub struct MetaCache {
    free: [*mut Zone; NCLASSES],
    /// Free part of the newest chunk, for arrays and pages of headers.
    next: usize,
    end: usize,
    /// Free part of the newest page of headers.
    hnext: usize,
    hend: usize,
    chunks: *mut ChunkHead,
}

impl MetaCache {
    pub const EMPTY: MetaCache = MetaCache {
        free: [core::ptr::null_mut(); NCLASSES],
        next: 0,
        end: 0,
        hnext: 0,
        hend: 0,
        chunks: core::ptr::null_mut(),
    };

    /// Maps a chunk with room for a page of headers (its first page, after its head) and
    /// arrays of `len` bytes; headers and arrays come from it from now on.
    fn grow(&mut self, len: usize) -> Option<()> {
        let page = sys::page_size();
        let chunk = sys::page_round(len)?.checked_add(page)?.max(META_CHUNK);
        let p = sys::map_guarded(chunk)? as usize;
        // SAFETY: the start of the chunk just mapped.
        unsafe {
            (p as *mut ChunkHead).write(ChunkHead {
                next: self.chunks,
                len: chunk,
            })
        };
        self.chunks = p as *mut ChunkHead;
        self.hnext = p + core::mem::size_of::<ChunkHead>();
        self.hend = p + page;
        self.next = p + page;
        self.end = p + chunk;
        Some(())
    }

    /// A zeroed header and zeroed arrays of `len` bytes for a zone of class `class`: (header,
    /// arrays). None when out of memory.
    fn take(&mut self, class: usize, len: usize) -> Option<(*mut Zone, usize)> {
        // A cached header of the class whose arrays are long enough (zones of a class have one
        // of two sizes, see `Zone::create`): `meta` and `data_len` hold them (`put`).
        let mut at: *mut *mut Zone = &mut self.free[class];
        // SAFETY: cached headers: their `next` link the class's list, `meta` and `data_len`
        // hold each one's arrays.
        unsafe {
            while !(*at).is_null() {
                let z = *at;
                if (*z).data_len >= len {
                    *at = (*z).next;
                    let arrays = (*z).meta as usize;
                    (*z).next = core::ptr::null_mut();
                    (*z).meta = core::ptr::null_mut();
                    (*z).data_len = 0;
                    return Some((z, arrays));
                }
                at = &raw mut (*z).next;
            }
        }
        let page = sys::page_size();
        let head = core::mem::size_of::<Zone>();
        if self.hend - self.hnext < head {
            // A page of headers from the chunk, else a new chunk (which has one).
            let p = self.next.next_multiple_of(page);
            if p < self.end && self.end - p >= page {
                (self.hnext, self.hend, self.next) = (p, p + page, p + page);
            } else {
                self.grow(len)?;
            }
        }
        let mut arrays = arrays_at(self.next, len, page);
        if arrays > self.end || self.end - arrays < len {
            self.grow(len)?;
            arrays = self.next;
        }
        self.next = arrays + len;
        let z = self.hnext as *mut Zone;
        self.hnext += head;
        Some((z, arrays))
    }

    /// Calls `f(start, len)` for each of the arena's metadata chunks, guard pages included.
    pub fn for_each_chunk(&self, mut f: impl FnMut(usize, usize)) {
        let page = sys::page_size();
        let mut c = self.chunks;
        while !c.is_null() {
            // SAFETY: chunks are never unmapped; the list changes only under the arena lock,
            // which the caller holds.
            unsafe {
                f(c as usize - page, (*c).len + 2 * page);
                c = (*c).next;
            }
        }
    }

    /// How many chunks `for_each_chunk` visits.
    pub fn chunk_count(&self) -> usize {
        let mut n = 0;
        self.for_each_chunk(|_, _| n += 1);
        n
    }

    /// Keeps the header and arrays of a zone being destroyed, cleared, for the next zone of
    /// its class.
    /// # Safety
    /// `z` is the header of a destroyed zone of this arena (its data unmapped, nothing refers to
    /// it any more).
    unsafe fn put(&mut self, z: *mut Zone, debug_meta: bool) {
        // SAFETY: per the caller; the cleared ranges lie inside its header and arrays.
        unsafe {
            let class = (*z).class as usize;
            let used = (*z).hiwater as usize;
            let arrays = (*z).meta as usize;
            let (dbg_off, len) = meta_layout((*z).nblocks as usize, debug_meta);
            if debug_meta {
                clear(arrays + dbg_off, used * core::mem::size_of::<PackedDebug>());
            }
            clear(arrays, used * core::mem::size_of::<BlockMeta>());
            clear(z as usize, core::mem::size_of::<Zone>());
            (*z).meta = arrays as *mut BlockMeta;
            (*z).data_len = len;
            (*z).next = self.free[class];
            self.free[class] = z;
        }
    }
}

/// Zeroes `[p, p + len)`; whole pages in the middle of a long range are given back instead
/// (they read as zero afterwards).
/// # Safety
/// The range is ours and holds nothing anybody needs.
unsafe fn clear(p: usize, len: usize) {
    let page = sys::page_size();
    let end = p + len;
    let lo = p.next_multiple_of(page);
    let hi = end & !(page - 1);
    // SAFETY: per the caller; every piece lies inside the range.
    unsafe {
        if len >= 4 * page && hi > lo {
            core::ptr::write_bytes(p as *mut u8, 0, lo - p);
            sys::discard(lo as *mut u8, hi - lo);
            core::ptr::write_bytes(hi as *mut u8, 0, end - hi);
        } else {
            core::ptr::write_bytes(p as *mut u8, 0, len);
        }
    }
}

impl Zone {
    /// Maps and sets up a new zone for `class`, its metadata from `cache`. None when the kernel
    /// refuses. The zone has `zone_size` bytes of data, or `frugal_zone_size` under an address
    /// space limit (`sys::space_limit`) or when the kernel refuses the bigger one.
    pub fn create(
        class: usize,
        arena: usize,
        debug_meta: bool,
        guards: bool,
        cache: &mut MetaCache,
    ) -> Option<*mut Zone> {
        let page = sys::page_size();
        let bs = class_size(class);
        let full = zone_size(class, page);
        let frugal = frugal_zone_size(class, page);
        let guard = if guards { page } else { 0 };
        let mapped = |len: usize| sys::map(guard + len + guard).map(|b| (b as usize, len));
        let (base, data_len) = if frugal < full && sys::space_limit() != usize::MAX {
            mapped(frugal)?
        } else {
            mapped(full).or_else(|| mapped(frugal))?
        };
        let map_len = guard + data_len + guard;
        let n = data_len / bs;
        let (dbg_off, meta_len) = meta_layout(n, debug_meta);
        let data = base + guard;
        if guards {
            // SAFETY: both guard pages lie inside the mapping just created.
            unsafe {
                sys::protect(base as *mut u8, page, false);
                sys::protect((data + data_len) as *mut u8, page, false);
            }
        }
        let Some((z, arrays)) = cache.take(class, meta_len) else {
            // SAFETY: nothing was handed out from this mapping.
            unsafe { sys::unmap(base as *mut u8, map_len) };
            return None;
        };
        // SAFETY: a zeroed header and arrays of `meta_len` bytes, ours under the arena lock.
        unsafe {
            z.write(Zone {
                data,
                data_len,
                map_base: base,
                map_len,
                magic: div_magic(bs),
                block_size: bs as u32,
                nblocks: n as u32,
                bump: 0,
                nfree: 0,
                nused: 0,
                hiwater: 0,
                class: class as u8,
                arena: arena as u8,
                in_partial: false,
                free_head: crate::block::NO_LINK,
                meta: arrays as *mut BlockMeta,
                reg_end: data,
                dbg: if debug_meta {
                    (arrays + dbg_off) as *mut PackedDebug
                } else {
                    core::ptr::null_mut()
                },
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
                all_next: core::ptr::null_mut(),
                all_prev: core::ptr::null_mut(),
            });
        }
        Some(z)
    }

    /// Unregisters and unmaps an empty zone; its metadata goes back to `cache`.
    /// # Safety
    /// `z` is a zone of the arena owning `cache`, with no used block, unlinked from every list,
    /// under that arena's lock.
    pub unsafe fn destroy(z: *mut Zone, cache: &mut MetaCache) {
        // SAFETY: the caller guarantees z is a live, empty, unlinked zone.
        unsafe {
            let (base, len) = ((*z).map_base, (*z).map_len);
            if (*z).reg_end > (*z).data {
                pagemap::clear_range((*z).data, (*z).reg_end - (*z).data);
            }
            sys::unmap(base as *mut u8, len);
            cache.put(z, !(*z).dbg.is_null());
        }
    }

    pub fn is_tiny(&self) -> bool {
        is_tiny(self.class as usize)
    }

    /// Slot index of address `p` inside the data area.
    #[inline]
    pub fn index_of(&self, p: usize) -> Option<usize> {
        if p < self.data || p >= self.data + self.data_len {
            return None;
        }
        let off = (p - self.data) as u64;
        let i = ((off * self.magic) >> MAGIC_SHIFT) as usize;
        if i < self.nblocks as usize {
            Some(i)
        } else {
            None
        }
    }

    #[inline]
    pub fn slot_addr(&self, i: usize) -> usize {
        self.data + i * self.block_size as usize
    }

    /// Asks for the lines a checked allocation or free of slot `i` reads first: its metadata,
    /// its history and the slot's first and last lines (fills and canaries). A slot out of
    /// range, or a header read without its lock while it changes, only wastes the hint.
    #[inline]
    pub fn prefetch_slot(&self, i: usize) {
        prefetch(self.meta.wrapping_add(i) as usize);
        if !self.dbg.is_null() {
            prefetch(self.dbg.wrapping_add(i) as usize);
        }
        let slot = self.slot_addr(i);
        prefetch(slot);
        prefetch(slot + self.block_size as usize - 1);
    }

    /// # Safety
    /// `i < nblocks`.
    #[inline]
    #[allow(clippy::mut_from_ref)] // the metadata lives outside `Zone`; callers hold the arena lock
    pub unsafe fn meta(&self, i: usize) -> &mut BlockMeta {
        // SAFETY: i < nblocks and the meta array has nblocks entries.
        unsafe { &mut *self.meta.add(i) }
    }

    /// # Safety
    /// `i < nblocks`; the zone has debug metadata.
    #[inline]
    #[allow(clippy::mut_from_ref)] // as for `meta`
    pub unsafe fn dbg(&self, i: usize) -> Option<&mut PackedDebug> {
        if self.dbg.is_null() {
            return None;
        }
        // SAFETY: i < nblocks and the dbg array, when present, has nblocks entries.
        Some(unsafe { &mut *self.dbg.add(i) })
    }

    /// Takes a slot: returns (index, fresh) where fresh means never used (zero memory).
    /// None if the page map could not be extended (out of memory).
    /// # Safety
    /// Under the arena lock; the zone has room (`has_room`).
    #[inline]
    pub unsafe fn take(&mut self) -> Option<(usize, bool)> {
        let i = if self.nfree > 0 {
            self.nfree -= 1;
            let i = self.free_head as usize;
            // SAFETY: the free list holds indices < nblocks.
            self.free_head = unsafe { (*self.meta.add(i)).link };
            i
        } else {
            let i = self.bump as usize;
            let end = self.slot_addr(i) + self.block_size as usize;
            if end > self.reg_end {
                let new_end = sys::page_round(end)?;
                let header = self as *mut Zone as usize;
                if !pagemap::set_range(
                    self.reg_end,
                    new_end - self.reg_end,
                    pagemap::zone_entry(header, self.arena as usize),
                ) {
                    return None;
                }
                self.reg_end = new_end;
            }
            self.bump += 1;
            i
        };
        let fresh = i as u16 >= self.hiwater;
        if fresh {
            self.hiwater = i as u16 + 1;
        }
        self.nused += 1;
        Some((i, fresh))
    }

    /// Gives slot `i` back.
    /// # Safety
    /// Under the arena lock; `i` is a used (or quarantined) slot of this zone.
    #[inline]
    pub unsafe fn give(&mut self, i: usize) {
        // SAFETY: i < nblocks.
        unsafe {
            (*self.meta.add(i)).state = crate::block::FREE;
            (*self.meta.add(i)).link = self.free_head;
        }
        self.free_head = i as u16;
        self.nfree += 1;
        self.nused -= 1;
        if self.nused == 0 {
            // Start again from the bottom: better locality, and the free stack is empty.
            self.nfree = 0;
            self.free_head = crate::block::NO_LINK;
            self.bump = 0;
        }
    }

    #[inline]
    pub fn has_room(&self) -> bool {
        self.nfree > 0 || self.bump < self.nblocks
    }
}

#[cfg(test)]
mod tests;
