//! Descriptors for our own files when the program has used up its own: reports, the leak check
//! at exit and the symbol lookups open /proc files and ELF files, and a program that leaked
//! descriptors up to `RLIMIT_NOFILE` (the bug it may be run under us for) would leave them none.

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};

/// One raise at a time: two would put back each other's limit.
static RAISING: AtomicBool = AtomicBool::new(false);

/// Runs `open` (which failed with EMFILE) once more with the soft limit on descriptors raised
/// by a few, as far as the hard limit allows, and puts the limit back at once: the descriptor
/// got stays valid above it until it is closed. EMFILE when the limit cannot be raised.
pub fn with_more(open: impl FnOnce() -> Result<c_int, c_int>) -> Result<c_int, c_int> {
    if RAISING.swap(true, Ordering::Acquire) {
        return Err(libc::EMFILE);
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let r = if got && lim.rlim_cur < lim.rlim_max {
        let old = lim;
        lim.rlim_cur = (old.rlim_cur + 8).min(old.rlim_max);
        // SAFETY: as above; setrlimit reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
            let r = open();
            // SAFETY: as above.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
            r
        } else {
            Err(libc::EMFILE)
        }
    } else {
        Err(libc::EMFILE)
    };
    RAISING.store(false, Ordering::Release);
    r
}
