//! The descriptor slab: `Large` descriptors carved from slabs that are never unmapped, and
//! recycled through a free list.
//!
//! # Invariants
//! - A descriptor is on the free list, set aside for signal handlers (`loose`), on the live
//!   list, or held by the one call that is making or retiring its block (a pool's free slots
//!   keep theirs on their pool's list, see `guard::pool`).

use super::desc::Large;
use crate::block::FREE;
use crate::pagemap;

/// Bytes of a descriptor slab (2,048 descriptors).
const DESC_SLAB: usize = 256 << 10;

/// Recycled descriptors and the unused rest of the newest slab.
pub struct Slab {
    free: *mut Large,
    next: usize,
    end: usize,
}

impl Slab {
    pub const EMPTY: Slab = Slab {
        free: core::ptr::null_mut(),
        next: 0,
        end: 0,
    };

    /// A descriptor: a recycled one, else the next of the current slab. Slabs are mapped
    /// with a guard page on each side (`pagemap::map_internal`), out of reach of an overflow of
    /// user data, and carved as needed (their pages are touched only when used).
    pub fn take(&mut self) -> Option<*mut Large> {
        if self.free.is_null() {
            if self.next == self.end {
                let p = pagemap::map_internal(DESC_SLAB)? as usize;
                self.next = p;
                self.end = p + DESC_SLAB;
            }
            let d = self.next as *mut Large;
            self.next += core::mem::size_of::<Large>();
            return Some(d);
        }
        let d = self.free;
        // SAFETY: d is a descriptor of the free list.
        self.free = unsafe { (*d).next };
        Some(d)
    }

    /// Takes back a descriptor that describes no block any more.
    /// # Safety
    /// `d` is a descriptor of this slab, unlinked and out of the page map.
    pub unsafe fn give(&mut self, d: *mut Large) {
        // SAFETY: per the caller.
        unsafe {
            (*d).state = FREE;
            (*d).user = 0;
            (*d).next = self.free;
        }
        self.free = d;
    }
}
