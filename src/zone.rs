//! TINY and SMALL zones: one mapping per zone, each serving one size class (a slab).
//!
//! ```text
//!  map_base                                    data (page aligned)
//!  | Zone header | BlockMeta[n] | u16 free[n] | DebugMeta[n]? |guard?| slot 0 | slot 1 | ... |guard?|
//!  '---------------- metadata, out of the blocks' way ---------'
//! ```
//! Guard pages (PROT_NONE) sit between the metadata and the data and after the data when
//! debugging is on, so no overflow runs silently into metadata or the next zone.
//! Slots are handed out from a LIFO stack of freed indices, else by bumping `bump`; indices
//! at or above `hiwater` were never used, so their memory is still zero from mmap.
//!
//! # Invariants
//! - `meta[i].state == USED` exactly for the slots that are handed out; `nused` counts them.
//! - `free[0..nfree]` holds distinct indices `< bump` whose state is FREE.
//! - Every data page's page-map entry points at this header (with the arena index) while the
//!   zone is mapped; the metadata pages' entries are `META`.
//! - All fields are changed only under the owning arena's lock.

use crate::block::{BlockMeta, DebugMeta};
use crate::pagemap;
use crate::size_class::{class_size, div_magic, is_tiny, zone_size, MAGIC_SHIFT};
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
    pub free: *mut u16,
    pub dbg: *mut DebugMeta,
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
        let free_off = meta_len;
        meta_len += (n * 2).next_multiple_of(16);
        let dbg_off = meta_len;
        if debug_meta {
            meta_len += n * core::mem::size_of::<DebugMeta>();
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
                free: (base + free_off) as *mut u16,
                dbg: if debug_meta { (base + dbg_off) as *mut DebugMeta } else { core::ptr::null_mut() },
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
                all_next: core::ptr::null_mut(),
                all_prev: core::ptr::null_mut(),
            });
        }
        if !pagemap::set_range(base, meta_len + guard, pagemap::META)
            || !pagemap::set_range(data, data_len, base | (arena << 1))
        {
            pagemap::clear_range(base, map_len);
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
            pagemap::clear_range(base, len);
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
        if i < self.nblocks as usize { Some(i) } else { None }
    }

    #[inline]
    pub fn slot_addr(&self, i: usize) -> usize {
        self.data + i * self.block_size as usize
    }

    /// # Safety
    /// `i < nblocks`.
    #[inline]
    pub unsafe fn meta(&self, i: usize) -> &mut BlockMeta {
        // SAFETY: i < nblocks and the meta array has nblocks entries.
        unsafe { &mut *self.meta.add(i) }
    }

    /// # Safety
    /// `i < nblocks`; the zone has debug metadata.
    #[inline]
    pub unsafe fn dbg(&self, i: usize) -> Option<&mut DebugMeta> {
        if self.dbg.is_null() {
            return None;
        }
        // SAFETY: i < nblocks and the dbg array, when present, has nblocks entries.
        Some(unsafe { &mut *self.dbg.add(i) })
    }

    /// Takes a slot: returns (index, fresh) where fresh means never used (zero memory).
    /// # Safety
    /// Under the arena lock; the zone has room (`has_room`).
    #[inline]
    pub unsafe fn take(&mut self) -> (usize, bool) {
        let i = if self.nfree > 0 {
            self.nfree -= 1;
            // SAFETY: nfree < nblocks, inside the free array.
            unsafe { *self.free.add(self.nfree as usize) as usize }
        } else {
            let i = self.bump as usize;
            self.bump += 1;
            i
        };
        let fresh = i as u32 >= self.hiwater;
        if fresh {
            self.hiwater = i as u32 + 1;
        }
        self.nused += 1;
        (i, fresh)
    }

    /// Gives slot `i` back.
    /// # Safety
    /// Under the arena lock; `i` is a used (or quarantined) slot of this zone.
    #[inline]
    pub unsafe fn give(&mut self, i: usize) {
        // SAFETY: i < nblocks.
        unsafe {
            (*self.meta.add(i)).state = crate::block::FREE;
            *self.free.add(self.nfree as usize) = i as u16;
        }
        self.nfree += 1;
        self.nused -= 1;
        if self.nused == 0 {
            // Start again from the bottom: better locality, and the free stack is empty.
            self.nfree = 0;
            self.bump = 0;
        }
    }

    #[inline]
    pub fn has_room(&self) -> bool {
        self.nfree > 0 || self.bump < self.nblocks
    }
}
