//! Whole stacks remembered by the frame they start from, so that an allocation from a call
//! site seen before costs a check of the stack words its walk read instead of a walk.
//!
//! A walk from `(pc, sp, fp)` that used compact rules only (`Recording`) is kept with the
//! stack words it read whose value counts (address, as an offset from `sp`, and value), the
//! span of all the words it read, and the id its caller stored the frames under. The walk
//! notes the words as it applies each rule (`step::apply` reads the CFA for a rule based on
//! memory, the return address and the saved rbp: their values are the caller's frame it
//! finds). A later call from the same `(pc, sp)` — and the same `fp` when the walk read the
//! first frame pointer: code built without frame pointers keeps anything in rbp — reads the
//! kept words on the current stack. A walk is a function of its starting registers and of
//! the words it reads, and the rule of a frame depends only on its pc (while no object is
//! unloaded: the module epoch is part of the key), so when every word holds its kept value
//! the walk would read the very same words, find the same frames and end where it ended. A
//! saved rbp that no later rule uses (code built without frame pointers keeps anything there)
//! changes nothing the walk finds: its value is not kept; that it is readable, as the walk
//! needs, follows from the span lying in the thread's stack. The answer is the same, provably,
//! and nothing is guessed; any difference sends the call to the walk.
//!
//! The table is shared by all threads (their stack pointers differ, so their entries do too):
//! two entries for each `(pc, sp)`, each a seqlock (odd `seq` while a writer fills it; a
//! reader keeps its answer only when `seq` was the same even value before and after). Writers
//! that find an entry busy give up, so a signal handler never waits.
//!
//! # Invariants
//! - An entry holds at most `FRAMES` frames after the first and `WORDS` words; deeper stacks,
//!   and walks that read a word outside the thread's own stack (a signal stack, a coroutine's),
//!   are not kept.
//! - Replays read only words within the thread's cached stack range (`stack::Cached`): never
//!   a fault, even on a torn entry (whose answer the seqlock then discards).

use super::rule::Packed;
use super::stack::{Cached, Mem};
use super::step::Frame;
use super::{module, seqlock, symbol};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// Frames after the first that an entry keeps (the default depth is 16).
pub const FRAMES: usize = 15;
/// Stack words an entry keeps: two a frame (the return address and the saved rbp) for a
/// 16-frame stack, and some room for rules whose CFA is read from memory.
const WORDS: usize = 36;
const ENTRIES: usize = 1024;

/// Walks whose stack was kept (a replay is not counted: a shared counter on every call would
/// cost more than the replay).
static KEPT: AtomicU64 = AtomicU64::new(0);

pub fn kept() -> u64 {
    KEPT.load(Ordering::Relaxed)
}

/// What a walk read, one rule per frame crossed: the words whose value counts (offsets from
/// the first frame's `sp`, and values), the span of every word read, and where the current
/// frame pointer was read from. `clean` while every step was a compact rule from the cache
/// (and its words fit) and the walk ended by depth or by a rule that ends the stack; `uses_fp`
/// when a rule read the first frame's frame pointer before any rule restored it from the
/// stack (code built without frame pointers uses rbp for anything: a walk that never reads it
/// gives the same answer whatever it holds).
pub struct Recording {
    offs: [u32; WORDS],
    vals: [usize; WORDS],
    words: usize,
    /// The lowest and highest offsets of every word read; `lo > hi` while none was.
    lo: i32,
    hi: i32,
    sp: usize,
    /// The saved rbp the current frame pointer was read from (offset, value, already kept);
    /// None: the first frame's own.
    fp_word: Option<(u32, usize, bool)>,
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
            offs: [0; WORDS],
            vals: [0; WORDS],
            words: 0,
            lo: i32::MAX,
            hi: i32::MIN,
            sp: 0,
            fp_word: None,
            n: 0,
            clean: true,
            uses_fp: false,
            fp_restored: false,
        }
    }

    /// Notes the step from `f` to its caller `c` by the compact rule `p` (`step::apply`).
    #[inline(always)]
    pub fn push(&mut self, p: Packed, f: &Frame, c: &Frame) {
        if self.n == 0 {
            self.sp = f.sp;
        }
        if self.n == FRAMES {
            self.clean = false;
            return;
        }
        self.n += 1;
        if !self.fp_restored {
            self.uses_fp |= p.base() != 0;
            self.fp_restored = p.rbp() != 0;
        }
        if p.base() != 0
            && let Some((off, val, false)) = self.fp_word
        {
            self.keep(off, val);
            self.fp_word = Some((off, val, true));
        }
        // `apply`'s reads, and what each gave: the CFA, the return address, the saved rbp.
        // (`Mem` reads aligned words only.)
        if p.base() == 2 {
            let off = self.read(f.fp.wrapping_add_signed(p.off()));
            self.keep(off, c.sp);
        }
        let off = self.read(c.sp.wrapping_add_signed(p.ra()));
        self.keep(off, c.pc);
        if p.rbp() != 0 {
            let off = self.read(c.sp.wrapping_add_signed(p.rbp()));
            self.fp_word = Some((off, c.fp, false));
        }
    }

    /// A word the walk read at `addr`: its offset, taken into the span (not clean when it is
    /// further than 2 GiB from `sp`).
    #[inline(always)]
    fn read(&mut self, addr: usize) -> u32 {
        let off = addr.wrapping_sub(self.sp) as isize;
        self.clean &= off == off as i32 as isize;
        let off = off as i32;
        self.lo = self.lo.min(off);
        self.hi = self.hi.max(off);
        off as u32
    }

    /// Keeps a word whose value counts (`words` past `WORDS`: not kept, see `keep`).
    #[inline(always)]
    fn keep(&mut self, off: u32, val: usize) {
        let i = self.words.min(WORDS - 1);
        self.offs[i] = off;
        self.vals[i] = val;
        self.words += 1;
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
    /// words kept (8 bits) | depth asked (8 bits) | `USES_FP` | `READ` | id << 32.
    meta: AtomicU64,
    /// The lowest and the highest word the walk read, as offsets from `sp` (low and high 32
    /// bits), when it read any (`READ`).
    span: AtomicU64,
    /// Where each word kept lies, from `sp`.
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
/// In `meta`: the kept walk read stack words (`span` holds their span).
const READ: u64 = 1 << 17;

/// The two entries a stack from `(pc, sp)` may be kept in: one call site at one depth is often
/// reached along two paths (two stacks from the same frame), which then both stay.
#[inline(always)]
fn pair(pc: usize, sp: usize) -> [&'static Entry; 2] {
    let h = (pc ^ sp.rotate_left(21)) as u64;
    let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let i = (h >> (64 - ENTRIES.trailing_zeros())) as usize & !1;
    [&TABLE[i], &TABLE[i + 1]]
}

/// The id kept for the stack of `depth` frames from `(pc, sp, fp)`, when every stack word of
/// its walk whose value counts holds the same value now (in either entry of its pair).
#[inline]
pub fn recall(pc: usize, sp: usize, fp: usize, depth: usize) -> Option<u32> {
    let [a, b] = pair(pc, sp);
    recall_in(a, pc, sp, fp, depth).or_else(|| recall_in(b, pc, sp, fp, depth))
}

/// `recall` from the entry `e`.
#[inline(always)]
fn recall_in(e: &Entry, pc: usize, sp: usize, fp: usize, depth: usize) -> Option<u32> {
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
    let mut stack = Cached::now();
    if meta & READ != 0 {
        let span = e.span.load(Ordering::Relaxed);
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

/// Keeps the stack `frames` (`frames[0] == pc`) of `depth` asked, found by a walk from
/// `(pc, sp, fp)` that recorded `rec`, under `id`. Skipped when the recording is not clean,
/// when a word it read lies outside the thread's stack, or when another writer has the entry.
pub fn keep(rec: &Recording, sp: usize, fp: usize, depth: usize, frames: &[usize], id: u32) {
    let Some(&pc) = frames.first() else {
        return;
    };
    if !rec.clean
        || rec.words > WORDS
        || frames.len() - 1 != rec.n
        || depth > 255
        || (rec.n > 0 && rec.sp != sp)
    {
        return;
    }
    // Every word read lies in the thread's stack: what `recall` checks of the words it does not
    // compare.
    let read = rec.lo <= rec.hi;
    if read {
        let stack = Cached::now();
        if stack.read(at(sp, rec.lo as u32)).is_none()
            || stack.read(at(sp, rec.hi as u32)).is_none()
        {
            return;
        }
    }
    // The entry of the pair that holds another stack from the same frame is left alone when
    // the other does not (two paths to one call site both stay); else the walks take turns.
    let [a, b] = pair(pc, sp);
    let same = |e: &Entry| e.pc.load(Ordering::Relaxed) == pc && e.sp.load(Ordering::Relaxed) == sp;
    let e = match (same(a), same(b)) {
        (true, false) => b,
        (false, true) => a,
        _ if KEPT.load(Ordering::Relaxed) & 1 == 0 => a,
        _ => b,
    };
    let Some(s0) = seqlock::claim(&e.seq) else {
        return;
    };
    e.pc.store(pc, Ordering::Relaxed);
    e.sp.store(sp, Ordering::Relaxed);
    e.fp.store(!fp, Ordering::Relaxed);
    e.epoch.store(module::epoch(), Ordering::Relaxed);
    for i in 0..rec.words {
        e.offs[i].store(rec.offs[i], Ordering::Relaxed);
        e.vals[i].store(!rec.vals[i], Ordering::Relaxed);
    }
    e.span.store(
        rec.lo as u32 as u64 | (rec.hi as u32 as u64) << 32,
        Ordering::Relaxed,
    );
    e.meta.store(
        rec.words as u64
            | (depth as u64) << 8
            | if rec.uses_fp { USES_FP } else { 0 }
            | if read { READ } else { 0 }
            | (id as u64) << 32,
        Ordering::Relaxed,
    );
    seqlock::publish(&e.seq, s0);
    KEPT.fetch_add(1, Ordering::Relaxed);
}
