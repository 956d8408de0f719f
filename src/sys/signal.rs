//! Signals: the calling thread's signal mask, and installing a handler.

use core::ffi::c_int;

/// Blocks the asynchronous signals of the calling thread until dropped (the synchronous ones,
/// which a fault or abort raises, stay deliverable), then restores its mask.
pub struct SignalsBlocked(libc::sigset_t);

impl Default for SignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl SignalsBlocked {
    pub fn new() -> SignalsBlocked {
        // SAFETY: sigset_t is plain bits; the calls only fill and read the sets given.
        unsafe {
            let mut all: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            for s in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGILL,
                libc::SIGFPE,
                libc::SIGTRAP,
                libc::SIGABRT,
                libc::SIGSYS,
            ] {
                libc::sigdelset(&mut all, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked(old)
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, core::ptr::null_mut()) };
    }
}

/// Installs `handler` for `sig` with SA_RESTART and an empty mask. True when the kernel took
/// it (false, with errno set, when it refused).
pub fn install_handler(sig: c_int, handler: extern "C" fn(c_int)) -> bool {
    // SAFETY: a zeroed sigaction with a valid handler and SA_RESTART is a valid argument.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, core::ptr::null_mut()) == 0
    }
}
