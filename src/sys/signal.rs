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

/// `write_all` to a pipe or socket whose reader may be gone, without the SIGPIPE the kernel
/// would raise in the writing thread (its default action ends the program, for a write that
/// was ours): blocked during the write, and taken back when this write raised it; the write
/// then fails with EPIPE. Three system calls more than `write_all`.
pub fn write_all_quiet(fd: c_int, buf: &[u8]) -> bool {
    // SAFETY: sigset_t is plain bits; the calls only fill and read the sets given, and the
    // thread's mask is put back as it was.
    unsafe {
        let mut pipe: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        let mut pending: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        libc::sigpending(&mut pending);
        let before = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let ok = super::fd::write_all(fd, buf);
        let e = super::errno::errno();
        if !ok && e == libc::EPIPE && !before {
            let none = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe, core::ptr::null_mut(), &none);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        super::errno::set_errno(e);
        ok
    }
}

/// Whether `fd` is a pipe or a socket (a write to it may raise SIGPIPE).
pub fn is_pipe(fd: c_int) -> bool {
    super::fd::fstat(fd).is_ok_and(|s| {
        let t = s.mode & libc::S_IFMT;
        t == libc::S_IFIFO || t == libc::S_IFSOCK
    })
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
