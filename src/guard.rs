//! Guard pages: `MALLOC_DEBUG=guard` (or `guard=below`, `guard=exact`, `sample=N`) gives an
//! allocation a mapping of its own whose last byte touches a PROT_NONE page (or whose first
//! byte follows one), so an overflow faults at the faulting instruction (`segv.rs` explains it).
//! The gap left by 16-byte alignment is closed with canary bytes, checked on free.
//!
//! Freed guarded blocks become PROT_NONE, give their pages back (or lend them to the next big
//! guarded block), and stay mapped in a bounded FIFO (address-space quarantine), so a use after
//! free faults too.
//!
//! Blocks of up to `POOL_MAX_PAGES` data pages live in slots of per-size pools: chunks of
//! `guard | data | guard | data | ... | guard`, inaccessible until a slot is handed out, one
//! pool per data page count and guard size. Where the kernel has guard markers
//! (`MADV_GUARD_INSTALL`, Linux 6.13) a chunk is one read-write mapping covered by markers: a
//! slot is opened by removing its markers and closed (pages given back) by installing them,
//! one call each, with no kernel mapping split, so pooled blocks cost nothing against
//! `vm.max_map_count`. Elsewhere slots are opened and closed with mprotect (and madvise). A
//! slot goes back to its pool (no system call) when it leaves the address-space quarantine;
//! bigger blocks get a mapping of their own, unmapped then.
//!
//! Mappings are counted against `vm.max_map_count`: with mprotect a live pooled block costs
//! two (its data and the inaccessible run it splits), a freed pooled one at most one (it merges
//! with the guards around it, unless the kernel keeps it apart), a pooled free slot none; with
//! markers pooled blocks cost none. A block with a mapping of its own costs what its descriptor
//! counts (`Large::vmas`: two, more when built on recycled pages or when a later block took
//! part of its pages) until it is unmapped. The pages of live guarded blocks are bounded too
//! (`guard_budget`). When a budget is spent we say so once and further allocations use the
//! zones until live guarded blocks are freed.
//!
//! Big blocks recycle pages: see `LargeState::bank_put`.
//!
//! # Invariants
//! - The ring holds user pointers of QUARANTINED guarded LARGE descriptors; they are released
//!   (returned to their pool or unmapped) only through `release`, after this lock is dropped.
//! - `POOLS` is only touched under the `LARGE` lock (`pools` takes the locked state as proof).
//!   A free slot is inaccessible (PROT_NONE or guard markers), holds no pages, is `META` in the
//!   page map (so is all of a chunk but its used slots), and its descriptor (state FREE, user
//!   0, data address in `lo`) is on its class's free list.

use crate::block::Info;
use crate::block::Op;
use crate::config::{self, Guard};
use crate::fmt::{Line, prefix};
use crate::large::{LARGE, Large, LargeState, Released};
use crate::lock::Mutex;
use crate::sys;
use crate::tls;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// Guarded blocks of at most this many data pages take a pool slot (larger ones get a
/// mapping of their own).
pub const POOL_MAX_PAGES: usize = 64;
/// Address space reserved at a time for a pool (at least 8 slots).
pub const POOL_CHUNK: usize = 4 << 20;

/// `madvise` advice of Linux 6.13: page-table guard markers (a fault like PROT_NONE), which
/// replace a range's pages and split no kernel mapping.
const MADV_GUARD_INSTALL: libc::c_int = 102;
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// How pool slots are opened and closed, fixed by the first pool chunk: 0 not known yet,
/// `MARKERS` (guard markers: a chunk is one kernel mapping whatever its slots do) or `PROTECT`
/// (mprotect, on older kernels: each used slot splits the chunk's mapping).
static SLOTS: AtomicU8 = AtomicU8::new(0);
const MARKERS: u8 = 1;
const PROTECT: u8 = 2;

/// Whether pool slots use guard markers (none decided yet: false).
#[inline]
pub fn markers() -> bool {
    SLOTS.load(Ordering::Relaxed) == MARKERS
}

/// Makes a new pool chunk inaccessible, deciding at the first one between guard markers and
/// mprotect. False if neither works.
/// # Safety
/// `[p, p + len)` is a new private anonymous read-write mapping of ours.
pub unsafe fn close_chunk(p: usize, len: usize) -> bool {
    if SLOTS.load(Ordering::Relaxed) != PROTECT && config::get().markers {
        // SAFETY: the caller's new mapping.
        let r = unsafe { libc::madvise(p as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
        if r == 0 {
            SLOTS.store(MARKERS, Ordering::Relaxed);
            // No huge page may cover slots (a huge page has no guard markers inside).
            // SAFETY: as above.
            unsafe { libc::madvise(p as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
            return true;
        }
        SLOTS.store(PROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above.
    unsafe { sys::protect(p as *mut u8, len, false) }
}

/// Makes a pool slot's data accessible (its pages read as zero). False if the kernel refuses.
/// # Safety
/// `[data, data + len)` is the data of a free pool slot that only the caller holds.
pub unsafe fn open_slot(data: usize, len: usize) -> bool {
    if markers() {
        // SAFETY: per the caller.
        unsafe { libc::madvise(data as *mut libc::c_void, len, MADV_GUARD_REMOVE) == 0 }
    } else {
        // SAFETY: per the caller.
        unsafe { sys::protect(data as *mut u8, len, true) }
    }
}

/// Makes a pool slot's range inaccessible and gives its pages back (one call with markers).
/// # Safety
/// `[p, p + len)` is (part of) a pool slot that holds no block the program may use.
pub unsafe fn close_slot(p: usize, len: usize) {
    if markers() {
        // SAFETY: per the caller.
        unsafe { libc::madvise(p as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
    } else {
        // SAFETY: per the caller.
        unsafe {
            sys::protect(p as *mut u8, len, false);
            sys::discard(p as *mut u8, len);
        }
    }
}

/// One pool: free slots (their descriptors) and the never used rest of the newest chunk.
#[derive(Clone, Copy)]
pub struct PoolClass {
    pub free: *mut Large,
    pub next: usize,
    pub end: usize,
}

impl PoolClass {
    const EMPTY: PoolClass = PoolClass {
        free: core::ptr::null_mut(),
        next: 0,
        end: 0,
    };
}

/// A pool slot taken for a new block, still inaccessible (`LargeState::pool_take`).
pub struct PoolSlot {
    pub d: *mut Large,
    pub data: usize,
    pub data_len: usize,
    pub guard: usize,
    pub a: usize,
}

/// Pools by guard size (0: one page, 1: the wide region of big blocks) and data pages - 1.
pub struct Pools {
    pub cls: [[PoolClass; POOL_MAX_PAGES]; 2],
}

struct PoolCell(UnsafeCell<Pools>);
// SAFETY: only reached through `pools`, whose argument proves the LARGE lock is held.
unsafe impl Sync for PoolCell {}

static POOLS: PoolCell = PoolCell(UnsafeCell::new(Pools {
    cls: [[PoolClass::EMPTY; POOL_MAX_PAGES]; 2],
}));

/// The slot pools; the `LargeState` borrow proves the LARGE lock is held (fork keeps them
/// consistent because the forking thread holds that lock).
pub fn pools(_locked: &mut LargeState) -> *mut Pools {
    POOLS.0.get()
}

/// Mappings (VMAs) our guarded blocks use now.
static VMAS: AtomicUsize = AtomicUsize::new(0);
/// How many we allow ourselves (set at init from vm.max_map_count).
static BUDGET: AtomicUsize = AtomicUsize::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);
/// Data pages of the live guarded blocks (each holds at least one of its own: two blocks never
/// share a page), and their bound: `guard_budget`, by default 256 MiB (65,536 small blocks
/// with 4 KiB pages) or an eighth of the machine's RAM if less. With guard markers the mapping
/// budget no longer stops a program with millions of small blocks (python's alloc-heavy run
/// would keep 6 GiB of guarded pages, four times slower); this does.
static PAGES: AtomicUsize = AtomicUsize::new(0);
static PAGE_BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static PAGES_WARNED: AtomicBool = AtomicBool::new(false);
const DEFAULT_PAGE_BUDGET: usize = 256 << 20;
static ON: AtomicBool = AtomicBool::new(false);

const RING_CAP: usize = 32768;
/// Address space held by freed guarded blocks before the oldest is unmapped.
const RING_MAX_BYTES: usize = 512 << 20;

struct Ring {
    buf: [(usize, usize); RING_CAP],
    head: usize,
    len: usize,
    bytes: usize,
}
static RING: Mutex<Ring> = Mutex::new(Ring {
    buf: [(0, 0); RING_CAP],
    head: 0,
    len: 0,
    bytes: 0,
});

/// Reads vm.max_map_count and sets the budget (init).
pub fn init(c: &config::Config) {
    if c.guard == Guard::Off && c.sample == 0 {
        return;
    }
    let max = read_max_map_count().unwrap_or(65530);
    let mut used = 0usize;
    crate::maps::for_each(|_| {
        used += 1;
        true
    });
    // Keep half of the limit (and 1000 more) for the program and for our zones and LARGE
    // blocks, whose guard regions split mappings too.
    let budget = (max / 2).saturating_sub(used + 1000);
    BUDGET.store(budget, Ordering::Relaxed);
    // SAFETY: sysconf has no memory effects.
    let ram = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    let page = sys::page_size();
    let pages = if c.guard_budget > 0 {
        c.guard_budget as usize / page
    } else {
        let cap = DEFAULT_PAGE_BUDGET / page;
        if ram > 0 {
            (ram as usize / 8).min(cap)
        } else {
            cap
        }
    };
    PAGE_BUDGET.store(pages.max(1), Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
}

/// vm.max_map_count, if readable (and sane).
pub fn read_max_map_count() -> Option<usize> {
    // SAFETY: constant NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/sys/vm/max_map_count".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 32];
    // SAFETY: reading into buf.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return None;
    }
    let s = &buf[..n as usize];
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    crate::fmt::parse_num(&s[..end])
        .map(|v| v as usize)
        .filter(|&v| v > 1000)
}

/// Does this allocation take the guarded path?
#[inline]
pub fn wants(size: usize, align: usize) -> bool {
    // A block aligned beyond a page cannot both start on its alignment and end at a guard page
    // (nor follow one) without a gap of up to the alignment: it gets canaries instead.
    if !ON.load(Ordering::Relaxed) || align > sys::page_size() {
        return false;
    }
    if crate::lock::holds_any() {
        // A signal handler interrupted this thread inside the allocator: a guarded block
        // takes the LARGE lock twice and may wait for it, so this allocation takes the
        // ordinary path.
        return false;
    }
    let c = config::get();
    if c.sample > 0 {
        let st = tls::state();
        // SAFETY: our own TLS block.
        unsafe {
            if (*st).sample_left > 0 {
                (*st).sample_left -= 1;
                return false;
            }
            // Next one in about N: a cheap per-thread pseudo-random spread around N.
            let r = (sys::now_ns() ^ (st as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            (*st).sample_left = (c.sample / 2 + r % c.sample.max(1)) as u32;
        }
    }
    // Freed blocks give way first: the oldest leave the address-space quarantine. The budget
    // is only declared spent when none is left (another thread may allocate between a release
    // and the next check: the check is repeated, not trusted).
    while VMAS.load(Ordering::Relaxed) + OWN_VMAS > BUDGET.load(Ordering::Relaxed) {
        if release_oldest() {
            continue;
        }
        if !WARNED.swap(true, Ordering::Relaxed) {
            let mut l: Line<256> = Line::new();
            prefix(&mut l)
                .s(b"WARNING: guard: mapping budget spent by live blocks (")
                .u(VMAS.load(Ordering::Relaxed) as u64);
            l.s(b" mappings, vm.max_map_count leaves no more); further blocks get canaries instead of guard pages\n");
            l.report();
        }
        return false;
    }
    let pages = size / sys::page_size() + 1;
    let budget = PAGE_BUDGET.load(Ordering::Relaxed);
    if pages > budget {
        // One request bigger than the whole budget: no live block spent it, and such a request
        // is often unsatisfiable (NULL and ENOMEM, which is no report). It gets canaries, and
        // the budget stays open for the blocks that fit.
        return false;
    }
    if PAGES.load(Ordering::Relaxed) + pages > budget {
        if !PAGES_WARNED.swap(true, Ordering::Relaxed) {
            let mut l: Line<256> = Line::new();
            prefix(&mut l)
                .s(b"WARNING: guard: memory budget spent by live blocks (")
                .u(((PAGES.load(Ordering::Relaxed) * sys::page_size()) >> 20) as u64);
            l.s(b" MiB in guarded pages, see guard_budget); further blocks get canaries instead of guard pages\n");
            l.report();
        }
        return false;
    }
    true
}

/// A guarded block's data pages, `[lo, hi)` of its descriptor.
/// # Safety
/// `d` is a used or quarantined guarded descriptor.
unsafe fn data_pages(d: *const Large) -> usize {
    // SAFETY: per the caller; these fields do not change while the block lives.
    unsafe { ((*d).map_base + (*d).usable_len - (*d).lo) / sys::page_size() }
}

/// Allocates a guarded block; None falls back to the ordinary path.
pub fn allocate(
    size: usize,
    cap: usize,
    align: usize,
    op: Op,
    caller: usize,
    zero: bool,
) -> Option<usize> {
    let c = config::get();
    let (below, exact) = match c.guard {
        Guard::Below => (true, false),
        Guard::Exact => (false, true),
        _ => (false, false),
    };
    let mut l = LARGE.enter()?;
    let d = match l.pool_take(size, cap, align, exact) {
        Some(s) => {
            // The system call runs without the lock (the slot is nobody's yet). This thread
            // holds no other lock (`wants`), so waiting for this one is safe.
            drop(l);
            // SAFETY: the data of a pool slot that only this call holds.
            let ok = unsafe { open_slot(s.data, s.data_len) };
            l = LARGE.lock();
            l.pool_open(s, size, align, below, exact, ok)?
        }
        None => l.alloc_guarded(size, cap, align, below, exact)?,
    };
    // SAFETY: d is the fresh descriptor, under the LARGE lock. ALLOCATING until its canaries
    // are written after the unlock.
    let (user, lo, hi, vmas, dirty) = unsafe {
        (*d).state = crate::block::ALLOCATING;
        (*d).origin = op as u8;
        (*d).dbg = crate::heap::stamp_alloc(caller);
        let vmas = if LargeState::guarded_pooled(&*d) {
            if markers() { 0 } else { 2 }
        } else {
            (*d).vmas as usize
        };
        let dirty = (*d).dirty;
        (
            (*d).user,
            (*d).lo,
            (*d).map_base + (*d).usable_len,
            vmas,
            dirty,
        )
    };
    // SAFETY: as above.
    let pages = unsafe { data_pages(d) };
    drop(l);
    VMAS.fetch_add(vmas, Ordering::Relaxed);
    PAGES.fetch_add(pages, Ordering::Relaxed);
    // SAFETY: the accessible part of the new mapping is ours. Recycled pages are cleared
    // for calloc (outside the lock).
    unsafe {
        crate::debug::dress::Dress::guarded(lo, hi, user, size).new_block(zero, !dirty);
        // Descriptors are never unmapped; only this call changes an ALLOCATING one.
        crate::block::publish_state(&raw mut (*d).state, crate::block::State::Used);
    }
    Some(user)
}

#[inline]
pub fn is_guarded(info: &Info) -> bool {
    info.guarded.is_guarded()
}

/// Flag in a ring entry's cost (a multiple of the page size): the block is in a pool slot.
const POOLED: usize = 1;

/// A freed guarded block (already PROT_NONE and QUARANTINED) enters the address-space
/// quarantine; the oldest ones beyond the bounds are released.
pub fn retire(p: usize, size: usize) {
    let page = sys::page_size();
    let cost = size.next_multiple_of(page) + page;
    let (pooled, pages) = match crate::pagemap::decode(crate::pagemap::get(p)) {
        // SAFETY: descriptors are never unmapped, and this quarantined one stays ours until
        // it leaves the ring we are about to put it in.
        crate::pagemap::Owner::Large(d) => unsafe {
            let d = d as *const Large;
            (LargeState::guarded_pooled(&*d), data_pages(d))
        },
        _ => (false, 0),
    };
    // Its pages were given back (or banked, which is bounded).
    PAGES.fetch_sub(pages, Ordering::Relaxed);
    if pooled && !markers() {
        // Its data merged with the guards around it.
        VMAS.fetch_sub(1, Ordering::Relaxed);
    }
    let cost = cost | if pooled { POOLED } else { 0 };
    // A signal handler that interrupted this thread inside the allocator releases at most one
    // block (only to make room): the LARGE lock is likely busy for it, and each release it
    // cannot do waits in its thread's few deferred slots.
    let nested = crate::lock::holds_any();
    let mut out = [0usize; 8];
    let mut n = 0;
    {
        let Some(mut r) = RING.enter() else {
            // A signal handler interrupted this thread inside the allocator: the block skips
            // the address-space quarantine.
            release(p);
            return;
        };
        if r.len == RING_CAP {
            let h = r.head;
            out[n] = r.buf[h].0;
            n += 1;
            r.bytes -= r.buf[h].1 & !POOLED;
            r.head = (h + 1) % RING_CAP;
            r.len -= 1;
        }
        let t = (r.head + r.len) % RING_CAP;
        r.buf[t] = (p, cost);
        r.len += 1;
        r.bytes += cost & !POOLED;
        while !nested && r.bytes > RING_MAX_BYTES && r.len > 1 && n < out.len() {
            let h = r.head;
            out[n] = r.buf[h].0;
            n += 1;
            r.bytes -= r.buf[h].1 & !POOLED;
            r.head = (h + 1) % RING_CAP;
            r.len -= 1;
        }
    }
    for &q in &out[..n] {
        release(q);
    }
}

/// A block leaves the address-space quarantine: back to its pool, or unmapped.
pub fn release(p: usize) {
    let Some(mut l) = LARGE.enter() else {
        // A signal handler interrupted this thread inside the allocator.
        crate::heap::defer_guard_release(p);
        return;
    };
    let r = l.release_guarded(p);
    drop(l);
    match r {
        Some(Released::Pooled) if !markers() => {
            VMAS.fetch_sub(1, Ordering::Relaxed);
        }
        Some(Released::Unmapped(n)) => {
            VMAS.fetch_sub(n, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Releases the oldest freed guarded block; false if there is none.
fn release_oldest() -> bool {
    let p = {
        let Some(mut r) = RING.enter() else {
            return false;
        };
        if r.len == 0 {
            return false;
        }
        let h = r.head;
        let (p, cost) = r.buf[h];
        r.bytes -= cost & !POOLED;
        r.head = (h + 1) % RING_CAP;
        r.len -= 1;
        p
    };
    release(p);
    true
}

/// Empties the address-space quarantine (a mapping failed and its address space is wanted:
/// `heap::reclaim`). Returns whether it held anything.
pub fn release_all() -> bool {
    let mut any = false;
    while release_oldest() {
        any = true;
    }
    any
}

/// Whether this thread holds the address-space quarantine's lock.
pub fn held_by_me() -> bool {
    RING.held_by_me()
}

/// Kernel mappings a new guarded block with a mapping of its own may cost: its guard and its
/// data, which is up to four mappings when built on recycled pages (`Large::vmas` counts the
/// real number).
const OWN_VMAS: usize = 5;

/// Counts kernel mappings made by splitting a freed block's banked pages.
pub fn count_vmas(n: usize) {
    VMAS.fetch_add(n, Ordering::Relaxed);
}

pub fn lock_forever() {
    RING.lock_forever();
}
pub fn unlock_forever() {
    // SAFETY: taken by lock_forever on this thread (fork prepare).
    unsafe { RING.force_unlock() };
}
pub fn reset() {
    // SAFETY: fork child, single thread.
    unsafe { RING.reset() };
}

/// Installs the SIGSEGV/SIGBUS explainer when guards (or debugging, which guards LARGE blocks
/// and zones) are on.
pub fn install_handler() {
    #[cfg(not(test))]
    crate::segv::install();
}

/// The address-space quarantine's own storage (skipped by the leak scanner).
pub fn ring_range() -> (usize, usize) {
    (
        &RING as *const Mutex<Ring> as usize,
        core::mem::size_of::<Mutex<Ring>>(),
    )
}
