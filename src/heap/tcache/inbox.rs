//! Arena inboxes: slots of an arena that threads of other arenas freed, handed to the arena's
//! own threads without the arena lock. A cache that holds `REMOTE` such slots (CACHED, see
//! `whole::hold_remote`) appends them to the inbox of their arena (up to `INBOX` slots and
//! `BYTES` bytes); a thread of that arena whose class ran empty takes up to `TAKE` of them into
//! its cache before it refills from the arena (those its classes have no room for go back to
//! the arena).
//! Neither touches the zones' headers: the slots stay CACHED, counted in their zones, so the
//! arena's lock and its zone lines stay with the arena's own threads.
//!
//! # Invariants
//! - The first `n` entries of an inbox are CACHED slots of its arena that no cache holds; only
//!   the holder of the inbox's lock changes them. Whoever takes one out owns it (and checks it
//!   again before use, as every cache entry).
//! - An inbox lock is never held while another allocator lock is taken (the slots that do not
//!   fit are given back after it is dropped). Fork prepare takes them all, after the arenas'.

use super::area::{Area, Entry, class_slots, widen};
use crate::heap::arena::MAX_ARENAS;
use crate::heap::lookup::zone_of;
use crate::lock::Mutex;
use crate::pad::Padded;
use crate::pagemap;
use crate::size_class::NCLASSES;
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Slots an inbox holds at most (the rest go back through the arena lock).
const INBOX: usize = 1024;
/// Bytes of slots an inbox holds at most (a thread of its arena may never refill again).
const BYTES: usize = 1 << 20;
/// Slots a refill takes out of an inbox at most.
const TAKE: usize = 64;

pub(super) struct Inbox {
    n: usize,
    /// Bytes of the slots held (their slot sizes), and each one's.
    bytes: usize,
    e: [Entry; INBOX],
    len: [u32; INBOX],
}

/// Every arena's inbox, and whether it may hold slots (read without its lock, to skip an
/// empty one).
struct Boxes {
    inbox: [Padded<Mutex<Inbox>>; MAX_ARENAS],
    waiting: [AtomicBool; MAX_ARENAS],
}

/// The inboxes, mapped when a second thread gets a cache (null until then: every inbox is
/// empty). Zeroed
/// memory is a set of unlocked, empty inboxes. Not a static of the library: its 300 KiB in
/// `.bss` would spread the allocator's other statics over more pages.
static BOXES: AtomicPtr<Boxes> = AtomicPtr::new(core::ptr::null_mut());

/// The inboxes, if mapped.
#[inline]
fn boxes() -> Option<&'static Boxes> {
    let p = BOXES.load(Ordering::Acquire);
    // SAFETY: once published, the mapping is never unmapped, and only its atomics and locks
    // are used through shared references.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The inboxes' mapping (address, length), if mapped.
pub(super) fn mapping() -> Option<(usize, usize)> {
    let p = BOXES.load(Ordering::Acquire);
    (!p.is_null()).then_some((p as usize, core::mem::size_of::<Boxes>()))
}

/// Maps the inboxes if they are not yet (at the first cache of a thread other than the main
/// one; `post` maps them otherwise).
pub(super) fn prepare() {
    let _ = boxes_or_map();
}

/// The inboxes, mapped on first use; None when the system refuses.
#[cold]
#[unsafe(link_section = "ft_hot")]
fn boxes_or_map() -> Option<&'static Boxes> {
    if let Some(b) = boxes() {
        return Some(b);
    }
    let m = sys::map(core::mem::size_of::<Boxes>())? as *mut Boxes;
    match BOXES.compare_exchange(
        core::ptr::null_mut(),
        m,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => boxes(),
        Err(_) => {
            // Another thread mapped them first.
            // SAFETY: our mapping, never published.
            unsafe { sys::unmap(m as *mut u8, core::mem::size_of::<Boxes>()) };
            boxes()
        }
    }
}

/// The arena and slot size of the slot of entry `e` (the entry is a CACHED slot its holder
/// made so, checked again by whoever takes it).
#[inline]
fn arena_of(e: &Entry) -> Option<(usize, usize)> {
    let (ai, z) = zone_of(pagemap::get(e[0] & !1))?;
    // SAFETY: zone headers stay mapped; a CACHED slot keeps its zone, whose slot size does
    // not change.
    Some((ai, unsafe { (*z).block_size } as usize))
}

/// Moves the entries of `es` into the inboxes of their arenas, zeroing each entry moved; the
/// ones left (a full or busy inbox, a stale entry) are for the caller to give back to their
/// arenas (`whole::give_back`, which checks them again).
/// # Safety
/// The caller owns the entries (its cache's, busy) and holds no allocator lock.
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn post(es: &mut [Entry]) {
    let Some(boxes) = boxes_or_map() else {
        return;
    };
    // Arenas whose inbox is full or busy: their slots are left to the caller.
    let mut skip = 0u32;
    const _: () = assert!(MAX_ARENAS <= 32);
    for k in 0..es.len() {
        if es[k][0] == 0 {
            continue;
        }
        let Some(first @ (ai, _)) = arena_of(&es[k]) else {
            continue;
        };
        if skip & (1 << ai) != 0 {
            continue;
        }
        let Some(mut b) = boxes.inbox[ai].enter() else {
            skip |= 1 << ai;
            continue;
        };
        for (j, e) in es[k..].iter_mut().enumerate() {
            if b.n == INBOX || b.bytes >= BYTES {
                skip |= 1 << ai;
                break;
            }
            if e[0] == 0 {
                continue;
            }
            // (The first entry's arena is known already.)
            let found = if j == 0 { Some(first) } else { arena_of(e) };
            if let Some((bi, len)) = found
                && bi == ai
            {
                let n = b.n;
                b.e[n] = *e;
                b.len[n] = len as u32;
                b.n = n + 1;
                b.bytes += len;
                e[0] = 0;
            }
        }
        boxes.waiting[ai].store(true, Ordering::Release);
        drop(b);
    }
}

/// Moves the newest `TAKE` entries (at most) of an inbox, whose lock the caller holds, into
/// `buf`; returns how many.
fn take_out(b: &mut Inbox, buf: &mut [Entry; TAKE]) -> usize {
    let left = b.n.saturating_sub(TAKE);
    let n = b.n - left;
    buf[..n].copy_from_slice(&b.e[left..left + n]);
    b.n = left;
    let gone: usize = b.len[left..left + n].iter().map(|&l| l as usize).sum();
    b.bytes -= gone;
    n
}

/// Whether the inbox of arena `ai` may hold slots (read without its lock).
#[inline]
pub(super) fn waiting(ai: usize) -> bool {
    ai < MAX_ARENAS && boxes().is_some_and(|b| b.waiting[ai].load(Ordering::Acquire))
}

/// Takes up to `TAKE` slots out of the inbox of arena `ai` into `area`'s classes, as far as
/// they have room; the first `n` entries of `spill` (`n` returned) are the rest, zeroed where
/// taken, for the caller to give back.
/// # Safety
/// `area` is this thread's, busy; the thread holds no allocator lock.
pub(super) unsafe fn take(area: *mut Area, ai: usize, spill: &mut [Entry; TAKE]) -> usize {
    let Some(boxes) = boxes() else {
        return 0;
    };
    if !waiting(ai) {
        return 0;
    }
    let n = {
        let Some(mut b) = boxes.inbox[ai].enter() else {
            return 0;
        };
        let n = take_out(&mut b, spill);
        boxes.waiting[ai].store(b.n > 0, Ordering::Relaxed);
        n
    };
    for e in spill[..n].iter_mut() {
        let s = e[0] & !1;
        let Some((_, z)) = zone_of(pagemap::get(s)) else {
            e[0] = 0;
            continue;
        };
        // SAFETY: per the caller; the entry came out of the inbox, so it is ours; its zone
        // stays mapped while the slot is CACHED, as it was when posted, and nothing changed
        // it since.
        unsafe {
            let c = (*z).class as usize;
            if c >= NCLASSES {
                e[0] = 0;
                continue;
            }
            let k = (*area).count[c].load(Ordering::Relaxed) as usize;
            let mut slots = class_slots(area, c);
            if k >= slots.len() {
                slots = widen(area, c);
            }
            if k < slots.len() {
                slots[k] = *e;
                (*area).count[c].store(k as u32 + 1, Ordering::Relaxed);
                e[0] = 0;
            }
        }
    }
    n
}

/// A buffer for `take`'s spill.
pub(super) const fn spill() -> [Entry; TAKE] {
    [[0; 2]; TAKE]
}

/// Empties every inbox into `f` (which gives the slots back to their arenas), `TAKE` slots at
/// a time, out of the inbox's lock.
pub(super) fn drain(mut f: impl FnMut(&mut [Entry])) {
    let Some(boxes) = boxes() else {
        return;
    };
    let mut buf = spill();
    for (ai, w) in boxes.waiting.iter().enumerate() {
        while w.load(Ordering::Acquire) {
            let n = {
                let Some(mut b) = boxes.inbox[ai].enter() else {
                    break;
                };
                let n = take_out(&mut b, &mut buf);
                w.store(b.n > 0, Ordering::Relaxed);
                n
            };
            f(&mut buf[..n]);
        }
    }
}

/// Takes every inbox lock (fork prepare).
pub fn lock_forever() {
    for b in boxes().iter().flat_map(|x| x.inbox.iter()) {
        b.lock_forever();
    }
}

/// Releases what `lock_forever` took (fork, parent).
pub fn unlock_forever() {
    for b in boxes().iter().flat_map(|x| x.inbox.iter()) {
        // SAFETY: `lock_forever` took these locks on this thread.
        unsafe { b.force_unlock() };
    }
}

/// Resets every inbox lock (fork, child: the only thread).
pub fn reset() {
    for b in boxes().iter().flat_map(|x| x.inbox.iter()) {
        // SAFETY: fork child: we are the only thread.
        unsafe { b.reset() };
    }
}
