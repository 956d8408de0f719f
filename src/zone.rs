//! TINY and SMALL zones: one mapping per zone, each serving one size class (a slab).
//!
//! ```text
//!  map_base                             data (page aligned)
//!  | Zone header | BlockMeta[n] | PackedDebug[n]? |guard?| slot 0 | slot 1 | ... |guard?|
//!  '------------ metadata, out of the blocks' way ---'
//! ```
//! Guard pages (PROT_NONE) sit between the metadata and the data and after the data when
//! debugging is on, so no overflow runs silently into metadata or the next zone.
//! Slots are handed out from a LIFO list of freed slots (linked through `BlockMeta::link`),
//! else by bumping `bump`; indices at or above `hiwater` were never used, so their memory is
//! still zero from mmap. Data pages are entered in the page map as `bump` reaches them
//! (`reg_end`), so a zone costs the pages its blocks use plus one metadata page to start.
//!
//! # Invariants
//! - `meta[i].state == USED` exactly for the slots that are handed out; `nused` counts them.
//! - The free list from `free_head` holds `nfree` distinct indices `< bump` whose state is FREE.
//! - Data pages below `reg_end` are in the page map; the header page is `META`.
//! - Every data page's page-map entry points at this header (with the arena index) while the
//!   zone is mapped; the metadata pages' entries are `META`.
//! - All fields are changed only under the owning arena's lock.

use crate::block::{BlockMeta, PackedDebug};
use crate::pagemap;
use crate::size_class::{MAGIC_SHIFT, class_size, div_magic, is_tiny, zone_size};
use crate::sys;

#[repr(C)]
pub struct Zone {
    pub data: usize,
    pub data_len: usize,
    pub map_base: usize,
    pub map_len: usize,
    pub magic: u64,
    pub block_size: u32,
    pub nblocks: u32,
    pub bump: u32,
    pub nfree: u32,
    pub nused: u32,
    pub hiwater: u32,
    pub class: u8,
    pub arena: u8,
    pub in_partial: bool,
    pub meta: *mut BlockMeta,
    pub free_head: u16,
    /// Data below this address is entered in the page map.
    pub reg_end: usize,
    pub dbg: *mut PackedDebug,
    /// Links in the arena's list of zones with free slots of this class.
    pub next: *mut Zone,
    pub prev: *mut Zone,
    /// Links in the arena's list of all zones.
    pub all_next: *mut Zone,
    pub all_prev: *mut Zone,
}

impl Zone {
    /// Maps and registers a new zone for `class`. None when the kernel refuses.
    pub fn create(class: usize, arena: usize, debug_meta: bool, guards: bool) -> Option<*mut Zone> {
        let page = sys::page_size();
        let bs = class_size(class);
        let data_len = zone_size(class, page);
        let n = data_len / bs;
        let mut meta_len = core::mem::size_of::<Zone>().next_multiple_of(16);
        let meta_off = meta_len;
        meta_len += n * core::mem::size_of::<BlockMeta>();
        // Histories start on a cache line: a 32-byte record never straddles two.
        let dbg_off = meta_len.next_multiple_of(64);
        if debug_meta {
            meta_len = dbg_off;
            meta_len += n * core::mem::size_of::<PackedDebug>();
        }
        let meta_len = sys::page_round(meta_len)?;
        let guard = if guards { page } else { 0 };
        let map_len = meta_len + guard + data_len + guard;
        let base = sys::map(map_len)? as usize;
        let data = base + meta_len + guard;
        if guards {
            // SAFETY: both guard pages lie inside the mapping just created.
            unsafe {
                sys::protect((base + meta_len) as *mut u8, page, false);
                sys::protect((data + data_len) as *mut u8, page, false);
            }
        }
        let z = base as *mut Zone;
        // SAFETY: the mapping is fresh, writable and large enough for the header and arrays.
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
                meta: (base + meta_off) as *mut BlockMeta,
                free_head: crate::block::NO_LINK,
                reg_end: data,
                dbg: if debug_meta {
                    (base + dbg_off) as *mut PackedDebug
                } else {
                    core::ptr::null_mut()
                },
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
                all_next: core::ptr::null_mut(),
                all_prev: core::ptr::null_mut(),
            });
        }
        if !pagemap::set_range(base, page, pagemap::META) {
            pagemap::clear_range(base, page);
            // SAFETY: nothing was handed out from this zone.
            unsafe { sys::unmap(base as *mut u8, map_len) };
            return None;
        }
        Some(z)
    }

    /// Unregisters and unmaps an empty zone.
    /// # Safety
    /// `z` is a zone with no used block, unlinked from every list, under its arena's lock.
    pub unsafe fn destroy(z: *mut Zone) {
        // SAFETY: the caller guarantees z is a live, empty, unlinked zone.
        unsafe {
            let (base, len) = ((*z).map_base, (*z).map_len);
            pagemap::clear_range(base, sys::page_size());
            if (*z).reg_end > (*z).data {
                pagemap::clear_range((*z).data, (*z).reg_end - (*z).data);
            }
            sys::unmap(base as *mut u8, len);
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
                if !pagemap::set_range(
                    self.reg_end,
                    new_end - self.reg_end,
                    pagemap::zone_entry(self.map_base, self.arena as usize),
                ) {
                    return None;
                }
                self.reg_end = new_end;
            }
            self.bump += 1;
            i
        };
        let fresh = i as u32 >= self.hiwater;
        if fresh {
            self.hiwater = i as u32 + 1;
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
