//! Reads of our own memory that cannot fault, and what the kernel says about pages: copies
//! and page probes with `process_vm_readv` (with `rt_sigprocmask` where a seccomp filter refuses
//! it), residency (`mincore`, never under a seccomp filter, which may kill the process for it),
//! and whether swap is in use.

use super::errno::errno;
use super::mem::page_size;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Pages whose residency `each_resident_run` asks at once (one byte each, on the stack).
const RESIDENT_CHUNK: usize = 2048;

/// Calls `f(lo, hi)` for each run of resident pages of `[from, to)` (clipped to the range): a
/// page never touched is not resident. Residency is asked of the kernel (`mincore`)
/// `RESIDENT_CHUNK` pages at a time into a map on the stack; a chunk it says nothing about
/// (part of it unmapped) is passed whole.
pub fn each_resident_run(from: usize, to: usize, mut f: impl FnMut(usize, usize)) {
    let page = page_size();
    let mut vec = [0u8; RESIDENT_CHUNK];
    let mut base = from & !(page - 1);
    while base < to {
        let pages = (to - base).div_ceil(page).min(RESIDENT_CHUNK);
        let known = residency(base, &mut vec[..pages]);
        let mut i = 0;
        while i < pages {
            if known && vec[i] & 1 == 0 {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < pages && (!known || vec[j] & 1 != 0) {
                j += 1;
            }
            f((base + i * page).max(from), (base + j * page).min(to));
            i = j;
        }
        base += pages * page;
    }
}

/// Set once a seccomp filter was seen on the process (`note_seccomp`): `residency` then asks
/// the kernel nothing, since `mincore` is in no group of system calls that filters allow by
/// name (systemd's `@system-service` leaves it out, and kills the caller by default).
static SECCOMP_FILTER: AtomicBool = AtomicBool::new(false);

/// Looks for a seccomp filter on this thread (`Seccomp: 2` in /proc/.../status), for
/// `residency`. A filter once installed stays: a filter seen is never forgotten. Out of line, so
/// that its 4 KiB buffer is not in its caller's frame (a thread's stack may be small).
#[inline(never)]
pub fn note_seccomp() {
    let mut buf = [0u8; 4096];
    let n = super::fd::read_small_file(b"/proc/thread-self/status\0", &mut buf)
        .or_else(|_| super::fd::read_small_file(b"/proc/self/status\0", &mut buf))
        .unwrap_or(0);
    let text = &buf[..n];
    let key = b"\nSeccomp:";
    if let Some(at) = text.windows(key.len()).position(|w| w == key) {
        let rest = &text[at + key.len()..];
        let digit = rest.iter().find(|b| !b.is_ascii_whitespace());
        if digit.is_some_and(|&d| d != b'0') {
            SECCOMP_FILTER.store(true, Ordering::Relaxed);
        }
    }
}

/// Asks the kernel (`mincore`) which of the pages from `base` (page aligned) are resident:
/// bit 0 of `map[i]` for the i-th page. False when it does not say (part of the range is not
/// mapped, or a seccomp filter may forbid the call: `note_seccomp`).
pub fn residency(base: usize, map: &mut [u8]) -> bool {
    if SECCOMP_FILTER.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: the kernel writes one byte per page of the range into `map`, which has room for
    // them. It reads nothing of the range.
    unsafe {
        libc::mincore(
            base as *mut c_void,
            map.len() * page_size(),
            map.as_mut_ptr(),
        ) == 0
    }
}

/// Whether some swap space is in use (`sysinfo`; true when unknown): a page that is not
/// resident may then hold data.
pub fn swap_in_use() -> bool {
    // SAFETY: sysinfo is plain data; all-zero is a valid value.
    let mut si: libc::sysinfo = unsafe { core::mem::zeroed() };
    // SAFETY: si is a valid out-parameter.
    unsafe { libc::sysinfo(&mut si) != 0 || si.totalswap > si.freeswap }
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

/// How `pages_readable` probes: 0 with `process_vm_readv`; once that was refused (a seccomp
/// filter answering EPERM, a kernel without it), 1 with `rt_sigprocmask` (`readable_by_mask`),
/// or 2 when that probe failed its check too (nothing is taken for readable).
static PROBE: AtomicU8 = AtomicU8::new(0);

/// Whether the 8 bytes at `addr` can be read, asked of `rt_sigprocmask` with an invalid `how`:
/// the kernel copies the new mask from `addr` before it looks at `how`, so it answers EFAULT
/// when they cannot be read and EINVAL when they can, the mask unchanged. Every seccomp filter
/// lets this call through: libc cannot do without it.
fn readable_by_mask(addr: usize) -> bool {
    // SAFETY: an invalid `how` and no old set: the kernel reads 8 bytes at `addr` (or fails)
    // and changes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            -1 as c_int,
            addr as *const c_void,
            core::ptr::null_mut::<c_void>(),
            8usize,
        )
    };
    r == -1 && errno() == libc::EINVAL
}

/// Switches `pages_readable` to `readable_by_mask`, once it answers as expected for a word of
/// this frame (readable) and for address 0 (not).
#[cold]
fn fall_back_to_mask() -> u8 {
    let here = 0u64;
    let ok = readable_by_mask(core::hint::black_box(&here) as *const u64 as usize)
        && !readable_by_mask(0);
    let mode = if ok { 1 } else { 2 };
    PROBE.store(mode, Ordering::Relaxed);
    mode
}

/// Whether `pages_readable` can tell a readable page from another (false once both of its
/// probes were refused or answered wrongly: it then takes no page for readable).
pub fn probes_work() -> bool {
    PROBE.load(Ordering::Relaxed) < 2
}

/// Whether every `grain`-sized page of `[from, to)` (`from` aligned to `grain`) is readable:
/// one byte of each is read with `process_vm_readv` on our own pid, at most `BATCH` pages per
/// call, so an unmapped or unreadable page answers EFAULT (or a short count) instead of
/// faulting. Stops at the first batch that is not read whole. Where `process_vm_readv` is
/// refused, each page is asked of `rt_sigprocmask` instead (`readable_by_mask`).
pub fn pages_readable(from: usize, to: usize, grain: usize) -> bool {
    const BATCH: usize = 32;
    match PROBE.load(Ordering::Relaxed) {
        0 => {}
        1 => return (from..to).step_by(grain).all(readable_by_mask),
        _ => return false,
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut sink = [0u8; BATCH];
    let mut page = from;
    while page < to {
        let n = ((to - page).div_ceil(grain)).min(BATCH);
        let mut remote = [libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 1,
        }; BATCH];
        for (i, r) in remote.iter_mut().take(n).enumerate() {
            r.iov_base = (page + i * grain) as *mut c_void;
        }
        let local = libc::iovec {
            iov_base: sink.as_mut_ptr() as *mut c_void,
            iov_len: n,
        };
        // SAFETY: the local buffer holds n bytes; the kernel checks the remote addresses and
        // answers EFAULT (or a short count) for unreadable ones instead of faulting.
        let got = unsafe { libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), n as _, 0) };
        if got < 0 && errno() != libc::EFAULT {
            // Refused, not a fault: probe another way from now on.
            return fall_back_to_mask() == 1 && pages_readable(page, to, grain);
        }
        if got != n as isize {
            return false;
        }
        page += n * grain;
    }
    true
}
