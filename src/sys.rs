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
        Some(p as *mut u8)
    }
}

/// `madvise` advice of Linux 6.13: page-table guard markers (an access faults as on a
/// PROT_NONE page), which split no kernel mapping.
pub const MADV_GUARD_INSTALL: c_int = 102;
pub const MADV_GUARD_REMOVE: c_int = 103;
/// Set once the kernel refused guard markers for an internal mapping (older kernel, or a
/// locked mapping): `guard_pages` goes straight to mprotect.
static NO_MARKERS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Makes `[p, p + len)` inaccessible: guard markers where the kernel has them, else mprotect.
/// # Safety
/// `[p, p + len)` is page aligned, part of a private anonymous mapping of ours, and holds
/// nothing anybody needs.
pub unsafe fn guard_pages(p: *mut u8, len: usize) -> bool {
    if !NO_MARKERS.load(Ordering::Relaxed) {
        // SAFETY: per the caller.
        if unsafe { libc::madvise(p as *mut c_void, len, MADV_GUARD_INSTALL) } == 0 {
            return true;
        }
        NO_MARKERS.store(true, Ordering::Relaxed);
    }
    // SAFETY: per the caller.
    unsafe { protect(p, len, false) }
}

/// A read-write mapping of `len` bytes (page rounded) with a guard page on each side, for the
/// allocator's own metadata: a linear overflow or underflow of a neighbouring mapping (user
/// data, or the program's own) faults on the guard instead of rewriting it. Returns the start
/// of the accessible part. None when the kernel refuses.
pub fn map_guarded(len: usize) -> Option<*mut u8> {
    let page = page_size();
    let len = page_round(len)?;
    let total = len.checked_add(2 * page)?;
    let p = map(total)?;
    // SAFETY: the first and last page of the mapping just made, which nothing uses.
    let ok = unsafe { guard_pages(p, page) && guard_pages(p.add(page + len), page) };
    if !ok {
        // SAFETY: as above.
        unsafe { unmap(p, total) };
        return None;
    }
    // SAFETY: inside the mapping.
    Some(unsafe { p.add(page) })
}

/// Unmaps what `map_guarded(len)` returned, guards included.
/// # Safety
/// `p` came from `map_guarded(len)` and nothing uses it any more.
pub unsafe fn unmap_guarded(p: *mut u8, len: usize) {
    let page = page_size();
    let len = page_round(len).unwrap_or(len);
    // SAFETY: per the caller: the guards and the range between them are ours.
    unsafe { unmap(p.sub(page), len + 2 * page) };
}

/// `map_guarded` for the allocator's own bookkeeping (rings, tables, scratch, zone metadata,
/// descriptors): the pages, guards included, are entered in the page map as `META`, so the
/// leak scanner neither takes the pointers stored there for references from the program nor
/// reads the guards.
pub fn map_internal(len: usize) -> Option<*mut u8> {
    let p = map_guarded(len)?;
    let page = page_size();
    let span = page_round(len)? + 2 * page;
    if !crate::pagemap::set_range(p as usize - page, span, crate::pagemap::META) {
        crate::pagemap::clear_range(p as usize - page, span);
        // SAFETY: mapped just above, never handed out.
        unsafe { unmap_guarded(p, len) };
        return None;
    }
    Some(p)
}

/// Gives back what `map_internal(len)` returned.
/// # Safety
/// `p` came from `map_internal(len)` and nothing uses it any more.
pub unsafe fn unmap_internal(p: *mut u8, len: usize) {
    let page = page_size();
    let span = page_round(len).unwrap_or(len) + 2 * page;
    crate::pagemap::clear_range(p as usize - page, span);
    // SAFETY: per the caller.
    unsafe { unmap_guarded(p, len) };
}

/// Maps one inaccessible page range at exactly `addr` if nothing is mapped there (a guard
/// page after our static data). False if the range is taken or the kernel refuses.
pub fn guard_at(addr: usize, len: usize) -> bool {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; a kernel that does not
    // know the flag takes the address as a hint, and a mapping made elsewhere is undone.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    if p as usize != addr {
        // SAFETY: the mapping just made elsewhere, unused.
        unsafe { libc::munmap(p, len) };
        return false;
    }
    true
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

/// Physical memory plus swap in bytes (`sysinfo`; usize::MAX if unknown): no single mapping
/// larger than this is granted under the kernel's default overcommit policy.
pub fn ram_and_swap() -> usize {
    // SAFETY: sysinfo is plain data; all-zero is a valid value.
    let mut si: libc::sysinfo = unsafe { core::mem::zeroed() };
    // SAFETY: si is a valid out-parameter.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return usize::MAX;
    }
    let unit = (si.mem_unit as usize).max(1);
    (si.totalram as usize)
        .saturating_add(si.totalswap as usize)
        .saturating_mul(unit)
}

/// Copies `len` bytes of this process's memory at `addr` into `buf` with `process_vm_readv`,
/// which fails with EFAULT where a plain read would fault (a file mapping past the end of its
/// file raises SIGBUS, a page unmapped meanwhile or under a guard marker SIGSEGV). Returns the
/// bytes copied (fewer than asked when a page on the way could not be read: the copy stops
/// there), or the errno when nothing was copied.
pub fn read_own(addr: usize, len: usize, buf: &mut [u8]) -> Result<usize, c_int> {
    let len = len.min(buf.len());
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut c_void,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: len,
    };
    // SAFETY: `local` is our own writable buffer of `len` bytes; the kernel checks `remote`.
    let r = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if r < 0 { Err(errno()) } else { Ok(r as usize) }
}
