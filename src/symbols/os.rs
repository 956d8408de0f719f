//! The symbolizer's calls into the loader and the kernel: `_dl_find_object` (through an
//! address `module` finds at run time), `dl_iterate_phdr`, the auxiliary vector, the
//! executable's path, and read-only mappings of object files. Nothing here allocates.
//!
//! # Invariants
//! - `find_object` never takes a lock (glibc documents `_dl_find_object` as lock-free and
//!   async-signal-safe); `for_each_object` takes the loader's lock and is only called by
//!   lookups that allow it (`Lookup::MayTakeLoaderLock`).
//! - A `FileMap` (`sys::FileMap`) is a private read-only mapping of a regular file, exactly
//!   `len` bytes long as `fstat` saw it, unmapped when dropped; its descriptor is closed before
//!   `map_file` returns. (A file that another process truncates while it is mapped raises
//!   SIGBUS on a read past the new end; reports accept that window.)

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// `struct dl_find_object` of x86_64 and aarch64 (no `dlfo_eh_dbase`, no `dlfo_eh_count`
/// there), with room to spare after glibc's reserved words.
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *const LinkMap,
    eh_frame: *mut c_void,
    reserved: [u64; 7],
    spare: [u64; 8],
}

/// The public head of glibc's `struct link_map` (`<link.h>`), stable ABI.
#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *const c_void,
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

/// Signature of glibc's `_dl_find_object` (glibc 2.35+).
type FindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> c_int;

/// What the loader knows of the object that holds an address.
pub struct Object {
    pub map_start: usize,
    pub map_end: usize,
    /// Load bias (`l_addr`).
    pub bias: usize,
    /// `l_name`: NUL-terminated, "" for the main program; owned by the loader until the
    /// object is unloaded.
    pub name: *const c_char,
    /// Address of the dynamic section in memory (`l_ld`), null if it has none.
    pub dynamic: usize,
}

/// `_dl_find_object(addr)` through `f`, the function's address (found by `module`): lock-free,
/// async-signal-safe. None when no object contains `addr`.
///
/// # Safety
/// `f` is the address of glibc's `_dl_find_object@GLIBC_2.35`.
pub unsafe fn find_object(f: usize, addr: usize) -> Option<Object> {
    // SAFETY: the caller passes the address of a function of this signature.
    let f = unsafe { core::mem::transmute::<usize, FindObjectFn>(f) };
    // SAFETY: all-zero is a valid value of this plain-data struct.
    let mut r: DlFindObject = unsafe { core::mem::zeroed() };
    // SAFETY: `f` is glibc's `_dl_find_object`; `r` is larger than its `struct dl_find_object`.
    if unsafe { f(addr as *mut c_void, &mut r) } != 0 || r.link_map.is_null() {
        return None;
    }
    // SAFETY: glibc returned a link map of a loaded object; its public head is stable ABI.
    let lm = unsafe { &*r.link_map };
    Some(Object {
        map_start: r.map_start as usize,
        map_end: r.map_end as usize,
        bias: lm.l_addr,
        name: lm.l_name,
        dynamic: lm.l_ld as usize,
    })
}

/// What `for_each_object` calls: `(bias, name, program headers, their count)`; true stops.
pub type ObjectFn<'a> = dyn FnMut(usize, *const c_char, *const u8, usize) -> bool + 'a;

/// Calls `f` for each loaded object until it returns true.
/// Takes the loader's lock: never call it while holding a lock that a thread inside the
/// loader may wait for (any allocator lock: `dlopen` calls malloc).
pub fn for_each_object(f: &mut ObjectFn) {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `data` is the `&mut dyn FnMut` passed below, alive for the whole iteration;
        // `info` is valid during the callback.
        unsafe {
            let f = &mut *(data as *mut &mut ObjectFn);
            let i = &*info;
            f(
                i.dlpi_addr as usize,
                i.dlpi_name,
                i.dlpi_phdr as *const u8,
                i.dlpi_phnum as usize,
            ) as c_int
        }
    }
    let mut f = f;
    // SAFETY: the callback only runs during this call and gets a pointer to `f`.
    unsafe { libc::dl_iterate_phdr(Some(cb), &mut f as *mut &mut ObjectFn as *mut c_void) };
}

/// The main program's entry point (`AT_ENTRY`), 0 if unknown.
pub fn entry_point() -> usize {
    // SAFETY: getauxval only reads the auxiliary vector saved at start-up.
    unsafe { libc::getauxval(libc::AT_ENTRY) as usize }
}

/// Where the loader (ld.so) is mapped (`AT_BASE`), 0 if unknown.
pub fn loader_base() -> usize {
    // SAFETY: as in `entry_point`.
    unsafe { libc::getauxval(libc::AT_BASE) as usize }
}

/// True when the program was started as `ld.so ./prog` (the kernel then ran ld.so itself,
/// which has no interpreter: `AT_BASE` is 0, and /proc/self/exe names ld.so).
pub fn exe_is_loader() -> bool {
    loader_base() == 0
}

/// The address of a libc function that no program takes the address of (a non-PIE program
/// that takes a function's address makes its own stub the function's address): it lies in libc.
pub fn libc_probe() -> usize {
    libc::gnu_get_libc_version as *const () as usize
}

/// Capacity of the cached executable path (PATH_MAX).
const EXE_CAP: usize = 4096;

/// The executable's path, read once with `readlink("/proc/self/exe")`.
///
/// # Invariants
/// `state` 0: not read; 1: one thread is reading; 2: `buf[..len]` holds the path followed by
/// a NUL, and never changes again; 3: unreadable (no /proc).
struct ExePath {
    state: AtomicU8,
    len: AtomicUsize,
    buf: core::cell::UnsafeCell<[u8; EXE_CAP]>,
}

// SAFETY: `buf` is written only by the thread that moved `state` 0 -> 1, and read only after
// `state` is 2 (Release/Acquire), after which nobody writes it.
unsafe impl Sync for ExePath {}

static EXE: ExePath = ExePath {
    state: AtomicU8::new(0),
    len: AtomicUsize::new(0),
    buf: core::cell::UnsafeCell::new([0; EXE_CAP]),
};

/// The main program's full path (NUL-terminated after the returned bytes). Falls back to
/// `AT_EXECFN` (the path given to `execve`, maybe relative) while another thread (or the
/// thread this signal handler interrupted) is reading the link, or when /proc is missing.
pub fn exe_path() -> &'static [u8] {
    if EXE
        .state
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
        .is_ok()
    {
        let buf = EXE.buf.get() as *mut u8;
        // SAFETY: we own `buf` (state 1); the link is read into its first EXE_CAP - 1 bytes.
        let link = unsafe { core::slice::from_raw_parts_mut(buf, EXE_CAP - 1) };
        let n = crate::sys::readlink_exe(link).unwrap_or(0);
        if n > 0 {
            // SAFETY: `n < EXE_CAP`, inside `buf`, which we still own.
            unsafe { *buf.add(n as usize) = 0 };
            EXE.len.store(n as usize, Ordering::Relaxed);
            EXE.state.store(2, Ordering::Release);
        } else {
            EXE.state.store(3, Ordering::Release);
        }
    }
    if EXE.state.load(Ordering::Acquire) == 2 {
        let n = EXE.len.load(Ordering::Relaxed);
        // SAFETY: state 2: `buf[..n]` is written and immutable from now on.
        return unsafe { core::slice::from_raw_parts(EXE.buf.get() as *const u8, n) };
    }
    // SAFETY: getauxval only reads the auxiliary vector; AT_EXECFN points at a NUL-terminated
    // string on the initial stack, which lives as long as the process.
    unsafe {
        let p = libc::getauxval(libc::AT_EXECFN) as *const c_char;
        if p.is_null() {
            return b"";
        }
        core::ffi::CStr::from_ptr(p).to_bytes()
    }
}

/// Read-only mappings of object files (made and unmapped by `sys`).
pub use crate::sys::{FileMap, map_file};
