//! LARGE blocks: one mapping each, described by a `Large` descriptor kept out of band in a
//! slab of descriptor pages, plus a small cache of freed mappings so that alloc/free churn of big
//! blocks does not map, fault and unmap every time.
//!
//! ```text
//!  map_base                     user = map_base + front (page aligned when front == 0)
//!  | front canary / alignment | user data ... | tail canary | rest of the last page |guard?|
//! ```
//!
//! # Invariants
//! - Every page of `[map_base, map_base + map_len)` has the page-map entry `desc | 1` while the
//!   block is used or quarantined; entries are cleared before the mapping is cached or unmapped.
//! - Descriptors are never unmapped (they are recycled through `free_descs`), so a stale entry
//!   read without the lock points at readable memory; it is re-checked under `LARGE`.
//! - Everything here changes only under the `LARGE` lock, but for `alloc_loose`: a signal
//!   handler that interrupted this thread inside that lock maps a block of its own with a
//!   descriptor set aside in `SPARE`, and leaves it on `LOOSE` (linked through `next`, marked
//!   `loose`) before entering it in the page map; the next holder of the lock puts it on the
//!   live list (`adopt_loose`) before touching any descriptor.

use crate::block::{DebugMeta, FREE, GuardAt};
use crate::lock::Mutex;
use crate::pagemap;
use crate::sys;
use core::sync::atomic::{AtomicPtr, Ordering};

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
    /// `LargeState::bank_put`).
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

impl Large {
    /// The descriptor of a new guarded block: its mapping (or pool slot) `[map_base,
    /// map_base + map_len)`, accessible part `[lo, hi)`, guard below or after it.
    #[allow(clippy::too_many_arguments)]
    fn guarded_block(
        map_base: usize,
        map_len: usize,
        hi: usize,
        lo: usize,
        user: usize,
        size: usize,
        align: usize,
        below: bool,
        exact: bool,
    ) -> Large {
        Large {
            map_base,
            map_len,
            usable_len: hi - map_base,
            lo,
            guarded: if below {
                GuardAt::Below
            } else if exact {
                GuardAt::Exact
            } else {
                GuardAt::After
            },
            user,
            size,
            align,
            state: crate::block::USED,
            origin: 0,
            dirty: false,
            seams: [0; MAX_PIECES],
            vmas: 2,
            loose: false,
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            dbg: DebugMeta::EMPTY,
        }
    }
}

pub struct LargeState {
    pub live: *mut Large,
    free_descs: *mut Large,
    /// The unused rest of the newest descriptor slab.
    slab_next: usize,
    slab_end: usize,
    cache: [(usize, usize); CACHE_SLOTS],
    cache_bytes: usize,
    /// Pages of freed guarded blocks (still in the address-space quarantine, PROT_NONE) kept
    /// for the next big guarded blocks (see `bank_put`).
    bank: [Banked; BANK_SLOTS],
    bank_bytes: usize,
    /// The kernel cannot move pages that way: nothing is banked.
    bank_off: bool,
    pub live_bytes: usize,
    pub live_count: usize,
    pub mapped_bytes: usize,
}

// SAFETY: the raw pointers are only followed under the LARGE lock.
unsafe impl Send for LargeState {}

/// Alignment of a guarded block: an explicit one is kept; otherwise the natural alignment of
/// the size between 8 and 16 (an object of N bytes cannot need more than the largest power of
/// two dividing N), or 1 with `guard=exact`.
fn guarded_align(size: usize, align: usize, exact: bool) -> usize {
    if align > 0 {
        return align.max(if exact { 1 } else { 8 }).next_power_of_two();
    }
    if exact {
        return 1;
    }
    if size == 0 {
        16
    } else {
        (1usize << size.trailing_zeros()).clamp(8, 16)
    }
}

/// Bytes of a descriptor slab (2,048 descriptors).
const DESC_SLAB: usize = 256 << 10;
pub const CACHE_SLOTS: usize = 32;
const CACHE_MIN_BYTES: usize = 4 << 20;
const CACHE_MAX_BYTES: usize = 256 << 20;
/// Banked ranges, at most (a freed block gives one per kernel mapping of its data).
const BANK_SLOTS: usize = 16;
/// Banked ranges a new block is built on, at most (each one kernel mapping).
const MAX_PIECES: usize = 3;

/// Banked pages: `[addr, addr + len)`, one kernel mapping, part of the data of the freed
/// guarded block `desc`.
#[derive(Clone, Copy)]
struct Banked {
    addr: usize,
    len: usize,
    desc: *mut Large,
}

/// What `LargeState::release_guarded` did with a block.
pub enum Released {
    /// Its slot went back to its pool.
    Pooled,
    /// Its mapping, counted for this many kernel mappings, was unmapped.
    Unmapped(usize),
}

impl Banked {
    const EMPTY: Banked = Banked {
        addr: 0,
        len: 0,
        desc: core::ptr::null_mut(),
    };
}
/// Bytes of pages the bank may hold: half the live LARGE bytes, between these bounds.
const BANK_MIN_BYTES: usize = 8 << 20;
const BANK_MAX_BYTES: usize = 64 << 20;
/// Flag in a cache entry's length (lengths are page multiples): its last `cached_guard()` bytes
/// are PROT_NONE.
const GUARDED_TAIL: usize = 1;

/// Size of the inaccessible region behind LARGE blocks (0 without debugging).
#[inline]
fn cached_guard() -> usize {
    crate::debug::LAYOUT.get().large_guard
}

/// A cached range is split when the rest is at least this big (and a quarter of the request).
const SPLIT_MIN: usize = 64 << 10;

pub static LARGE: Mutex<LargeState> = Mutex::new(LargeState {
    live: core::ptr::null_mut(),
    free_descs: core::ptr::null_mut(),
    slab_next: 0,
    slab_end: 0,
    cache: [(0, 0); CACHE_SLOTS],
    cache_bytes: 0,
    bank: [Banked::EMPTY; BANK_SLOTS],
    bank_bytes: 0,
    bank_off: false,
    live_bytes: 0,
    live_count: 0,
    mapped_bytes: 0,
});

/// Descriptors set aside for `alloc_loose`, which cannot take the slab's free list.
static SPARE: [AtomicPtr<Large>; 4] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 4];
/// Blocks made by `alloc_loose`, not yet on the live list (linked through `next`).
static LOOSE: AtomicPtr<Large> = AtomicPtr::new(core::ptr::null_mut());

/// Whether blocks made by `alloc_loose` wait for `adopt_loose`.
#[inline]
pub fn has_loose() -> bool {
    !LOOSE.load(Ordering::Relaxed).is_null()
}

impl LargeState {
    /// Puts the blocks `alloc_loose` made on the live list (and in the counts). Called by
    /// every path that reaches a descriptor through the page map, before it touches it.
    #[inline]
    pub fn adopt_loose(&mut self) {
        if has_loose() {
            self.adopt_loose_slow();
        }
    }

    #[cold]
    fn adopt_loose_slow(&mut self) {
        let mut d = LOOSE.swap(core::ptr::null_mut(), Ordering::Acquire);
        while !d.is_null() {
            // SAFETY: descriptors on LOOSE were written by `alloc_loose` and are only ever
            // taken off the list here, under the lock.
            unsafe {
                let next = (*d).next;
                if (*d).user == 0 {
                    // Its mapping failed to enter the page map: the descriptor comes back.
                    self.release_desc(d);
                } else {
                    (*d).loose = false;
                    (*d).prev = core::ptr::null_mut();
                    (*d).next = self.live;
                    if !self.live.is_null() {
                        (*self.live).prev = d;
                    }
                    self.live = d;
                    self.live_bytes += (*d).size;
                    self.live_count += 1;
                    self.mapped_bytes += (*d).map_len;
                }
                d = next;
            }
        }
    }

    /// Keeps `SPARE` filled, so a block can be made without the lock.
    fn refill_spares(&mut self) {
        for s in SPARE.iter() {
            if s.load(Ordering::Relaxed).is_null() {
                let Some(d) = self.new_desc() else {
                    return;
                };
                if s.compare_exchange(
                    core::ptr::null_mut(),
                    d,
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_err()
                {
                    self.release_desc(d);
                }
            }
        }
    }

    /// A LARGE block made without the lock, for a signal handler that interrupted this thread
    /// inside it: a fresh mapping (no cache), laid out as `alloc` does, with a descriptor from
    /// `SPARE`, put on `LOOSE` and in the page map. The caller marks the lock so that its
    /// release adopts the block. None when no descriptor is set aside or the kernel refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn alloc_loose(
        size: usize,
        align: usize,
        front: usize,
        tail: usize,
        guard: usize,
        op: crate::block::Op,
        dbg: DebugMeta,
        state: u8,
    ) -> Option<*mut Large> {
        let page = sys::page_size();
        let extra_align = if align > page { align } else { 0 };
        let need = front
            .checked_add(size)?
            .checked_add(tail)?
            .checked_add(extra_align)?;
        let usable = sys::page_round(need)?;
        let map_len = usable.checked_add(guard)?;
        if map_len > isize::MAX as usize {
            return None;
        }
        let d = SPARE
            .iter()
            .map(|s| s.swap(core::ptr::null_mut(), Ordering::Acquire))
            .find(|d| !d.is_null())?;
        let Some(base) = sys::map(map_len) else {
            // Back to a free spare slot (one is: we just emptied one), else kept on LOOSE as
            // a failed block for the next holder to take back.
            if !SPARE.iter().any(|s| {
                s.compare_exchange(
                    core::ptr::null_mut(),
                    d,
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            }) {
                // SAFETY: a spare descriptor only this call holds.
                unsafe { (*d).user = 0 };
                push_loose(d);
            }
            return None;
        };
        let base = base as usize;
        if guard > 0 {
            // SAFETY: the region behind is the tail of the mapping just made.
            unsafe { sys::protect((base + usable) as *mut u8, guard, false) };
        }
        let a = align.max(16);
        let user = (base + front + a - 1) & !(a - 1);
        // SAFETY: a spare descriptor only this call holds.
        unsafe {
            d.write(Large {
                map_base: base,
                map_len,
                usable_len: usable,
                lo: base,
                guarded: GuardAt::No,
                user,
                size,
                align,
                state,
                origin: op as u8,
                dirty: false,
                seams: [0; MAX_PIECES],
                vmas: 0,
                loose: true,
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
                dbg,
            })
        };
        // On LOOSE before the page map names it: whoever finds it there adopts it first.
        push_loose(d);
        if !pagemap::set_range(base, map_len, pagemap::large_entry(d as usize)) {
            pagemap::clear_range(base, map_len);
            // SAFETY: our mapping, never handed out; the descriptor is taken back on adoption.
            unsafe {
                sys::unmap(base as *mut u8, map_len);
                (*d).user = 0;
            }
            return None;
        }
        Some(d)
    }

    /// A descriptor: a recycled one, else the next of the current slab. Slabs are mapped
    /// with a guard page on each side (`pagemap::map_internal`), out of reach of an overflow of
    /// user data, and carved as needed (their pages are touched only when used).
    fn new_desc(&mut self) -> Option<*mut Large> {
        if self.free_descs.is_null() {
            if self.slab_next == self.slab_end {
                let p = crate::pagemap::map_internal(DESC_SLAB)? as usize;
                self.slab_next = p;
                self.slab_end = p + DESC_SLAB;
            }
            let d = self.slab_next as *mut Large;
            self.slab_next += core::mem::size_of::<Large>();
            return Some(d);
        }
        let d = self.free_descs;
        // SAFETY: d is a descriptor of the free list.
        self.free_descs = unsafe { (*d).next };
        Some(d)
    }

    /// Bytes the cache may hold: twice the live LARGE bytes, at least 4 MiB, at most
    /// 256 MiB (freed memory kept for reuse, as glibc keeps its heap).
    fn cache_limit(&self) -> usize {
        self.live_bytes
            .saturating_mul(2)
            .clamp(CACHE_MIN_BYTES, CACHE_MAX_BYTES)
    }

    /// A mapping of at least `len` bytes: the best fitting cached range (split when much
    /// larger; returns dirty=true), else a new mapping. With `guard > 0` the caller wants the
    /// last `guard` bytes inaccessible: the last value says they already are (a cached range
    /// that kept the region behind its previous block, see `put_mapping`).
    fn get_mapping(&mut self, len: usize, guard: usize) -> Option<(usize, usize, bool, bool)> {
        let mut best = usize::MAX;
        let mut best_len = usize::MAX;
        for (i, &(base, lf)) in self.cache.iter().enumerate() {
            let l = lf & !GUARDED_TAIL;
            if base != 0 && l >= len && l < best_len {
                best = i;
                best_len = l;
            }
        }
        if best != usize::MAX {
            let (base, lf) = self.cache[best];
            let l = lf & !GUARDED_TAIL;
            let tail_guard = lf & GUARDED_TAIL != 0 && guard == cached_guard();
            // A block with a region behind it must end right at that region: its range is cut
            // to the exact length, never handed out with slack.
            let split = if guard > 0 {
                l > len
            } else {
                l - len >= (len / 4).max(SPLIT_MIN)
            };
            if tail_guard {
                // Carve from the top: the block ends where the range's guard region starts.
                if split {
                    self.cache[best] = (base, l - len);
                    self.cache_bytes -= len;
                    return Some((base + l - len, len, true, true));
                }
                self.cache[best] = (0, 0);
                self.cache_bytes -= l;
                return Some((base, l, true, true));
            }
            if lf & GUARDED_TAIL != 0 {
                // A guard region the caller does not want: make it accessible first.
                let g = cached_guard();
                // SAFETY: the cached range is ours and unused.
                unsafe { sys::protect((base + l - g) as *mut u8, g, true) };
            }
            if split {
                self.cache[best] = (base + len, l - len);
                self.cache_bytes -= len;
                return Some((base, len, true, false));
            }
            self.cache[best] = (0, 0);
            self.cache_bytes -= l;
            return Some((base, l, true, false));
        }
        let base = sys::map(len)? as usize;
        self.mapped_bytes += len;
        Some((base, len, false, false))
    }

    /// Keeps a freed range in the cache (merged with adjacent cached ranges), or unmaps it.
    /// `guarded_tail`: its last `cached_guard()` bytes are PROT_NONE (the region behind a
    /// debugging-mode block), kept so that the next block carved from it needs no mprotect.
    fn put_mapping(&mut self, base: usize, len: usize, cacheable: bool) {
        self.put_mapping_tail(base, len, cacheable, false);
    }

    fn put_mapping_tail(
        &mut self,
        mut base: usize,
        mut len: usize,
        cacheable: bool,
        guarded_tail: bool,
    ) {
        let limit = self.cache_limit();
        if !cacheable || len > limit {
            self.mapped_bytes -= len;
            // SAFETY: the block was freed and unregistered; nobody uses the range.
            unsafe { sys::unmap(base as *mut u8, len) };
            return;
        }
        let mut flag = if guarded_tail { GUARDED_TAIL } else { 0 };
        if flag != 0 && self.cache.iter().any(|e| e.0 != 0 && e.0 == base + len) {
            // A cached range starts right behind: merging beats keeping the guard region (a
            // fragmented cache maps and faults more than one mprotect costs).
            let g = cached_guard();
            // SAFETY: the guard region of a freed block is ours and unused.
            unsafe { sys::protect((base + len - g) as *mut u8, g, true) };
            flag = 0;
        }
        for slot in self.cache.iter_mut() {
            if slot.0 == 0 {
                continue;
            }
            let sl = slot.1 & !GUARDED_TAIL;
            let sg = slot.1 & GUARDED_TAIL;
            // Ranges merge only where no guard region would end up inside the result.
            if slot.0 + sl == base && sg == 0 {
                base = slot.0;
                len += sl;
            } else if base + len == slot.0 && flag == 0 {
                len += sl;
                flag = sg;
            } else {
                continue;
            }
            self.cache_bytes -= sl;
            *slot = (0, 0);
        }
        while self.cache_bytes + len > limit && self.evict_one() {}
        if self.cache_bytes + len > limit {
            self.mapped_bytes -= len;
            // SAFETY: as above.
            unsafe { sys::unmap(base as *mut u8, len) };
            return;
        }
        if !self.cache.iter().any(|e| e.0 == 0) {
            self.evict_one();
        }
        if let Some(free) = self.cache.iter().position(|e| e.0 == 0) {
            self.cache[free] = (base, len | flag);
            self.cache_bytes += len;
        } else {
            self.mapped_bytes -= len;
            // SAFETY: as above.
            unsafe { sys::unmap(base as *mut u8, len) };
        }
    }

    /// Unmaps the largest cached range.
    fn evict_one(&mut self) -> bool {
        let mut best = usize::MAX;
        let mut best_len = 0;
        for (i, e) in self.cache.iter().enumerate() {
            let l = e.1 & !GUARDED_TAIL;
            if e.0 != 0 && (best == usize::MAX || l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if best == usize::MAX {
            return false;
        }
        let b = self.cache[best].0;
        self.cache[best] = (0, 0);
        self.cache_bytes -= best_len;
        self.mapped_bytes -= best_len;
        // SAFETY: a cached range is ours and unused.
        unsafe { sys::unmap(b as *mut u8, best_len) };
        true
    }

    /// Calls `f` for every cached (freed, unused) range.
    pub fn for_each_cached(&self, mut f: impl FnMut(usize, usize)) {
        for &(b, lf) in self.cache.iter() {
            if b != 0 {
                f(b, lf & !GUARDED_TAIL);
            }
        }
    }

    /// Page recycling for big guarded blocks. A freed guarded block that has a mapping of its
    /// own (more than `guard::POOL_MAX_PAGES` data pages, guard after it) may keep its pages
    /// while its address range sits in the address-space quarantine (PROT_NONE, so an access
    /// still faults): later big guarded blocks take them with `mremap` instead of faulting in
    /// (and clearing) fresh ones, as Electric Fence reuses its freed pages, but at a new
    /// address. A block is built on up to `MAX_PIECES` banked ranges, so the bank drains into
    /// new blocks rather than holding pages while fresh ones are faulted in. Each range is one
    /// kernel mapping (older kernels move one at a time): a block built on pieces gives one
    /// range per piece (`seams`). Bounded by `BANK_SLOTS` ranges and 8 to 64 MiB (half the
    /// LARGE bytes); the smallest ranges are given back to make room. Returns whether `d` (a
    /// `bankable` guarded block being freed, already PROT_NONE) keeps its pages.
    /// # Safety
    /// `d` is a QUARANTINED guarded descriptor that the address-space quarantine has not
    /// released.
    pub unsafe fn bank_put(&mut self, d: *mut Large) -> bool {
        if self.bank_off {
            return false;
        }
        // SAFETY: d is live per the caller, and we hold the lock.
        let d = unsafe { &*d };
        let (base, len) = (d.map_base, d.usable_len);
        let budget = (self.live_bytes / 2).clamp(BANK_MIN_BYTES, BANK_MAX_BYTES);
        let page = sys::page_size();
        let mut cuts = [0usize; MAX_PIECES + 2];
        let mut n = 1;
        for &s in d.seams.iter().filter(|&&s| s != 0) {
            cuts[n] = s as usize * page;
            n += 1;
        }
        cuts[n] = len;
        if len > budget {
            return false;
        }
        while self.bank_bytes + len > budget || self.bank.iter().filter(|e| e.addr == 0).count() < n
        {
            self.bank_evict_smallest();
        }
        for w in cuts[..=n].windows(2) {
            if let Some(e) = self.bank.iter_mut().find(|e| e.addr == 0) {
                *e = Banked {
                    addr: base + w[0],
                    len: w[1] - w[0],
                    desc: d as *const Large as *mut Large,
                };
            }
        }
        self.bank_bytes += len;
        true
    }

    /// Whether a freed guarded block may keep its pages in the bank: a mapping of its own with
    /// the guard after it, and data small enough for `seams` to locate its mappings. Reads only
    /// fields that do not change while the block is quarantined, so no lock is needed.
    /// # Safety
    /// `d` is a QUARANTINED guarded descriptor that the address-space quarantine has not
    /// released.
    pub unsafe fn bankable(d: *const Large) -> bool {
        // SAFETY: per the caller, these fields are stable.
        let (guarded, base, usable, lo) =
            unsafe { ((*d).guarded, (*d).map_base, (*d).usable_len, (*d).lo) };
        let pages = (base + usable - lo) / sys::page_size();
        guarded.after() && pages > crate::guard::POOL_MAX_PAGES && pages <= u16::MAX as usize
    }

    /// Takes a banked range for (the rest of) a block, `need` bytes: the smallest at least
    /// that big, else the biggest. Pages beyond `need` are given back (a range is taken once,
    /// which bounds the mappings a freed block splits into). Returns the pages' start and
    /// length (at most `need`).
    fn bank_take(&mut self, need: usize) -> Option<(usize, usize)> {
        let mut fit = usize::MAX;
        let mut big = usize::MAX;
        for (i, e) in self.bank.iter().enumerate() {
            if e.addr == 0 {
                continue;
            }
            if e.len >= need {
                if self.bank.get(fit).is_none_or(|f| e.len < f.len) {
                    fit = i;
                }
            } else if self.bank.get(big).is_none_or(|b| e.len > b.len) {
                big = i;
            }
        }
        let i = if fit != usize::MAX { fit } else { big };
        let e = *self.bank.get(i)?;
        self.bank[i] = Banked::EMPTY;
        self.bank_bytes -= e.len;
        let k = e.len.min(need);
        if e.len > k {
            // SAFETY: the rest of a banked range: a freed block's pages, which stay ours (in
            // the address-space quarantine) while we hold the lock.
            unsafe { sys::discard((e.addr + k) as *mut u8, e.len - k) };
            // Moving part of its mapping splits it in two.
            // SAFETY: a banked range's descriptor is QUARANTINED and stays so while its range
            // is banked (under the lock).
            unsafe { (*e.desc).vmas += 1 };
            crate::guard::count_vmas(1);
        }
        Some((e.addr, k))
    }

    /// A new guarded mapping of `map_len` bytes whose first `data_len` are accessible, built on
    /// banked pages; None when the bank is empty or the kernel refuses. Returns the mapping
    /// and where its data mappings meet (page counts from its start, 0 = unused).
    fn map_recycled(
        &mut self,
        data_len: usize,
        map_len: usize,
    ) -> Option<(usize, [u16; MAX_PIECES])> {
        let page = sys::page_size();
        if data_len / page > u16::MAX as usize || self.bank_bytes == 0 {
            return None;
        }
        let p = sys::map_none(map_len)?;
        let mut seams = [0u16; MAX_PIECES];
        let mut done = 0;
        let mut pieces = 0;
        while done < data_len && pieces < MAX_PIECES {
            let Some((src, k)) = self.bank_take(data_len - done) else {
                break;
            };
            // SAFETY: a banked range is a freed block's, ours while we hold the lock; the
            // destination is inside the reservation the kernel just made for us.
            if !unsafe { sys::move_pages(src as *mut u8, k, (p as usize + done) as *mut u8) } {
                if sys::errno() == libc::EINVAL {
                    // A kernel without MREMAP_DONTUNMAP (before Linux 5.7): no recycling.
                    self.bank_off = true;
                }
                // SAFETY: as above; the pages are dropped.
                unsafe { sys::discard(src as *mut u8, k) };
                break;
            }
            done += k;
            if done < data_len {
                seams[pieces] = (done / page) as u16;
            }
            pieces += 1;
        }
        // The moved pages arrive PROT_NONE like their source, and the rest of the reservation
        // is PROT_NONE: one call opens the data (recycled and fresh) and leaves the guard.
        // SAFETY: the reservation made above.
        if done > 0 && unsafe { sys::protect(p, data_len, true) } {
            return Some((p as usize, seams));
        }
        // SAFETY: as above (moved pages, if any, are dropped with it).
        unsafe { sys::unmap(p, map_len) };
        None
    }

    fn bank_evict_smallest(&mut self) {
        let mut small = usize::MAX;
        for (i, e) in self.bank.iter().enumerate() {
            if e.addr != 0 && self.bank.get(small).is_none_or(|s| e.len < s.len) {
                small = i;
            }
        }
        if let Some(e) = self.bank.get_mut(small) {
            // SAFETY: a banked range is a freed block's, ours while we hold the lock.
            unsafe { sys::discard(e.addr as *mut u8, e.len) };
            self.bank_bytes -= e.len;
            *e = Banked::EMPTY;
        }
    }

    /// Forgets the banked ranges of `d` (about to be unmapped).
    fn bank_drop(&mut self, d: *mut Large) {
        for e in self.bank.iter_mut() {
            if e.addr != 0 && e.desc == d {
                self.bank_bytes -= e.len;
                *e = Banked::EMPTY;
            }
        }
    }

    /// Empties the cache (malloc_trim).
    pub fn trim(&mut self) -> usize {
        for e in self.bank.iter_mut() {
            if e.addr != 0 {
                // SAFETY: a banked range is a freed block's, ours while we hold the lock.
                unsafe { sys::discard(e.addr as *mut u8, e.len) };
                *e = Banked::EMPTY;
            }
        }
        self.bank_bytes = 0;
        let mut n = 0;
        while self.evict_one() {
            n += 1;
        }
        n
    }

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
            Self::map_aligned(map_len, usable, off, a).map(|base| {
                self.mapped_bytes += map_len;
                (base, map_len, false, true)
            })
        } else {
            self.get_mapping(map_len, guard)
        };
        let Some((base, got_len, dirty, guard_ready)) = got else {
            self.release_desc(d);
            return None;
        };
        let usable_len = got_len - guard;
        if guard > 0 && !guard_ready {
            // SAFETY: the guard region is the tail of the mapping we own.
            unsafe { sys::protect((base + usable_len) as *mut u8, guard, false) };
        }
        let user = base + off;
        debug_assert!(user.is_multiple_of(a));
        let desc = Large {
            map_base: base,
            map_len: got_len,
            usable_len,
            lo: base,
            guarded: GuardAt::No,
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
        self.publish(d, desc)?;
        Some((d, !dirty))
    }

    /// A new range of `map_len` bytes, its first `usable` read-write and the rest PROT_NONE,
    /// placed so that `base + off` is a multiple of `align` (above a page). The reservation is
    /// inaccessible address space (no commit charge); what lies outside the block is unmapped
    /// at once.
    fn map_aligned(map_len: usize, usable: usize, off: usize, align: usize) -> Option<usize> {
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
        // SAFETY: the block's accessible part, inside what is left of the reservation.
        if unsafe { sys::protect(base as *mut u8, usable, true) } {
            return Some(base);
        }
        // SAFETY: the block's range, never handed out.
        unsafe { sys::unmap(base as *mut u8, map_len) };
        None
    }

    /// Writes a fresh descriptor, links it and enters its pages in the page map; on failure
    /// gives everything back (the mapping is unmapped).
    fn publish(&mut self, d: *mut Large, desc: Large) -> Option<()> {
        let (base, len, size) = (desc.map_base, desc.map_len, desc.size);
        // SAFETY: d is a fresh descriptor from the slab, under the LARGE lock.
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
            pagemap::clear_range(base, len);
            self.put_mapping(base, len, false);
            self.release_desc(d);
            return None;
        }
        self.live_bytes += size;
        self.live_count += 1;
        Some(())
    }

    /// Guarded blocks with at least this much data get MADV_HUGEPAGE.
    const THP_MIN: usize = 4 << 20;

    /// Alignment, guard size and data length (page multiple, the block's room plus alignment
    /// slack) of a guarded block; None on overflow.
    fn guarded_geometry(
        size: usize,
        cap: usize,
        align: usize,
        exact: bool,
    ) -> Option<(usize, usize, usize)> {
        let page = sys::page_size();
        let a = guarded_align(size, align, exact);
        // Big blocks get a wide inaccessible region (an access a few KiB off still faults).
        let guard = if size > crate::size_class::SMALL_MAX {
            (64usize << 10).next_multiple_of(page)
        } else {
            page
        };
        let room = cap.max(size).max(1);
        let data_len = if a > page {
            sys::page_round(room)?.checked_add(a)?
        } else {
            sys::page_round(room.checked_add(a - 1)?)?
        };
        if data_len.checked_add(guard)? > isize::MAX as usize {
            return None;
        }
        Some((a, guard, data_len))
    }

    /// A guarded block (MALLOC_DEBUG=guard): a PROT_NONE page right after the block's last
    /// byte (or right before its first with `below`). Blocks of at most
    /// `guard::POOL_MAX_PAGES` data pages take a slot of a pool (`pool_take`/`pool_open`,
    /// which `guard::allocate` calls directly to make the slot accessible without the lock);
    /// bigger ones get a mapping of their own, built on the pages of a freed big block when
    /// the bank has some (`bank_put`; not with the guard below). Such a block is `dirty`: beyond
    /// the first `debug::LARGE_FILL_MAX` bytes, which are filled when filling is on, it holds
    /// what the freed block held, and `guard::allocate` clears it for calloc (a memset costs
    /// far less than the page faults it saves).
    ///
    /// Alignment: an object of `size` bytes cannot need more alignment than the largest power
    /// of two dividing `size` (sizeof is a multiple of alignof), so a default-aligned block gets
    /// that, between 8 and 16 bytes: sizes that are multiples of 8 end exactly at the guard, and
    /// the 1–7 bytes of gap of other sizes are canary. `exact` drops alignment entirely (1 byte),
    /// so every block ends at its guard — some programs assume 8- or 16-byte aligned results.
    pub fn alloc_guarded(
        &mut self,
        size: usize,
        cap: usize,
        align: usize,
        below: bool,
        exact: bool,
    ) -> Option<*mut Large> {
        let page = sys::page_size();
        let (a, guard, data_len) = Self::guarded_geometry(size, cap, align, exact)?;
        let map_len = data_len + guard;
        if data_len / page <= crate::guard::POOL_MAX_PAGES {
            let s = self.pool_take(size, cap, align, exact)?;
            // SAFETY: the data of a slot of our pool that no block uses.
            let ok = unsafe { crate::guard::open_slot(s.data, s.data_len) };
            return self.pool_open(s, size, align, below, exact, ok);
        }
        let d = self.new_desc()?;
        let recycled = if below {
            None
        } else {
            self.map_recycled(data_len, map_len)
        };
        let dirty = recycled.is_some();
        let (base, seams) = match recycled {
            Some(r) => r,
            None => match sys::map(map_len) {
                Some(b) => {
                    if !below {
                        // SAFETY: the last `guard` bytes of the mapping we just created.
                        unsafe { sys::protect(b.add(data_len), guard, false) };
                    }
                    (b as usize, [0; MAX_PIECES])
                }
                None => {
                    self.release_desc(d);
                    return None;
                }
            },
        };
        self.mapped_bytes += map_len;
        let (lo, hi, user) = if below {
            // SAFETY: the first `guard` bytes of the mapping we just created.
            unsafe { sys::protect(base as *mut u8, guard, false) };
            let lo = base + guard;
            (lo, base + map_len, (lo + a - 1) & !(a - 1))
        } else {
            let hi = base + data_len;
            (base, hi, (hi - size) & !(a - 1))
        };
        if size >= Self::THP_MIN {
            // Transparent huge pages for the huge-page-aligned parts of a big block: one fault
            // (and one clear) per 2 MiB instead of 512. Only over the block itself (not the
            // realloc headroom, which a huge page would make resident) and only for blocks of
            // 4 MiB and more, which are nearly all touched.
            let from = user & !(page - 1);
            // SAFETY: advice on part of the mapping we just created.
            unsafe { libc::madvise(from as *mut libc::c_void, hi - from, libc::MADV_HUGEPAGE) };
        }
        let mut desc = Large::guarded_block(base, map_len, hi, lo, user, size, align, below, exact);
        // Data in several mappings (recycled pieces, maybe fresh pages after them).
        desc.seams = seams;
        desc.dirty = dirty;
        desc.vmas = 2 + seams.iter().filter(|&&s| s != 0).count() as u8;
        self.publish(d, desc)?;
        Some(d)
    }

    /// Resizes a guarded block inside its mapping: with the guard after it, the block moves
    /// down so its end still meets the guard (the content is moved); with the guard before
    /// it, it just grows. Returns the (possibly new) user pointer, None if it does not fit.
    /// # Safety
    /// `d` is a used guarded descriptor, under the LARGE lock.
    pub unsafe fn resize_guarded(&mut self, d: *mut Large, n: usize) -> Option<usize> {
        // SAFETY: d is a used guarded descriptor per the caller; the moved bytes stay inside
        // its accessible part [lo, hi).
        unsafe {
            let hi = (*d).map_base + (*d).usable_len;
            let lo = (*d).lo;
            let (user, old) = ((*d).user, (*d).size);
            let new_user = if (*d).guarded == GuardAt::Below {
                if user.checked_add(n)? > hi {
                    return None;
                }
                user
            } else {
                let a = guarded_align(n, (*d).align, (*d).guarded == GuardAt::Exact);
                let u = hi.checked_sub(n)? & !(a - 1);
                if u < lo {
                    return None;
                }
                core::ptr::copy(user as *const u8, u as *mut u8, old.min(n));
                u
            };
            (*d).user = new_user;
            (*d).size = n;
            self.live_bytes = self.live_bytes - old + n;
            Some(new_user)
        }
    }

    /// The slot-pool path of `alloc_guarded` (blocks of at most `guard::POOL_MAX_PAGES` data
    /// pages), first half: a slot of the pool of the block's data page count and guard size,
    /// still inaccessible. The caller makes its data accessible (one mprotect, which needs no
    /// lock: the slot is nobody's) and finishes with `pool_open`. A recycled slot already has
    /// its guard pages, and its pages were given back when it was freed, so it reads as zero.
    /// None if the block does not take a pool slot, or the pool cannot grow.
    ///
    /// ```text
    ///  chunk: | guard | data 0 | guard | data 1 | guard | ... | data n-1 | guard |
    ///  guard after:  slot i = data i + the guard behind it  (map_base = data)
    ///  guard before: slot i = the guard in front + data i   (map_base = data - guard)
    /// ```
    /// Neighbouring guards and freed (PROT_NONE) slots merge into one kernel mapping, so a
    /// pooled free slot costs no mapping of its own.
    pub fn pool_take(
        &mut self,
        size: usize,
        cap: usize,
        align: usize,
        exact: bool,
    ) -> Option<crate::guard::PoolSlot> {
        let page = sys::page_size();
        let (a, guard, data_len) = Self::guarded_geometry(size, cap, align, exact)?;
        if data_len / page > crate::guard::POOL_MAX_PAGES {
            return None;
        }
        let pools = crate::guard::pools(self);
        // SAFETY: the pools are only touched under the LARGE lock, which `self` proves held;
        // the class index is below POOL_MAX_PAGES (checked above; data_len >= page).
        let cls = unsafe { &mut (*pools).cls[(guard > page) as usize][data_len / page - 1] };
        let slot = data_len + guard;
        let (d, data) = if !cls.free.is_null() {
            let d = cls.free;
            // SAFETY: a pooled descriptor keeps the start of its slot's data in `lo`.
            unsafe {
                cls.free = (*d).next;
                (d, (*d).lo)
            }
        } else {
            if cls.next.checked_add(slot)? > cls.end {
                self.pool_chunk(cls, slot, guard)?;
            }
            let d = self.new_desc()?;
            let data = cls.next;
            cls.next += slot;
            (d, data)
        };
        Some(crate::guard::PoolSlot {
            d,
            data,
            data_len,
            guard,
            a,
        })
    }

    /// Second half of the pool path: publishes the block in slot `s` (whose data the caller
    /// made accessible when `ok`; otherwise the slot goes back to its pool).
    pub fn pool_open(
        &mut self,
        s: crate::guard::PoolSlot,
        size: usize,
        align: usize,
        below: bool,
        exact: bool,
        ok: bool,
    ) -> Option<*mut Large> {
        let page = sys::page_size();
        let crate::guard::PoolSlot {
            d,
            data,
            data_len,
            guard,
            a,
        } = s;
        let pools = crate::guard::pools(self);
        // SAFETY: as in pool_take (same class).
        let cls = unsafe { &mut (*pools).cls[(guard > page) as usize][data_len / page - 1] };
        if !ok {
            Self::pool_put(cls, d, data);
            return None;
        }
        let hi = data + data_len;
        let (map_base, user) = if below {
            (data - guard, (data + a - 1) & !(a - 1))
        } else {
            (data, (hi - size) & !(a - 1))
        };
        let desc = Large::guarded_block(
            map_base,
            data_len + guard,
            hi,
            data,
            user,
            size,
            align,
            below,
            exact,
        );
        // SAFETY: d is a descriptor of no block (fresh from the slab or taken from the pool).
        unsafe {
            d.write(desc);
            (*d).next = self.live;
            if !self.live.is_null() {
                (*self.live).prev = d;
            }
        }
        self.live = d;
        if !pagemap::set_range(map_base, data_len + guard, pagemap::large_entry(d as usize)) {
            self.unlink(d);
            pagemap::set_range(map_base, data_len + guard, pagemap::META);
            // SAFETY: the slot's data, made accessible by the caller and holding no block.
            unsafe { crate::guard::close_slot(data, data_len) };
            Self::pool_put(cls, d, data);
            return None;
        }
        self.live_bytes += size;
        self.live_count += 1;
        Some(d)
    }

    /// Reserves a new chunk of inaccessible slots for a pool class (no memory is committed:
    /// the pages are MAP_NORESERVE and inaccessible until a slot is handed out; see
    /// `guard::close_chunk`). The whole chunk is `META` in the page map but for its used
    /// slots, so the leak scanner does not read it (with guard markers it is a read-write
    /// mapping).
    fn pool_chunk(
        &mut self,
        cls: &mut crate::guard::PoolClass,
        slot: usize,
        guard: usize,
    ) -> Option<()> {
        let n = (crate::guard::POOL_CHUNK / slot).max(8);
        let len = n.checked_mul(slot)?.checked_add(guard)?;
        let p = sys::map_anon(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_NORESERVE)?;
        // SAFETY: the mapping just made.
        let closed = unsafe { crate::guard::close_chunk(p as usize, len) };
        if !closed || !pagemap::set_range(p as usize, len, pagemap::META) {
            pagemap::clear_range(p as usize, len);
            // SAFETY: as above; nothing uses it.
            unsafe { sys::unmap(p as *mut u8, len) };
            return None;
        }
        self.mapped_bytes += len;
        cls.next = p as usize + guard;
        cls.end = p as usize + len;
        Some(())
    }

    /// Puts the descriptor of a free slot (inaccessible, not in the page map) on its class's
    /// free list; the descriptor keeps the slot's data address in `lo`.
    fn pool_put(cls: &mut crate::guard::PoolClass, d: *mut Large, data: usize) {
        // SAFETY: d is unlinked and unregistered; it now only describes the free slot.
        unsafe {
            (*d).state = FREE;
            (*d).user = 0;
            (*d).lo = data;
            (*d).next = cls.free;
        }
        cls.free = d;
    }

    /// Whether a guarded block lives in a pool slot (rather than a mapping of its own): pool
    /// slots are exactly the blocks of at most `guard::POOL_MAX_PAGES` data pages.
    pub fn guarded_pooled(d: &Large) -> bool {
        let data = d.map_base + d.usable_len - d.lo;
        d.guarded.is_guarded() && data / sys::page_size() <= crate::guard::POOL_MAX_PAGES
    }

    /// A guarded block `p` leaves the address-space quarantine: a pool slot goes back to its
    /// pool (already PROT_NONE with its pages given back, so no system call), a block with a
    /// mapping of its own is unmapped. None if `p` is not a quarantined guarded block, else
    /// `Pooled` or the kernel mappings an unmapped one was counted for.
    pub fn release_guarded(&mut self, p: usize) -> Option<Released> {
        let pagemap::Owner::Large(d) = pagemap::decode(pagemap::get(p)) else {
            return None;
        };
        let d = d as *mut Large;
        // SAFETY: descriptors are never unmapped; under the lock a page-map entry names a
        // live one.
        let dr = unsafe { &*d };
        if dr.state != crate::block::QUARANTINED || dr.user != p || !dr.guarded.is_guarded() {
            return None;
        }
        if !Self::guarded_pooled(dr) {
            let vmas = dr.vmas as usize;
            // SAFETY: a quarantined descriptor of this state.
            unsafe { self.free(d) };
            return Some(Released::Unmapped(vmas));
        }
        let page = sys::page_size();
        let (map_base, map_len, data, size) = (dr.map_base, dr.map_len, dr.lo, dr.size);
        let data_len = map_base + dr.usable_len - data;
        let guard = map_len - data_len;
        pagemap::set_range(map_base, map_len, pagemap::META);
        self.unlink(d);
        self.live_bytes -= size;
        self.live_count -= 1;
        let pools = crate::guard::pools(self);
        // SAFETY: under the LARGE lock (self); the class index is in range (pooled).
        let cls = unsafe { &mut (*pools).cls[(guard > page) as usize][data_len / page - 1] };
        Self::pool_put(cls, d, data);
        Some(Released::Pooled)
    }

    fn unlink(&mut self, d: *mut Large) {
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

    fn release_desc(&mut self, d: *mut Large) {
        // SAFETY: d is unlinked and unregistered.
        unsafe {
            (*d).state = FREE;
            (*d).user = 0;
            (*d).next = self.free_descs;
        }
        self.free_descs = d;
    }

    /// Frees a LARGE block for good (after any quarantine).
    /// # Safety
    /// `d` is a live descriptor (used or quarantined) of this state.
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
        pagemap::clear_range(base, len);
        self.unlink(d);
        self.release_desc(d);
        self.live_bytes -= size;
        self.live_count -= 1;
        if guard_mode {
            // Guard-mode blocks leave their range to the guard ring's accounting: unmapped.
            self.bank_drop(d);
            self.put_mapping(base, len, false);
        } else if usable < len {
            // The whole range is cached with the inaccessible region behind the block
            // (debugging) still in place: reusing its pages costs no page fault, and the next
            // block carved from its top needs no mprotect.
            if len - usable == cached_guard() {
                self.put_mapping_tail(base, len, true, true);
            } else {
                // SAFETY: the region behind the freed block is ours and holds no block.
                unsafe { sys::protect((base + usable) as *mut u8, len - usable, true) };
                self.put_mapping(base, len, true);
            }
        } else {
            self.put_mapping(base, len, true);
        }
    }

    /// Grows a debugging-mode LARGE block (front canary, inaccessible region behind it) with
    /// `mremap`: its pages move without a copy, the region behind is re-created after the new
    /// end and the old one given back. Returns the new user pointer, None when the kernel
    /// refuses (the caller then moves the block by copying).
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
            if (*d).guarded.is_guarded() || (*d).usable_len == (*d).map_len {
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
            sys::protect((q + new_usable) as *mut u8, region, false);
            if q != old_base {
                // The old region behind stayed where it was (not counted as a mapping of its
                // own: the moved block keeps the count).
                libc::munmap((old_base + old_usable) as *mut libc::c_void, region);
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
        unsafe {
            (*d).map_base = q;
            (*d).map_len = new_len;
            (*d).usable_len = usable;
            (*d).lo = q;
            (*d).user = q + off;
            self.live_bytes = self.live_bytes - (*d).size + new_size;
            (*d).size = new_size;
            (*d).user
        }
    }

    /// Changes the size of a LARGE block, in place if the mapping allows (or can be grown in
    /// place or moved by the kernel without copying). Returns the new user pointer.
    /// # Safety
    /// `d` is a used descriptor without a guard region or front offset.
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
            let q = match sys::remap(old_base as *mut u8, old_len, new_len, false) {
                Some(q) => q,
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

// A descriptor stays two cache lines (the slab holds a million of them in guard mode).
const _: () = assert!(core::mem::size_of::<Large>() == 128);

/// Pushes a descriptor on `LOOSE` (lock-free: any thread's signal handler may push; only
/// `adopt_loose` takes, all at once).
fn push_loose(d: *mut Large) {
    let mut head = LOOSE.load(Ordering::Relaxed);
    loop {
        // SAFETY: a descriptor only the caller holds until the exchange below publishes it.
        unsafe { (*d).next = head };
        match LOOSE.compare_exchange_weak(head, d, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}
