//! The parts every report is made of: what is wrong (`Bad`, `ErrorKind`), its start (counted;
//! once per site with `on_error=continue`; a second error while reporting aborts) and its end
//! (the `on_error` policy), the lines naming the block, its history and the call, run where the
//! stack has room for their symbol lookups; and the summary of errors at exit.

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
pub(super) fn begin(kind: ErrorKind, caller: usize) -> bool {
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
    if config::get().on_error != OnError::Abort
        && let Some(mut s) = SEEN.try_lock()
    {
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
    // SAFETY: our own TLS block.
    unsafe { (*st).reporting = 1 };
    true
}

/// Runs the lines of a report that name call stacks, on a stack with room for the symbol
/// lookups (`sys::room`): a thread's stack may be as small as 16 KiB. The report's start and
/// its end (the abort) stay on the caller's stack, so a debugger's backtrace of the abort
/// reaches the program's frames.
pub(super) fn with_room(f: impl FnMut()) {
    sys::room::with_room(f);
}

/// Ends a report: applies on_error.
pub(super) fn end() {
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

pub(super) fn block_desc<const N: usize>(l: &mut Line<N>, info: &Info) {
    l.s(b" (")
        .s(block_kind(info))
        .s(b", ")
        .u(info.size as u64)
        .s(b" bytes)");
}

pub(super) fn history(info: &Info) {
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

pub(super) fn called_from(op: Op, caller: usize) {
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
