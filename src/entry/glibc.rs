//! glibc's registration of fork handlers (`__register_atfork`, so that ours come first: see
//! `lifecycle`) and glibc's malloc extras (mallinfo, mallinfo2, malloc_trim, mallopt,
//! malloc_stats, malloc_info), answered from our own state.

use crate::heap;
use crate::lifecycle;
use crate::sys;
use core::ffi::{c_int, c_void};

/// glibc's registration function behind `pthread_atfork` (libc_nonshared's `pthread_atfork`
/// calls it with the caller's `__dso_handle`). Interposed so that our fork handlers are
/// registered before anyone else's: see lifecycle/fork.rs.
/// # Safety
/// The contract of pthread_atfork; `dso` identifies the registering object.
#[unsafe(link_section = "ft_hot")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __register_atfork(
    prepare: Option<extern "C" fn()>,
    parent: Option<extern "C" fn()>,
    child: Option<extern "C" fn()>,
    dso: *mut c_void,
) -> c_int {
    // SAFETY: the caller's contract is register_atfork's.
    unsafe { lifecycle::register_atfork(prepare, parent, child, dso) }
}

#[repr(C)]
pub struct Mallinfo {
    pub arena: c_int,
    pub ordblks: c_int,
    pub smblks: c_int,
    pub hblks: c_int,
    pub hblkhd: c_int,
    pub usmblks: c_int,
    pub fsmblks: c_int,
    pub uordblks: c_int,
    pub fordblks: c_int,
    pub keepcost: c_int,
}

#[repr(C)]
pub struct Mallinfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

fn info2() -> Mallinfo2 {
    lifecycle::ensure();
    let (live, blocks, mapped) = heap::totals();
    let (lcount, lbytes) = match crate::large::LARGE.try_lock() {
        Some(l) => (l.live_count, l.mapped_bytes),
        None => (0, 0),
    };
    Mallinfo2 {
        arena: mapped.saturating_sub(lbytes),
        ordblks: blocks.saturating_sub(lcount),
        smblks: 0,
        hblks: lcount,
        hblkhd: lbytes,
        usmblks: 0,
        fsmblks: 0,
        uordblks: live,
        fordblks: mapped.saturating_sub(live),
        keepcost: 0,
    }
}

/// glibc's mallinfo2, answered from our own state.
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    info2()
}

/// glibc's mallinfo (int fields, saturated).
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo() -> Mallinfo {
    let m = info2();
    let c = |v: usize| v.min(c_int::MAX as usize) as c_int;
    Mallinfo {
        arena: c(m.arena),
        ordblks: c(m.ordblks),
        smblks: 0,
        hblks: c(m.hblks),
        hblkhd: c(m.hblkhd),
        usmblks: 0,
        fsmblks: 0,
        uordblks: c(m.uordblks),
        fordblks: c(m.fordblks),
        keepcost: 0,
    }
}

/// Gives cached LARGE mappings and spare zones back to the system.
#[unsafe(no_mangle)]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    lifecycle::ensure();
    heap::trim() as c_int
}

/// Accepted and ignored (our policies are fixed); returns success as glibc does.
#[unsafe(no_mangle)]
pub extern "C" fn mallopt(_param: c_int, _value: c_int) -> c_int {
    1
}

/// glibc's malloc_stats layout, on stderr, from our numbers.
#[unsafe(no_mangle)]
pub extern "C" fn malloc_stats() {
    let m = info2();
    let mut l: crate::fmt::Line<512> = crate::fmt::Line::new();
    l.s(b"Arena 0:\nsystem bytes     = ")
        .u(m.arena as u64)
        .s(b"\nin use bytes     = ")
        .u((m.uordblks) as u64);
    l.s(b"\nTotal (incl. mmap):\nsystem bytes     = ")
        .u((m.arena + m.hblkhd) as u64);
    l.s(b"\nin use bytes     = ")
        .u(m.uordblks as u64)
        .s(b"\nmax mmap regions = ")
        .u(m.hblks as u64);
    l.s(b"\nmax mmap bytes   = ").u(m.hblkhd as u64).c(b'\n');
    l.write_fd(2);
}

unsafe extern "C" {
    fn fflush(f: *mut c_void) -> c_int;
    fn fileno(f: *mut c_void) -> c_int;
}

/// glibc's malloc_info: a small XML document written to the stream's descriptor.
/// # Safety
/// `fp` is a valid `FILE *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_info(options: c_int, fp: *mut c_void) -> c_int {
    if options != 0 {
        sys::set_errno(libc::EINVAL);
        return -1;
    }
    let m = info2();
    // SAFETY: fp is a valid FILE per the caller; fflush/fileno do not allocate.
    let fd = unsafe {
        fflush(fp);
        fileno(fp)
    };
    let mut l: crate::fmt::Line<512> = crate::fmt::Line::new();
    l.s(b"<malloc version=\"ft_malloc-1\">\n<system type=\"current\" size=\"")
        .u((m.arena + m.hblkhd) as u64);
    l.s(b"\"/>\n<total type=\"mmap\" count=\"")
        .u(m.hblks as u64)
        .s(b"\" size=\"")
        .u(m.hblkhd as u64);
    l.s(b"\"/>\n<inuse size=\"")
        .u(m.uordblks as u64)
        .s(b"\"/>\n</malloc>\n");
    if fd >= 0 {
        l.write_fd(fd);
    }
    0
}
