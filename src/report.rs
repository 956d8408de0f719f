//! Error reports: one block per error on stderr (or `report=PATH`), first line stable and
//! greppable (`ft_malloc[PID]: ERROR: <kind> ...`), then what a person needs: the block, its
//! zone, the caller as module+offset (for addr2line), when it was allocated and freed. Then the
//! `on_error` policy. With debugging off (`MALLOC_DEBUG` unset) a bad pointer is refused with
//! one WARNING line and the program goes on.
//!
//! # Invariants
//! Nothing here allocates or takes an allocator lock; callers drop their locks first. A second
//! error while a report is being written on the same thread aborts at once.

use crate::block::{Info, Op, State};
use crate::callstack;
use crate::config::{self, OnError};
use crate::fmt::{Line, prefix};
use crate::lock::Mutex;
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicU64, Ordering};

/// What is wrong with a pointer or a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bad {
    /// Not in any zone or LARGE block of ours: stack, global, foreign, never allocated.
    NotOurs,
    /// Inside a live block but not at its start.
    Interior,
    /// Not aligned like any block we hand out.
    Misaligned,
    /// The start of a block that is already freed (or in quarantine).
    DoubleFree,
    /// Inside a freed block.
    InsideFreed,
    /// Released by the wrong family (free of new, delete of new[] or of malloc...).
    Mismatch,
    /// A sized delete whose size is not the block's.
    SizedDelete(usize),
    /// The canary after the block was changed, first at this address.
    Overflow(usize),
    /// The canary before the block was changed, first at this address.
    Underflow(usize),
}

/// The kinds of error a report can name: its code (the key of the per-site summary) and the
/// name the exit summary prints.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ErrorKind {
    InvalidPointer = 0,
    InteriorPointer = 1,
    MisalignedPointer = 2,
    DoubleFree = 3,
    PointerIntoFreed = 4,
    Mismatch = 5,
    SizedDelete = 6,
    Overflow = 7,
    Underflow = 8,
    WriteAfterFree = 9,
    AbsurdSize = 10,
    GuardFault = 11,
    WildPointer = 12,
}

impl ErrorKind {
    pub const fn code(self) -> u8 {
        self as u8
    }

    pub const fn name(self) -> &'static [u8] {
        match self {
            ErrorKind::InvalidPointer => b"invalid pointer",
            ErrorKind::InteriorPointer => b"interior pointer",
            ErrorKind::MisalignedPointer => b"misaligned pointer",
            ErrorKind::DoubleFree => b"double free",
            ErrorKind::PointerIntoFreed => b"pointer into freed block",
            ErrorKind::Mismatch => b"alloc-dealloc mismatch",
            ErrorKind::SizedDelete => b"sized delete mismatch",
            ErrorKind::Overflow => b"heap overflow",
            ErrorKind::Underflow => b"heap underflow",
            ErrorKind::WriteAfterFree => b"write after free",
            ErrorKind::AbsurdSize => b"absurd size",
            ErrorKind::GuardFault => b"guard page fault",
            ErrorKind::WildPointer => b"wild pointer",
        }
    }
}

impl Bad {
    /// The error kind this finding is reported as.
    pub const fn kind(self) -> ErrorKind {
        match self {
            Bad::NotOurs => ErrorKind::InvalidPointer,
            Bad::Interior => ErrorKind::InteriorPointer,
            Bad::Misaligned => ErrorKind::MisalignedPointer,
            Bad::DoubleFree => ErrorKind::DoubleFree,
            Bad::InsideFreed => ErrorKind::PointerIntoFreed,
            Bad::Mismatch => ErrorKind::Mismatch,
            Bad::SizedDelete(_) => ErrorKind::SizedDelete,
            Bad::Overflow(_) => ErrorKind::Overflow,
            Bad::Underflow(_) => ErrorKind::Underflow,
        }
    }
}

pub static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Sites already reported (on_error=continue): (kind, caller, count).
struct Seen {
    sites: [(ErrorKind, usize, u64); 64],
    n: usize,
}
static SEEN: Mutex<Seen> = Mutex::new(Seen {
    sites: [(ErrorKind::InvalidPointer, 0, 0); 64],
    n: 0,
});

/// The kind of a block in every report: TINY, SMALL or LARGE, or GUARDED for a block on its
/// own guarded pages (a guarded block is held by a LARGE descriptor, but it is no LARGE block
/// to the reader). The one place that names a block's kind.
pub fn block_kind(info: &Info) -> &'static [u8] {
    if info.guarded.is_guarded() {
        b"GUARDED"
    } else {
        info.kind.name()
    }
}

fn state_name(s: State) -> &'static [u8] {
    match s {
        State::Used => b"in use",
        State::Quarantined => b"freed (in quarantine)",
        State::Allocating => b"being allocated",
        State::Freeing => b"being freed (into quarantine)",
        State::Free => b"freed",
    }
}

/// Starts a report; false if this site was already reported (counted instead).
fn begin(kind: ErrorKind, caller: usize) -> bool {
    ERRORS.fetch_add(1, Ordering::Relaxed);
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe {
        if (*st).reporting != 0 {
            let mut l: Line<128> = Line::new();
            prefix(&mut l).s(b"ERROR: another error while reporting an error; aborting\n");
            l.report();
            sys::abort();
        }
    }
    if config::get().on_error != OnError::Abort {
        if let Some(mut s) = SEEN.try_lock() {
            let n = s.n;
            for e in s.sites[..n].iter_mut() {
                if e.0 == kind && e.1 == caller {
                    e.2 += 1;
                    return false;
                }
            }
            if n < 64 {
                s.sites[n] = (kind, caller, 1);
                s.n += 1;
            }
        }
    }
    // SAFETY: our own TLS block.
    unsafe { (*st).reporting = 1 };
    true
}

/// Runs the lines of a report that name call stacks, on a stack with room for the symbol
/// lookups (`sys::room`): a thread's stack may be as small as 16 KiB. The report's start and
/// its end (the abort) stay on the caller's stack, so a debugger's backtrace of the abort
/// reaches the program's frames.
fn with_room(f: impl FnMut()) {
    sys::room::with_room(f);
}

/// Ends a report: applies on_error.
fn end() {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe { (*st).reporting = 0 };
    match config::get().on_error {
        OnError::Abort => {
            let mut l: Line<160> = Line::new();
            prefix(&mut l)
                .s(b"aborting (MALLOC_DEBUG on_error=abort; on_error=continue goes on)\n");
            l.report();
            sys::abort();
        }
        OnError::Continue | OnError::Exit(_) => {}
    }
}

fn block_desc<const N: usize>(l: &mut Line<N>, info: &Info) {
    l.s(b" (")
        .s(block_kind(info))
        .s(b", ")
        .u(info.size as u64)
        .s(b" bytes)");
}

fn history(info: &Info) {
    let mut l: Line<1024> = Line::new();
    prefix(&mut l)
        .s(b"  block ")
        .x(info.user)
        .s(b" - ")
        .x(info.user + info.size)
        .s(b" : ")
        .u(info.size as u64);
    l.s(b" bytes, ");
    if info.guarded.is_guarded() {
        l.s(b"own guarded mapping ");
    } else {
        l.s(block_kind(info)).s(b" zone ");
    }
    l.x(info.zone_base)
        .s(b", ")
        .s(state_name(info.state))
        .c(b'\n');
    l.report();
    let d = &info.dbg;
    if d.alloc_seq != 0 {
        l.clear();
        prefix(&mut l)
            .s(b"  allocated by ")
            .s(info.origin.call_name().as_bytes())
            .s(b"() at event #")
            .u(d.alloc_seq);
        l.s(b", thread ").u(d.alloc_tid as u64).s(b", from ");
        callstack::write_headline(&mut l, d.alloc_caller);
        l.c(b'\n');
        l.report();
        callstack::write_frames(d.alloc_caller);
    }
    if d.free_seq != 0 {
        l.clear();
        prefix(&mut l)
            .s(b"  freed at event #")
            .u(d.free_seq)
            .s(b", thread ")
            .u(d.free_tid as u64)
            .s(b", from ");
        callstack::write_headline(&mut l, d.free_caller);
        l.c(b'\n');
        l.report();
        callstack::write_frames(d.free_caller);
    }
    if d.alloc_seq != 0 {
        crate::log::report_history(info.user);
    }
}

fn called_from(op: Op, caller: usize) {
    let mut l: Line<600> = Line::new();
    prefix(&mut l)
        .s(b"  ")
        .s(op.call_name().as_bytes())
        .s(b"() called from ");
    callstack::write_headline(&mut l, caller);
    l.s(b", thread ").u(tls::tid() as u64).c(b'\n');
    l.report();
    callstack::write_frames(caller);
}

/// A pointer that is not a live block of ours was passed to `op`.
pub fn bad_pointer(op: Op, p: usize, bad: Bad, info: Option<&Info>, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    let cfg = config::get();
    crate::log::event(op, p, 0, 0, 0, caller);
    // With any debugging on (check, guard, sample...) a bad free is a bug to report in full;
    // only the plain allocator refuses it with one WARNING line and goes on.
    if !cfg.enabled {
        let mut l: Line<300> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: ")
            .s(op.call_name().as_bytes())
            .s(b"(): ");
        what(&mut l, p, bad, info);
        l.s(if matches!(op, Op::Realloc | Op::Reallocarray) {
            b"; returning NULL\n"
        } else {
            b"; ignored\n"
        });
        l.report();
        return;
    }
    let k = if op == Op::Realloc && bad == Bad::DoubleFree {
        ErrorKind::PointerIntoFreed
    } else {
        bad.kind()
    };
    if !begin(k, caller) {
        return;
    }
    with_room(|| bad_pointer_lines(op, p, bad, info, caller));
    end();
}

fn bad_pointer_lines(op: Op, p: usize, bad: Bad, info: Option<&Info>, caller: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: ");
    match (bad, op) {
        (Bad::DoubleFree, Op::Realloc | Op::Reallocarray) => {
            l.s(b"realloc of freed block ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        (Bad::DoubleFree, Op::UsableSize) => {
            l.s(b"malloc_usable_size of freed block ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        (Bad::DoubleFree, _) => {
            l.s(b"double free of ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        _ => {
            l.s(b"invalid pointer ");
            what(&mut l, p, bad, info);
        }
    }
    l.s(b" in ").s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
    called_from(op, caller);
    if let Some(i) = info {
        history(i);
    }
}

fn what<const N: usize>(l: &mut Line<N>, p: usize, bad: Bad, info: Option<&Info>) {
    match bad {
        Bad::NotOurs => {
            l.x(p)
                .s(b" (not allocated by ft_malloc: stack, global, foreign or never allocated)");
        }
        Bad::DoubleFree => {
            l.s(b"double free of ").x(p);
            if let Some(i) = info {
                block_desc(l, i);
            }
        }
        Bad::Interior | Bad::InsideFreed | Bad::Misaligned => {
            l.x(p);
            if let Some(i) = info {
                l.s(if bad == Bad::Misaligned {
                    b" (misaligned, " as &[u8]
                } else {
                    b" ("
                });
                if p >= i.user {
                    l.u((p - i.user) as u64).s(b" bytes into the ");
                } else {
                    l.u((i.user - p) as u64).s(b" bytes before the ");
                }
                l.s(if i.state == State::Used {
                    b"" as &[u8]
                } else {
                    b"freed "
                });
                l.u(i.size as u64)
                    .s(b"-byte ")
                    .s(block_kind(i))
                    .s(b" block at ")
                    .x(i.user)
                    .c(b')');
            } else {
                l.s(b" (misaligned)");
            }
        }
        _ => {
            l.x(p);
        }
    }
}

/// A live block failed a debug check (canary, family, sized delete).
pub fn bad_block(op: Op, p: usize, bad: Bad, info: &Info, caller: usize) {
    bad_block_in(Some(op), p, bad, info, caller);
}

/// A live block whose canaries were found changed at exit: no call to name (the first line
/// says `found at exit`), reported once per allocation site (`on_error=continue`).
pub fn bad_block_at_exit(bad: Bad, info: &Info) {
    bad_block_in(None, info.user, bad, info, info.dbg.alloc_caller);
}

fn bad_block_in(call: Option<Op>, p: usize, bad: Bad, info: &Info, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    if !begin(bad.kind(), caller) {
        return;
    }
    let op = call.unwrap_or(Op::Malloc);
    with_room(|| {
        match bad {
            Bad::Overflow(a) => heap_overflow(call, p, a, info),
            Bad::Underflow(a) => heap_underflow(call, p, a, info),
            Bad::Mismatch => mismatch(op, p, info),
            Bad::SizedDelete(s) => sized_delete(op, p, s, info),
            _ => corrupted(op, p, info),
        }
        if call.is_some() {
            called_from(op, caller);
        }
        history(info);
    });
    end();
}

/// `found in CALL()`, or `found at exit` for no call.
fn found_in<const N: usize>(l: &mut Line<N>, call: Option<Op>) {
    match call {
        Some(op) => l.s(b"found in ").s(op.call_name().as_bytes()).s(b"()\n"),
        None => l.s(b"found at exit\n"),
    };
}

/// The canary after the block was changed, first at `a`.
fn heap_overflow(op: Option<Op>, p: usize, a: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: heap overflow: ").x(p);
    block_desc(&mut l, info);
    l.s(b" written past its end at offset ")
        .u((a - info.user) as u64);
    let n = (a - info.user - info.size) as u64 + 1;
    let unit: &[u8] = if n == 1 { b" byte" } else { b" bytes" };
    l.s(b" (").u(n).s(unit).s(b" past the end), ");
    found_in(&mut l, op);
    l.report();
    let end = info.slot_end.min(info.user + info.size + 16);
    bytes_vs_canary(info.user + info.size, end, a, info.user);
}

/// The canary before the block was changed, first at `a`.
fn heap_underflow(op: Option<Op>, p: usize, a: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: heap underflow: ").x(p);
    block_desc(&mut l, info);
    l.s(b" written ")
        .u((info.user - a) as u64)
        .s(b" bytes before its start, ");
    found_in(&mut l, op);
    l.report();
    // The 16 bytes before the block, or from the first changed one (a guarded block's front
    // canary is the rest of its page).
    let from = info.slot.max(a.min(info.user.saturating_sub(16)));
    bytes_vs_canary(from, info.user.min(from + 16), a, info.user);
}

/// Released by the wrong family.
fn mismatch(op: Op, p: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: alloc-dealloc mismatch: ").x(p);
    block_desc(&mut l, info);
    l.s(b" allocated by ")
        .s(info.origin.call_name().as_bytes())
        .s(b"(), released by ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// A sized delete whose size `s` is not the block's.
fn sized_delete(op: Op, p: usize, s: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: sized delete mismatch: ").x(p);
    block_desc(&mut l, info);
    l.s(b" released with size ").u(s as u64).s(b" in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// Any other finding on a live block.
fn corrupted(op: Op, p: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: corrupted block ").x(p);
    block_desc(&mut l, info);
    l.s(b" in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// Shows the bytes of `[from, to)` against the canary expected there.
fn bytes_vs_canary(from: usize, to: usize, _first: usize, user: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l)
        .s(b"  bytes at offset ")
        .i(from as i64 - user as i64)
        .s(b":");
    for a in from..to {
        // SAFETY: the slot is ours and readable.
        let v = unsafe { *(a as *const u8) };
        l.c(b' ').hx(v as u64, 2);
    }
    l.c(b'\n');
    l.report();
    l.clear();
    prefix(&mut l).s(b"  expected canary  :");
    for a in from..to {
        l.c(b' ').hx(crate::debug::canary::byte_at(a) as u64, 2);
    }
    l.c(b'\n');
    l.report();
}

/// A quarantined block's free fill was changed.
pub fn write_after_free(info: &Info, addr: usize) {
    let _e = sys::ErrnoGuard::new();
    if !begin(ErrorKind::WriteAfterFree, info.dbg.free_caller) {
        return;
    }
    with_room(|| write_after_free_lines(info, addr));
    end();
}

fn write_after_free_lines(info: &Info, addr: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: write after free: ").x(info.user);
    block_desc(&mut l, info);
    l.s(b" modified at offset ")
        .u((addr - info.user) as u64)
        .s(b" after it was freed (found when it left quarantine)\n");
    l.report();
    l.clear();
    prefix(&mut l)
        .s(b"  bytes at offset ")
        .u((addr - info.user) as u64)
        .s(b":");
    let stop = (addr + 16).min(info.user + info.size);
    for a in addr..stop {
        // SAFETY: the quarantined block is ours and readable.
        l.c(b' ').hx(unsafe { *(a as *const u8) } as u64, 2);
    }
    l.s(b" (expected ")
        .hx(crate::debug::canary::FREE_FILL as u64, 2)
        .s(b")\n");
    l.report();
    history(info);
}

/// A size above PTRDIFF_MAX: a negative length in disguise.
pub fn absurd_size(op: Op, size: usize, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    if !config::get().check || !begin(ErrorKind::AbsurdSize, caller) {
        return;
    }
    let mut l: Line<300> = Line::new();
    prefix(&mut l)
        .s(b"ERROR: absurd size ")
        .u(size as u64)
        .s(b" (")
        .i(size as i64)
        .s(b" as a signed value) in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
    with_room(|| called_from(op, caller));
    end();
}

/// At exit with on_error=continue/exit: one line per distinct error site.
pub fn summary_at_exit() {
    let n = ERRORS.load(Ordering::Relaxed);
    if n == 0 {
        return;
    }
    let mut l: Line<600> = Line::new();
    prefix(&mut l).s(b"ERROR SUMMARY: ").u(n).s(b" error(s)\n");
    l.report();
    if let Some(s) = SEEN.try_lock() {
        for &(k, caller, count) in &s.sites[..s.n] {
            l.clear();
            prefix(&mut l)
                .s(b"  ")
                .u(count)
                .s(b" x ")
                .s(k.name())
                .s(b" from ");
            callstack::write_headline(&mut l, caller);
            l.c(b'\n');
            l.report();
        }
    }
}

/// The block's history lines (for reports built elsewhere, such as guard faults).
pub fn history_pub(info: &Info) {
    history(info);
}

/// Ends a fault report: the process is about to die of the fault itself, so no policy.
pub fn end_fault() {
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe { (*st).reporting = 0 };
}

/// Starts a guard page fault report (segv builds its own lines); false if this site was
/// already reported.
pub fn begin_guard_fault(pc: usize) -> bool {
    begin(ErrorKind::GuardFault, pc)
}

/// Starts a wild-pointer fault report (segv builds its own lines); false if this site was
/// already reported.
pub fn begin_wild_pointer(pc: usize) -> bool {
    begin(ErrorKind::WildPointer, pc)
}
