//! The state behind the `LARGE` lock: the live list and its counts, the descriptor slab, the
//! mapping cache, the guard layer's storage, and the ring of blocks freed for good; the slab and cache operations that only
//! need the state itself, with their system calls; the trim hook.
//!
//! # Invariants
//! - Everything here changes only under the `LARGE` lock, but for `alloc_loose` (`loose`).

use super::cache::Cache;
use super::desc::Large;
use super::freed::FreedRing;
use super::guarded::GuardedStore;
use super::slab::Slab;
use crate::lock::Mutex;
use crate::sys;

pub struct LargeState {
    pub live: *mut Large,
    slab: Slab,
    cache: Cache,
    /// The guard layer's pools and page bank (`guard/` owns their logic).
    pub guarded: GuardedStore,
    pub live_bytes: usize,
    pub live_count: usize,
    pub mapped_bytes: usize,
    /// Where the last blocks freed for good were (`freed`).
    pub freed: FreedRing,
}

// SAFETY: the raw pointers are only followed under the LARGE lock.
unsafe impl Send for LargeState {}

pub static LARGE: Mutex<LargeState> = Mutex::new(LargeState {
    live: core::ptr::null_mut(),
    slab: Slab::EMPTY,
    cache: Cache::EMPTY,
    guarded: GuardedStore::EMPTY,
    live_bytes: 0,
    live_count: 0,
    mapped_bytes: 0,
    freed: FreedRing::EMPTY,
});

impl LargeState {
    /// A descriptor from the slab.
    pub fn new_desc(&mut self) -> Option<*mut Large> {
        self.slab.take()
    }

    /// Gives back a descriptor that describes no block any more (unlinked, out of the page
    /// map).
    pub(crate) fn release_desc(&mut self, d: *mut Large) {
        // SAFETY: a descriptor of the slab that describes no block (per the caller).
        unsafe { self.slab.give(d) };
    }

    /// A mapping of at least `len` bytes: a cached range (returns dirty=true), else a new
    /// mapping. With `guard > 0` the caller wants the last `guard` bytes inaccessible: the last
    /// value says they already are.
    pub(crate) fn get_mapping(
        &mut self,
        len: usize,
        guard: usize,
    ) -> Option<(usize, usize, bool, bool)> {
        if let Some(t) = self.cache.take(len, guard) {
            if let Some((p, l)) = t.open {
                // SAFETY: the cached range is ours and unused.
                unsafe { sys::protect(p as *mut u8, l, true) };
            }
            return Some((t.base, t.len, true, t.guard_ready));
        }
        let base = sys::map(len)? as usize;
        self.mapped_bytes += len;
        Some((base, len, false, false))
    }

    /// Keeps a freed range in the cache (`guard`: its last bytes that are PROT_NONE, the
    /// region behind a debugging-mode block, or 0), or unmaps it.
    pub(crate) fn put_mapping(&mut self, base: usize, len: usize, cacheable: bool, guard: usize) {
        let limit = Cache::limit(self.live_bytes);
        let mapped = &mut self.mapped_bytes;
        let mut unmap = |b: usize, l: usize| {
            *mapped -= l;
            // SAFETY: a freed block's range, unregistered, or a cached one: nobody uses it.
            unsafe { sys::unmap(b as *mut u8, l) };
        };
        if !cacheable || len > limit {
            unmap(base, len);
            return;
        }
        let mut open = |b: usize, l: usize| {
            // SAFETY: the guard region of a freed block is ours and unused.
            unsafe { sys::protect(b as *mut u8, l, true) };
        };
        self.cache
            .put(base, len, guard, limit, &mut unmap, &mut open);
    }

    /// Calls `f` for every cached (freed, unused) range.
    pub fn for_each_cached(&self, mut f: impl FnMut(usize, usize)) {
        for e in self.cache.entries() {
            f(e.base, e.len);
        }
    }

    /// Empties the cache (malloc_trim), and has the guard layer give back its banked pages
    /// (`set_trim_hook`). Returns how many cached ranges were unmapped.
    pub fn trim(&mut self) -> usize {
        if let Some(h) = trim_hook() {
            h(self);
        }
        let mapped = &mut self.mapped_bytes;
        let mut unmap = |b: usize, l: usize| {
            *mapped -= l;
            // SAFETY: a cached range is ours and unused.
            unsafe { sys::unmap(b as *mut u8, l) };
        };
        let mut n = 0;
        while self.cache.evict_one(&mut unmap) {
            n += 1;
        }
        n
    }
}

/// What `trim` also runs, under the lock (registered by the guard layer at start-up: its
/// page bank lives in `LargeState::guarded`).
static TRIM_HOOK: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Registers the function `trim` calls first.
pub fn set_trim_hook(f: fn(&mut LargeState)) {
    TRIM_HOOK.store(f as usize, core::sync::atomic::Ordering::Release);
}

fn trim_hook() -> Option<fn(&mut LargeState)> {
    let f = TRIM_HOOK.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: a non-zero value was stored by `set_trim_hook` from a function of this type.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, fn(&mut LargeState)>(f) })
}
