//! The LARGE block descriptor: where a LARGE (or guarded) block's mapping lies, its accessible
//! part, its user pointer and size, its state and history, and its links on the live list.
//! Kept out of band, in the descriptor slab (`slab`).

use crate::block::{DebugMeta, GuardAt};

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
    /// Where its guard page is (`GuardAt::No` for a plain LARGE block).
    pub guarded: GuardAt,
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
