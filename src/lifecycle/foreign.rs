//! Whether the program's allocations come here at all. A `malloc` defined by an object the
//! loader searches before ours (the executable with an allocator of its own linked in, or a
//! library preloaded ahead of ours) takes every call, the C library's included: the heap we
//! check is then empty, and a clean report would claim what we never saw. Looked up once at
//! start (constructor); said in a warning with debugging on, and at exit when no allocation
//! came here.
//!
//! The functions that allocator lacks still come to us, where the C library's would have
//! handed the work to it (glibc's reallocarray calls the program's realloc): those are handed
//! on to the definition the program would have called without us (`next`), so that a block of
//! one allocator never reaches the other.

use super::fork::{first_other, lookup, object};
use crate::fmt::{Line, prefix};
use crate::sys;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Functions handed on while malloc is defined ahead of ours.
#[derive(Clone, Copy)]
pub enum Next {
    Reallocarray,
    PosixMemalign,
    AlignedAlloc,
    Memalign,
    Valloc,
    Pvalloc,
    UsableSize,
    FreeSized,
    FreeAlignedSized,
    /// `free` itself: what `free_sized` falls back to where the C library has none.
    Free,
}

const NAMES: [&[u8]; 10] = [
    b"reallocarray",
    b"posix_memalign",
    b"aligned_alloc",
    b"memalign",
    b"valloc",
    b"pvalloc",
    b"malloc_usable_size",
    b"free_sized",
    b"free_aligned_sized",
    b"free",
];
static NEXT: [AtomicUsize; 10] = [const { AtomicUsize::new(0) }; 10];
static BYPASS: AtomicBool = AtomicBool::new(false);

/// At start (constructor): when malloc is defined ahead of ours, finds the functions to hand
/// on, then hands them on.
#[unsafe(link_section = "ft_hot")]
pub fn resolve() {
    if definer().is_none() {
        return;
    }
    for (n, name) in NEXT.iter().zip(NAMES) {
        n.store(first_other(name), Ordering::Relaxed);
    }
    BYPASS.store(true, Ordering::Release);
}

/// The function `n` is handed on to (its address), while malloc is defined ahead of ours.
#[inline]
pub fn next(n: Next) -> Option<usize> {
    if !BYPASS.load(Ordering::Acquire) {
        return None;
    }
    let f = NEXT[n as usize].load(Ordering::Relaxed);
    (f != 0).then_some(f)
}

/// Not looked up yet.
const UNKNOWN: usize = 0;
/// Ours (or another copy of ours) comes first, or no object defines malloc.
const OURS: usize = 1;
/// The executable defines it (its `dlpi_name` is empty).
const EXECUTABLE: usize = 2;
/// Else: the `dlpi_name` (NUL-terminated, the loader's) of the library that defines it.
static DEFINER: AtomicUsize = AtomicUsize::new(UNKNOWN);

/// Who defines malloc ahead of us: None when we do; Some(empty) for the executable; else the
/// library's path.
#[unsafe(link_section = "ft_hot")]
pub fn definer() -> Option<&'static [u8]> {
    let mut d = DEFINER.load(Ordering::Acquire);
    if d == UNKNOWN {
        let mut q = Query {
            ours: definer as fn() -> Option<&'static [u8]> as usize,
            found: OURS,
        };
        // SAFETY: the callback reads the loaded objects' program headers and dynamic sections
        // only, and writes `q`, which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(first), &mut q as *mut Query as *mut c_void) };
        d = q.found;
        DEFINER.store(d, Ordering::Release);
    }
    match d {
        OURS => None,
        EXECUTABLE => Some(b""),
        // SAFETY: a `dlpi_name` of a loaded library: NUL-terminated, and kept by the loader
        // while the library stays loaded (one that defines malloc for the process does).
        p => Some(unsafe { core::ffi::CStr::from_ptr(p as *const c_char) }.to_bytes()),
    }
}

struct Query {
    /// An address in our own object.
    ours: usize,
    found: usize,
}

/// `dl_iterate_phdr` callback, objects in load order (the executable first, then the preloaded
/// libraries): stops at the first that defines malloc.
#[unsafe(link_section = "ft_hot")]
unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, _size: usize, q: *mut c_void) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our query pointer.
    let (info, q) = unsafe { (&*info, &mut *(q as *mut Query)) };
    let Some((base, dynamic, ours)) = object(info, q.ours) else {
        return 0;
    };
    // SAFETY: the dynamic section of a loaded object, mapped and terminated by DT_NULL.
    if unsafe { lookup(base, dynamic, b"malloc") }.is_none() {
        return 0;
    }
    // Another copy of this library (two builds loaded at once) is ours too.
    // SAFETY: as above.
    let copy = unsafe { lookup(base, dynamic, b"show_alloc_mem_ex") }.is_some();
    // SAFETY: a non-null `dlpi_name` is a NUL-terminated string of the loader's.
    let unnamed = info.dlpi_name.is_null() || unsafe { *info.dlpi_name } == 0;
    q.found = if ours || copy {
        OURS
    } else if unnamed {
        EXECUTABLE
    } else {
        info.dlpi_name as usize
    };
    1
}

/// The definer's path: `name`, or the executable's (read into `buf`) for an empty one.
fn path_of<'a>(name: &'a [u8], buf: &'a mut [u8; 512]) -> &'a [u8] {
    if !name.is_empty() {
        return name;
    }
    let n = sys::readlink_exe(buf).unwrap_or(0);
    &buf[..n]
}

/// With debugging on, one warning at start when malloc is defined ahead of ours.
pub fn warn() {
    let Some(name) = definer() else {
        return;
    };
    say(
        name,
        b" ahead of ft_malloc: the program's allocations go there, and only those it passes \
                on to ft_malloc are checked\n",
    );
}

/// When malloc is defined ahead of ours and no allocation has come here (none is counted with
/// debugging off), the definer's path (empty: the executable): nothing was checked.
#[unsafe(link_section = "ft_hot")]
fn bypassed() -> Option<&'static [u8]> {
    definer().filter(|_| crate::log::allocations() == 0)
}

/// The announce file's `exit` line, with the definer when nothing was checked (`bypassed`).
#[unsafe(link_section = "ft_hot")]
pub fn announce_exit() {
    let mut buf = [0u8; 512];
    crate::announce::at_exit(bypassed().map(|name| path_of(name, &mut buf)));
}

/// At exit, with debugging on: a warning when nothing was checked (`bypassed`).
pub fn warn_at_exit() {
    if let Some(name) = bypassed() {
        say(
            name,
            b" ahead of ft_malloc, and no allocation came here: nothing was checked\n",
        );
    }
}

/// `WARNING: malloc is defined by NAME` and `rest`.
fn say(name: &[u8], rest: &[u8]) {
    let mut exe = [0u8; 512];
    let name = path_of(name, &mut exe);
    let mut l: Line<800> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: malloc is defined by ")
        .s(name)
        .s(rest);
    l.report();
}
