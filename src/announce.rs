//! The announce file: how the launcher (scripts/ft-malloc) learns which processes the library
//! was loaded into, and each one's verdict at exit. Format and field names: the format crate's
//! `ft_format::announce` (shared with the reader that parses it).
//!
//! With `FT_MALLOC_ANNOUNCE=/absolute/path` in the initial environment, outside
//! secure-execution mode, a process appends one line:
//! - `start` from our constructor: pid, parent pid, whether debugging is on, the executable
//!   and the parent's executable;
//! - `fork` in a forked child (from a `pthread_atfork` child handler);
//! - `exit` at a normal exit: errors counted in this process, the leak check's state and
//!   totals (handed over by the leak check through `leak_totals`), the peak of live bytes.
//!
//! Each line is built in a stack buffer and appended with one `write(2)` on a descriptor
//! opened (`O_WRONLY|O_APPEND|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK`, never `O_CREAT`: only the
//! launcher creates the file) and closed around it: no descriptor stays open for the program
//! to close, reuse or hand to its children, and lines of different processes never mix.
//!
//! # Invariants
//! - `PATH` is set once, by the constructor, before any fork handler of ours can run; it
//!   points into the initial environment, which lives as long as the process.
//! - Nothing here allocates or takes a lock; every path a signal handler or a fork child can
//!   reach uses only `open`, `write`, `close`, `readlink`, `getpid` and `getppid`.

// The unit-test build has no constructor (it would run inside the test harness).
#![cfg_attr(test, allow(dead_code))]

use crate::config;
use crate::fmt::Line;
use crate::sys;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};
use ft_format::announce as a;

/// The announce file's path (NUL terminated, in the initial environment); null: announcing off.
static PATH: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// `report::ERRORS` when this process was forked (its own count starts there).
static ERRORS_BASE: AtomicU64 = AtomicU64::new(0);
/// The pid whose `exit` line was written (a forked child writes its own).
static EXITED: AtomicU32 = AtomicU32::new(0);

const LEAKS_UNKNOWN: u8 = 0;
const LEAKS_COUNTED: u8 = 1;
const LEAKS_SKIPPED: u8 = 2;
/// What the leak check handed over in this process.
static LEAK_STATE: AtomicU8 = AtomicU8::new(LEAKS_UNKNOWN);
/// Unreachable and still-reachable bytes and blocks, when `LEAK_STATE` is `LEAKS_COUNTED`.
static LEAKS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// The leak check's totals, for the `exit` line (`leaked=` and `reachable=`).
pub fn leak_totals(
    leaked_bytes: u64,
    leaked_blocks: u64,
    reachable_bytes: u64,
    reachable_blocks: u64,
) {
    for (slot, v) in LEAKS.iter().zip([
        leaked_bytes,
        leaked_blocks,
        reachable_bytes,
        reachable_blocks,
    ]) {
        slot.store(v, Ordering::Relaxed);
    }
    LEAK_STATE.store(LEAKS_COUNTED, Ordering::Release);
}

/// The leak check was asked for but could not run (the heap stayed busy at exit, no memory
/// for its scratch space, or no /proc to find the roots in).
pub fn leak_check_skipped() {
    LEAK_STATE.store(LEAKS_SKIPPED, Ordering::Release);
}

fn path() -> Option<*const libc::c_char> {
    let p = PATH.load(Ordering::Acquire);
    (!p.is_null()).then_some(p as *const libc::c_char)
}

/// Appends one line to the announce file (nothing if it cannot be opened: the launcher is gone).
fn append(line: &[u8]) {
    let Some(p) = path() else { return };
    let _e = sys::ErrnoGuard::new();
    // SAFETY: `p` is a NUL-terminated string of the initial environment (module invariant).
    let path = unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes_with_nul();
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let Ok(fd) = sys::open(path, flags, 0) else {
        return;
    };
    sys::write_all(fd, line);
    sys::close(fd);
}

/// ` key=value` with `value` a path, its bytes `\`, space and controls written `\xHH`.
fn path_field<const N: usize>(l: &mut Line<N>, key: &str, v: &[u8]) {
    l.c(b' ').s(key.as_bytes()).c(b'=');
    for &b in v {
        // Leave room for the fields after it and the newline.
        if l.room() < 64 {
            break;
        }
        if a::escaped(b) {
            l.s(b"\\x").hx(b as u64, 2);
        } else {
            l.c(b);
        }
    }
}

/// `readlink` of `link` (NUL terminated) into `buf`; empty when it fails.
fn readlink<'b>(link: &[u8], buf: &'b mut [u8; 512]) -> &'b [u8] {
    // SAFETY: `link` is NUL terminated (callers) and buf is writable for its length.
    let n = unsafe {
        libc::readlink(
            link.as_ptr() as *const libc::c_char,
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n > 0 { &buf[..n as usize] } else { &[] }
}

/// The `start` line of this process image.
fn start() {
    let mut l: Line<{ a::MAX_LINE }> = Line::new();
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() } as u64;
    l.s(a::START.as_bytes())
        .c(b' ')
        .s(a::key::PID.as_bytes())
        .c(b'=')
        .u(sys::getpid() as u64)
        .c(b' ')
        .s(a::key::PPID.as_bytes())
        .c(b'=')
        .u(ppid)
        .c(b' ')
        .s(a::key::DEBUG.as_bytes())
        .c(b'=')
        .u(config::get().enabled as u64);
    let mut buf = [0u8; 512];
    let n = sys::readlink_exe(&mut buf).unwrap_or(0);
    path_field(&mut l, a::key::EXE, &buf[..n]);
    let mut link: Line<40> = Line::new();
    link.s(b"/proc/").u(ppid).s(b"/exe").c(0);
    path_field(&mut l, a::key::PARENT, readlink(link.as_bytes(), &mut buf));
    l.c(b'\n');
    append(l.as_bytes());
}

/// Child handler of `fork`: this process is new, its errors start at the parent's count.
extern "C" fn forked() {
    if path().is_none() {
        return;
    }
    ERRORS_BASE.store(
        crate::report::ERRORS.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    LEAK_STATE.store(LEAKS_UNKNOWN, Ordering::Relaxed);
    let mut l: Line<128> = Line::new();
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() } as u64;
    l.s(a::FORK.as_bytes())
        .c(b' ')
        .s(a::key::PID.as_bytes())
        .c(b'=')
        .u(sys::getpid() as u64)
        .c(b' ')
        .s(a::key::PPID.as_bytes())
        .c(b'=')
        .u(ppid)
        .c(b'\n');
    append(l.as_bytes());
}

/// The `exit` line: called by the library's exit handler once its reports are out (leaks,
/// error summary), and by our own destructor when debugging is off. Once per process.
/// `bypassed`: the path of the object whose own malloc took every allocation, if one did.
#[unsafe(link_section = "ft_hot")]
pub fn at_exit(bypassed: Option<&[u8]>) {
    if path().is_none() {
        return;
    }
    let pid = sys::getpid();
    if EXITED.swap(pid, Ordering::Relaxed) == pid {
        return;
    }
    let c = config::get();
    let errors = crate::report::ERRORS
        .load(Ordering::Relaxed)
        .saturating_sub(ERRORS_BASE.load(Ordering::Relaxed));
    let mut l: Line<{ a::MAX_LINE }> = Line::new();
    l.s(a::EXIT.as_bytes())
        .c(b' ')
        .s(a::key::PID.as_bytes())
        .c(b'=')
        .u(pid as u64)
        .c(b' ')
        .s(a::key::ERRORS.as_bytes())
        .c(b'=')
        .u(errors)
        .c(b' ')
        .s(a::key::LEAK_CHECK.as_bytes())
        .c(b'=');
    let state = LEAK_STATE.load(Ordering::Acquire);
    if !(c.enabled && c.leaks > 0) {
        l.s(a::LEAK_CHECK_OFF.as_bytes());
    } else if state == LEAKS_SKIPPED {
        l.s(a::LEAK_CHECK_SKIPPED.as_bytes());
    } else {
        l.s(a::LEAK_CHECK_ON.as_bytes());
        if state == LEAKS_COUNTED {
            let v: [u64; 4] = core::array::from_fn(|i| LEAKS[i].load(Ordering::Relaxed));
            l.c(b' ')
                .s(a::key::LEAKED.as_bytes())
                .c(b'=')
                .u(v[0])
                .c(b'/')
                .u(v[1]);
            l.c(b' ')
                .s(a::key::REACHABLE.as_bytes())
                .c(b'=')
                .u(v[2])
                .c(b'/')
                .u(v[3]);
        }
    }
    if let Some(path) = bypassed {
        path_field(&mut l, a::key::BYPASSED, path);
    }
    if crate::stats::TRACK.load(Ordering::Relaxed) {
        l.c(b' ')
            .s(a::key::PEAK.as_bytes())
            .c(b'=')
            .u(crate::stats::PEAK.load(Ordering::Relaxed) as u64);
    }
    l.c(b'\n');
    append(l.as_bytes());
}

/// Reads `FT_MALLOC_ANNOUNCE` and writes the `start` line (from the library's constructor, once
/// the allocator is ready). Never in secure-execution mode: a set-user-ID program must not
/// write to a file its caller names.
pub fn start_from_env() {
    if sys::secure_mode() {
        return;
    }
    let Some(v) = sys::getenv_initial(a::ENV.as_bytes()) else {
        return;
    };
    if v.first() != Some(&b'/') {
        return;
    }
    // The value is followed by its NUL in the initial environment.
    PATH.store(v.as_ptr() as *mut u8, Ordering::Release);
    // SAFETY: `forked` is a valid extern "C" fn for the life of the process; registering it
    // may allocate, through our own malloc, which is ready (the constructor made sure).
    unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    start();
}
