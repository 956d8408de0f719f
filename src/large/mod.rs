//! LARGE blocks: page-granular ranges of their own (a mapping each, or carved from a shared chunk),
//! described by a `Large` descriptor kept out of band (`desc`), and the state behind the `LARGE`
//! lock (`state`): the live list (`live`), the descriptor slab (`slab`), the cache of freed
//! mappings (`cache`, found through `index`) and the recent peak of LARGE bytes that bounds it
//! (`budget`), blocks made without the lock by signal handlers (`loose`), plain LARGE blocks
//! (`block`), the inaccessible region behind a debugging-mode block (`region`), where the last
//! blocks freed for good were (`freed`), and the plain storage the guard layer keeps under the same
//! lock (`guarded`: pool free lists and the page bank, whose logic lives in `guard/`).
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
//! - Everything here changes only under the `LARGE` lock, but for `alloc_loose` (see `loose`).

pub mod block;
pub mod budget;
pub mod cache;
pub mod desc;
pub mod freed;
pub mod guarded;
pub mod index;
pub mod live;
pub mod loose;
pub mod region;
pub mod slab;
pub mod state;

#[cfg(test)]
mod tests;

pub use cache::CACHE_SLOTS;
pub use desc::{Large, MAX_PIECES};
pub use freed::{FREED_SLOTS, Freed};
pub use guarded::{BANK_SLOTS, Bank, Banked, GuardedStore, POOL_MAX_PAGES, PoolClass};
pub use loose::has_loose;
pub use state::{LARGE, LargeState, set_trim_hook};
