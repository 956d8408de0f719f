//! The in-memory event ring: `ring=N` fixed 64-byte binary records mapped once, slot
//! `seq % N`, written lock-free (a seqlock stamp per record: a reader that races a writer drops
//! it); reports and dumps read a block's history from it.
//!
//! # Invariants
//! The ring is mapped once during init and never unmapped; a record whose stamp is its event's
//! sequence number before and after it is read is complete.

use super::seq;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};
use ft_format::Op;

/// One event in the ring. `stamp` is the event's seq when the record is complete, 0 while it
/// is being written (seqlock).
#[repr(C, align(64))]
struct Rec {
    stamp: AtomicU64,
    t: AtomicU64,
    /// tid | op << 32 | log2(align)+1 << 40
    tidop: AtomicU64,
    inp: AtomicU64,
    out: AtomicU64,
    size: AtomicU64,
    /// The call's site (`site`: the caller, or its stack's depot id), decoded when read: the
    /// depot is not touched on the event's path.
    site: AtomicU64,
    _spare: AtomicU64,
}
const _: () = assert!(core::mem::size_of::<Rec>() == 64);

static RING: AtomicPtr<Rec> = AtomicPtr::new(core::ptr::null_mut());
static RING_MASK: AtomicU64 = AtomicU64::new(0);

/// Maps the ring of `n` records (a power of two). Called once during init (single-threaded);
/// without memory there is no ring, which a warning says.
pub(super) fn init(n: u64) {
    let bytes = n as usize * core::mem::size_of::<Rec>();
    if let Some(p) = crate::pagemap::map_internal(bytes) {
        RING_MASK.store(n - 1, Ordering::Relaxed);
        RING.store(p as *mut Rec, Ordering::Release);
    } else {
        let mut l: crate::fmt::Line<200> = crate::fmt::Line::new();
        crate::fmt::prefix(&mut l)
            .s(b"WARNING: ring: no memory for ")
            .u(n)
            .s(b" events (")
            .u(bytes as u64 >> 10)
            .s(b" KiB); reports go without blocks' recent history (a smaller ring=N fits)\n");
        l.report();
    }
}

/// The ring is mapped.
pub(super) fn present() -> bool {
    !RING.load(Ordering::Relaxed).is_null()
}

/// Records in the ring.
pub(super) fn capacity() -> u64 {
    RING_MASK.load(Ordering::Relaxed) + 1
}

/// A decoded ring record.
#[derive(Clone, Copy)]
pub struct Event {
    pub seq: u64,
    /// Nanoseconds since the log started; `NO_TIME` when no log was written.
    pub t: u64,
    pub tid: u32,
    pub op: Op,
    pub align: usize,
    pub inp: usize,
    pub out: usize,
    pub size: usize,
    pub caller: usize,
    pub caller2: usize,
}

/// `Event::t` of an event taken while no log is written (its time is not read).
pub const NO_TIME: u64 = u64::MAX;

/// Records `e`, whose `caller` and `caller2` are not read: `site` stands for both.
pub(super) fn put(e: &Event, site: usize) {
    let r = RING.load(Ordering::Relaxed);
    if r.is_null() {
        return;
    }
    let mask = RING_MASK.load(Ordering::Relaxed);
    // SAFETY: the ring has mask+1 records and is never unmapped.
    let rec = unsafe { &*r.add((e.seq & mask) as usize) };
    let alog = if e.align == 0 {
        0
    } else {
        e.align.trailing_zeros() as u64 + 1
    };
    rec.stamp.store(0, Ordering::Relaxed);
    fence(Ordering::Release);
    rec.t.store(e.t, Ordering::Relaxed);
    rec.tidop.store(
        e.tid as u64 | (e.op as u64) << 32 | alog << 40,
        Ordering::Relaxed,
    );
    rec.inp.store(e.inp as u64, Ordering::Relaxed);
    rec.out.store(e.out as u64, Ordering::Relaxed);
    rec.size.store(e.size as u64, Ordering::Relaxed);
    rec.site.store(site as u64, Ordering::Relaxed);
    rec.stamp.store(e.seq, Ordering::Release);
}

/// The record of event `seq`, if the ring still holds it intact.
fn get(seq: u64) -> Option<Event> {
    let r = RING.load(Ordering::Relaxed);
    if r.is_null() || seq == 0 {
        return None;
    }
    let mask = RING_MASK.load(Ordering::Relaxed);
    // SAFETY: as in put.
    let rec = unsafe { &*r.add((seq & mask) as usize) };
    if rec.stamp.load(Ordering::Acquire) != seq {
        return None;
    }
    let t = rec.t.load(Ordering::Relaxed);
    let tidop = rec.tidop.load(Ordering::Relaxed);
    let inp = rec.inp.load(Ordering::Relaxed) as usize;
    let out = rec.out.load(Ordering::Relaxed) as usize;
    let size = rec.size.load(Ordering::Relaxed) as usize;
    let site = rec.site.load(Ordering::Relaxed) as usize;
    fence(Ordering::Acquire);
    if rec.stamp.load(Ordering::Relaxed) != seq {
        return None;
    }
    let mut one = [0usize; 1];
    let frames = crate::site::frames(site, &mut one);
    let caller = frames.first().copied().unwrap_or(0);
    let caller2 = frames.get(1).copied().unwrap_or(0);
    let alog = (tidop >> 40) & 0xff;
    Some(Event {
        seq,
        t,
        tid: tidop as u32,
        op: Op::from_u8((tidop >> 32) as u8).unwrap_or(Op::Malloc),
        align: if alog == 0 {
            0
        } else {
            1usize.checked_shl(alog as u32 - 1).unwrap_or(0)
        },
        inp,
        out,
        size,
        caller,
        caller2,
    })
}

/// Whether the ring holds event `seq` (its record's stamp).
fn holds(seq: u64) -> bool {
    let r = RING.load(Ordering::Relaxed);
    let mask = RING_MASK.load(Ordering::Relaxed);
    // SAFETY: as in put.
    !r.is_null()
        && unsafe { &*r.add((seq & mask) as usize) }
            .stamp
            .load(Ordering::Relaxed)
            == seq
}

/// Calls `f` for the last `n` events of the ring (all of them: `u64::MAX`), oldest first.
/// Numbers may have gaps (threads take them in batches, see `seq`): the last `n` events are
/// found by number, from the highest one handed out down.
pub(super) fn each(n: u64, mut f: impl FnMut(&Event)) {
    let top = seq::last();
    let cap = RING_MASK.load(Ordering::Relaxed) + 1;
    if RING.load(Ordering::Relaxed).is_null() {
        return;
    }
    let mut first = top.saturating_sub(cap) + 1;
    if n < cap {
        let mut found = 0;
        let mut s = top;
        while s >= first && found < n {
            if holds(s) {
                found += 1;
            }
            s -= 1;
        }
        first = s + 1;
    }
    for s in first..=top {
        if let Some(e) = get(s) {
            f(&e);
        }
    }
}
