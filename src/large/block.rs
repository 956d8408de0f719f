//! Plain LARGE blocks: made on a cached or new mapping (or a placed one for alignments above
//! a page), freed into the cache, resized in place or moved by the kernel (`mremap`).
//! Guarded blocks are the guard layer's (`guard/`); they share the descriptors, the live list
//! and `free` (which unmaps their mapping).

use super::desc::{Large, MAX_PIECES};
use super::freed::Freed;
use super::state::LargeState;
use crate::block::DebugMeta;
use crate::pagemap;
use crate::sys;

/// Where guard markers make the regions, a debugging-mode block smaller than this grows by
/// copy (`grow_with_region` refuses it): a copy this small costs less than the `mremap`, which
/// also cuts the chunk the block was carved from, and its system calls.
const COPY_BELOW: usize = 64 << 10;

impl LargeState {
    /// Allocates a LARGE block of `size` bytes whose user pointer is `front` bytes (rounded up to
    /// `align`) into the mapping, with `tail` accessible bytes after it and `guard` bytes of
    /// PROT_NONE after those. Returns the descriptor and whether the memory is zero.
    ///
    /// An alignment above a page is met by placing the range, not by a gap inside it: a
    /// reservation one alignment unit larger is trimmed to the block (`map_aligned`), so the
    /// block costs its own size in address space and pages, whatever the alignment.
    pub fn alloc(
        &mut self,
        size: usize,
        align: usize,
        front: usize,
        tail: usize,
        guard: usize,
    ) -> Option<(*mut Large, bool)> {
        let page = sys::page_size();
        let a = align.max(16);
        // Offset of the user pointer from the start of the range.
        let off = if a > page {
            sys::page_round(front)?
        } else {
            front.checked_next_multiple_of(a)?
        };
        // At least a page: a block of 0 bytes (aligned beyond a page) still owns its address.
        let usable = sys::page_round(off.checked_add(size)?.checked_add(tail)?.max(1))?;
        let map_len = usable.checked_add(guard)?;
        if map_len > isize::MAX as usize {
            return None;
        }
        self.refill_spares();
        let d = self.new_desc()?;
        let got = if a > page {
            Self::map_aligned(map_len, off, a).map(|base| {
                self.mapped_bytes += map_len;
                (base, map_len, false, false)
            })
        } else {
            self.get_mapping(map_len, guard)
        };
        let Some((base, got_len, mut dirty, guard_ready)) = got else {
            self.release_desc(d);
            return None;
        };
        let usable_len = got_len - guard;
        if guard > 0 && !dirty && self.fill_from_cache(base, usable_len) > 0 {
            // New pages for a debugging-mode block, whose region keeps `get_mapping` from
            // gathering cached pages: cached ones are moved in, so they fault in no new page.
            dirty = true;
        }
        if guard > 0 && !guard_ready {
            // SAFETY: the guard region is the tail of the mapping we own.
            unsafe { super::region::close(base + usable_len, guard) };
        }
        let user = base + off;
        debug_assert!(user.is_multiple_of(a));
        let desc = Large {
            map_base: base,
            map_len: got_len,
            usable_len,
            lo: base,
            guarded: crate::block::GuardAt::No,
            user,
            size,
            align,
            state: crate::block::USED,
            origin: 0,
            dirty,
            seams: [0; MAX_PIECES],
            vmas: 0,
            loose: false,
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            dbg: DebugMeta::EMPTY,
        };
        self.publish_mapping(d, desc)?;
        Some((d, !dirty))
    }

    /// `publish` for a block with a mapping of its own: on failure the mapping is unmapped and
    /// the descriptor given back.
    #[unsafe(link_section = "ft_hot")]
    pub fn publish_mapping(&mut self, d: *mut Large, desc: Large) -> Option<()> {
        let (base, len) = (desc.map_base, desc.map_len);
        if self.publish(d, desc) {
            return Some(());
        }
        pagemap::clear_range(base, len);
        self.put_mapping(base, len, false, 0);
        self.release_desc(d);
        None
    }

    /// A new read-write range of `map_len` bytes placed so that `base + off` is a multiple of
    /// `align` (above a page). The reservation is inaccessible address space (no commit
    /// charge); what lies outside the block is unmapped at once. The region behind a
    /// debugging-mode block is made by the caller like any other (`region::close`): one left
    /// PROT_NONE here would stay so where `region::open` removes guard markers, and a block
    /// later carved from the cached range would fault in it.
    fn map_aligned(map_len: usize, off: usize, align: usize) -> Option<usize> {
        let page = sys::page_size();
        let reserve = map_len.checked_add(align - page)?;
        let raw = sys::map_none(reserve)? as usize;
        let user = (raw + off).next_multiple_of(align);
        let base = user - off;
        // SAFETY: both trimmed pieces lie inside the reservation just made, outside the block.
        unsafe {
            if base > raw {
                sys::unmap(raw as *mut u8, base - raw);
            }
            let end = base + map_len;
            if raw + reserve > end {
                sys::unmap(end as *mut u8, raw + reserve - end);
            }
        }
        // SAFETY: the block's range, inside what is left of the reservation.
        if unsafe { sys::protect(base as *mut u8, map_len, true) } {
            return Some(base);
        }
        // SAFETY: the block's range, never handed out.
        unsafe { sys::unmap(base as *mut u8, map_len) };
        None
    }

    /// Frees a LARGE block for good (after any quarantine). A guarded block's mapping is
    /// unmapped (the guard layer accounts for it; pool slots never come here). A block with a
    /// free history is remembered in the ring of freed blocks.
    /// # Safety
    /// `d` is a live descriptor (used or quarantined) of this state.
    #[unsafe(link_section = "ft_hot")]
    pub unsafe fn free(&mut self, d: *mut Large) {
        // SAFETY: d is live per the caller.
        let (base, len, usable, size, guard_mode) = unsafe {
            (
                (*d).map_base,
                (*d).map_len,
                (*d).usable_len,
                (*d).size,
                (*d).guarded.is_guarded(),
            )
        };
        // SAFETY: as above.
        let (user, origin, dbg, guarded) =
            unsafe { ((*d).user, (*d).origin, (*d).dbg, (*d).guarded) };
        if dbg.free_seq != 0 {
            self.freed.put(Freed {
                user,
                size,
                map_base: base,
                guarded,
                origin,
                dbg,
            });
        }
        pagemap::clear_range(base, len);
        self.unlink(d);
        self.release_desc(d);
        self.live_bytes -= size;
        self.live_count -= 1;
        if guard_mode {
            self.put_mapping(base, len, false, 0);
        } else {
            // The whole range is cached with the inaccessible region behind the block
            // (debugging) still in place: reusing its pages costs no page fault, and the next
            // block carved from its top needs no mprotect.
            self.put_mapping(base, len, true, len - usable);
        }
    }

    /// Grows a debugging-mode LARGE block (front canary, inaccessible region behind it) with
    /// `mremap`: its pages move without a copy, the region behind is re-created after the new
    /// end and the old one given back. Returns the new user pointer, None when the kernel
    /// refuses (the caller then moves the block by copying). Where the regions are guard
    /// markers, blocks are carved from shared chunks (`LargeState::get_mapping`), which
    /// `mremap` cuts: a block below `COPY_BELOW` is moved by copying then (None).
    /// # Safety
    /// `d` is a used, unguarded descriptor whose mapping ends with its region, under the lock.
    pub unsafe fn grow_with_region(
        &mut self,
        d: *mut Large,
        new_size: usize,
        tail: usize,
    ) -> Option<usize> {
        // SAFETY: d is a used descriptor per the caller; every range below is part of its
        // mapping (or the new one the kernel gives back).
        unsafe {
            if (*d).guarded.is_guarded()
                || (*d).usable_len == (*d).map_len
                || (super::region::markers() && (*d).usable_len < COPY_BELOW)
            {
                return None;
            }
            let old_base = (*d).map_base;
            let old_usable = (*d).usable_len;
            let old_len = (*d).map_len;
            let region = old_len - old_usable;
            let off = (*d).user - old_base;
            let new_usable = sys::page_round(off.checked_add(new_size)?.checked_add(tail)?)?;
            let new_len = new_usable.checked_add(region)?;
            if new_usable <= old_usable || new_len > isize::MAX as usize {
                return None;
            }
            pagemap::clear_range(old_base, old_len);
            let Some(q) = sys::remap(old_base as *mut u8, old_usable, new_len, true) else {
                pagemap::set_range(old_base, old_len, pagemap::large_entry(d as usize));
                return None;
            };
            let q = q as usize;
            super::region::close(q + new_usable, region);
            // The pages the block grew by are new: cached ones are moved over them.
            self.fill_from_cache(q + old_usable, new_usable - old_usable);
            if q != old_base {
                // The old region behind stayed where it was (not counted as a mapping of its
                // own: the moved block keeps the count).
                sys::unmap((old_base + old_usable) as *mut u8, region);
            }
            Some(self.moved(d, old_len, q, new_len, new_usable, off, new_size))
        }
    }

    /// Records that block `d` (mapping of `old_len` bytes) now lives in the mapping
    /// `[q, q + new_len)`, accessible up to `q + usable`, its user pointer `off` bytes in, and
    /// holds `new_size` bytes. Returns the new user pointer.
    /// # Safety
    /// `d` is a used descriptor whose old range was taken out of the page map, under the lock.
    #[allow(clippy::too_many_arguments)]
    unsafe fn moved(
        &mut self,
        d: *mut Large,
        old_len: usize,
        q: usize,
        new_len: usize,
        usable: usize,
        off: usize,
        new_size: usize,
    ) -> usize {
        if !pagemap::set_range(q, new_len, pagemap::large_entry(d as usize)) {
            // Out of memory for the page map: a move cannot be undone, so the block stays
            // usable at its new place, unknown to free (which then refuses it).
            pagemap::clear_range(q, new_len);
        }
        self.mapped_bytes = self.mapped_bytes - old_len + new_len;
        // SAFETY: d is a used descriptor per the caller.
        unsafe { self.rehome(d, q, new_len, usable, off, new_size) }
    }

    /// Records in block `d`'s descriptor that it now lives in `[q, q + len)`, accessible up to
    /// `q + usable`, its user pointer `off` bytes in, holding `new_size` bytes, and counts the
    /// change of its size. Returns the new user pointer.
    /// # Safety
    /// `d` is a used descriptor, under the lock.
    unsafe fn rehome(
        &mut self,
        d: *mut Large,
        q: usize,
        len: usize,
        usable: usize,
        off: usize,
        new_size: usize,
    ) -> usize {
        // SAFETY: per the caller.
        unsafe {
            (*d).map_base = q;
            (*d).map_len = len;
            (*d).usable_len = usable;
            (*d).lo = q;
            (*d).user = q + off;
            self.live_bytes = self.live_bytes - (*d).size + new_size;
            (*d).size = new_size;
            (*d).user
        }
    }

    /// Grows block `d` (a mapping without a region behind it) to a mapping of `new_len` bytes
    /// holding `new_size` bytes, in place, on the cached range that starts right behind it:
    /// its pages are resident and already part of the address space, so no system call.
    /// False, nothing changed, when there is no such range or it is too short.
    /// # Safety
    /// `d` is a used descriptor without a guard region, under the lock.
    unsafe fn grow_into_cached(&mut self, d: *mut Large, new_len: usize, new_size: usize) -> bool {
        // SAFETY: d is a used descriptor per the caller.
        unsafe {
            let (base, old_len) = ((*d).map_base, (*d).map_len);
            let end = base + old_len;
            if !self.take_cached_at(end, new_len - old_len) {
                return false;
            }
            if !pagemap::set_range(end, new_len - old_len, pagemap::large_entry(d as usize)) {
                pagemap::clear_range(end, new_len - old_len);
                self.put_mapping(end, new_len - old_len, true, 0);
                return false;
            }
            (*d).map_len = new_len;
            (*d).usable_len = new_len;
            self.live_bytes = self.live_bytes - (*d).size + new_size;
            (*d).size = new_size;
            true
        }
    }

    /// Moves block `d` (a mapping without a region behind it, its user pointer `off` bytes in)
    /// by copying it to a cached range of at least `new_len` bytes (`any`: or to any mapping
    /// `get_mapping` finds), and caches its old range. Returns the new user pointer, None
    /// (nothing changed) when there is no such range.
    /// # Safety
    /// `d` is a used descriptor without a guard region, under the lock.
    #[unsafe(link_section = "ft_hot")]
    unsafe fn copy_into(
        &mut self,
        d: *mut Large,
        new_len: usize,
        new_size: usize,
        any: bool,
    ) -> Option<usize> {
        let (base, len, _, _) = if any {
            self.get_mapping(new_len, 0)?
        } else {
            self.take_cached(new_len)?
        };
        // SAFETY: d is a used descriptor per the caller; [base, base + len) is a cached range or
        // a new mapping, ours, unused and disjoint from the block's mapping.
        unsafe {
            let (old_base, old_len) = ((*d).map_base, (*d).map_len);
            let off = (*d).user - old_base;
            if !pagemap::set_range(base, len, pagemap::large_entry(d as usize)) {
                pagemap::clear_range(base, len);
                self.put_mapping(base, len, true, 0);
                return None;
            }
            // The whole usable size moves (what malloc_usable_size reports is the program's:
            // up to the block's last page, `realloc::usable_from`).
            let kept = sys::page_round(off + (*d).size)
                .map_or((*d).usable_len, |e| e.min((*d).usable_len));
            core::ptr::copy_nonoverlapping(
                (*d).user as *const u8,
                (base + off) as *mut u8,
                (kept - off).min(new_size),
            );
            pagemap::clear_range(old_base, old_len);
            let user = self.rehome(d, base, len, len, off, new_size);
            self.put_mapping(old_base, old_len, true, 0);
            Some(user)
        }
    }

    /// Changes the size of a LARGE block, in place if the mapping allows (or can be grown in
    /// place or moved by the kernel without copying). Returns the new user pointer.
    /// # Safety
    /// `d` is a used descriptor without a guard region or front offset.
    #[unsafe(link_section = "ft_hot")]
    pub unsafe fn resize(&mut self, d: *mut Large, new_size: usize, tail: usize) -> Option<usize> {
        // SAFETY: d is a used descriptor per the caller.
        unsafe {
            let off = (*d).user - (*d).map_base;
            let need = off.checked_add(new_size)?.checked_add(tail)?;
            if need <= (*d).usable_len {
                self.live_bytes = self.live_bytes - (*d).size + new_size;
                (*d).size = new_size;
                return Some((*d).user);
            }
            if (*d).usable_len != (*d).map_len {
                return None;
            }
            let new_len = sys::page_round(need)?;
            let old_base = (*d).map_base;
            let old_len = (*d).map_len;
            if self.grow_into_cached(d, new_len, new_size) {
                return Some((*d).user);
            }
            if new_len <= super::state::CARVE_MAX {
                // Blocks this size share their kernel mappings (`map_carved`): the kernel can
                // neither grow one in place nor move it without cutting a chunk in pieces, so
                // it moves by copy onto cached or carved pages.
                return self.copy_into(d, new_len, new_size, true);
            }
            let q = match sys::remap(old_base as *mut u8, old_len, new_len, false) {
                Some(q) => q,
                None if old_len <= 2 * (new_len - old_len) && self.cache_fits(new_len) => {
                    // Cached resident pages fit the new size: copying the block there costs
                    // less than the page faults of a grown mapping.
                    return self.copy_into(d, new_len, new_size, false);
                }
                None => {
                    pagemap::clear_range(old_base, old_len);
                    match sys::remap(old_base as *mut u8, old_len, new_len, true) {
                        Some(q) => q,
                        None => {
                            pagemap::set_range(old_base, old_len, pagemap::large_entry(d as usize));
                            return None;
                        }
                    }
                }
            } as usize;
            Some(self.moved(d, old_len, q, new_len, new_len, off, new_size))
        }
    }
}
