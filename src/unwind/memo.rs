//! Whole stacks remembered by the frame they start from, so that an allocation from a call
//! site seen before costs a check of the stack words its walk read instead of a walk.
//!
//! A walk from `(pc, sp, fp)` that used compact rules only (`Recording`) is kept with the
//! stack words it read whose value counts (address, as an offset from `sp`, and value), the
//! span of all the words it read, and the id its caller stored the frames under. The words are
//! found by applying the recorded rules once more, exactly as the walk applies them
//! (`step::apply`), while the stack is still the one walked. A later call from the same
//! `(pc, sp)` — and the same `fp` when the walk read the first frame pointer: code built
//! without frame pointers keeps anything in rbp — reads the kept words on the current stack.
//! A walk is a function of its starting registers and of the words it reads, and the rule of
//! a frame depends only on its pc (while no object is unloaded: the module epoch is part of
//! the key), so when every word holds its kept value the walk would read the very same words,
//! find the same frames and end where it ended. A saved rbp that no later rule uses (code
//! built without frame pointers keeps anything there) changes nothing the walk finds: its
//! value is not kept; that it is readable, as the walk needs, follows from the span lying in
//! the thread's stack. The answer is the same, provably, and nothing is guessed; any
//! difference sends the call to the walk.
//!
//! The table is shared by all threads (their stack pointers differ, so their entries do too):
//! direct-mapped, each entry a seqlock (odd `seq` while a writer fills it; a reader keeps its
//! answer only when `seq` was the same even value before and after). Writers that find an
//! entry busy give up, so a signal handler never waits.
//!
//! # Invariants
//! - An entry holds at most `FRAMES` frames after the first and `WORDS` words; deeper stacks,
//!   and walks that read a word outside the thread's own stack (a signal stack, a coroutine's),
//!   are not kept.
//! - Replays read only words within the thread's cached stack range (`stack::Cached`): never
//!   a fault, even on a torn entry (whose answer the seqlock then discards).

use super::rule::Packed;
use super::stack::{Cached, Mem};
use super::step::{Frame, Words, apply};
use super::{module, seqlock, symbol};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// Frames after the first that an entry keeps (the default depth is 16).
pub const FRAMES: usize = 15;
/// Stack words an entry keeps: two a frame (the return address and the saved rbp) for a
/// 16-frame stack, and some room for rules whose CFA is read from memory.
const WORDS: usize = 36;
/// Words a walk of `FRAMES` steps reads at most (CFA, return address, rbp).
const READS: usize = 3 * FRAMES;
const _: () = assert!(READS <= 64);
const ENTRIES: usize = 1024;

/// Walks whose stack was kept (a replay is not counted: a shared counter on every call would
/// cost more than the replay).
static KEPT: AtomicU64 = AtomicU64::new(0);

pub fn kept() -> u64 {
    KEPT.load(Ordering::Relaxed)
}

/// The rules a walk applied, one per frame crossed; `clean` while every step was a compact
/// rule from the cache and the walk ended by depth or by a rule that ends the stack;
/// `uses_fp` when a rule read the first frame's frame pointer before any rule restored it
/// from the stack (code built without frame pointers uses rbp for anything: a walk that never
/// reads it gives the same answer whatever it holds).
pub struct Recording {
    pub rules: [u64; FRAMES],
    pub n: usize,
    pub clean: bool,
    uses_fp: bool,
    fp_restored: bool,
}

impl Default for Recording {
    fn default() -> Recording {
        Recording::new()
    }
}

impl Recording {
    pub const fn new() -> Recording {
        Recording {
            rules: [0; FRAMES],
            n: 0,
            clean: true,
            uses_fp: false,
            fp_restored: false,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, p: Packed) {
        if !self.fp_restored {
            self.uses_fp |= p.base() != 0;
            self.fp_restored = p.rbp() != 0;
        }
        if self.n < FRAMES {
            self.rules[self.n] = p.raw();
            self.n += 1;
        } else {
            self.clean = false;
        }
    }
}

#[repr(C, align(64))]
struct Entry {
    seq: AtomicUsize,
    pc: AtomicUsize,
    sp: AtomicUsize,
    /// The frame pointer inverted: code built without frame pointers uses rbp for any value,
    /// often a heap block's address, and the table lies in memory the leak check scans (our
    /// .bss): an inverted address points nowhere.
    fp: AtomicUsize,
    epoch: AtomicUsize,
    /// words kept (8 bits) | depth asked (8 bits) | `USES_FP` | id << 32.
    meta: AtomicU64,
    /// The lowest and the highest word the walk read, as offsets from `sp` (low and high 32
    /// bits; both 0 when it read none).
    span: AtomicU64,
    /// Where each word read lies, from `sp`.
    offs: [AtomicU32; WORDS],
    /// What each word held, inverted (like `fp`: saved frame pointers are heap addresses
    /// often, and return addresses would make the leak check's scan slower for nothing).
    vals: [AtomicUsize; WORDS],
}

static TABLE: [Entry; ENTRIES] = [const {
    Entry {
        seq: AtomicUsize::new(0),
        pc: AtomicUsize::new(0),
        sp: AtomicUsize::new(0),
        fp: AtomicUsize::new(0),
        epoch: AtomicUsize::new(0),
        meta: AtomicU64::new(0),
        span: AtomicU64::new(0),
        offs: [const { AtomicU32::new(0) }; WORDS],
        vals: [const { AtomicUsize::new(0) }; WORDS],
    }
}; ENTRIES];

/// In `meta`: the kept walk read the first frame pointer (`Recording`), which is then part of
/// the key.
const USES_FP: u64 = 1 << 16;

#[inline(always)]
fn entry(pc: usize, sp: usize) -> &'static Entry {
    let h = (pc ^ sp.rotate_left(21)) as u64;
    let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    &TABLE[(h >> (64 - ENTRIES.trailing_zeros())) as usize]
}

/// The id kept for the stack of `depth` frames from `(pc, sp, fp)`, when every stack word of
/// its walk whose value counts holds the same value now.
#[inline]
pub fn recall(pc: usize, sp: usize, fp: usize, depth: usize) -> Option<u32> {
    let e = entry(pc, sp);
    let s0 = e.seq.load(Ordering::Acquire);
    if s0 & 1 != 0 || e.pc.load(Ordering::Relaxed) != pc || e.sp.load(Ordering::Relaxed) != sp {
        return None;
    }
    let meta = e.meta.load(Ordering::Relaxed);
    let n = (meta & 0xff) as usize;
    if (meta & USES_FP != 0 && e.fp.load(Ordering::Relaxed) != !fp)
        || (meta >> 8) & 0xff != depth as u64
        || n > WORDS
        || e.epoch.load(Ordering::Relaxed) != module::epoch()
        || symbol::unloading()
    {
        return None;
    }
    let span = e.span.load(Ordering::Relaxed);
    let mut stack = Cached::now();
    if span != 0 {
        let lo = at(sp, span as u32);
        let hi = at(sp, (span >> 32) as u32);
        if stack.read(lo).is_none() || stack.read(hi).is_none() {
            // Deeper than any walk of this thread went yet: the range grows (`Mem::adopt`).
            stack = adopt(sp);
            stack.read(lo)?;
            stack.read(hi)?;
        }
    }
    for (off, val) in e.offs[..n].iter().zip(&e.vals[..n]) {
        let got = stack.read(at(sp, off.load(Ordering::Relaxed)))?;
        if got != !val.load(Ordering::Relaxed) {
            return None;
        }
    }
    fence(Ordering::Acquire);
    if e.seq.load(Ordering::Relaxed) != s0 {
        return None;
    }
    Some((meta >> 32) as u32)
}

/// The address `off` (a 32-bit signed offset) bytes from `sp`.
#[inline(always)]
fn at(sp: usize, off: u32) -> usize {
    sp.wrapping_add_signed(off as i32 as isize)
}

/// The thread's cached stack range once it takes in `sp`'s stack (`Mem::new` adopts it).
#[cold]
#[inline(never)]
fn adopt(sp: usize) -> Cached {
    let _ = Mem::new(sp);
    Cached::now()
}

/// The words a replay of the recorded rules reads, in order, as offsets from `sp` and values.
struct Trace<'a> {
    mem: &'a mut Mem,
    sp: usize,
    n: usize,
    offs: [u32; READS],
    vals: [usize; READS],
    /// Every word read fitted (aligned, within 2 GiB of `sp`, room left).
    fits: bool,
}

impl Words for Trace<'_> {
    #[inline]
    fn word(&mut self, addr: usize) -> Option<usize> {
        let v = self.mem.read(addr)?;
        let off = addr.wrapping_sub(self.sp) as isize;
        if self.n < READS && off == off as i32 as isize && addr & 7 == 0 {
            self.offs[self.n] = off as i32 as u32;
            self.vals[self.n] = v;
            self.n += 1;
        } else {
            self.fits = false;
        }
        Some(v)
    }
}

/// Keeps the stack `frames` (`frames[0] == pc`) of `depth` asked, found by a walk from
/// `(pc, sp, fp)` that recorded `rec`, under `id`: its rules are applied once more over the
/// same stack to note the words they read. Skipped when the recording is not clean, when the
/// words do not fit or lie outside the thread's stack, or when another writer has the entry.
pub fn keep(rec: &Recording, sp: usize, fp: usize, depth: usize, frames: &[usize], id: u32) {
    let Some((&pc, rest)) = frames.split_first() else {
        return;
    };
    if !rec.clean || rest.len() != rec.n || depth > 255 {
        return;
    }
    let mut mem = Mem::new(sp);
    let mut t = Trace {
        mem: &mut mem,
        sp,
        n: 0,
        offs: [0; READS],
        vals: [0; READS],
        fits: true,
    };
    let mut f = Frame { pc, sp, fp };
    // The words whose value counts, and the word the current frame pointer was read from (None:
    // the first frame's, part of the key when read).
    let (mut need, mut fp_word) = (0u64, None::<usize>);
    for (&rule, &want) in rec.rules[..rec.n].iter().zip(rest) {
        let p = Packed::from_raw(rule);
        if p.base() != 0
            && let Some(w) = fp_word
        {
            need |= 1 << w;
        }
        let first = t.n;
        let Some(c) = apply(p, &f, &mut t) else {
            return;
        };
        if c.sp <= f.sp || c.pc < 4096 || c.pc != want || !t.fits {
            return;
        }
        // `apply` reads the CFA (base 2), the return address, then the saved rbp (if any).
        let mut last = t.n;
        if p.rbp() != 0 {
            last -= 1;
            fp_word = Some(last);
        }
        for w in first..last {
            need |= 1 << w;
        }
        f = c;
    }
    if need.count_ones() as usize > WORDS {
        return;
    }
    // Every word read lies in the thread's stack: what `recall` checks of the words it does not
    // compare.
    let offs = &t.offs[..t.n];
    let span = match (
        offs.iter().min_by_key(|&&o| o as i32),
        offs.iter().max_by_key(|&&o| o as i32),
    ) {
        (Some(&lo), Some(&hi)) => {
            let stack = Cached::now();
            if stack.read(at(sp, lo)).is_none() || stack.read(at(sp, hi)).is_none() {
                return;
            }
            lo as u64 | (hi as u64) << 32
        }
        _ => 0,
    };
    let e = entry(pc, sp);
    let Some(s0) = seqlock::claim(&e.seq) else {
        return;
    };
    e.pc.store(pc, Ordering::Relaxed);
    e.sp.store(sp, Ordering::Relaxed);
    e.fp.store(!fp, Ordering::Relaxed);
    e.epoch.store(module::epoch(), Ordering::Relaxed);
    let mut n = 0;
    for i in (0..t.n).filter(|&i| need & 1 << i != 0) {
        e.offs[n].store(t.offs[i], Ordering::Relaxed);
        e.vals[n].store(!t.vals[i], Ordering::Relaxed);
        n += 1;
    }
    e.span.store(span, Ordering::Relaxed);
    e.meta.store(
        n as u64 | (depth as u64) << 8 | if rec.uses_fp { USES_FP } else { 0 } | (id as u64) << 32,
        Ordering::Relaxed,
    );
    seqlock::publish(&e.seq, s0);
    KEPT.fetch_add(1, Ordering::Relaxed);
}
