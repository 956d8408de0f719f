//! LARGE blocks: one mapping each, described by a `Large` descriptor kept out of band, and the
//! state behind the `LARGE` lock: the live list and its counts, the descriptor slab (`slab`),
//! the cache of freed mappings (`cache`), plain LARGE blocks (`block`), and the plain storage
//! the guard layer keeps under the same lock (`guarded`: pool free lists and the page bank,
//! whose logic lives in `guard/`).
//!
//! ```text
//!  map_base                     user = map_base + front (page aligned when front == 0)
//!  | front canary / alignment | user data ... | tail canary | rest of the last page |guard?|
//! ```
//!
//! # Invariants
//! - Every page of `[map_base, map_base + map_len)` has the page-map entry `desc | 1` while the
//!   block is used or quarantined; entries are cleared before the mapping is cached or unmapped.
//! - Descriptors are never unmapped (they are recycled through the slab's free list), so a
//!   stale entry read without the lock points at readable memory; it is re-checked under
//!   `LARGE`.
//! - Everything here changes only under the `LARGE` lock, but for `alloc_loose` (see `slab`).

pub mod block;
pub mod cache;
pub mod guarded;
pub mod slab;

#[cfg(test)]
mod tests;

use crate::block::DebugMeta;
use crate::lock::Mutex;
use crate::pagemap;

pub use cache::CACHE_SLOTS;
pub use guarded::{BANK_SLOTS, Bank, Banked, GuardedStore, POOL_MAX_PAGES, PoolClass};
pub use slab::has_loose;

/// Banked ranges a guarded block is built on, at most (each one kernel mapping of its data).
pub const MAX_PIECES: usize = 3;

#[repr(C, align(64))]
pub struct Large {
    pub map_base: usize,
    pub map_len: usize,
    /// Bytes of the mapping that are accessible, from map_base (map_len minus trailing guard).
    pub usable_len: usize,
    /// Start of the accessible part (map_base, or map_base + page with a guard below).
    pub lo: usize,
    /// 0: plain LARGE block; 1: guarded, guard page after; 2: guarded, guard page before;
    /// 3: guarded, guard page after, no alignment (`guard=exact`).
    pub guarded: u8,
    /// Guarded block with a mapping of its own built on banked pages: its data is several
    /// kernel mappings, split these many pages from `map_base` (increasing, 0 = unused; see
    /// `guard::bank`).
    pub seams: [u16; MAX_PIECES],
    pub user: usize,
    pub size: usize,
    pub align: usize,
    pub state: u8,
    pub origin: u8,
    pub dirty: bool,
    /// Guarded block with a mapping of its own: the kernel mappings it is counted for in the
    /// guard budget (2 or 3 when made, one more each time a later block splits its pages).
    pub vmas: u8,
    /// Made by `alloc_loose` and not yet on the live list.
    pub loose: bool,
    pub next: *mut Large,
    pub prev: *mut Large,
    pub dbg: DebugMeta,
}

// A descriptor stays two cache lines (the slab holds a million of them in guard mode).
const _: () = assert!(core::mem::size_of::<Large>() == 128);

pub struct LargeState {
    pub live: *mut Large,
    slab: slab::Slab,
    cache: cache::Cache,
    /// The guard layer's pools and page bank (`guard/` owns their logic).
    pub guarded: GuardedStore,
    pub live_bytes: usize,
    pub live_count: usize,
    pub mapped_bytes: usize,
}

// SAFETY: the raw pointers are only followed under the LARGE lock.
unsafe impl Send for LargeState {}

pub static LARGE: Mutex<LargeState> = Mutex::new(LargeState {
    live: core::ptr::null_mut(),
    slab: slab::Slab::EMPTY,
    cache: cache::Cache::EMPTY,
    guarded: GuardedStore::EMPTY,
    live_bytes: 0,
    live_count: 0,
    mapped_bytes: 0,
});

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
