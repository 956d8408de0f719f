//! The C allocation functions and their `__libc_*` aliases: trampolines (see `entry`) and the
//! impls behind them.

use crate::block::Op;
use crate::heap;
use crate::lifecycle::{self, Next};
use crate::log;
use crate::site::{self, At};
use crate::sys;
use core::ffi::{c_int, c_void};

export!(malloc(n: usize) -> *mut c_void => malloc_impl);
export!(__libc_malloc(n: usize) -> *mut c_void => malloc_impl);
export!(free(p: *mut c_void) => free_impl);
export!(cfree(p: *mut c_void) => free_impl);
export!(__libc_free(p: *mut c_void) => free_impl);
// C23's sized frees: a program built against a glibc that has them would otherwise
// hand our blocks to glibc's free.
export!(free_sized(p: *mut c_void, n: usize) => free_sized_impl);
export!(free_aligned_sized(p: *mut c_void, a: usize, n: usize) => free_aligned_sized_impl);
export!(calloc(n: usize, s: usize) -> *mut c_void => calloc_impl);
export!(__libc_calloc(n: usize, s: usize) -> *mut c_void => calloc_impl);
export!(realloc(p: *mut c_void, n: usize) -> *mut c_void => realloc_impl);
export!(__libc_realloc(p: *mut c_void, n: usize) -> *mut c_void => realloc_impl);
export!(reallocarray(p: *mut c_void, n: usize, s: usize) -> *mut c_void => reallocarray_impl);
export!(posix_memalign(pp: *mut *mut c_void, a: usize, n: usize) -> c_int => posix_memalign_impl);
export!(aligned_alloc(a: usize, n: usize) -> *mut c_void => aligned_alloc_impl);
export!(memalign(a: usize, n: usize) -> *mut c_void => memalign_impl);
export!(__libc_memalign(a: usize, n: usize) -> *mut c_void => memalign_impl);
export!(valloc(n: usize) -> *mut c_void => valloc_impl);
export!(__libc_valloc(n: usize) -> *mut c_void => valloc_impl);
export!(pvalloc(n: usize) -> *mut c_void => pvalloc_impl);
export!(__libc_pvalloc(n: usize) -> *mut c_void => pvalloc_impl);
export!(malloc_usable_size(p: *mut c_void) -> usize => usable_size_impl);

/// While malloc is defined ahead of ours (`lifecycle::next`), the function of C type `F` that
/// the program would have called without us, for `p` null or not ours.
#[inline]
fn handed_on<F: Copy>(n: lifecycle::Next, p: *mut c_void) -> Option<F> {
    let f = lifecycle::next(n)?;
    if !p.is_null() && crate::pagemap::get(p as usize) != 0 {
        return None;
    }
    const { assert!(core::mem::size_of::<F>() == core::mem::size_of::<usize>()) };
    // SAFETY: `f` is the address of the function `n` names, whose C type is `F` (per caller).
    Some(unsafe { core::mem::transmute_copy::<usize, F>(&f) })
}

type FreeFn = extern "C" fn(*mut c_void);
type ByPtr = extern "C" fn(*mut c_void) -> usize;
type BySize = extern "C" fn(usize) -> *mut c_void;
type ByAlign = extern "C" fn(usize, usize) -> *mut c_void;

#[inline]
fn done(op: Op, inp: usize, out: *mut u8, size: usize, align: usize, caller: usize) -> *mut c_void {
    log::event(op, inp, out as usize, size, align, caller);
    out as *mut c_void
}

/// With debugging off, the code pages of the fast paths of malloc and free are read once at
/// start-up (after the heap's warm-up, which runs the paths below them), so that a program's
/// first malloc and free fault on no page of ours.
#[cfg(not(test))]
#[ctor::ctor(unsafe, body(link_section = "ft_hot"))]
fn warm_entry_code() {
    if crate::config::get().enabled {
        return;
    }
    let paths: [extern "C" fn(usize, usize, At) -> *mut c_void; 2] = [malloc_impl, malloc_full];
    let frees: [extern "C" fn(*mut c_void, usize, At); 2] = [free_impl, free_full];
    let firsts = paths
        .map(|f| f as usize)
        .into_iter()
        .chain(frees.map(|f| f as usize));
    for f in firsts {
        // SAFETY: the first byte of a function of this library: mapped and readable code.
        unsafe { core::ptr::read_volatile(f as *const u8) };
    }
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn malloc_impl(n: usize, caller: usize, at: At) -> *mut c_void {
    // Debugging off: this thread's cache first, with nothing else to do.
    if let Some(p) = heap::malloc_cached(n) {
        return p as *mut c_void;
    }
    malloc_full(n, caller, at)
}

#[inline(never)]
#[unsafe(link_section = "ft_hot")]
extern "C" fn malloc_full(n: usize, caller: usize, at: At) -> *mut c_void {
    let kept = sys::KeptErrno::new();
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    let p = heap::allocate(n, 0, Op::Malloc, caller, false);
    kept.restore_if(!p.is_null());
    done(Op::Malloc, 0, p, n, 0, caller)
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn free_impl(p: *mut c_void, caller: usize, at: At) {
    // Debugging off: into this thread's cache, with nothing else to do.
    if heap::free_cached(p as usize) {
        return;
    }
    free_full(p, caller, at)
}

/// free_sized(p, n) is free(p) (the size is not checked).
#[unsafe(link_section = "ft_hot")]
extern "C" fn free_sized_impl(p: *mut c_void, n: usize, caller: usize, at: At) {
    if let Some(f) = handed_on::<extern "C" fn(*mut c_void, usize)>(Next::FreeSized, p) {
        return f(p, n);
    }
    if let Some(f) = handed_on::<FreeFn>(Next::Free, p) {
        return f(p);
    }
    free_impl(p, caller, at)
}

/// free_aligned_sized(p, a, n) is free(p) (the size and alignment are not checked).
#[unsafe(link_section = "ft_hot")]
extern "C" fn free_aligned_sized_impl(p: *mut c_void, a: usize, n: usize, caller: usize, at: At) {
    type F = extern "C" fn(*mut c_void, usize, usize);
    if let Some(f) = handed_on::<F>(Next::FreeAlignedSized, p) {
        return f(p, a, n);
    }
    if let Some(f) = handed_on::<FreeFn>(Next::Free, p) {
        return f(p);
    }
    free_impl(p, caller, at)
}

#[inline(never)]
#[unsafe(link_section = "ft_hot")]
extern "C" fn free_full(p: *mut c_void, caller: usize, at: At) {
    if p.is_null() {
        return;
    }
    lifecycle::ensure();
    let c = crate::config::get();
    if (!c.enabled || c.light) && heap::free_fast(p as usize) {
        return;
    }
    heap::prefetch_free(p as usize);
    let _keep = sys::ErrnoGuard::new();
    let caller = site::here_at(caller, at);
    let size = heap::deallocate(p as usize, Op::Free, caller, 0);
    if size != 0 {
        log::event(Op::Free, p as usize, 0, size, 0, caller);
    }
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn calloc_impl(n: usize, s: usize, caller: usize, at: At) -> *mut c_void {
    // Debugging off: this thread's cache first, with nothing else to do.
    if let Some(p) = heap::calloc_cached(n, s) {
        return p as *mut c_void;
    }
    calloc_full(n, s, caller, at)
}

#[inline(never)]
#[unsafe(link_section = "ft_hot")]
extern "C" fn calloc_full(n: usize, s: usize, caller: usize, at: At) -> *mut c_void {
    let kept = sys::KeptErrno::new();
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    let Some(total) = n.checked_mul(s) else {
        sys::set_errno(libc::ENOMEM);
        return done(Op::Calloc, 0, core::ptr::null_mut(), usize::MAX, 0, caller);
    };
    let p = heap::allocate(total, 0, Op::Calloc, caller, true);
    kept.restore_if(!p.is_null());
    done(Op::Calloc, 0, p, total, 0, caller)
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn realloc_impl(p: *mut c_void, n: usize, caller: usize, at: At) -> *mut c_void {
    // Debugging off: a TINY or SMALL block resized in place or moved within this thread's
    // cache, with nothing else to do.
    if let Some(q) = heap::realloc_cached(p as usize, n) {
        return q as *mut c_void;
    }
    realloc_full(p, n, caller, at)
}

#[inline(never)]
#[unsafe(link_section = "ft_hot")]
extern "C" fn realloc_full(p: *mut c_void, n: usize, caller: usize, at: At) -> *mut c_void {
    let kept = sys::KeptErrno::new();
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    let q = heap::reallocate(p as usize, n, Op::Realloc, caller);
    // realloc(p, 0) frees: it keeps errno as free does.
    kept.restore_if(!q.is_null() || (n == 0 && !p.is_null()));
    done(Op::Realloc, p as usize, q, n, 0, caller)
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn reallocarray_impl(
    p: *mut c_void,
    n: usize,
    s: usize,
    caller: usize,
    at: At,
) -> *mut c_void {
    type F = extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
    if let Some(f) = handed_on::<F>(Next::Reallocarray, p) {
        return f(p, n, s);
    }
    let kept = sys::KeptErrno::new();
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    let Some(total) = n.checked_mul(s) else {
        sys::set_errno(libc::ENOMEM);
        return done(
            Op::Reallocarray,
            p as usize,
            core::ptr::null_mut(),
            usize::MAX,
            0,
            caller,
        );
    };
    let q = heap::reallocate(p as usize, total, Op::Reallocarray, caller);
    kept.restore_if(!q.is_null() || (total == 0 && !p.is_null()));
    done(Op::Reallocarray, p as usize, q, total, 0, caller)
}

#[unsafe(link_section = "ft_hot")]
fn aligned(a: usize, n: usize, op: Op, caller: usize, at: At) -> *mut u8 {
    let kept = sys::KeptErrno::new();
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    let p = heap::allocate(n, a, op, caller, false);
    kept.restore_if(!p.is_null());
    log::event(op, 0, p as usize, n, a, caller);
    p
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn posix_memalign_impl(
    pp: *mut *mut c_void,
    a: usize,
    n: usize,
    caller: usize,
    at: At,
) -> c_int {
    type F = extern "C" fn(*mut *mut c_void, usize, usize) -> c_int;
    if let Some(f) = handed_on::<F>(Next::PosixMemalign, core::ptr::null_mut()) {
        return f(pp, a, n);
    }
    if !a.is_power_of_two() || !a.is_multiple_of(core::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    let e = sys::errno();
    let p = aligned(a, n, Op::PosixMemalign, caller, at);
    sys::set_errno(e);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer, per posix_memalign's contract.
    unsafe { *pp = p as *mut c_void };
    0
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn aligned_alloc_impl(a: usize, n: usize, caller: usize, at: At) -> *mut c_void {
    if let Some(f) = handed_on::<ByAlign>(Next::AlignedAlloc, core::ptr::null_mut()) {
        return f(a, n);
    }
    if !a.is_power_of_two() {
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    aligned(a, n, Op::AlignedAlloc, caller, at) as *mut c_void
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn memalign_impl(a: usize, n: usize, caller: usize, at: At) -> *mut c_void {
    if let Some(f) = handed_on::<ByAlign>(Next::Memalign, core::ptr::null_mut()) {
        return f(a, n);
    }
    if a > isize::MAX as usize / 2 + 1 {
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    let a = a.max(1).next_power_of_two();
    aligned(a, n, Op::Memalign, caller, at) as *mut c_void
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn valloc_impl(n: usize, caller: usize, at: At) -> *mut c_void {
    if let Some(f) = handed_on::<BySize>(Next::Valloc, core::ptr::null_mut()) {
        return f(n);
    }
    aligned(sys::page_size(), n, Op::Valloc, caller, at) as *mut c_void
}

extern "C" fn pvalloc_impl(n: usize, caller: usize, at: At) -> *mut c_void {
    if let Some(f) = handed_on::<BySize>(Next::Pvalloc, core::ptr::null_mut()) {
        return f(n);
    }
    let Some(r) = sys::page_round(n.max(1)) else {
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    aligned(sys::page_size(), r, Op::Pvalloc, caller, at) as *mut c_void
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn usable_size_impl(p: *mut c_void, caller: usize, at: At) -> usize {
    if let Some(f) = handed_on::<ByPtr>(Next::UsableSize, p) {
        return f(p);
    }
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
    heap::usable_size(p as usize, caller)
}
