//! Where reports go: stderr, or the `report=` file, opened on first use through a function the
//! report layer registers at start-up (`set_report_opener`). Stderr is the one the program was
//! started with: the copy of fd 2 saved at start while it still names that file, whatever the
//! program did with fd 2 since; fd 2 itself otherwise, unless it was closed at start.

use super::errno::ErrnoGuard;
use super::fd::OwnedFd;
use super::proc::sched_yield;
use super::signal::write_all_quiet;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

/// Copy of fd 2 taken at init (placed high, close-on-exec): where stderr reports go first, so
/// that they reach the stderr the program was started with after it closed fd 2 (coreutils do
/// in an atexit handler before our fini runs) or moved another file onto it.
pub static SAVED_STDERR: OwnedFd = OwnedFd::none();

/// Where reports go: fd 2 (`REPORT_STDERR`), a verified descriptor of ours (`report=PATH`,
/// `report=fd:N`), or `REPORT_PENDING` until the first report opens the file (`report_opener`).
pub static REPORT_FD: AtomicI32 = AtomicI32::new(REPORT_STDERR);

pub const REPORT_STDERR: c_int = 2;

/// fd 2 was closed when the program started (`prog 2>&-`): whatever the program opens later gets
/// that number (its own data file), so no output of ours goes to fd 2 (`note_stderr`).
static STDERR_ABSENT: AtomicBool = AtomicBool::new(false);

/// Notes at start whether fd 2 is open (one `fcntl`; inlined, so that it runs in the caller's
/// code section).
#[inline(always)]
pub fn note_stderr() {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let open = unsafe { libc::fcntl(REPORT_STDERR, libc::F_GETFD) } >= 0;
    STDERR_ABSENT.store(!open, Ordering::Relaxed);
}

/// Whether fd 2 is not ours to write (closed when the program started).
pub fn stderr_absent() -> bool {
    STDERR_ABSENT.load(Ordering::Relaxed)
}

pub const REPORT_PENDING: c_int = -2;

/// The report file's descriptor when `REPORT_FD` is neither fd 2 nor pending.
pub static REPORT_FILE: OwnedFd = OwnedFd::none();

/// Opens the report destination (registered by init; an upper layer's policy): called with
/// `REPORT_FD` pending, it must leave `REPORT_FD` set to fd 2 or to `REPORT_FILE`'s descriptor.
static REPORT_OPENER: AtomicUsize = AtomicUsize::new(0);

/// Kernel tid of the thread running the opener (0: none): its own reports (warnings about the
/// file) go to fd 2.
static REPORT_OPENING: AtomicUsize = AtomicUsize::new(0);

/// Registers the function that opens the report file on first use.
pub fn set_report_opener(f: fn()) {
    REPORT_OPENER.store(f as usize, Ordering::Release);
}

/// The descriptor reports go to now, opening the report file on first use.
fn report_fd() -> c_int {
    loop {
        let fd = REPORT_FD.load(Ordering::Acquire);
        if fd == REPORT_STDERR {
            return fd;
        }
        if fd != REPORT_PENDING {
            if let Some(f) = REPORT_FILE.get() {
                return f;
            }
            // The program closed our descriptor (or reused its number): open the file again.
            let _ =
                REPORT_FD.compare_exchange(fd, REPORT_PENDING, Ordering::AcqRel, Ordering::Relaxed);
            continue;
        }
        let me = super::proc::gettid() as usize;
        match REPORT_OPENING.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let f = REPORT_OPENER.load(Ordering::Acquire);
                if f == 0 {
                    REPORT_FD.store(REPORT_STDERR, Ordering::Release);
                } else {
                    // SAFETY: the only value stored is a `fn()` (set_report_opener).
                    let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
                    let _e = ErrnoGuard::new();
                    f();
                    if REPORT_FD.load(Ordering::Acquire) == REPORT_PENDING {
                        REPORT_FD.store(REPORT_STDERR, Ordering::Release);
                    }
                }
                REPORT_OPENING.store(0, Ordering::Release);
            }
            Err(owner) if owner == me => return REPORT_STDERR,
            Err(_) => sched_yield(),
        }
    }
}

/// The descriptor a long output meant for the reader of reports (a dump from a signal or at
/// exit) goes to: the report destination, opened on first use; for stderr, the stderr the
/// program was started with (`write_report`); -1 when there is none.
pub fn report_dest() -> c_int {
    let fd = report_fd();
    if fd != REPORT_STDERR {
        return fd;
    }
    match SAVED_STDERR.get() {
        Some(saved) => saved,
        None if stderr_absent() => -1,
        None => fd,
    }
}

/// Writes a report chunk to the report destination. For stderr, that is the stderr the program
/// was started with, as valgrind does: the saved copy while it still names that file (the
/// program may have redirected fd 2, closed it, or opened a file of its own that took its
/// number), else fd 2 unless it was closed at start.
pub fn write_report(buf: &[u8]) {
    // A reader gone (`2>&1 | head`) must not end the program: quiet writes.
    let fd = report_fd();
    // A report file that cannot be written: stderr, as below.
    if fd != REPORT_STDERR && write_all_quiet(fd, buf) {
        return;
    }
    if let Some(saved) = SAVED_STDERR.get()
        && write_all_quiet(saved, buf)
    {
        return;
    }
    if !stderr_absent() {
        write_all_quiet(REPORT_STDERR, buf);
    }
}
