//! Every call into the kernel or libc goes through here: mmap family, raw writes, futex,
//! time, ids, random bytes, the initial environment. Nothing here allocates.
//!
//! Invariant: these wrappers never touch `errno` visibly to the program except where the
//! caller asks for it (`set_errno`); callers that must preserve errno use `ErrnoGuard`.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

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

/// A descriptor of ours and the file it was opened on: before every use the descriptor is
/// checked (`fstat`) to still name that file, because the program may close it (a loop of
/// `close`, `close_range`) and get the same number back for a file of its own.
///
/// # Invariants
/// `fd` is -1 or a descriptor this library opened (or duplicated); `dev`/`ino` are the file's
/// at that time. `fd` is published last (Release) and read first (Acquire).
pub struct OwnedFd {
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
}

impl OwnedFd {
    pub const fn none() -> OwnedFd {
        OwnedFd {
            fd: AtomicI32::new(-1),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
        }
    }

    /// Records `fd` (ours) and the file it names now; false (nothing recorded) if it is not open.
    pub fn set(&self, fd: c_int) -> bool {
        let Ok(st) = fstat(fd) else {
            return false;
        };
        self.fd.store(-1, Ordering::Release);
        self.dev.store(st.id.dev, Ordering::Relaxed);
        self.ino.store(st.id.ino, Ordering::Relaxed);
        self.fd.store(fd, Ordering::Release);
        true
    }

    /// Forgets the descriptor without closing it (it may be the program's by now).
    pub fn forget(&self) {
        self.fd.store(-1, Ordering::Release);
    }

    /// The descriptor, if it is still open on the file recorded by `set` and still
    /// close-on-exec as all of ours are (a number the program got back from its own `open`
    /// of the same file usually is not).
    pub fn get(&self) -> Option<c_int> {
        let fd = self.fd.load(Ordering::Acquire);
        if fd < 0 {
            return None;
        }
        fd_names(fd, self.id()).then_some(fd)
    }

    /// The file recorded by `set`.
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev.load(Ordering::Relaxed),
            ino: self.ino.load(Ordering::Relaxed),
        }
    }

    /// Closes the descriptor if it still names our file (else only forgets it), and forgets it.
    pub fn close(&self) {
        if let Some(fd) = self.get() {
            close(fd);
        }
        self.forget();
    }
}

/// Whether `fd` is open on file `id` and close-on-exec, as every descriptor of ours is (the
/// program's own `open` of the same file after closing ours usually is not).
pub fn fd_names(fd: c_int, id: FileId) -> bool {
    if fd < 0 || fstat(fd).map(|st| st.id) != Ok(id) {
        return false;
    }
    // SAFETY: F_GETFD has no memory arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC != 0
}

/// Copy of fd 2 taken at init (placed high, close-on-exec), used only when fd 2 itself is
/// closed (coreutils close stderr in an atexit handler before our fini runs).
pub static SAVED_STDERR: OwnedFd = OwnedFd::none();
/// Where reports go: fd 2 (`REPORT_STDERR`), a verified descriptor of ours (`report=PATH`,
/// `report=fd:N`), or `REPORT_PENDING` until the first report opens the file (`report_opener`).
pub static REPORT_FD: AtomicI32 = AtomicI32::new(REPORT_STDERR);
pub const REPORT_STDERR: c_int = 2;
pub const REPORT_PENDING: c_int = -2;
/// The report file's descriptor when `REPORT_FD` is neither fd 2 nor pending.
pub static REPORT_FILE: OwnedFd = OwnedFd::none();
/// Opens the report destination (registered by init; an upper layer's policy): called with
/// `REPORT_FD` pending, it must leave `REPORT_FD` set to fd 2 or to `REPORT_FILE`'s descriptor.
static REPORT_OPENER: AtomicUsize = AtomicUsize::new(0);
/// Thread tag of the thread running the opener (0: none): its own reports (warnings about the
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
        let me = crate::tls::thread_tag();
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

/// Writes a report chunk to the report destination; if fd 2 is closed, to the saved copy of
/// stderr (when it still names the file it was made from).
pub fn write_report(buf: &[u8]) {
    let fd = report_fd();
    if write_all(fd, buf) {
        return;
    }
    if fd != REPORT_STDERR && write_all(REPORT_STDERR, buf) {
        return;
    }
    if let Some(saved) = SAVED_STDERR.get() {
        write_all(saved, buf);
    }
}

// ------------------------------------------------------------------ files (log, reports)

/// A file's identity.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// What `fstat`/`lstat` say about a file.
#[derive(Clone, Copy, Default)]
pub struct Stat {
    pub id: FileId,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub nlink: u64,
    pub size: u64,
    /// Last modification, nanoseconds since the epoch.
    pub mtime_ns: u64,
}

impl Stat {
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// The file type in words, for messages.
    pub fn kind(&self) -> &'static [u8] {
        match self.mode & libc::S_IFMT {
            libc::S_IFREG => b"a regular file",
            libc::S_IFDIR => b"a directory",
            libc::S_IFIFO => b"a FIFO",
            libc::S_IFCHR => b"a character device",
            libc::S_IFBLK => b"a block device",
            libc::S_IFSOCK => b"a socket",
            libc::S_IFLNK => b"a symbolic link",
            _ => b"not a regular file",
        }
    }
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        id: FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        },
        mode: st.st_mode,
        uid: st.st_uid,
        nlink: st.st_nlink,
        size: st.st_size.max(0) as u64,
        mtime_ns: (st.st_mtime.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec.max(0) as u64),
    }
}

/// A NUL-terminated path as a C pointer; None if `path` has no terminating NUL.
fn c_path(path: &[u8]) -> Option<*const c_char> {
    (path.last() == Some(&0)).then_some(path.as_ptr() as *const c_char)
}

pub fn fstat(fd: c_int) -> Result<Stat, c_int> {
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid out-parameter; fstat only writes it.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(errno());
    }
    Ok(stat_of(&st))
}

/// `lstat` of a NUL-terminated path (a symbolic link is described, not followed).
pub fn lstat(path: &[u8]) -> Result<Stat, c_int> {
    let p = c_path(path).ok_or(libc::EINVAL)?;
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: p is NUL terminated; st is a valid out-parameter.
    if unsafe { libc::lstat(p, &mut st) } != 0 {
        return Err(errno());
    }
    Ok(stat_of(&st))
}

/// `open(2)` of a NUL-terminated path.
pub fn open(path: &[u8], flags: c_int, mode: libc::mode_t) -> Result<c_int, c_int> {
    let p = c_path(path).ok_or(libc::EINVAL)?;
    // SAFETY: p is NUL terminated; open does not allocate.
    let fd = unsafe { libc::open(p, flags, mode as libc::c_uint) };
    if fd < 0 { Err(errno()) } else { Ok(fd) }
}

/// Closes a descriptor of ours.
pub fn close(fd: c_int) {
    // SAFETY: the caller owns fd (an OwnedFd checked it, or it was just opened).
    unsafe { libc::close(fd) };
}

/// `flock(2)`: `LOCK_SH`, `LOCK_EX`, `LOCK_UN`, with `LOCK_NB`; retried on EINTR.
pub fn flock(fd: c_int, op: c_int) -> Result<(), c_int> {
    loop {
        // SAFETY: flock has no memory arguments.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Reads up to `buf.len()` bytes at `off`; the count read.
pub fn pread(fd: c_int, buf: &mut [u8], off: u64) -> Result<usize, c_int> {
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr() as *mut c_void,
                buf.len(),
                off as libc::off_t,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// RLIMIT_FSIZE soft limit in bytes (u64::MAX when unlimited): a write past it fails with EFBIG
/// and raises SIGXFSZ, which kills a program that does not ignore it, so the log checks first.
pub fn file_size_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl) } != 0
        || rl.rlim_cur == libc::RLIM_INFINITY
    {
        return u64::MAX;
    }
    rl.rlim_cur
}

/// Writes all of `buf` at `off`: Err(errno) on failure (EFBIG, without writing, when the end
/// would pass RLIMIT_FSIZE); a short write is continued, so an Err may leave part written.
pub fn pwrite_all(fd: c_int, mut buf: &[u8], mut off: u64) -> Result<(), c_int> {
    if off.saturating_add(buf.len() as u64) > file_size_limit() {
        return Err(libc::EFBIG);
    }
    while !buf.is_empty() {
        // SAFETY: buf is a live slice; pwrite reads at most its length.
        let n = unsafe {
            libc::pwrite(
                fd,
                buf.as_ptr() as *const c_void,
                buf.len(),
                off as libc::off_t,
            )
        };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(libc::ENOSPC);
        }
        buf = &buf[n as usize..];
        off += n as u64;
    }
    Ok(())
}

/// One page of newlines: the filler of the log file's reserved space.
static NEWLINES: [u8; 4096] = [b'\n'; 4096];

/// Writes `len` newline bytes at `off` (few system calls: one `pwritev` of up to 1 MiB). The
/// file system has allocated the space when this returns Ok (a later store into a shared
/// mapping of it cannot fail for want of space); Err(errno) otherwise (ENOSPC, EFBIG checked
/// against RLIMIT_FSIZE before writing, EIO...), possibly with part written.
pub fn fill_newlines(fd: c_int, mut off: u64, mut len: u64) -> Result<(), c_int> {
    if off.saturating_add(len) > file_size_limit() {
        return Err(libc::EFBIG);
    }
    const IOV: usize = 256;
    let page = NEWLINES.len() as u64;
    let mut iov = [libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; IOV];
    while len > 0 {
        let mut n = 0;
        let mut left = len;
        while n < IOV && left > 0 {
            let k = left.min(page);
            iov[n] = libc::iovec {
                iov_base: NEWLINES.as_ptr() as *mut c_void,
                iov_len: k as usize,
            };
            left -= k;
            n += 1;
        }
        // SAFETY: each iovec points into NEWLINES, which the kernel only reads.
        let w = unsafe { libc::pwritev(fd, iov.as_ptr(), n as c_int, off as libc::off_t) };
        if w < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if w == 0 {
            return Err(libc::ENOSPC);
        }
        off += w as u64;
        len -= w as u64;
    }
    Ok(())
}

pub fn ftruncate(fd: c_int, len: u64) -> Result<(), c_int> {
    // SAFETY: ftruncate on a descriptor of ours; no memory arguments.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

pub fn fchmod(fd: c_int, mode: libc::mode_t) {
    // SAFETY: no memory arguments.
    unsafe { libc::fchmod(fd, mode) };
}

/// Lowest number for our descriptors: well above the range programs use (they count up from 3),
/// below the usual 1024 soft limit, and never so high that the kernel grows the descriptor table
/// past 1024 entries for us.
fn high_fd_floor() -> c_int {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out-parameter.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_cur.min(1024) as c_int
    } else {
        1024
    };
    (soft / 4 * 3).max(10)
}

/// Moves `fd` (ours) to a high, close-on-exec number (the old one is closed); on failure the
/// descriptor stays where it is, made close-on-exec.
pub fn move_high(fd: c_int) -> c_int {
    for floor in [high_fd_floor(), 10] {
        // SAFETY: F_DUPFD_CLOEXEC has no memory arguments.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
        if n >= 0 {
            close(fd);
            return n;
        }
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    fd
}

/// A high close-on-exec duplicate of `fd` (which stays open): Err(errno) (EBADF: not open).
pub fn dup_high(fd: c_int) -> Result<c_int, c_int> {
    let mut err = libc::EBADF;
    for floor in [high_fd_floor(), 10] {
        // SAFETY: F_DUPFD_CLOEXEC has no memory arguments.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
        if n >= 0 {
            return Ok(n);
        }
        err = errno();
        if err == libc::EBADF {
            break;
        }
    }
    Err(err)
}

/// Gives the unnamed file `fd` (opened with O_TMPFILE) the name `path` (NUL terminated); fails
/// with EEXIST if the name exists. Uses `AT_EMPTY_PATH` (needs CAP_DAC_READ_SEARCH), then the
/// `/proc/self/fd/N` link as open(2) describes.
pub fn link_fd(fd: c_int, path: &[u8]) -> Result<(), c_int> {
    let p = c_path(path).ok_or(libc::EINVAL)?;
    // SAFETY: an empty NUL-terminated string and a NUL-terminated target path.
    if unsafe { libc::linkat(fd, c"".as_ptr(), libc::AT_FDCWD, p, libc::AT_EMPTY_PATH) } == 0 {
        return Ok(());
    }
    let e = errno();
    if e == libc::EEXIST {
        return Err(e);
    }
    let mut proc_path = [0u8; 32];
    let pre = b"/proc/self/fd/";
    proc_path[..pre.len()].copy_from_slice(pre);
    let mut b = itoa::Buffer::new();
    let digits = b.format(fd).as_bytes();
    proc_path[pre.len()..pre.len() + digits.len()].copy_from_slice(digits);
    // SAFETY: proc_path is NUL terminated (zero-filled past the digits); p as above.
    if unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr() as *const c_char,
            libc::AT_FDCWD,
            p,
            libc::AT_SYMLINK_FOLLOW,
        )
    } == 0
    {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Reads directory entries of `fd` into `buf` (`getdents64`: records of inode, offset, length,
/// type and NUL-terminated name); the count read, 0 at the end.
pub fn getdents(fd: c_int, buf: &mut [u8]) -> Result<usize, c_int> {
    // SAFETY: buf is writable for its length; the kernel writes at most that many bytes.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd,
            buf.as_mut_ptr() as *mut c_void,
            buf.len(),
        )
    };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}

/// Reads a small file (a /proc entry) into `buf`; the count read.
pub fn read_small_file(path: &[u8], buf: &mut [u8]) -> Result<usize, c_int> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let r = pread(fd, buf, 0);
    close(fd);
    r
}

pub fn geteuid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Whether process `pid` exists (`kill(pid, 0)`: EPERM means it does).
pub fn process_exists(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 || errno() == libc::EPERM }
}

/// The current directory into `buf` (NUL terminated); its length.
pub fn getcwd(buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is writable for its length; getcwd with a buffer does not allocate.
    let p = unsafe { libc::getcwd(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if p.is_null() {
        return None;
    }
    buf.iter().position(|&b| b == 0)
}

/// A clock in nanoseconds (CLOCK_REALTIME, CLOCK_BOOTTIME...).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// `sysconf(_SC_CLK_TCK)` (the unit of /proc/PID/stat's start time).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant; it does not allocate.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

unsafe extern "C" {
    /// glibc 2.32: the errno's name (`ENOENT`), or NULL; neither translates nor allocates.
    fn strerrorname_np(e: c_int) -> *const c_char;
    /// glibc 2.32: the errno's description in English, or NULL; neither translates nor allocates.
    fn strerrordesc_np(e: c_int) -> *const c_char;
}

fn static_c_str(p: *const c_char) -> Option<&'static [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: glibc returns pointers to NUL-terminated strings in its read-only tables.
    unsafe { Some(core::ffi::CStr::from_ptr(p).to_bytes()) }
}

/// `ENOENT` for 2; `E?` for an unknown number.
pub fn errno_name(e: c_int) -> &'static [u8] {
    // SAFETY: no preconditions; returns a static string or NULL.
    static_c_str(unsafe { strerrorname_np(e) }).unwrap_or(b"E?")
}

/// `No such file or directory` for 2; `unknown error` for an unknown number.
pub fn errno_desc(e: c_int) -> &'static [u8] {
    // SAFETY: no preconditions; returns a static string or NULL.
    static_c_str(unsafe { strerrordesc_np(e) }).unwrap_or(b"unknown error")
}

/// Shared read-write mapping of `len` bytes of `fd` at `off`, placed at an address aligned to
/// `align` (a power of two, at least the page size) when the address space allows it.
pub fn map_shared_aligned(fd: c_int, off: u64, len: usize, align: usize) -> Option<*mut u8> {
    // Reserve len + align (no access, no memory), so an aligned range of len fits inside.
    let Some(r) = map_anon(len + align, libc::PROT_NONE, libc::MAP_NORESERVE) else {
        return map_shared_fd(len, fd, off as i64);
    };
    let r = r as usize;
    let a = r.next_multiple_of(align);
    // SAFETY: [a, a+len) lies inside the reservation just made, which nobody else uses;
    // MAP_FIXED replaces only that part of it.
    let p = unsafe {
        libc::mmap(
            a as *mut c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            off as libc::off_t,
        )
    };
    // SAFETY: the parts of our reservation around [a, a+len) (empty ones skipped); on failure
    // the whole reservation.
    unsafe {
        if p == libc::MAP_FAILED {
            libc::munmap(r as *mut c_void, len + align);
            return map_shared_fd(len, fd, off as i64);
        }
        if a > r {
            libc::munmap(r as *mut c_void, a - r);
        }
        if r + len + align > a + len {
            libc::munmap((a + len) as *mut c_void, r + len + align - (a + len));
        }
    }
    Some(p as *mut u8)
}

/// Replaces `[p, p+len)` with fresh anonymous read-write memory, in place (from a signal
/// handler: mmap is async-signal-safe in practice and allocates nothing).
/// # Safety
/// `[p, p+len)` is a page-aligned mapping of ours whose content may be thrown away.
pub unsafe fn replace_with_anon(p: *mut u8, len: usize) -> bool {
    // SAFETY: the caller owns the range; MAP_FIXED replaces only it.
    let q = unsafe {
        libc::mmap(
            p as *mut c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    q == p as *mut c_void
}

/// Unmaps a shared file mapping of ours.
/// # Safety
/// `[p, p+len)` is a mapping made by `map_shared_aligned`/`map_shared_fd` that nobody uses.
pub unsafe fn unmap_shared(p: *mut u8, len: usize) {
    // SAFETY: the caller gives the range up.
    unsafe { libc::munmap(p as *mut c_void, len) };
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
impl Default for ErrnoGuard {
    fn default() -> Self {
        Self::new()
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
