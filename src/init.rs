//! Start-up: Uninit → Initializing → Ready on the first call of any entry point (a constructor
//! of another library can call malloc before ours runs), then fork handlers; the constructor and
//! the `.fini_array` destructor do the work that needs a running program (signal handlers,
//! environment clean-up, exit reports).
//!
//! # Invariants
//! The config and layout are written only by the thread that won the Uninit→Initializing
//! exchange, before `STATE` becomes Ready; every other thread waits for Ready first.

use crate::config::{self, Guard, OnError};
use crate::fmt::{Line, prefix};
use crate::heap::{self, Layout};
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicU8, Ordering};

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// Makes sure the allocator is initialised; cheap once Ready.
#[inline(always)]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != READY {
        slow();
    }
}

#[cold]
fn slow() {
    match STATE.compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: our own TLS block.
            unsafe { (*tls::state()).initializing = 1 };
            init();
            STATE.store(READY, Ordering::Release);
            // SAFETY: our own TLS block.
            unsafe { (*tls::state()).initializing = 0 };
            // Registered once Ready: glibc may allocate (through us) to store the handlers.
            // SAFETY: the three handlers are valid extern "C" fns for the life of the process.
            unsafe {
                libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child))
            };
        }
        Err(_) => {
            // SAFETY: our own TLS block.
            if unsafe { (*tls::state()).initializing } != 0 {
                // Re-entered from our own init: defaults are in place, go on.
                return;
            }
            while STATE.load(Ordering::Acquire) != READY {
                sys::sched_yield();
            }
        }
    }
}

fn init() {
    sys::page_size();
    crate::pagemap::init();
    heap::init_arenas(sys::ncpus());
    let mut value: &[u8] = sys::getenv_initial(b"MALLOC_DEBUG").unwrap_or(b"");
    if !value.is_empty() && sys::secure_mode() {
        value = b"";
    }
    let parsed = config::parse(value, &mut |item, why| config::warn_item(item, why));
    let c = parsed.config;
    // SAFETY: single-threaded init (module invariant).
    unsafe { config::set(c) };
    if !c.enabled {
        // The plain layout, written now so that the first malloc finds its page present.
        // SAFETY: single-threaded init.
        unsafe {
            heap::LAYOUT.set(Layout {
                front: 0,
                tail: 0,
                fill: false,
                debug_meta: false,
                zone_guards: false,
                large_guard: 0,
            })
        };
        return;
    }
    // Reports must survive a program that closes stderr in an atexit handler: a copy of fd 2,
    // high and close-on-exec, used only while it still names the file it was made from.
    if let Ok(fd) = sys::dup_high(2)
        && !sys::SAVED_STDERR.set(fd)
    {
        sys::close(fd);
    }
    if c.report.is_set() {
        // SAFETY: single-threaded init (module invariant).
        unsafe { REPORT_SPEC.set(c.report) };
        sys::set_report_opener(open_output);
        if c.report.as_bytes().starts_with(b"fd:") {
            // Checked now (a closed descriptor gets its warning at start); a file is created
            // at the first report, so that runs without errors leave no empty report files.
            open_output();
        } else if c.report.as_bytes() != b"stderr" {
            sys::REPORT_FD.store(sys::REPORT_PENDING, Ordering::Release);
        }
    }
    if parsed.help {
        config::print_help();
    }
    crate::canary::init(sys::random_u64());
    let page = sys::page_size();
    let canary = c.canary;
    let heavy = !c.light;
    let lay = Layout {
        front: if canary { 16 } else { 0 },
        tail: if canary { 1 } else { 0 },
        fill: c.fill,
        debug_meta: heavy,
        zone_guards: heavy,
        // Behind every LARGE block, a wide inaccessible region: an access a few KiB past its
        // end still faults. Address space is cheap; no page is touched.
        large_guard: if heavy {
            (64usize << 10).next_multiple_of(page)
        } else {
            0
        },
    };
    // SAFETY: single-threaded init.
    unsafe { heap::LAYOUT.set(lay) };
    crate::guard::init(&c);
    if heavy {
        crate::stats::TRACK.store(true, Ordering::Relaxed);
        crate::log::init(&c);
    }
    let _ = Guard::Off;
}

/// The `report=` value, kept for the opener (first report, fork child, reopening).
static REPORT_SPEC: config::Once<config::Path> = config::Once::new(config::Path::NONE);
/// LOCK_SH on the base name when this process writes its reports to PATH.PID.
static REPORT_BASE: sys::OwnedFd = sys::OwnedFd::none();
/// In a fork child: the parent's report file, kept open (it holds the parent's lock).
static REPORT_PARENT: sys::OwnedFd = sys::OwnedFd::none();

/// Opens the report destination (`sys::write_report` calls it with reports pending: at the
/// first report, and again if the program closed our descriptor). `stderr` is fd 2; `fd:N`
/// gets our own high close-on-exec duplicate of N (again only while N still names the same
/// file); a path is claimed like the log (`outfile`: PATH or PATH.PID, never a file another
/// process writes or one planted by somebody else) and appended to. Leaves `REPORT_FD` at
/// fd 2 after one warning when that fails.
pub fn open_output() {
    let spec = REPORT_SPEC.get().as_bytes();
    let stderr = || sys::REPORT_FD.store(sys::REPORT_STDERR, Ordering::Release);
    if spec == b"stderr" {
        stderr();
        return;
    }
    if let Some(n) = spec.strip_prefix(b"fd:") {
        let v = crate::fmt::parse_num(n)
            .filter(|&v| v <= i32::MAX as u64)
            .map(|v| v as i32);
        let before = sys::REPORT_FILE.id();
        let same = v.is_some_and(|v| {
            before == sys::FileId::default() || sys::fstat(v).map(|st| st.id) == Ok(before)
        });
        let dup = match v {
            Some(v) if same => sys::dup_high(v),
            _ => Err(libc::EBADF),
        };
        match dup {
            Ok(fd) if sys::REPORT_FILE.set(fd) => {
                sys::REPORT_FD.store(fd, Ordering::Release);
            }
            r => {
                stderr();
                let mut l: Line<300> = Line::new();
                prefix(&mut l)
                    .s(b"WARNING: report: cannot use ")
                    .s(spec)
                    .c(b' ');
                crate::outfile::errno_text(&mut l, r.err().unwrap_or(libc::EBADF));
                l.s(b"; reports go to stderr\n");
                l.report();
            }
        }
        return;
    }
    let mut path = [0u8; 512];
    let n = crate::log::expand(spec, &mut path);
    let log = crate::log::file_id();
    match crate::outfile::claim(&path[..n], crate::outfile::Kind::Report, b"", log) {
        Some(c) if sys::REPORT_FILE.set(c.fd) => {
            // (Opened again after the program closed ours: an earlier hold may still be open.)
            if c.base >= 0 && (REPORT_BASE.get().is_some() || !REPORT_BASE.set(c.base)) {
                sys::close(c.base);
            }
            sys::REPORT_FD.store(c.fd, Ordering::Release);
        }
        _ => stderr(),
    }
}

extern "C" fn fork_prepare() {
    crate::log::lock_for_fork();
    heap::lock_all();
}

extern "C" fn fork_parent() {
    heap::unlock_all();
    crate::log::unlock_after_fork();
}

extern "C" fn fork_child() {
    // fork() returned 0 in the child: the files opened here must not change its errno.
    let _e = sys::ErrnoGuard::new();
    tls::reset_after_fork();
    heap::reset_all();
    crate::log::reset_in_child();
    // The report file is the parent's: this process claims its own at its first report. Its
    // descriptors stay open as holds (their open files carry the parent's locks), so that the
    // parent's files count as in use even after the parent exits.
    if sys::REPORT_FD.load(Ordering::Acquire) != sys::REPORT_STDERR
        && !REPORT_SPEC.get().as_bytes().starts_with(b"fd:")
    {
        if let Some(fd) = sys::REPORT_FILE.get() {
            REPORT_PARENT.close();
            if !REPORT_PARENT.set(fd) {
                sys::close(fd);
            }
        }
        sys::REPORT_FILE.forget();
        sys::REPORT_FD.store(sys::REPORT_PENDING, Ordering::Release);
    }
}

/// Constructor: runs once libc is up. Only an optimisation for init, plus the work that needs
/// a running program (signal handlers, environment).
#[ctor::ctor(unsafe, priority = early)]
fn early_init() {
    ensure();
    let c = config::get();
    if !c.enabled {
        return;
    }
    if c.nochildren {
        strip_environment();
    }
    crate::guard::install_handler();
    crate::dump::install_signal(c.dump_signal);
}

unsafe extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// `nochildren`: removes LD_PRELOAD and MALLOC_DEBUG from `environ` in place (no allocation),
/// so programs this one execs run without the library.
fn strip_environment() {
    // SAFETY: environ is a NULL-terminated array owned by libc; we only move pointers within it,
    // before the program's main runs (constructor), when no other thread exists.
    unsafe {
        let env = environ;
        if env.is_null() {
            return;
        }
        let mut r = 0;
        let mut w = 0;
        while !(*env.add(r)).is_null() {
            let s = *env.add(r) as *const u8;
            let drop_it = starts_with(s, b"LD_PRELOAD=") || starts_with(s, b"MALLOC_DEBUG=");
            if !drop_it {
                *env.add(w) = *env.add(r);
                w += 1;
            }
            r += 1;
        }
        *env.add(w) = core::ptr::null_mut();
    }
}

/// # Safety
/// `s` is a NUL-terminated string.
unsafe fn starts_with(s: *const u8, pre: &[u8]) -> bool {
    for (i, &c) in pre.iter().enumerate() {
        // SAFETY: we stop at the first mismatch, which a NUL byte is, so we never read past it.
        if unsafe { *s.add(i) } != c {
            return false;
        }
    }
    true
}

extern "C" fn fini() {
    let c = config::get();
    if !c.enabled {
        return;
    }
    let _e = sys::ErrnoGuard::new();
    crate::log::flush_at_exit();
    if c.quarantine > 0 {
        crate::quarantine::drain();
    }
    if c.leaks > 0 {
        crate::leaks::report_at_exit(c.leaks >= 2);
    }
    if c.dump_at_exit {
        crate::dump::show_alloc_mem_ex();
    }
    if c.stats {
        crate::dump::stats_line();
    }
    if c.on_error != OnError::Abort {
        crate::report::summary_at_exit();
    }
    crate::log::close_at_exit();
    if let OnError::Exit(n) = c.on_error {
        if crate::report::ERRORS.load(Ordering::Relaxed) > 0 {
            // Our destructor runs before libc flushes stdio at exit: flush it first.
            // SAFETY: fflush(NULL) flushes every open stream; nothing is freed or allocated.
            unsafe { libc::fflush(core::ptr::null_mut()) };
            sys::exit_now(n);
        }
    }
}

#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = fini;
