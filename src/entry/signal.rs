//! The interposed signal functions: sigaction, signal and bsd_signal, which keep SIGSEGV and
//! SIGBUS behind the fault explainer while it is installed (see `segv`).

use core::ffi::c_int;

/// sigaction(2), with SIGSEGV/SIGBUS kept behind our explainer while it is installed.
/// # Safety
/// The C contract of sigaction.
#[unsafe(link_section = "ft_hot")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: the caller's contract is sigaction's.
    unsafe { crate::segv::sigaction(sig, act, old) }
}

/// signal(3) with BSD semantics, as glibc's, routed through our sigaction.
/// # Safety
/// The C contract of signal.
#[unsafe(link_section = "ft_hot")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: the caller's contract is signal's.
    unsafe { crate::segv::signal(sig, h) }
}

/// bsd_signal is glibc's other name for signal.
/// # Safety
/// The C contract of signal.
#[unsafe(link_section = "ft_hot")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bsd_signal(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: the caller's contract is signal's.
    unsafe { crate::segv::signal(sig, h) }
}
