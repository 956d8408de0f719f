//! Call stacks from the DWARF call-frame information every module carries, without
//! allocating, safe in a signal handler.
//!
//! API: `capture_at(out, pc, sp, fp)` from a caller's known frame (the malloc path: its entry
//! trampoline passes the caller's return address, stack and frame pointers, so the walk starts
//! in the program and never crosses our own frames), `capture(out, skip_until_ra)` from the
//! current context (our frames are walked and dropped up to `skip_until_ra`), and
//! `capture_from_ucontext(uc, out)` for a signal handler (the interrupted pc, then its callers);
//! `stats()` for the statistics. Frames are return addresses (the first of
//! `capture_from_ucontext` is the exact pc); symbolize them offline. `capture_at_recorded`,
//! `keep` and `recall` keep the stacks of the malloc path by the caller's frame (`memo`): a
//! call from a frame seen before checks the stack words its walk read that decided the frames,
//! which gives the same stack as a walk, provably, for a fraction of its work.
//!
//! How a frame is unwound (x86-64):
//! 1. the module of the address: `module` (`_dl_find_object`, once per run of frames in the
//!    same object and answered from eight recently found objects when one holds the address;
//!    `dlclose` moves the stamps and the remembered objects on; tables are read only after the
//!    loader's own answer);
//! 2. its rule: `rule::get_packed` (a lock-free cache: about 100 instructions per frame in
//!    all), else `cfi::row_at` parses `.eh_frame_hdr`/`.eh_frame` (about 2300 instructions)
//!    and the row is packed into the cache when it fits;
//! 3. the caller's registers: rsp/rbp/pc from the compact rule, or the full row (any register,
//!    DWARF expressions through `expr`) for the rest, e.g. glibc's signal trampoline
//!    `__restore_rt`; a trampoline without CFI is recognised by its bytes
//!    (`mov rax, 15; syscall`) and the registers read from its `ucontext`.
//!
//! Other architectures compile and report the given caller only.
//!
//! # Invariants
//! - Never faults: stack words are read through `stack::Mem` (bounded by the thread's probed
//!   stack or probed page by page), module bytes through `module::Segments`.
//! - Stops cleanly, without a guess, at: an address in no module (JIT code) or without CFI, an
//!   undefined return address (`clone`, `_start`), a caller's stack pointer that does not move
//!   up (except across a signal frame), a return address below 4096, `MAX_STEPS` frames.
//! - Allocation-free: everything lives on the walker's stack (at most about 3.5 KiB, on a
//!   cold frame), so a handler on a `SIGSTKSZ` sigaltstack can call it.
//! - Not protected against a module unmapped *during* a walk by another thread's `dlclose`
//!   (as libgcc's unwinder is not): the program would be running code that is going away.

#[cfg(target_arch = "x86_64")]
mod cfi;
#[cfg(target_arch = "x86_64")]
mod expr;
#[cfg(target_arch = "x86_64")]
mod fde;
#[cfg(target_arch = "x86_64")]
mod memo;
#[cfg(target_arch = "x86_64")]
mod module;
#[cfg(target_arch = "x86_64")]
mod reader;
#[cfg(target_arch = "x86_64")]
mod regs;
#[cfg(target_arch = "x86_64")]
mod rule;
#[cfg(target_arch = "x86_64")]
mod seqlock;
#[cfg(target_arch = "x86_64")]
mod stack;
#[cfg(target_arch = "x86_64")]
mod step;
#[cfg(target_arch = "x86_64")]
mod symbol;

use core::sync::atomic::{AtomicU64, Ordering};

/// Frames a walk visits at most (skipped ones included).
pub const MAX_STEPS: usize = 512;
/// Frames of our own searched for the caller before giving up on the walk.
#[cfg(target_arch = "x86_64")]
const SKIP_LIMIT: usize = 32;

/// Rows parsed from the tables (first sight of an address, or a row that is never cached).
static COLD: AtomicU64 = AtomicU64::new(0);
/// Frames unwound with a full row (signal frames, expressions).
static SLOW: AtomicU64 = AtomicU64::new(0);

/// Unwinder statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub cold_rows: u64,
    pub full_rows: u64,
    pub cached_rules: usize,
    /// Stacks kept for replay (`memo`).
    pub kept_stacks: u64,
}

pub fn stats() -> Stats {
    Stats {
        cold_rows: COLD.load(Ordering::Relaxed),
        full_rows: SLOW.load(Ordering::Relaxed),
        #[cfg(target_arch = "x86_64")]
        cached_rules: rule::used(),
        #[cfg(not(target_arch = "x86_64"))]
        cached_rules: 0,
        #[cfg(target_arch = "x86_64")]
        kept_stacks: memo::kept(),
        #[cfg(not(target_arch = "x86_64"))]
        kept_stacks: 0,
    }
}

/// Fills `out` with the call stack of the current thread, innermost first, and returns the
/// number of frames. With `skip_until_ra != 0` the frames before that return address (our
/// own) are dropped, so `out[0] == skip_until_ra`; if it is not found among the first frames,
/// `out` gets it alone (1). With 0, `out[0]` is the return address of `capture`'s caller.
#[inline(never)]
pub fn capture(out: &mut [usize], skip_until_ra: usize) -> usize {
    if out.is_empty() {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let [pc, sp, fp] = regs::current();
        let f = Frame { pc, sp, fp };
        let n = walk(f, None, false, out, skip_until_ra, true, None);
        if n > 0 || skip_until_ra == 0 {
            return n;
        }
    }
    out[0] = skip_until_ra;
    (skip_until_ra != 0) as usize
}

/// Fills `out` with the stack of a caller whose frame is known: `pc` its return address (so
/// `out[0] == pc`), `sp` and `fp` its stack and frame pointers at that address. The same
/// stack `capture` finds from inside, without walking the frames in between.
#[inline(never)]
pub fn capture_at(out: &mut [usize], pc: usize, sp: usize, fp: usize) -> usize {
    walk_from(out, pc, sp, fp, None)
}

/// `capture_at`, recording the walk into `rec` when given.
#[inline(always)]
fn walk_from(
    out: &mut [usize],
    pc: usize,
    sp: usize,
    fp: usize,
    rec: Option<&mut Recording>,
) -> usize {
    if out.is_empty() {
        return 0;
    }
    out[0] = pc;
    #[cfg(target_arch = "x86_64")]
    {
        1 + walk(
            Frame { pc, sp, fp },
            None,
            false,
            &mut out[1..],
            0,
            true,
            rec,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (sp, fp, rec);
        1
    }
}

/// What a walk from a caller's frame records so that its stack can be kept (`memo`).
#[cfg(target_arch = "x86_64")]
pub use memo::Recording;
#[cfg(not(target_arch = "x86_64"))]
pub struct Recording;
#[cfg(not(target_arch = "x86_64"))]
impl Recording {
    pub const fn new() -> Recording {
        Recording
    }
}

/// The id kept by `keep` for the stack of `depth` frames from the caller's frame `(pc, sp,
/// fp)`, when the stack words its walk read still hold what they held (`memo`: the same
/// answer `capture_at` would give, for a fraction of its work).
#[inline]
pub fn recall(pc: usize, sp: usize, fp: usize, depth: usize) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        memo::recall(pc, sp, fp, depth)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pc, sp, fp, depth);
        None
    }
}

/// `capture_at`, recording the stack words it reads into `rec` for `keep`.
#[inline(never)]
pub fn capture_at_recorded(
    out: &mut [usize],
    pc: usize,
    sp: usize,
    fp: usize,
    rec: &mut Recording,
) -> usize {
    walk_from(out, pc, sp, fp, Some(rec))
}

/// Keeps the stack `frames` that `capture_at_recorded` found from `(pc = frames[0], sp, fp)`
/// with `depth` frames asked, under `id`, for `recall`.
pub fn keep(rec: &Recording, sp: usize, fp: usize, depth: usize, frames: &[usize], id: u32) {
    #[cfg(target_arch = "x86_64")]
    memo::keep(rec, sp, fp, depth, frames, id);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rec, sp, fp, depth, frames, id);
}

/// Fills `out` with the stack of the context a signal interrupted: `out[0]` is its pc, then the
/// callers. Returns the number of frames.
///
/// # Safety
/// `uc` is null or points to a readable `ucontext_t` (a signal handler's third argument).
pub unsafe fn capture_from_ucontext(uc: *const core::ffi::c_void, out: &mut [usize]) -> usize {
    if out.is_empty() || uc.is_null() {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the caller's contract.
        let r = unsafe { regs::Regs::from_ucontext(uc as *const libc::ucontext_t) };
        out[0] = r.pc();
        1 + walk(Frame::of(&r), Some(r), true, &mut out[1..], 0, false, None)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the caller's contract.
        let uc = unsafe { &*(uc as *const libc::ucontext_t) };
        #[cfg(target_arch = "aarch64")]
        {
            out[0] = uc.uc_mcontext.pc as usize;
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            let _ = uc;
            out[0] = 0;
        }
        1
    }
}

#[cfg(target_arch = "x86_64")]
use {
    cfi::{NREGS, RA, RBP, RSP, Rule as Reg},
    module::{Module, Segments},
    regs::Regs,
    rule::Rule,
    stack::Mem,
    step::{Frame, NO_FP, apply},
};

/// Unwinds from `f` (`exact`: its pc is not a return address; `full`: every register of `f`
/// when known, from a `ucontext`), storing each caller's pc.
#[cfg(target_arch = "x86_64")]
fn walk(
    mut f: Frame,
    mut full: Option<Regs>,
    mut exact: bool,
    out: &mut [usize],
    skip: usize,
    may_lock: bool,
    mut rec: Option<&mut memo::Recording>,
) -> usize {
    let mut mem = Mem::new(f.sp);
    // Objects being unloaded: forget every cached rule, and cache nothing during this walk.
    let cache = !symbol::unloading();
    if !cache {
        module::forget_all();
    }
    // Kept only when every step below is a cached compact rule and the walk ends by depth or
    // by a rule that ends the stack (`memo`).
    let mut clean = cache;
    // The module of the last frame: its range and stamp stay in registers.
    let mut m = Module {
        start: 0,
        end: 0,
        eh_hdr: 0,
        bias: 0,
        link_map: 0,
        stamp: 0,
    };
    let mut n = 0usize;
    let mut skipping = skip != 0;
    for step in 0..MAX_STEPS {
        if n == out.len() || (skipping && step > SKIP_LIMIT) {
            break;
        }
        let key = if exact { f.pc } else { f.pc - 1 };
        if key < m.start || key >= m.end {
            match module::find_recent(key, may_lock) {
                Some(found) => m = found,
                None => {
                    clean = false;
                    break;
                }
            }
        }
        if let Some(p) = rule::get_packed(key, m.stamp) {
            let Some(c) = apply(p, &f, &mut mem) else {
                clean &= !p.is_frame();
                break;
            };
            if c.sp <= f.sp || c.pc < 4096 {
                clean = false;
                break;
            }
            if let Some(r) = rec.as_deref_mut() {
                r.push(p, &f, &c);
            }
            f = c;
            if exact || full.is_some() {
                (exact, full) = (false, None);
            }
        } else {
            clean = false;
            // The tables are read: the loader's own answer, never a remembered one.
            match module::find(key, may_lock) {
                Some(found) => m = found,
                None => break,
            }
            let Some((c, regs, signal)) = cold(key, &m, &f, full.as_ref(), &mut mem, exact, cache)
            else {
                break;
            };
            if (!signal && c.sp <= f.sp) || c.pc < 4096 {
                break;
            }
            (f, full, exact) = (c, regs, signal);
            if signal {
                mem.adopt(f.sp); // the interrupted code may run on another stack
            }
        }
        if skipping {
            if f.pc != skip {
                continue;
            }
            skipping = false;
        }
        out[n] = f.pc;
        n += 1;
    }
    if let Some(r) = rec {
        r.clean &= clean && n == r.n;
    }
    if skipping { 0 } else { n }
}

/// First sight of `key` (or a row that is never cached): parse the tables, cache the compact
/// rule when there is one, else unwind by the full row. Returns the caller's frame, its full
/// registers when a full row gave them, and whether it comes from a signal frame.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn cold(
    key: usize,
    m: &Module,
    f: &Frame,
    full_regs: Option<&Regs>,
    mem: &mut Mem,
    exact: bool,
    cache: bool,
) -> Option<(Frame, Option<Regs>, bool)> {
    COLD.fetch_add(1, Ordering::Relaxed);
    let segs = Segments::of(m);
    let Some(row) = cfi::row_at(m, &segs, key) else {
        if !exact && is_sigreturn(key + 1, &segs) {
            let c = Regs::from_saved_ucontext(f.sp, |a| mem.read(a))?;
            return Some((Frame::of(&c), Some(c), true));
        }
        if cache {
            rule::put(key, m.stamp, Rule::End);
        }
        return None;
    };
    if let Some(rule) = Rule::from_row(&row) {
        if cache {
            rule::put(key, m.stamp, rule);
        }
        return apply(rule::Packed::of(rule), f, mem).map(|c| (c, None, false));
    }
    SLOW.fetch_add(1, Ordering::Relaxed);
    let r = match full_regs {
        Some(r) => *r,
        None => {
            let mut r = Regs::empty();
            r.set(RA, f.pc);
            r.set(RSP, f.sp);
            if f.fp != NO_FP {
                r.set(RBP, f.fp);
            }
            r
        }
    };
    let c = full(&row, &r, mem)?;
    Some((Frame::of(&c), Some(c), row.signal))
}

/// glibc's x86-64 `__restore_rt`: `mov rax, 15 (rt_sigreturn); syscall`.
#[cfg(target_arch = "x86_64")]
fn is_sigreturn(pc: usize, segs: &Segments) -> bool {
    const CODE: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
    segs.from(pc).is_some_and(|b| b.starts_with(&CODE))
}

/// The caller's registers by a full row: every register rule, expressions included.
#[cfg(target_arch = "x86_64")]
fn full(row: &cfi::Row, r: &Regs, mem: &mut Mem) -> Option<Regs> {
    let cfa = match row.cfa {
        cfi::Cfa::RegOff(reg, off) => r.get(reg as usize)?.wrapping_add_signed(off as isize),
        cfi::Cfa::Expr(at, len) => expr::eval(row.expr(at, len), r, Some(mem), None)?,
    };
    let mut c = Regs::empty();
    for (reg, &rule) in row.regs.iter().enumerate().take(NREGS) {
        let v = match rule {
            Reg::Unspecified | Reg::Same => {
                if reg == RA {
                    return None;
                }
                r.get(reg)
            }
            Reg::Undefined => None,
            Reg::Offset(o) => mem.read(cfa.wrapping_add_signed(o as isize)),
            Reg::ValOffset(o) => Some(cfa.wrapping_add_signed(o as isize)),
            Reg::Register(from) => r.get(from as usize),
            Reg::Expr(at, len) => {
                expr::eval(row.expr(at, len), r, Some(mem), Some(cfa)).and_then(|a| mem.read(a))
            }
            Reg::ValExpr(at, len) => expr::eval(row.expr(at, len), r, Some(mem), Some(cfa)),
        };
        if let Some(v) = v {
            c.set(reg, v);
        }
    }
    if matches!(row.regs[RSP], Reg::Unspecified | Reg::Same) {
        c.set(RSP, cfa);
    }
    c.get(RA)?;
    c.get(RSP)?;
    Some(c)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
