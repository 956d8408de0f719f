//! The SIGSEGV/SIGBUS explainer, installed when debugging is on. A fault in one of our guard
//! pages or freed (PROT_NONE) blocks gets a report — overflow, underflow or use after free, read
//! or write, "N bytes after/before/into the S-byte block at 0x...", the block's history, the
//! faulting instruction and thread — then the default action is restored and the handler
//! returns: the instruction faults again and the process dies of the real fault (core dumps and
//! debuggers see the original si_code and address). A fault that is not ours, and a signal that
//! was sent rather than raised by a fault, get the program's own disposition (`forward`).
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
    if code > 0 && explain(sig, addr, ctx) {
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

/// Reports a fault at `addr` if it hit one of our protected pages. Returns false if not ours.
fn explain(sig: c_int, addr: usize, ctx: *mut c_void) -> bool {
    // A racy read, acceptable in a fault report.
    let Some(d) = walk::fault_lookup(addr) else {
        return false;
    };
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
    if !crate::report::begin_guard_fault(pc) {
        return true;
    }
    let mut l: Line<512> = Line::new();
    prefix(&mut l).s(b"ERROR: ");
    if freed {
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
    l.s(if d.guarded.is_guarded() {
        b" (guard page)\n" as &[u8]
    } else {
        b" (LARGE block guard region)\n"
    });
    l.report();
    l.clear();
    prefix(&mut l).s(b"  faulting instruction ");
    crate::maps::describe(pc, &mut l);
    l.s(b", thread ")
        .u(crate::tls::tid() as u64)
        .s(b", signal ")
        .u(sig as u64)
        .c(b'\n');
    l.report();
    fault_stack(ctx);
    crate::report::history_pub(&info);
    l.clear();
    prefix(&mut l).s(b"  the process now dies of this fault\n");
    l.report();
    crate::report::end_fault();
    true
}

/// The stack of the faulting thread, unwound from the signal context, one line per frame
/// (nothing with `stack=1`): the faulting instruction first, then its callers, so a fault
/// inside `memcpy` shows the program's frame under libc's.
fn fault_stack(ctx: *mut c_void) {
    let depth = crate::site::depth();
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
    if let Some(i) = slot(sig) {
        if INSTALLED.load(Ordering::Acquire) {
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
