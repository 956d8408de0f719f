//! Signals: the calling thread's signal mask.

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
