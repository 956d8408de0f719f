//! The SIGSEGV/SIGBUS explainer, installed when debugging is on. A fault in one of our guard
//! pages or freed (PROT_NONE) blocks (or, when the process dies of it, in a zone's guard page)
//! gets a report naming the block on the nearer side (`walk::fault`): overflow, underflow or
//! use after free, read or write, "N bytes after/before/into the S-byte block at 0x...", the
//! block's history, the faulting instruction and thread. Then the default action is restored
//! and the handler returns: the instruction faults again and the process dies of the real
//! fault (core dumps and debuggers see the original si_code and address). A fault that is not
//! ours, and a signal that was sent rather than raised by a fault, get the program's own
//! disposition (`forward`).
//!
//! The kernel keeps one handler per signal, so `sigaction` and `signal` are interposed: while
//! ours is installed, the program's SIGSEGV/SIGBUS handlers are recorded (and reported back as
//! its own), and ours stays in front, forwarding what is not ours.
//!
//! # Invariants
//! `PROGRAM[i]` is written only by the interposed `sigaction` (rarely, outside faults) and read
//! by the handler; a torn read would need a fault during the program's own sigaction call.

use crate::block::State;
use crate::fmt::{Line, prefix};
use crate::sys;
use crate::walk;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, Ordering};

unsafe extern "C" {
    /// glibc's public alias of sigaction (GLIBC_2.2.5), which our `sigaction` shadows.
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

struct Slots(UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: see the module invariant.
unsafe impl Sync for Slots {}
/// The program's handlers for SIGSEGV (0) and SIGBUS (1): what was there before us, then
/// whatever the program installs through the interposed calls.
static PROGRAM: Slots = Slots(UnsafeCell::new(
    // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
    unsafe { core::mem::zeroed() },
));

fn slot(sig: c_int) -> Option<usize> {
    match sig {
        libc::SIGSEGV => Some(0),
        libc::SIGBUS => Some(1),
        _ => None,
    }
}

/// Installs the handler for SIGSEGV and SIGBUS (constructor, once).
pub fn install() {
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    // An alternate stack is the thread's business; we use it if the thread has one.
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        let i = slot(sig).unwrap_or(0);
        // SAFETY: a zeroed sigaction with our handler is valid; PROGRAM is written before the
        // handler can run (it is installed by the same call).
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction =
                handler as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            let old = &mut (*PROGRAM.0.get())[i];
            __sigaction(sig, &sa, old);
        }
    }
    INSTALLED.store(true, Ordering::Release);
}

fn restore_default(sig: c_int) {
    // SAFETY: SIG_DFL with an empty mask is a valid disposition.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        __sigaction(sig, &sa, core::ptr::null_mut());
    }
}

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let _e = sys::ErrnoGuard::new();
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // A chunk of our log file that another program truncated: the log stops, the program goes on.
    if sig == libc::SIGBUS && code > 0 && crate::log::bus_fault(addr) {
        return;
    }
    // Reports need more stack than a program's alternate signal stack or a small thread stack
    // may have (a signal sent by a process, code <= 0, gets none). A fault that is neither in
    // our memory nor fatal is the program's business (a runtime that faults on purpose, often)
    // and costs no look at the stack.
    let mut explained = false;
    if code > 0 && (dies_of(sig) || walk::fault::fault_lookup(addr).is_some_and(|f| f.ours)) {
        sys::room::with_room(|| {
            if explain(sig, addr, ctx) {
                explained = true;
            } else if dies_of(sig) {
                diagnose(sig, addr, code, ctx);
            }
        });
    }
    if explained {
        restore_default(sig);
        return;
    }
    forward(sig, info, ctx);
}

/// Gives a signal that is not ours — a fault elsewhere, or a SIGSEGV/SIGBUS sent with kill,
/// sigqueue, raise — the program's own disposition, as the kernel would have:
/// - SIG_IGN: a sent signal is ignored; a fault cannot be (the kernel kills the process), so the
///   default action is restored and the instruction re-runs;
/// - SIG_DFL: the default action (re-run the fault, or re-raise a sent signal);
/// - a handler: SA_RESETHAND resets the disposition before the call, sa_mask (and the signal
///   itself unless SA_NODEFER) is blocked during it, the previous mask is restored after it (a
///   handler that longjmps away keeps them blocked, as under the kernel).
fn forward(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let Some(i) = slot(sig) else { return };
    // SAFETY: see the module invariant; a copy is taken.
    let p = unsafe { (*PROGRAM.0.get())[i] };
    let h = p.sa_sigaction;
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let sent = unsafe { (*info).si_code } <= 0;
    if h == libc::SIG_IGN && sent {
        return;
    }
    if h == libc::SIG_IGN || h == libc::SIG_DFL {
        restore_default(sig);
        if sent {
            // SAFETY: raise has no memory effects; the default action ends the process.
            unsafe { libc::raise(sig) };
        }
        // A fault: returning re-runs the instruction, which now meets the default action.
        return;
    }
    // SAFETY: the program installed this handler for this signal; it is called as the kernel
    // would call it, with the mask the kernel would set (pthread_sigmask is a system call).
    unsafe {
        if p.sa_flags & libc::SA_RESETHAND as c_int != 0 {
            // Only the handler, as Linux does (the flags stay).
            (*PROGRAM.0.get())[i].sa_sigaction = libc::SIG_DFL;
        }
        let mut block = p.sa_mask;
        if p.sa_flags & libc::SA_NODEFER as c_int == 0 {
            libc::sigaddset(&mut block, sig);
        }
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
        if p.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(c_int) = core::mem::transmute(h);
            f(sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
    }
}

#[cfg(target_arch = "x86_64")]
fn fault_details(ctx: *mut c_void) -> (usize, Option<bool>) {
    if ctx.is_null() {
        return (0, None);
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted ucontext.
    unsafe {
        let uc = ctx as *const libc::ucontext_t;
        let gregs = &(*uc).uc_mcontext.gregs;
        let pc = gregs[libc::REG_RIP as usize] as usize;
        let err = gregs[libc::REG_ERR as usize] as usize;
        (pc, Some(err & 2 != 0))
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fault_details(_ctx: *mut c_void) -> (usize, Option<bool>) {
    (0, None)
}

/// Reports a fault at `addr` if it hit one of our protected pages — a guarded block's guard
/// page, a freed block, the region behind a LARGE block, a zone's guard page — naming the block
/// on the nearer side (`walk::fault_lookup`). Returns false if not ours.
fn explain(sig: c_int, addr: usize, ctx: *mut c_void) -> bool {
    // A racy read, acceptable in a fault report.
    let Some(f) = walk::fault::fault_lookup(addr) else {
        return false;
    };
    // A zone's guard page is not in the page map, and a program with a handler of its own may
    // expect faults in memory that only lies next to ours: it is explained only when the
    // process dies of it.
    if !f.ours && !dies_of(sig) {
        return false;
    }
    let d = f.block;
    let info = d.info();
    let (pc, write) = fault_details(ctx);
    let rw: &[u8] = match write {
        Some(true) => b"write",
        Some(false) => b"read",
        None => b"access",
    };
    // A block whose free is under way (its range closing) counts as freed.
    let freed = matches!(d.state, State::Quarantined | State::Freeing);
    let end = d.user + d.size;
    if !freed && addr >= d.user && addr < end {
        return false; // inside a live block: not a guard fault
    }
    // A freed zone block is still accessible: a fault next to it is no use after free.
    let uaf = freed && f.region != walk::fault::Region::ZoneGuard;
    if !crate::report::begin_guard_fault(pc) {
        return true;
    }
    let mut l: Line<512> = Line::new();
    prefix(&mut l).s(b"ERROR: ");
    if uaf {
        l.s(b"use after free (").s(rw).s(b") at ").x(addr).s(b": ");
    } else if addr >= end {
        l.s(b"heap overflow (").s(rw).s(b") at ").x(addr).s(b": ");
    } else {
        l.s(b"heap underflow (").s(rw).s(b") at ").x(addr).s(b": ");
    }
    if addr >= end {
        l.u((addr - end) as u64).s(b" bytes after");
    } else if addr < d.user {
        l.u((d.user - addr) as u64).s(b" bytes before");
    } else {
        l.u((addr - d.user) as u64).s(b" bytes into");
    }
    l.s(if freed {
        b" the freed " as &[u8]
    } else {
        b" the "
    })
    .u(d.size as u64)
    .s(b"-byte block at ")
    .x(d.user);
    l.s(match f.region {
        walk::fault::Region::GuardPage => b" (guard page)\n" as &[u8],
        walk::fault::Region::LargeRegion => b" (LARGE block guard region)\n",
        walk::fault::Region::ZoneGuard => b" (zone guard page)\n",
    });
    l.report();
    faulting_instruction(pc, sig, ctx);
    crate::report::history_pub(&info);
    l.clear();
    prefix(&mut l).s(b"  the process now dies of this fault\n");
    l.report();
    crate::report::end_fault();
    true
}

/// Whether the program leaves this fault to the kernel (SIG_DFL, or SIG_IGN, which a fault
/// cannot have): the process dies of it. A program with its own handler (the JVM) may expect
/// the fault, so it gets no diagnosis.
fn dies_of(sig: c_int) -> bool {
    let Some(i) = slot(sig) else { return false };
    // SAFETY: see the module invariant; a word is read.
    let h = unsafe { (*PROGRAM.0.get())[i].sa_sigaction };
    h == libc::SIG_DFL || h == libc::SIG_IGN
}

/// Registers of the interrupted context that can hold a data pointer, by name.
#[cfg(target_arch = "x86_64")]
const REGS: [(c_int, &[u8]); 15] = [
    (libc::REG_RAX, b"rax"),
    (libc::REG_RBX, b"rbx"),
    (libc::REG_RCX, b"rcx"),
    (libc::REG_RDX, b"rdx"),
    (libc::REG_RSI, b"rsi"),
    (libc::REG_RDI, b"rdi"),
    (libc::REG_RBP, b"rbp"),
    (libc::REG_R8, b"r8"),
    (libc::REG_R9, b"r9"),
    (libc::REG_R10, b"r10"),
    (libc::REG_R11, b"r11"),
    (libc::REG_R12, b"r12"),
    (libc::REG_R13, b"r13"),
    (libc::REG_R14, b"r14"),
    (libc::REG_R15, b"r15"),
];

/// The value of register `i` of `REGS` in the interrupted context.
#[cfg(target_arch = "x86_64")]
fn register(ctx: *mut c_void, i: usize) -> usize {
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted ucontext; the
    // caller checked it is not null.
    unsafe {
        let uc = ctx as *const libc::ucontext_t;
        (*uc).uc_mcontext.gregs[REGS[i].0 as usize] as usize
    }
}

#[cfg(not(target_arch = "x86_64"))]
const REGS: [(c_int, &[u8]); 0] = [];

#[cfg(not(target_arch = "x86_64"))]
fn register(_ctx: *mut c_void, _i: usize) -> usize {
    0
}

/// What a wild value is made of.
#[derive(Clone, Copy, PartialEq)]
enum Made {
    FreeFill,
    AllocFill,
    Canary,
}

impl Made {
    fn says(self) -> &'static [u8] {
        match self {
            Made::FreeFill => b"the free fill (0xDE...): a pointer loaded from a freed block",
            Made::AllocFill => {
                b"the allocation fill (0xCE...): a pointer loaded from a block's memory that was never initialised"
            }
            Made::Canary => b"canary bytes: a pointer loaded from past the end of a block",
        }
    }
}

/// What a wild value is made of, give or take 4 KiB: our free fill, our allocation fill, or
/// canary bytes (at any offset in the 8-byte pattern). None of them is a valid address.
fn made_of(v: usize) -> Option<Made> {
    const NEAR: u64 = 4096;
    let v = v as u64;
    let near = |p: u64| v.wrapping_sub(p).wrapping_add(NEAR) <= 2 * NEAR;
    let splat = |b: u8| u64::from_ne_bytes([b; 8]);
    if near(splat(crate::debug::canary::FREE_FILL)) {
        return Some(Made::FreeFill);
    }
    if near(splat(crate::debug::canary::ALLOC_FILL)) {
        return Some(Made::AllocFill);
    }
    let w = crate::debug::canary::word();
    if (0..8).any(|k| near(w.rotate_right(8 * k))) {
        return Some(Made::Canary);
    }
    None
}

/// The freed block of ours that holds `v`, if any (a racy read: a report may be stale).
fn freed_block(v: usize) -> Option<crate::block::Info> {
    if v < 4096 {
        return None;
    }
    let info = crate::heap::find(v)?;
    let freed = match info.state {
        State::Quarantined | State::Freeing => true,
        State::Free => info.dbg.free_seq != 0,
        State::Used | State::Allocating => false,
    };
    (freed && v >= info.user && v < info.user + info.size.max(1)).then_some(info)
}

/// `NAME = 0xVALUE points N bytes into the freed S-byte block at 0x...`
fn write_into_freed<const N: usize>(
    l: &mut Line<N>,
    name: &[u8],
    v: usize,
    b: &crate::block::Info,
) {
    l.s(name)
        .s(b" = ")
        .x(v)
        .s(b" points ")
        .u((v - b.user) as u64)
        .s(b" bytes into the freed ")
        .u(b.size as u64)
        .s(b"-byte block at ")
        .x(b.user);
}

/// A fault the process dies of, in none of our guard pages. Our fill and canary bytes are not
/// valid addresses, so a pointer made of them faults with no address (`si_addr` 0, a general
/// protection fault): the registers of the signal context are searched for them, and the
/// freed block such a pointer came from is named with its history (a register still on it,
/// else the block the thread freed last). A fault address inside a freed block is a use after
/// free. Either finding is an ERROR; without one, a single line says the fault is not in our
/// memory.
fn diagnose(sig: c_int, addr: usize, code: c_int, ctx: *mut c_void) {
    let mut wild: Option<(usize, usize, Made)> = None; // (register, value, pattern)
    let mut freed: Option<(&'static [u8], usize, crate::block::Info)> = None;
    if let Some(b) = freed_block(addr) {
        freed = Some((b"", addr, b));
    }
    if !ctx.is_null() {
        for (i, &(_, name)) in REGS.iter().enumerate() {
            let v = register(ctx, i);
            if wild.is_none() {
                wild = made_of(v).map(|p| (i, v, p));
            }
            if freed.is_none() {
                freed = freed_block(v).map(|b| (name, v, b));
            }
        }
    }
    // A register on the block this thread freed last may be free's own argument left behind
    // in a scratch register: the lead below names that block without naming the register.
    if let (Some((_, _, Made::FreeFill)), Some((reg, _, b))) = (wild, &freed)
        && !reg.is_empty()
        && crate::log::last_freed_by(crate::tls::tid()) == b.user
    {
        freed = None;
    }
    let (pc, write) = fault_details(ctx);
    // A general protection fault (SI_KERNEL) says nothing of read or write.
    let rw: &[u8] = match write {
        _ if code == libc::SI_KERNEL => b"access",
        Some(true) => b"write",
        Some(false) => b"read",
        None => b"access",
    };
    let name: &[u8] = if sig == libc::SIGBUS {
        b"SIGBUS"
    } else {
        b"SIGSEGV"
    };
    let mut l: Line<512> = Line::new();
    // Without a pattern, a register on a freed block proves nothing (free's argument stays in
    // a register after it returns): only the fault address itself counts.
    if wild.is_none() && freed.as_ref().is_none_or(|f| f.1 != addr) {
        prefix(&mut l)
            .s(name)
            .s(b" (")
            .s(rw)
            .s(b") at ")
            .x(addr)
            .s(b" by ");
        crate::maps::describe(pc, &mut l);
        l.s(b" is not in ft_malloc's memory, and no register holds our fill or canary bytes");
        if crate::config::get().guard == crate::config::Guard::Off {
            l.s(b"; MALLOC_DEBUG=guard (ft-malloc --guard) stops reads and writes past a block at the faulting instruction");
        }
        l.c(b'\n');
        l.report();
        return;
    }
    if !crate::report::begin_wild_pointer(pc) {
        return;
    }
    prefix(&mut l).s(b"ERROR: ");
    match wild {
        Some((i, v, made)) => {
            l.s(b"wild pointer: ")
                .s(name)
                .s(b" (")
                .s(rw)
                .s(b") with ")
                .s(REGS[i].1)
                .s(b" = ")
                .x(v)
                .s(b", made of ")
                .s(made.says())
                .c(b'\n');
        }
        None => {
            l.s(b"use after free (")
                .s(rw)
                .s(b") at ")
                .x(addr)
                .s(b": ")
                .s(name);
            if let Some((_, _, b)) = &freed {
                l.s(b", ")
                    .u((addr - b.user) as u64)
                    .s(b" bytes into the freed ")
                    .u(b.size as u64)
                    .s(b"-byte block at ")
                    .x(b.user);
            }
            l.c(b'\n');
        }
    }
    l.report();
    if let (Some(_), Some((reg, v, b))) = (wild, &freed) {
        l.clear();
        prefix(&mut l).s(b"  ");
        write_into_freed(&mut l, reg, *v, b);
        l.c(b'\n');
        l.report();
    }
    // Free fill with no register on a freed block: the block this thread freed last is the
    // usual source (a list walked after freeing its node).
    let mut lead = None;
    if let (Some((_, _, Made::FreeFill)), None) = (wild, &freed) {
        let p = crate::log::last_freed_by(crate::tls::tid());
        lead = freed_block(p).filter(|b| b.user == p);
        if let Some(b) = &lead {
            l.clear();
            prefix(&mut l)
                .s(b"  probably loaded from the block this thread freed last: the ")
                .u(b.size as u64)
                .s(b"-byte block at ")
                .x(b.user)
                .c(b'\n');
            l.report();
        }
    }
    faulting_instruction(pc, sig, ctx);
    if let Some(b) = freed.as_ref().map(|f| &f.2).or(lead.as_ref()) {
        crate::report::history_pub(&crate::heap::with_history(*b));
    }
    l.clear();
    prefix(&mut l).s(b"  the process now dies of this fault\n");
    l.report();
    crate::report::end_fault();
}

/// The `faulting instruction` line of a fault report, then the fault's stack.
fn faulting_instruction(pc: usize, sig: c_int, ctx: *mut c_void) {
    let mut l: Line<512> = Line::new();
    prefix(&mut l).s(b"  faulting instruction ");
    crate::maps::describe(pc, &mut l);
    l.s(b", thread ")
        .u(crate::tls::tid() as u64)
        .s(b", signal ")
        .u(sig as u64)
        .c(b'\n');
    l.report();
    fault_stack(ctx);
}

/// The stack of the faulting thread, unwound from the signal context, one line per frame
/// (nothing with `stack=1`): the faulting instruction first, then its callers, so a fault
/// inside `memcpy` shows the program's frame under libc's.
fn fault_stack(ctx: *mut c_void) {
    // Unwound once, for the report: the whole default depth even where allocations keep the
    // caller alone (`guard` or `sample` only); nothing when `stack=1` was asked for.
    let asked = crate::config::get().stack;
    let depth = if asked == 0 {
        crate::site::depth().max(16)
    } else {
        crate::site::depth()
    };
    if depth <= 1 || ctx.is_null() {
        return;
    }
    let mut frames = [0usize; crate::site::MAX_DEPTH];
    // SAFETY: ctx is the handler's third argument, a readable ucontext.
    let n = unsafe { crate::unwind::capture_from_ucontext(ctx, &mut frames[..depth]) };
    crate::callstack::write_list(&frames[..n], true);
}

// ---------------------------------------------------------------- interposed

/// sigaction(2), with SIGSEGV/SIGBUS kept behind our explainer while it is installed.
/// # Safety
/// The C contract of sigaction.
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if let Some(i) = slot(sig)
        && INSTALLED.load(Ordering::Acquire)
    {
        // SAFETY: the caller's pointers are valid or null per sigaction's contract.
        unsafe {
            let cur = &mut (*PROGRAM.0.get())[i];
            if !old.is_null() {
                *old = *cur;
            }
            if !act.is_null() {
                *cur = *act;
            }
        }
        return 0;
    }
    // SAFETY: forwarded unchanged to glibc.
    unsafe { __sigaction(sig, act, old) }
}

/// signal(3) with BSD semantics, as glibc's, routed through our sigaction.
/// # Safety
/// The C contract of signal.
pub unsafe extern "C" fn signal(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: a zeroed sigaction filled with the handler is valid; our sigaction checks `sig`.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = h;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaddset(&mut sa.sa_mask, sig);
        let mut old: libc::sigaction = core::mem::zeroed();
        if sigaction(sig, &sa, &mut old) != 0 {
            return libc::SIG_ERR;
        }
        old.sa_sigaction
    }
}
