//! The state behind the `LARGE` lock: the live list and its counts, the descriptor slab, the
//! mapping cache and the recent peak that bounds it, the guard layer's storage, and the ring
//! of blocks freed for good; the slab and cache operations that only need the state itself,
//! with their system calls (blocks up to `CARVE_MAX` are carved from shared chunks, the rest
//! of a chunk cached); the trim hook.
//!
//! # Invariants
//! - Everything here changes only under the `LARGE` lock, but for `alloc_loose` (`loose`).

use super::budget::Peak;
use super::cache::{Cache, Grown};
use super::desc::Large;
use super::freed::FreedRing;
use super::guarded::GuardedStore;
use super::slab::Slab;
use crate::lock::Mutex;
use crate::sys;

/// Mappings for blocks of at most `CARVE_MAX` bytes are `CARVE_CHUNK` bytes long
/// (`map_carved`).
const CARVE_CHUNK: usize = 2 << 20;
pub(crate) const CARVE_MAX: usize = CARVE_CHUNK / 4;

pub struct LargeState {
    pub live: *mut Large,
    slab: Slab,
    cache: Cache,
    /// The recent peak of the LARGE pages in use (`in_use`), which bounds the cache.
    peak: Peak,
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

/// The cache's `fill` (`Cache::gather`, `Cache::fill_from`): moves the `n` bytes of pages at
/// `src`, part of a cached range before any guard region of it, over `dst`, the fresh pages of
/// the range or block being built. False when the kernel refuses.
fn move_cached(src: usize, n: usize, dst: usize) -> bool {
    // SAFETY: the cache hands over only ranges it holds (ours, unused by anyone) and the fresh
    // pages of what the caller builds under the LARGE lock; the two are disjoint.
    unsafe { sys::move_fixed(src as *mut u8, n, dst as *mut u8) }
}

pub static LARGE: Mutex<LargeState> = Mutex::new(LargeState {
    live: core::ptr::null_mut(),
    slab: Slab::EMPTY,
    cache: Cache::EMPTY,
    peak: Peak::EMPTY,
    guarded: GuardedStore::EMPTY,
    live_bytes: 0,
    live_count: 0,
    mapped_bytes: 0,
    freed: FreedRing::EMPTY,
});

impl LargeState {
    /// Bytes of the LARGE mappings in use: what the blocks take in pages (their rounding, the
    /// headroom of a block grown in place, a debugging-mode block's canary and region), where
    /// `live_bytes` counts what the program asked for. The cache's bound follows it, so that the
    /// pages a program gives back, up to its recent peak, stay resident for reuse.
    fn in_use(&self) -> usize {
        self.mapped_bytes.saturating_sub(self.cache.bytes())
    }

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

    /// A mapping of at least `len` bytes: a cached range (returns dirty=true), else one carved
    /// from a new chunk (`map_carved`; with a guard region wanted, only where guard markers make
    /// it), else one built on cached pages (`Cache::gather`, no guard region wanted), else a new
    /// mapping. With
    /// `guard > 0` the caller wants the last `guard` bytes inaccessible: the last value says
    /// they already are.
    #[unsafe(link_section = "ft_hot")]
    pub(crate) fn get_mapping(
        &mut self,
        len: usize,
        guard: usize,
    ) -> Option<(usize, usize, bool, bool)> {
        if self
            .peak
            .note(self.in_use().saturating_add(len), len, sys::now_ns)
        {
            self.purge(self.in_use());
        }
        if let Some(t) = self.cache.take(len, guard) {
            if let Some((p, l)) = t.open {
                // SAFETY: the cached range is ours and unused.
                unsafe { super::region::open(p, l) };
            }
            return Some((t.base, t.len, true, t.guard_ready));
        }
        // A block with an inaccessible region behind is carved too where that region is made
        // of guard markers (they split no kernel mapping).
        if (guard == 0 || super::region::markers())
            && len <= CARVE_MAX
            && let Some(base) = self.map_carved(len)
        {
            return Some((base, len, false, false));
        }
        if guard == 0
            && let Some(base) = self.gather(len)
        {
            return Some((base, len, true, false));
        }
        let base = sys::map(len)? as usize;
        self.mapped_bytes += len;
        Some((base, len, false, false))
    }

    /// A new mapping of `CARVE_CHUNK` bytes whose first `len` bytes are the block's and the
    /// rest goes to the cache: blocks of this size share kernel mappings (one system call per
    /// chunk, not per block), and their freed ranges merge with their neighbours. The rest's
    /// pages are untouched, so not resident until a block takes them. None when the chunk
    /// cannot be mapped (the caller then maps `len` bytes alone).
    #[cold]
    #[inline(never)]
    #[unsafe(link_section = "ft_hot")]
    fn map_carved(&mut self, len: usize) -> Option<usize> {
        // (The block's pages are in use, the rest of the chunk is about to be cached.)
        let limit = Cache::limit(self.in_use() + len, self.peak.get(), self.peak.big());
        let base = sys::map(CARVE_CHUNK)? as usize;
        self.mapped_bytes += CARVE_CHUNK;
        let mapped = &mut self.mapped_bytes;
        let mut unmap = |b: usize, l: usize| {
            *mapped -= l;
            // SAFETY: the unused rest of the chunk just mapped, or a cached range: ours and
            // unused.
            unsafe { sys::unmap(b as *mut u8, l) };
        };
        let mut open = |_: usize, _: usize| {};
        self.cache.put(
            base + len,
            CARVE_CHUNK - len,
            0,
            limit,
            &mut unmap,
            &mut open,
        );
        Some(base)
    }

    /// The delayed purge: once a window of LARGE allocations and frees closes, the cache gives
    /// back what the recent peak no longer accounts for (its smallest ranges first), with
    /// `live` bytes of LARGE mappings in use.
    #[cold]
    #[inline(never)]
    #[unsafe(link_section = "ft_hot")]
    fn purge(&mut self, live: usize) {
        let limit = Cache::limit(live, self.peak.get(), self.peak.big());
        let mapped = &mut self.mapped_bytes;
        let mut unmap = |b: usize, l: usize| {
            *mapped -= l;
            // SAFETY: a cached range is ours and unused.
            unsafe { sys::unmap(b as *mut u8, l) };
        };
        while self.cache.bytes() > limit && self.cache.evict_one(&mut unmap) {}
    }

    /// `Cache::gather` with its system calls: a range of `len` bytes built on cached pages.
    #[cold]
    #[inline(never)]
    #[unsafe(link_section = "ft_hot")]
    fn gather(&mut self, len: usize) -> Option<usize> {
        let held = self.cache.bytes();
        let mut grow = |b: usize, old: usize, new: usize| {
            // SAFETY: a cached range, ours and unused, one kernel mapping or refused.
            match unsafe { sys::remap(b as *mut u8, old, new, true) } {
                Some(q) => Grown::At(q as usize),
                None if sys::errno() == libc::ENOMEM => Grown::NoMemory,
                None => Grown::Stuck,
            }
        };
        let t = self.cache.gather(len, &mut grow, &mut move_cached)?;
        self.mapped_bytes += t.len - (held - self.cache.bytes());
        Some(t.base)
    }

    /// Takes the first `want` bytes of the cached range starting at `base` for the block that
    /// ends there (`Cache::take_at`).
    pub(crate) fn take_cached_at(&mut self, base: usize, want: usize) -> bool {
        self.cache.take_at(base, want)
    }

    /// A cached range of at least `len` bytes without a guard region (made accessible if it
    /// had one), as `get_mapping` returns it; None when none fits.
    pub(crate) fn take_cached(&mut self, len: usize) -> Option<(usize, usize, bool, bool)> {
        let t = self.cache.take(len, 0)?;
        if let Some((p, l)) = t.open {
            // SAFETY: the cached range is ours and unused.
            unsafe { super::region::open(p, l) };
        }
        Some((t.base, t.len, true, false))
    }

    /// Whether a cached range fits a mapping of `len` bytes.
    pub(crate) fn cache_fits(&self, len: usize) -> bool {
        self.cache.fits(len)
    }

    /// Moves cached resident pages over the fresh `[dst, dst + len)` of a new or grown block
    /// (`Cache::fill_from`). Returns how many bytes were covered.
    pub(crate) fn fill_from_cache(&mut self, dst: usize, len: usize) -> usize {
        let moved = self.cache.fill_from(dst, len, &mut move_cached);
        // The pages' old addresses are unmapped; their new ones were counted already.
        self.mapped_bytes -= moved;
        moved
    }

    /// Keeps a freed range in the cache (`guard`: its last bytes that are inaccessible, the
    /// region behind a debugging-mode block, or 0), or unmaps it.
    #[unsafe(link_section = "ft_hot")]
    pub(crate) fn put_mapping(&mut self, base: usize, len: usize, cacheable: bool, guard: usize) {
        // The level the block's pages reached counts for the peak (a block grown in place took
        // pages no allocation noted); once freed, its range is no longer in use, though still
        // mapped and not yet cached.
        let before = self.in_use();
        let live = before.saturating_sub(len);
        if self.peak.note(before, 0, sys::now_ns) {
            self.purge(live);
        }
        let limit = Cache::limit(live, self.peak.get(), self.peak.big());
        let mapped = &mut self.mapped_bytes;
        let mut unmap = |b: usize, l: usize| {
            *mapped -= l;
            // SAFETY: a freed block's range, unregistered, or a cached one: nobody uses it.
            unsafe { sys::unmap(b as *mut u8, l) };
        };
        if !cacheable || len > limit || !Cache::worth_keeping(len, live) {
            unmap(base, len);
            return;
        }
        let mut open = |b: usize, l: usize| {
            // SAFETY: the guard region of a freed block is ours and unused.
            unsafe { super::region::open(b, l) };
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
