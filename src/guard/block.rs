//! A guarded block's life: whether an allocation takes the guarded path (`wants`), its making
//! (a pool slot, or a mapping of its own built on banked or fresh pages), its resizing in
//! place, its retirement into the address-space quarantine when freed (`retire`), and its
//! release from there (`release`: back to its pool, or unmapped), with the budgets kept.
//!
//! The heap frees a guarded block itself (FREEING, then its range closed: `close_slot` for a
//! pool slot, PROT_NONE and `bank::put` or discard for a mapping of its own, then QUARANTINED)
//! and hands it to `retire`.

use super::layout::{self, data_pages, pooled};
use super::slots::{markers, open_slot};
use super::{bank, budget, hooks, pool, ring};
use crate::block::{GuardAt, Op};
use crate::config::{self, Guard};
use crate::large::{LARGE, Large, LargeState, MAX_PIECES};
use crate::pagemap;
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicBool, Ordering};

/// Guard modes are on (init).
static ON: AtomicBool = AtomicBool::new(false);

/// Guarded blocks with at least this much data get MADV_HUGEPAGE.
const THP_MIN: usize = 4 << 20;

/// Registers what the large layer calls back (`trim` empties the bank) and, with a guard mode
/// on, sets the budgets (init).
pub fn init(c: &config::Config) {
    crate::large::set_trim_hook(bank::trim);
    if c.guard == Guard::Off && c.sample == 0 {
        return;
    }
    budget::init(c);
    ring::init();
    ON.store(true, Ordering::Relaxed);
}

/// Whether a block's `Large::guarded` (or `Info::guarded`) names a guarded block.
#[inline]
pub fn is_guarded(guarded: GuardAt) -> bool {
    guarded.is_guarded()
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
    while budget::mappings_spent() {
        if release_oldest() {
            continue;
        }
        budget::warn_mappings();
        return false;
    }
    budget::pages_fit(size)
}

/// Allocates a guarded block (MALLOC_DEBUG=guard): a PROT_NONE page right after the block's
/// last byte (or right before its first with `guard=below`); None falls back to the ordinary
/// path. Blocks of at most `POOL_MAX_PAGES` data pages take a slot of a pool, opened without
/// the lock; bigger ones get a mapping of their own (`alloc_own`).
///
/// Alignment: an object of `size` bytes cannot need more alignment than the largest power of
/// two dividing `size` (sizeof is a multiple of alignof), so a default-aligned block gets that,
/// between 8 and 16 bytes: sizes that are multiples of 8 end exactly at the guard, and the 1–7
/// bytes of gap of other sizes are canary. `guard=exact` drops alignment entirely (1 byte), so
/// every block ends at its guard — some programs assume 8- or 16-byte aligned results.
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
    let align = layout::requested_align(size, align, op, exact);
    let (a, guard, data_len) = layout::geometry(size, cap, align, exact)?;
    let class = pool::class_of(data_len, guard, sys::page_size());
    let mut l = LARGE.enter()?;
    let d = match class {
        Some(class) => {
            let s = pool::take_class(&mut l, class, a, guard, data_len)?;
            // The system call runs without the lock (the slot is nobody's yet). This thread
            // holds no other lock (`wants`), so waiting for this one is safe.
            drop(l);
            // SAFETY: the data of a pool slot that only this call holds.
            let ok = unsafe { open_slot(s.data, s.data_len) };
            if !ok {
                budget::warn_refused(sys::errno());
            }
            l = LARGE.lock();
            pool::open(&mut l, s, size, align, below, exact, ok)?
        }
        None => alloc_own(&mut l, size, a, guard, data_len, align, below, exact)?,
    };
    // SAFETY: d is the fresh descriptor, under the LARGE lock. ALLOCATING until its canaries
    // are written after the unlock.
    let (user, lo, hi, vmas, dirty, pages) = unsafe {
        (*d).state = crate::block::ALLOCATING;
        (*d).origin = op as u8;
        hooks::stamp(&mut (*d).dbg, caller);
        let dr = &*d;
        let vmas = if class.is_some() {
            if markers() { 0 } else { 2 }
        } else {
            dr.vmas as usize
        };
        (
            dr.user,
            dr.lo,
            dr.map_base + dr.usable_len,
            vmas,
            dr.dirty,
            data_pages(dr),
        )
    };
    drop(l);
    budget::add(vmas, pages);
    // SAFETY: the accessible part of the new mapping is ours. Recycled pages are cleared
    // for calloc (outside the lock).
    unsafe {
        crate::debug::dress::Dress::guarded(lo, hi, user, size).new_block(zero, !dirty);
        // Descriptors are never unmapped; only this call changes an ALLOCATING one.
        crate::block::publish_state(&raw mut (*d).state, crate::block::State::Used);
    }
    Some(user)
}

/// A guarded block with a mapping of its own (more than `POOL_MAX_PAGES` data pages), built
/// on the pages of a freed big block when the bank has some (not with the guard below). Such
/// a block is `dirty`: beyond the first `debug::LARGE_FILL_MAX` bytes, which are filled when
/// filling is on, it holds what the freed block held, and `allocate` clears it for calloc (a
/// memset costs far less than the page faults it saves).
#[allow(clippy::too_many_arguments)]
fn alloc_own(
    l: &mut LargeState,
    size: usize,
    a: usize,
    guard: usize,
    data_len: usize,
    align: usize,
    below: bool,
    exact: bool,
) -> Option<*mut Large> {
    let page = sys::page_size();
    // With the guard below, a page after the data guards the far side too (a run off the
    // block's end, a string without its NUL, faults in the block's own mapping rather than
    // in whatever the kernel put next): guard | data | page.
    let far = if below { page } else { 0 };
    let map_len = data_len + guard + far;
    let d = l.new_desc()?;
    let recycled = if below {
        None
    } else {
        bank::map_recycled(l, data_len, map_len)
    };
    let dirty = recycled.is_some();
    let (base, seams) = match recycled {
        Some(r) => r,
        None => match sys::map(map_len) {
            Some(b) => {
                // SAFETY: the last `guard` bytes of the mapping we just created, or its first
                // `guard` bytes and its last page (the guard below).
                let closed = unsafe {
                    if below {
                        sys::protect(b, guard, false)
                            && sys::protect(b.add(guard + data_len), far, false)
                    } else {
                        sys::protect(b.add(data_len), guard, false)
                    }
                };
                if !closed {
                    budget::warn_refused(sys::errno());
                    // SAFETY: the mapping just created, which nothing uses.
                    unsafe { sys::unmap(b, map_len) };
                    l.release_desc(d);
                    return None;
                }
                (b as usize, [0; MAX_PIECES])
            }
            None => {
                l.release_desc(d);
                return None;
            }
        },
    };
    l.mapped_bytes += map_len;
    let (lo, hi, user) = if below {
        let lo = base + guard;
        (lo, lo + data_len, (lo + a - 1) & !(a - 1))
    } else {
        let hi = base + data_len;
        (base, hi, (hi - size) & !(a - 1))
    };
    if size >= THP_MIN {
        // Transparent huge pages for the huge-page-aligned parts of a big block: one fault
        // (and one clear) per 2 MiB instead of 512. Only over the block itself (not the
        // realloc headroom, which a huge page would make resident) and only for blocks of
        // 4 MiB and more, which are nearly all touched.
        let from = user & !(page - 1);
        // SAFETY: advice on part of the mapping we just created.
        unsafe { sys::huge_pages(from as *mut u8, hi - from, true) };
    }
    let mut desc = layout::descriptor(base, map_len, hi, lo, user, size, align, below, exact);
    // Data in several mappings (recycled pieces, maybe fresh pages after them).
    desc.seams = seams;
    desc.dirty = dirty;
    desc.vmas = 2 + below as u8 + seams.iter().filter(|&&s| s != 0).count() as u8;
    l.publish_mapping(d, desc)?;
    Some(d)
}

/// Resizes a guarded block inside its mapping: with the guard after it, the block moves down
/// so its end still meets the guard (the content is moved); with the guard before it, it just
/// grows. Returns the (possibly new) user pointer, None if it does not fit.
/// # Safety
/// `d` is a used guarded descriptor of `l`, under the LARGE lock.
pub unsafe fn resize(l: &mut LargeState, d: *mut Large, n: usize) -> Option<usize> {
    // SAFETY: d is a used guarded descriptor per the caller; the moved bytes stay inside its
    // accessible part [lo, hi).
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
            let a = layout::align_of(n, (*d).align, (*d).guarded == GuardAt::Exact);
            let u = hi.checked_sub(n)? & !(a - 1);
            if u < lo {
                return None;
            }
            core::ptr::copy(user as *const u8, u as *mut u8, old.min(n));
            u
        };
        (*d).user = new_user;
        (*d).size = n;
        l.live_bytes = l.live_bytes - old + n;
        Some(new_user)
    }
}

/// A freed guarded block (already PROT_NONE and QUARANTINED) enters the address-space
/// quarantine; the oldest ones beyond the bounds are released.
pub fn retire(p: usize, size: usize) {
    let page = sys::page_size();
    let cost = size.next_multiple_of(page) + page;
    let (pooled, pages) = match pagemap::decode(pagemap::get(p)) {
        // SAFETY: descriptors are never unmapped, and this quarantined one stays ours until
        // it leaves the ring we are about to put it in.
        pagemap::Owner::Large(d) => unsafe {
            let d = &*(d as *const Large);
            (pooled(d), data_pages(d))
        },
        _ => (false, 0),
    };
    // Its pages were given back (or banked, which is bounded).
    budget::sub_pages(pages);
    if pooled && !markers() {
        // Its data merged with the guards around it.
        budget::sub_vmas(1);
    }
    let cost = cost | if pooled { ring::POOLED } else { 0 };
    // A signal handler that interrupted this thread inside the allocator releases at most one
    // block (only to make room): the LARGE lock is likely busy for it, and each release it
    // cannot do waits in its thread's few deferred slots.
    let nested = crate::lock::holds_any();
    let mut out = [0usize; ring::OUT_MAX];
    let Some(n) = ring::push(p, cost, nested, &mut out) else {
        // A signal handler interrupted this thread inside the allocator: the block skips the
        // address-space quarantine.
        release(p);
        return;
    };
    for &q in &out[..n] {
        release(q);
    }
}

/// What `release_locked` did with a block.
enum Released {
    /// Its slot went back to its pool.
    Pooled,
    /// Its mapping, counted for this many kernel mappings, was unmapped.
    Unmapped(usize),
}

/// A block leaves the address-space quarantine: back to its pool, or unmapped.
pub fn release(p: usize) {
    let Some(mut l) = LARGE.enter() else {
        // A signal handler interrupted this thread inside the allocator.
        hooks::defer_release(p);
        return;
    };
    let r = release_locked(&mut l, p);
    drop(l);
    match r {
        Some(Released::Pooled) if !markers() => budget::sub_vmas(1),
        Some(Released::Unmapped(n)) => budget::sub_vmas(n),
        _ => {}
    }
}

/// `release` under the lock: a pool slot goes back to its pool (already PROT_NONE with its
/// pages given back, so no system call), a block with a mapping of its own is unmapped. None
/// if `p` is not a quarantined guarded block.
fn release_locked(l: &mut LargeState, p: usize) -> Option<Released> {
    let pagemap::Owner::Large(d) = pagemap::decode(pagemap::get(p)) else {
        return None;
    };
    let d = d as *mut Large;
    // SAFETY: descriptors are never unmapped; under the lock a page-map entry names a live
    // one.
    let dr = unsafe { &*d };
    if dr.state != crate::block::QUARANTINED || dr.user != p || !dr.guarded.is_guarded() {
        return None;
    }
    if !pooled(dr) {
        let vmas = dr.vmas as usize;
        l.guarded.bank.forget(d);
        // SAFETY: a quarantined descriptor of this state.
        unsafe { l.free(d) };
        return Some(Released::Unmapped(vmas));
    }
    // SAFETY: a quarantined pooled descriptor, under the lock.
    unsafe { pool::release(l, d) };
    Some(Released::Pooled)
}

/// Releases the oldest freed guarded block; false if there is none.
fn release_oldest() -> bool {
    let Some(p) = ring::pop_oldest() else {
        return false;
    };
    release(p);
    true
}

/// Empties the address-space quarantine (a mapping failed and its address space is wanted).
/// Returns whether it held anything.
pub fn release_all() -> bool {
    let mut any = false;
    while release_oldest() {
        any = true;
    }
    any
}
