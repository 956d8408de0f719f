//! The live list: a new block's descriptor published (linked and entered in the page map)
//! and a block's descriptor taken off the list.

use super::desc::Large;
use super::state::LargeState;
use crate::pagemap;

impl LargeState {
    /// Writes a fresh descriptor `d`, links it on the live list and enters its pages in the
    /// page map. False when the page map cannot take them: the descriptor is unlinked again,
    /// and the caller gives back its range and descriptor as suits the range (a mapping of its
    /// own, a pool slot).
    pub(crate) fn publish(&mut self, d: *mut Large, desc: Large) -> bool {
        let (base, len, size) = (desc.map_base, desc.map_len, desc.size);
        // SAFETY: d is a descriptor of no block (fresh from the slab, or a free pool slot's),
        // under the LARGE lock.
        unsafe {
            d.write(desc);
            (*d).next = self.live;
            if !self.live.is_null() {
                (*self.live).prev = d;
            }
        }
        self.live = d;
        if !pagemap::set_range(base, len, pagemap::large_entry(d as usize)) {
            self.unlink(d);
            return false;
        }
        self.live_bytes += size;
        self.live_count += 1;
        true
    }

    /// Takes a descriptor off the live list.
    pub(crate) fn unlink(&mut self, d: *mut Large) {
        // SAFETY: d is a live descriptor (under the lock).
        if unsafe { (*d).loose } {
            self.adopt_loose();
        }
        // SAFETY: d is on the live list (under the lock).
        unsafe {
            if !(*d).prev.is_null() {
                (*(*d).prev).next = (*d).next;
            } else {
                self.live = (*d).next;
            }
            if !(*d).next.is_null() {
                (*(*d).next).prev = (*d).prev;
            }
            (*d).next = core::ptr::null_mut();
            (*d).prev = core::ptr::null_mut();
        }
    }
}
