//! Descriptors and files: raw writes, open/stat/flock, positioned reads and writes, newline
//! filling, close-on-exec copies placed high, and descriptors checked by device and inode
//! before use (a program may close ours and reuse the number).
//!
//! Calls that are thread cancellation points in libc (open, close, read, write, their
//! positioned forms, fallocate) are made as raw system calls, which are not: a thread the
//! program cancels must never be unwound from inside the allocator, holding its locks.

use super::errno::errno;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// A raw system call's result as libc's wrappers return it (-1 with errno set on failure).
#[inline]
fn ret(r: libc::c_long) -> isize {
    r as isize
}

/// Writes all of `buf` to `fd`, retrying on EINTR and short writes. Returns false on error.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is a live slice; write(2) reads at most buf.len() bytes.
        let n = ret(unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) });
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

/// The link count: `nlink_t` is 64 bits on x86_64 and 32 on aarch64.
#[allow(clippy::unnecessary_cast)]
fn nlink_of(st: &libc::stat) -> u64 {
    st.st_nlink as u64
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        id: FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        },
        mode: st.st_mode,
        uid: st.st_uid,
        nlink: nlink_of(st),
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

/// `open(2)` of a NUL-terminated path; with the program's descriptors used up (EMFILE), once
/// more beyond its soft limit (`nofile::with_more`).
pub fn open(path: &[u8], flags: c_int, mode: libc::mode_t) -> Result<c_int, c_int> {
    let p = c_path(path).ok_or(libc::EINVAL)?;
    let once = || {
        // SAFETY: p is NUL terminated; openat(2) only reads it.
        let fd = ret(unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                p,
                flags,
                mode as libc::c_uint,
            )
        });
        if fd < 0 {
            Err(errno())
        } else {
            Ok(fd as c_int)
        }
    };
    match once() {
        Err(libc::EMFILE) => super::nofile::with_more(once),
        r => r,
    }
}

/// Closes a descriptor of ours.
pub fn close(fd: c_int) {
    // SAFETY: the caller owns fd (an OwnedFd checked it, or it was just opened).
    unsafe { libc::syscall(libc::SYS_close, fd) };
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

/// Reads up to `buf.len()` bytes at the file position; the count read (0 at the end).
pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize, c_int> {
    loop {
        // SAFETY: buf is writable for its length.
        let n = ret(unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) });
        if n >= 0 {
            return Ok(n as usize);
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
        let n = ret(unsafe {
            libc::syscall(
                libc::SYS_pread64,
                fd,
                buf.as_mut_ptr(),
                buf.len(),
                off as libc::off_t,
            )
        });
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// `readlink(2)` of a NUL-terminated path into `buf` (not NUL terminated); the length.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> Result<usize, c_int> {
    let p = c_path(path).ok_or(libc::EINVAL)?;
    // SAFETY: p is NUL terminated; buf is writable for its length; readlink does not allocate.
    let n = unsafe { libc::readlink(p, buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
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
        let n = ret(unsafe {
            libc::syscall(
                libc::SYS_pwrite64,
                fd,
                buf.as_ptr(),
                buf.len(),
                off as libc::off_t,
            )
        });
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
        // (The offset's low and high halves: all of it in the first on 64-bit targets.)
        let w = ret(unsafe {
            libc::syscall(
                libc::SYS_pwritev,
                fd,
                iov.as_ptr(),
                n as c_int,
                off as libc::off_t,
                0,
            )
        });
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

/// Has the file system allocate `[off, off + len)` of the file (extending it) without writing
/// it: `fallocate`, whose range then reads as zero bytes (Ok(false)), or, where the file system
/// does not support it, newlines written with `fill_newlines` (Ok(true)). Either way a later
/// store into a shared mapping of the range cannot fail for want of space. Err(errno)
/// otherwise (ENOSPC, EFBIG checked against RLIMIT_FSIZE first, EIO...).
pub fn reserve(fd: c_int, off: u64, len: u64) -> Result<bool, c_int> {
    if off.saturating_add(len) > file_size_limit() {
        return Err(libc::EFBIG);
    }
    loop {
        // SAFETY: fallocate on a descriptor of ours; no memory arguments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fallocate,
                fd,
                0,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
        if r == 0 {
            return Ok(false);
        }
        match errno() {
            libc::EINTR => continue,
            libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL => {
                return fill_newlines(fd, off, len).map(|()| true);
            }
            e => return Err(e),
        }
    }
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
/// `/proc/thread-self/fd/N` (or `/proc/self/fd/N`) link as open(2) describes.
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
    // thread-self first, as in `open_maps`.
    for pre in [b"/proc/thread-self/fd/".as_slice(), b"/proc/self/fd/"] {
        let mut proc_path = [0u8; 40];
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
            return Ok(());
        }
        if errno() == libc::EEXIST {
            break;
        }
    }
    Err(errno())
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

/// The current directory into `buf` (NUL terminated); its length.
pub fn getcwd(buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is writable for its length; getcwd with a buffer does not allocate.
    let p = unsafe { libc::getcwd(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if p.is_null() {
        return None;
    }
    buf.iter().position(|&b| b == 0)
}
