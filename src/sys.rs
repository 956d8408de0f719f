//! Every call into the kernel or libc goes through here: mmap family, raw writes, futex,
//! time, ids, random bytes, the initial environment. Nothing here allocates.
//!
//! Invariant: these wrappers never touch `errno` visibly to the program except where the
//! caller asks for it (`set_errno`); callers that must preserve errno use `ErrnoGuard`.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

unsafe extern "C" {
    /// Set by ld.so before any user code runs: points at `argc` on the initial stack.
    static __libc_stack_end: *mut c_void;
}

/// Page size, read once with `sysconf` during init (0 before).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Reads the page size from `sysconf` the first time, then from the cache.
#[inline]
pub fn page_size() -> usize {
    let p = PAGE_SIZE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf(_SC_PAGESIZE) reads a loader variable; it does not allocate.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let v = if v > 0 { v as usize } else { 1 << 12 };
    PAGE_SIZE.store(v, Ordering::Relaxed);
    v
}

/// Rounds `n` up to a multiple of the page size; None on overflow.
#[inline]
pub fn page_round(n: usize) -> Option<usize> {
    let p = page_size();
    Some(n.checked_add(p - 1)? & !(p - 1))
}

/// Anonymous private read-write mapping of `len` bytes; None when the kernel refuses
/// (RLIMIT_AS, out of memory, map count).
pub fn map(len: usize) -> Option<*mut u8> {
    map_anon(len, libc::PROT_READ | libc::PROT_WRITE, 0)
}

/// Anonymous private mapping of `len` bytes with protection `prot` and extra `flags`
/// (e.g. MAP_NORESERVE), at an address the kernel chooses; None when the kernel refuses.
pub fn map_anon(len: usize, prot: c_int, flags: c_int) -> Option<*mut u8> {
    // SAFETY: an anonymous mapping at an address the kernel chooses touches no existing memory.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        crate::stats::MAPS.fetch_add(1, Ordering::Relaxed);
        Some(p as *mut u8)
    }
}

/// `map` for the allocator's own bookkeeping (rings, tables, scratch): the pages are entered in
/// the page map as `META`, so the leak scanner does not take the pointers stored there for
/// references from the program.
pub fn map_internal(len: usize) -> Option<*mut u8> {
    let p = map(len)?;
    crate::pagemap::set_range(p as usize, len, crate::pagemap::META);
    Some(p)
}

/// Maps a shared view of `fd` (for the log file).
pub fn map_shared_fd(len: usize, fd: c_int, off: i64) -> Option<*mut u8> {
    // SAFETY: a new shared mapping of a file we opened; it overlaps nothing of ours.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            off,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        Some(p as *mut u8)
    }
}

/// # Safety
/// `[p, p+len)` must be a mapping (or part of one) that we own and nobody uses any more.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: the caller gives up the range.
    unsafe { libc::munmap(p as *mut c_void, len) };
    crate::stats::MAPS.fetch_sub(1, Ordering::Relaxed);
}

/// # Safety
/// `[p, p+len)` must be page aligned and ours.
pub unsafe fn protect(p: *mut u8, len: usize, rw: bool) -> bool {
    let prot = if rw {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_NONE
    };
    // SAFETY: the caller owns the range.
    unsafe { libc::mprotect(p as *mut c_void, len, prot) == 0 }
}

/// Grows or moves a mapping. `may_move` false: only in place.
/// # Safety
/// `p`/`old` describe a whole mapping of ours.
pub unsafe fn remap(p: *mut u8, old: usize, new: usize, may_move: bool) -> Option<*mut u8> {
    let flags = if may_move { libc::MREMAP_MAYMOVE } else { 0 };
    // SAFETY: the caller owns the mapping; without MAYMOVE the kernel only extends in place.
    let q = unsafe { libc::mremap(p as *mut c_void, old, new, flags) };
    if q == libc::MAP_FAILED {
        None
    } else {
        Some(q as *mut u8)
    }
}

/// Anonymous private PROT_NONE mapping of `len` bytes (address space only: the kernel charges
/// commit when a part is made writable); None when the kernel refuses.
pub fn map_none(len: usize) -> Option<*mut u8> {
    map_anon(len, libc::PROT_NONE, 0)
}

/// Moves the pages of `[src, src + len)` over `[dst, dst + len)` (`mremap` with
/// `MREMAP_FIXED | MREMAP_DONTUNMAP`): they keep their content and protection and cost no page
/// fault there, and `[src, src + len)` stays mapped, empty, with its protection (a later
/// access to a PROT_NONE source still faults). False when the kernel refuses (EINVAL before
/// Linux 5.7, or a limit); the caller then gives up the pages of both ranges (a kernel that
/// moves several mappings at once may have moved some).
/// # Safety
/// Both ranges are page-aligned private anonymous ranges of ours that nobody uses, and they
/// do not overlap.
pub unsafe fn move_pages(src: *mut u8, len: usize, dst: *mut u8) -> bool {
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP;
    // SAFETY: the caller owns both ranges; the kernel replaces the destination's mapping.
    let q = unsafe { libc::mremap(src as *mut c_void, len, len, flags, dst as *mut c_void) };
    q != libc::MAP_FAILED
}

/// Gives the pages of `[p, p + len)` back to the system (they read as zero afterwards).
/// # Safety
/// `[p, p + len)` is page aligned, ours and holds nothing anybody needs.
pub unsafe fn discard(p: *mut u8, len: usize) {
    // SAFETY: the caller owns the range and gives up its content.
    unsafe { libc::madvise(p as *mut c_void, len, libc::MADV_DONTNEED) };
}

/// Writes all of `buf` to `fd`, retrying on EINTR and short writes. Returns false on error.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is a live slice; write(2) reads at most buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        if n == 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Copy of fd 2 taken at init, used only when fd 2 itself is closed (coreutils close stderr
/// in an atexit handler before our fini runs).
pub static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);
/// Where reports go: fd 2 unless `report=PATH` opened a file.
pub static REPORT_FD: AtomicI32 = AtomicI32::new(2);

/// Writes a report chunk to the report fd, falling back to the saved copy of stderr.
pub fn write_report(buf: &[u8]) {
    let fd = REPORT_FD.load(Ordering::Relaxed);
    if write_all(fd, buf) {
        return;
    }
    let saved = SAVED_STDERR.load(Ordering::Relaxed);
    if saved >= 0 {
        write_all(saved, buf);
    }
}

#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub fn set_errno(e: c_int) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = e };
}

/// Restores errno when dropped (diagnostics must not change what the program sees).
pub struct ErrnoGuard(c_int);
impl ErrnoGuard {
    pub fn new() -> Self {
        ErrnoGuard(errno())
    }
}
impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

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

pub fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

pub fn gettid() -> u32 {
    // SAFETY: the gettid syscall has no arguments and no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO, no syscall on x86_64).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// 8 random bytes from the kernel (getrandom), or from AT_RANDOM if that fails.
pub fn random_u64() -> u64 {
    let mut v: u64 = 0;
    // SAFETY: v is 8 writable bytes; GRND_NONBLOCK never blocks.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getrandom,
            &mut v as *mut u64 as *mut c_void,
            8usize,
            libc::GRND_NONBLOCK,
        )
    };
    if n == 8 {
        return v;
    }
    // SAFETY: getauxval has no preconditions; AT_RANDOM points at 16 random bytes set by the kernel.
    unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u8;
        if !p.is_null() {
            return core::ptr::read_unaligned(p.add(8) as *const u64) ^ now_ns();
        }
    }
    now_ns().wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// True in secure-execution mode (setuid/setgid/capabilities), as glibc decides it.
pub fn secure_mode() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Looks `name` up in the initial environment, read from the initial stack through
/// `__libc_stack_end` (valid from the first instruction, unlike `environ`). Returns the value
/// bytes (borrowed from the initial stack, which lives as long as the process).
pub fn getenv_initial(name: &[u8]) -> Option<&'static [u8]> {
    // SAFETY: __libc_stack_end points at argc, followed by argv[argc], NULL, envp..., NULL,
    // all set up by the kernel and never freed; the strings are NUL terminated.
    unsafe {
        let base = __libc_stack_end as *const usize;
        if base.is_null() {
            return None;
        }
        let argc = *base;
        let mut envp = base.add(1 + argc + 1) as *const *const c_char;
        while !(*envp).is_null() {
            let s = *envp as *const u8;
            let mut i = 0;
            while i < name.len() && *s.add(i) == name[i] {
                i += 1;
            }
            if i == name.len() && *s.add(i) == b'=' {
                let v = s.add(i + 1);
                let mut n = 0;
                while *v.add(n) != 0 {
                    n += 1;
                }
                return Some(core::slice::from_raw_parts(v, n));
            }
            envp = envp.add(1);
        }
        None
    }
}

/// The program's path (argv[0]) from the initial stack.
pub fn argv0() -> &'static [u8] {
    // SAFETY: see getenv_initial.
    unsafe {
        let base = __libc_stack_end as *const usize;
        if base.is_null() || *base == 0 {
            return b"?";
        }
        let a = *(base.add(1) as *const *const u8);
        if a.is_null() {
            return b"?";
        }
        let mut n = 0;
        while *a.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(a, n)
    }
}

/// Number of CPUs we may run on (sched_getaffinity with a stack set; never reads /sys).
pub fn ncpus() -> usize {
    let mut set: libc::cpu_set_t = unsafe_zeroed_cpuset();
    // SAFETY: set is a valid cpu_set_t out-parameter of the size given.
    let r =
        unsafe { libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return 1;
    }
    // SAFETY: CPU_COUNT reads the set we own.
    let n = unsafe { libc::CPU_COUNT(&set) };
    if n <= 0 { 1 } else { n as usize }
}

fn unsafe_zeroed_cpuset() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
    unsafe { core::mem::zeroed() }
}

/// Futex wait on `addr` while it holds `val`.
pub fn futex_wait(addr: &AtomicI32, val: i32) {
    // SAFETY: addr is a live aligned i32; FUTEX_WAIT only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr as *const AtomicI32,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            core::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one waiter on `addr`.
pub fn futex_wake(addr: &AtomicI32) {
    // SAFETY: addr is a live aligned i32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr as *const AtomicI32,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

pub fn sched_yield() {
    // SAFETY: no preconditions.
    unsafe { libc::sched_yield() };
}

/// abort(3): raises SIGABRT (and dumps core if enabled).
pub fn abort() -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// _exit(2) with `code`, skipping atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// RLIMIT_AS soft limit in bytes (usize::MAX when unlimited).
pub fn rlimit_as() -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) } != 0
        || rl.rlim_cur == libc::RLIM_INFINITY
    {
        return usize::MAX;
    }
    rl.rlim_cur as usize
}
