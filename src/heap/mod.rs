//! The heap's policy: allocate / deallocate / reallocate / usable_size pick a zone class,
//! a LARGE block or a guarded block, and apply the debugging layer (`debug`: canaries, fill,
//! quarantine, verification; history) when MALLOC_DEBUG asks for it.
//!
//! Threads: up to `MAX_ARENAS` arenas, each with its own lock and zones (`arena`); a thread
//! sticks to the arena chosen at its first call. A block is always returned to the arena that
//! owns its zone (the page-map entry carries the arena index), so cross-thread frees are safe.
//!
//! Files: `arena` (arenas and zone lists), `lookup` (finding and holding a block), `alloc`,
//! `free`, `realloc`, `release` (blocks leaving the quarantine), `defer` and `drain` (work left
//! by signal handlers), `reclaim` (trim, memory given back when a mapping fails), `refused` (live blocks whose free
//! was refused), `seq` (event
//! sequence numbers), `hooks` (calls into the modules above, registered at start-up), `fork`,
//! `tcache` (per-thread caches of free slots, debugging off only).
//!
//! # Invariants
//! - Reports are written after the arena lock is released (a report may abort, and the
//!   program's SIGABRT handler may call malloc).
//! - No path waits for a lock its own thread holds, nor, holding one, for another (see
//!   `lock.rs`). A signal handler that interrupted this thread inside the allocator, when
//!   `Mutex::enter` says no, takes another way: allocation from another arena (or a LARGE
//!   mapping of its own, `LargeState::alloc_loose`), and a free (or a release from a
//!   quarantine) left in this thread's deferred slots (`defer`), done by `drain_deferred` as
//!   soon as the interrupted code holds no lock.
//! - With debugging on, a block whose dressing (canaries, fill, history) is written after its
//!   lock is dropped stays `Allocating`/`Freeing` until then (`block::publish_state`).
//! - Every public call below ends with `drain::settle`.
//! - With debugging off, a freed TINY or SMALL block usually enters its thread's cache
//!   (`tcache`) without the arena lock: CACHED, free to everybody, still counted in its zone's
//!   `nused`. With debugging on no block is ever CACHED.

mod alloc;
mod arena;
mod defer;
mod drain;
mod fork;
mod free;
mod hooks;
mod lookup;
mod realloc;
mod reclaim;
pub mod refused;
mod release;
mod seq;
mod tcache;

pub use arena::{ARENAS, Arena, MAX_ARENAS, NARENAS, init_arenas};
pub use defer::defer_guard_release;
pub use drain::drain_deferred;
pub use fork::{lock_all, reset_all, unlock_all};
pub use hooks::set_check_hook;
pub use lookup::{find, large_info, prefetch_free, with_history, zone_info};
pub use reclaim::{totals, trim};
pub use release::drain_quarantine;
pub use seq::stamp_alloc;
pub use tcache::{each_mapping as each_cache_mapping, set_sampling};

use crate::block::Op;
use crate::size_class::{MIN_ALIGN, SMALL_MAX, class_of};

/// Allocates `size` bytes aligned to `align` (a power of two; <= 16 means the default).
/// Returns null with errno set on failure.
#[inline(always)]
pub fn allocate(size: usize, align: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    // Debugging off, a TINY or SMALL request of the default alignment: this thread's cache
    // first (the plain layout puts nothing around a block, so the class is the size's).
    if size <= SMALL_MAX
        && align <= MIN_ALIGN
        && !crate::config::get().enabled
        && let Some(p) = tcache::alloc(class_of(size), size, 0, op, zero)
    {
        drain::settle();
        return p;
    }
    allocate_slow(size, align, op, caller, zero)
}

#[inline(never)]
#[unsafe(link_section = "ft_hot")]
fn allocate_slow(size: usize, align: usize, op: Op, caller: usize, zero: bool) -> *mut u8 {
    let p = alloc::allocate_cap(size, size, align, op, caller, zero);
    drain::settle();
    p
}

/// malloc with debugging off, from this thread's cache alone (`tcache::fast`); None: the
/// full path.
#[inline(always)]
pub fn malloc_cached(n: usize) -> Option<*mut u8> {
    let p = tcache::malloc_cached(n)?;
    drain::settle();
    Some(p)
}

/// calloc with debugging off, from this thread's cache alone; None: the full path.
#[inline(always)]
pub fn calloc_cached(n: usize, s: usize) -> Option<*mut u8> {
    let p = tcache::calloc_cached(n, s)?;
    drain::settle();
    Some(p)
}

/// realloc with debugging off of a small block, within this thread's cache alone; None: the
/// full path.
#[inline(always)]
pub fn realloc_cached(p: usize, n: usize) -> Option<*mut u8> {
    let q = tcache::realloc_cached(p, n)?;
    drain::settle();
    Some(q)
}

/// free with debugging off, into this thread's cache alone; false: the full path.
#[inline(always)]
pub fn free_cached(p: usize) -> bool {
    if !tcache::free_cached(p) {
        return false;
    }
    drain::settle();
    true
}

/// Does the work signal handlers left for this thread while it held the allocator's locks
/// outside any allocator call (the fork handlers hold them all around the fork): otherwise it
/// would wait for the thread's next call, and a thread that makes none (it exits) would leave
/// the blocks it freed allocated for good.
pub fn settle() {
    drain::settle();
}

/// With debugging off, one block allocated and freed at start-up, so that what every
/// program's first allocation pays once (this thread's cache area, a first zone's metadata
/// chunk and page-map leaf, the code of the allocation path) is paid there, and a program's
/// own first allocation faults only on its zone's pages.
pub fn warm_up() {
    let p = allocate(16, 0, Op::Malloc, 0, false);
    if !p.is_null() && !free_fast(p as usize) {
        deallocate(p as usize, Op::Free, 0, 0);
    }
}

/// The common case of free with debugging off: a live zone block, released under its arena
/// lock with no copy of its metadata. False sends the call to `deallocate` (LARGE blocks,
/// anything suspicious), which re-checks everything.
#[inline]
#[unsafe(link_section = "ft_hot")]
pub fn free_fast(p: usize) -> bool {
    if !free::free_fast_call(p) {
        return false;
    }
    drain::settle();
    true
}

/// Frees `p` (free, delete, realloc to 0). `sized` is the size a sized delete passed (0: none).
/// Returns the size of the block freed (0: none).
pub fn deallocate(p: usize, op: Op, caller: usize, sized: usize) -> usize {
    let size = free::deallocate_call(p, op, caller, sized);
    drain::settle();
    size
}

/// realloc: `p` may be null (malloc) and `n` may be 0 (free).
#[unsafe(link_section = "ft_hot")]
pub fn reallocate(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    let q = realloc::reallocate_call(p, n, op, caller);
    drain::settle();
    q
}

/// malloc_usable_size.
pub fn usable_size(p: usize, caller: usize) -> usize {
    let n = realloc::usable_size_call(p, caller);
    drain::settle();
    n
}
