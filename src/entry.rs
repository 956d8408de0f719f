//! The exported C ABI: the malloc family, the glibc extras, `__libc_*` aliases and the C++
//! operators. Each export is a naked trampoline that copies its return address (the caller in
//! the program) into the next argument register and jumps to the `_impl` function, so every
//! event knows its call site at no cost. The impls are thin: validate, `init::ensure()`,
//! forward to `heap`, log. operator new jumps instead to an assembly routine that a C++ exception
//! can cross (see the C++ section), and `__register_atfork` puts our fork handlers first.

use crate::block::Op;
use crate::heap;
use crate::init;
use crate::log;
use crate::sys;
use core::ffi::{c_int, c_void};

/// `export!(name(args) -> ret => impl_fn, caller_register)`.
macro_rules! export {
    ($name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => $imp:ident, $x86:literal, $arm:literal) => {
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// # Safety
        /// The C contract of the function of the same name.
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            core::arch::naked_asm!(concat!("mov ", $x86, ", qword ptr [rsp]"), "jmp {f}", f = sym $imp);
            #[cfg(target_arch = "aarch64")]
            core::arch::naked_asm!(concat!("mov ", $arm, ", x30"), "b {f}", f = sym $imp);
        }
    };
}

// ---------------------------------------------------------------- C

export!(malloc(n: usize) -> *mut c_void => malloc_impl, "rsi", "x1");
export!(__libc_malloc(n: usize) -> *mut c_void => malloc_impl, "rsi", "x1");
export!(free(p: *mut c_void) => free_impl, "rsi", "x1");
export!(cfree(p: *mut c_void) => free_impl, "rsi", "x1");
export!(__libc_free(p: *mut c_void) => free_impl, "rsi", "x1");
export!(calloc(n: usize, s: usize) -> *mut c_void => calloc_impl, "rdx", "x2");
export!(__libc_calloc(n: usize, s: usize) -> *mut c_void => calloc_impl, "rdx", "x2");
export!(realloc(p: *mut c_void, n: usize) -> *mut c_void => realloc_impl, "rdx", "x2");
export!(__libc_realloc(p: *mut c_void, n: usize) -> *mut c_void => realloc_impl, "rdx", "x2");
export!(reallocarray(p: *mut c_void, n: usize, s: usize) -> *mut c_void => reallocarray_impl, "rcx", "x3");
export!(posix_memalign(pp: *mut *mut c_void, a: usize, n: usize) -> c_int => posix_memalign_impl, "rcx", "x3");
export!(aligned_alloc(a: usize, n: usize) -> *mut c_void => aligned_alloc_impl, "rdx", "x2");
export!(memalign(a: usize, n: usize) -> *mut c_void => memalign_impl, "rdx", "x2");
export!(__libc_memalign(a: usize, n: usize) -> *mut c_void => memalign_impl, "rdx", "x2");
export!(valloc(n: usize) -> *mut c_void => valloc_impl, "rsi", "x1");
export!(__libc_valloc(n: usize) -> *mut c_void => valloc_impl, "rsi", "x1");
export!(pvalloc(n: usize) -> *mut c_void => pvalloc_impl, "rsi", "x1");
export!(__libc_pvalloc(n: usize) -> *mut c_void => pvalloc_impl, "rsi", "x1");
export!(malloc_usable_size(p: *mut c_void) -> usize => usable_size_impl, "rsi", "x1");

#[inline]
fn done(op: Op, inp: usize, out: *mut u8, size: usize, align: usize, caller: usize) -> *mut c_void {
    log::event(op, inp, out as usize, size, align, caller);
    out as *mut c_void
}

extern "C" fn malloc_impl(n: usize, caller: usize) -> *mut c_void {
    init::ensure();
    let p = heap::allocate(n, 0, Op::Malloc, caller, false);
    done(Op::Malloc, 0, p, n, 0, caller)
}

extern "C" fn free_impl(p: *mut c_void, caller: usize) {
    if p.is_null() {
        return;
    }
    init::ensure();
    let c = crate::config::get();
    if (!c.enabled || c.light) && heap::free_fast(p as usize) {
        return;
    }
    let _keep = sys::ErrnoGuard::new();
    let size = heap::deallocate(p as usize, Op::Free, caller, 0);
    if size != 0 {
        log::event(Op::Free, p as usize, 0, size, 0, caller);
    }
}

extern "C" fn calloc_impl(n: usize, s: usize, caller: usize) -> *mut c_void {
    init::ensure();
    let Some(total) = n.checked_mul(s) else {
        sys::set_errno(libc::ENOMEM);
        return done(Op::Calloc, 0, core::ptr::null_mut(), usize::MAX, 0, caller);
    };
    let p = heap::allocate(total, 0, Op::Calloc, caller, true);
    done(Op::Calloc, 0, p, total, 0, caller)
}

extern "C" fn realloc_impl(p: *mut c_void, n: usize, caller: usize) -> *mut c_void {
    init::ensure();
    let q = heap::reallocate(p as usize, n, Op::Realloc, caller);
    done(Op::Realloc, p as usize, q, n, 0, caller)
}

extern "C" fn reallocarray_impl(p: *mut c_void, n: usize, s: usize, caller: usize) -> *mut c_void {
    init::ensure();
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
    done(Op::Reallocarray, p as usize, q, total, 0, caller)
}

fn aligned(a: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    init::ensure();
    let p = heap::allocate(n, a, op, caller, false);
    log::event(op, 0, p as usize, n, a, caller);
    p
}

extern "C" fn posix_memalign_impl(
    pp: *mut *mut c_void,
    a: usize,
    n: usize,
    caller: usize,
) -> c_int {
    if !a.is_power_of_two() || a % core::mem::size_of::<usize>() != 0 {
        return libc::EINVAL;
    }
    let e = sys::errno();
    let p = aligned(a, n, Op::PosixMemalign, caller);
    sys::set_errno(e);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer, per posix_memalign's contract.
    unsafe { *pp = p as *mut c_void };
    0
}

extern "C" fn aligned_alloc_impl(a: usize, n: usize, caller: usize) -> *mut c_void {
    if !a.is_power_of_two() {
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    aligned(a, n, Op::AlignedAlloc, caller) as *mut c_void
}

extern "C" fn memalign_impl(a: usize, n: usize, caller: usize) -> *mut c_void {
    if a > isize::MAX as usize / 2 + 1 {
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    let a = a.max(1).next_power_of_two();
    aligned(a, n, Op::Memalign, caller) as *mut c_void
}

extern "C" fn valloc_impl(n: usize, caller: usize) -> *mut c_void {
    aligned(sys::page_size(), n, Op::Valloc, caller) as *mut c_void
}

extern "C" fn pvalloc_impl(n: usize, caller: usize) -> *mut c_void {
    let Some(r) = sys::page_round(n.max(1)) else {
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    aligned(sys::page_size(), r, Op::Pvalloc, caller) as *mut c_void
}

extern "C" fn usable_size_impl(p: *mut c_void, caller: usize) -> usize {
    init::ensure();
    heap::usable_size(p as usize, caller)
}

// ---------------------------------------------------------------- fork handlers

/// glibc's registration function behind `pthread_atfork` (libc_nonshared's `pthread_atfork`
/// calls it with the caller's `__dso_handle`). Interposed so that our fork handlers are
/// registered before anyone else's: see init.rs.
/// # Safety
/// The contract of pthread_atfork; `dso` identifies the registering object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __register_atfork(
    prepare: Option<extern "C" fn()>,
    parent: Option<extern "C" fn()>,
    child: Option<extern "C" fn()>,
    dso: *mut c_void,
) -> c_int {
    // SAFETY: the caller's contract is register_atfork's.
    unsafe { init::register_atfork(prepare, parent, child, dso) }
}

// ---------------------------------------------------------------- glibc extras

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
    init::ensure();
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
    init::ensure();
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

// ---------------------------------------------------------------- C++
//
// operator new must be able to throw std::bad_alloc, and a new_handler may throw through it.
// Our Rust frames are built with panic=abort: their unwind tables name a personality that cannot
// let an exception pass, so no C++ exception may ever unwind through one. On x86_64 the
// operators are therefore two assembly routines with their own CFI, entered from thin naked
// exports:
//
// - `ft_cxx_new` (throwing forms) loops { one Rust allocation attempt; if it failed, call the
//   new_handler from this CFI-described frame (it may throw through it) }; with no handler it
//   pops its frame and tail-jumps to `std::__throw_bad_alloc`, so the exception starts in a
//   frame whose caller is the program's call site and none of ours is on the stack.
// - `ft_cxx_new_nothrow` runs the same loop; its frame has libstdc++'s personality and a
//   catch(...) around the handler call, so an exception from the handler ends there and the
//   operator returns NULL, as the standard's nothrow forms do.
//
// Both keep a frame-pointer frame, so the log's backtrace walk passes through them. libstdc++'s
// symbols are weak: a program without it gets NULL from the personality slot (never used, as no
// handler can be set), and a failed throwing new aborts with a message.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".weak _ZSt17__throw_bad_allocv",
    ".weak _ZSt15get_new_handlerv",
    ".weak __gxx_personality_v0",
    ".weak __cxa_begin_catch",
    ".weak __cxa_end_catch",
    // The personality pointer the nothrow routine's CIE refers to (indirect encoding).
    ".pushsection .data.rel.ro.ft_malloc_cxx,\"aw\",@progbits",
    ".p2align 3",
    "ft_malloc_cxx_personality:",
    ".quad __gxx_personality_v0",
    ".popsection",
    //
    // ft_cxx_new(n: rdi, align: rsi, array: rdx, caller: rcx) -> rax; throws std::bad_alloc.
    ".pushsection .text.ft_cxx_new,\"ax\",@progbits",
    ".p2align 4",
    ".globl ft_cxx_new",
    ".hidden ft_cxx_new",
    ".type ft_cxx_new,@function",
    "ft_cxx_new:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "push r15",
    "push r14",
    "push r13",
    "push r12",
    ".cfi_offset r15, -24",
    ".cfi_offset r14, -32",
    ".cfi_offset r13, -40",
    ".cfi_offset r12, -48",
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    "mov r15, rcx",
    "2:",
    "mov rdi, r12",
    "mov rsi, r13",
    "mov rdx, r14",
    "mov rcx, r15",
    "call {attempt}",
    "test rax, rax",
    "jnz 3f",
    "call {handler}",
    "test rax, rax",
    "jz 4f",
    "call rax",
    "jmp 2b",
    "3:",
    ".cfi_remember_state",
    "lea rsp, [rbp - 32]",
    "pop r12",
    "pop r13",
    "pop r14",
    "pop r15",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_restore_state",
    "4:",
    "call {thrower}",
    "lea rsp, [rbp - 32]",
    "pop r12",
    "pop r13",
    "pop r14",
    "pop r15",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    // The thrower starts with the program's return address on top, as if called from there.
    "jmp rax",
    ".cfi_endproc",
    ".size ft_cxx_new, . - ft_cxx_new",
    ".popsection",
    //
    // ft_cxx_new_nothrow(n: rdi, align: rsi, array: rdx, caller: rcx) -> rax or NULL.
    ".pushsection .text.ft_cxx_new_nothrow,\"ax\",@progbits",
    ".p2align 4",
    ".globl ft_cxx_new_nothrow",
    ".hidden ft_cxx_new_nothrow",
    ".type ft_cxx_new_nothrow,@function",
    "ft_cxx_new_nothrow:",
    ".cfi_startproc",
    // DW_EH_PE_indirect|pcrel|sdata4 for the personality, pcrel|sdata4 for the LSDA.
    ".cfi_personality 0x9b, ft_malloc_cxx_personality",
    ".cfi_lsda 0x1b, ft_cxx_new_nothrow_lsda",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "push r15",
    "push r14",
    "push r13",
    "push r12",
    ".cfi_offset r15, -24",
    ".cfi_offset r14, -32",
    ".cfi_offset r13, -40",
    ".cfi_offset r12, -48",
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    "mov r15, rcx",
    "2:",
    "mov rdi, r12",
    "mov rsi, r13",
    "mov rdx, r14",
    "mov rcx, r15",
    "call {attempt}",
    "test rax, rax",
    "jnz 3f",
    "call {handler}",
    "test rax, rax",
    "jz 3f",
    "ft_cxx_new_nothrow_try:",
    "call rax",
    "ft_cxx_new_nothrow_try_end:",
    "jmp 2b",
    "3:",
    ".cfi_remember_state",
    "lea rsp, [rbp - 32]",
    "pop r12",
    "pop r13",
    "pop r14",
    "pop r15",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_restore_state",
    // catch (...) around the handler call: end the catch and return NULL (rax is 0 on the
    // handler-less exit above, and the exception object here).
    "ft_cxx_new_nothrow_catch:",
    "mov rdi, rax",
    "call qword ptr [rip + __cxa_begin_catch@GOTPCREL]",
    "call qword ptr [rip + __cxa_end_catch@GOTPCREL]",
    "xor eax, eax",
    "jmp 3b",
    ".cfi_endproc",
    ".size ft_cxx_new_nothrow, . - ft_cxx_new_nothrow",
    ".popsection",
    // Its LSDA (the layout g++ emits for a catch (...)): one call site, the handler call, with
    // the landing pad above and action 1 = type filter 1 = the catch-all entry (0).
    ".pushsection .gcc_except_table.ft_cxx_new_nothrow,\"a\",@progbits",
    ".p2align 2",
    "ft_cxx_new_nothrow_lsda:",
    ".byte 0xff",
    ".byte 0x9b",
    ".uleb128 5f - 4f",
    "4:",
    ".byte 0x01",
    ".uleb128 7f - 6f",
    "6:",
    ".uleb128 ft_cxx_new_nothrow_try - ft_cxx_new_nothrow",
    ".uleb128 ft_cxx_new_nothrow_try_end - ft_cxx_new_nothrow_try",
    ".uleb128 ft_cxx_new_nothrow_catch - ft_cxx_new_nothrow",
    ".uleb128 1",
    "7:",
    ".byte 1",
    ".byte 0",
    ".p2align 2",
    ".long 0",
    "5:",
    ".popsection",
    attempt = sym cxx_new_attempt,
    handler = sym cxx_new_handler,
    thrower = sym cxx_bad_alloc_thrower,
);

/// Address of a weak symbol (0 when libstdc++ is not loaded).
#[cfg(target_arch = "x86_64")]
fn weak_throw() -> usize {
    let f: usize;
    // SAFETY: loads a GOT entry; no memory is written.
    unsafe {
        core::arch::asm!("mov {}, qword ptr [rip + _ZSt17__throw_bad_allocv@GOTPCREL]", out(reg) f, options(nostack, readonly))
    };
    f
}
#[cfg(target_arch = "x86_64")]
fn weak_get_handler() -> usize {
    let f: usize;
    // SAFETY: loads a GOT entry; no memory is written.
    unsafe {
        core::arch::asm!("mov {}, qword ptr [rip + _ZSt15get_new_handlerv@GOTPCREL]", out(reg) f, options(nostack, readonly))
    };
    f
}
#[cfg(not(target_arch = "x86_64"))]
fn weak_get_handler() -> usize {
    0
}

/// One allocation attempt of operator new (logged); NULL when it failed.
extern "C" fn cxx_new_attempt(n: usize, align: usize, array: usize, caller: usize) -> *mut c_void {
    init::ensure();
    let op = if array != 0 { Op::NewArr } else { Op::New };
    let p = heap::allocate(n, align, op, caller, false);
    log::event(op, 0, p as usize, n, align, caller);
    p as *mut c_void
}

/// The installed new_handler, or 0 (none, or no libstdc++).
extern "C" fn cxx_new_handler() -> usize {
    let gh = weak_get_handler();
    if gh == 0 {
        return 0;
    }
    // SAFETY: std::get_new_handler() from libstdc++ takes nothing, returns a function pointer
    // and does not throw.
    unsafe { core::mem::transmute::<usize, extern "C" fn() -> usize>(gh)() }
}

/// Where a throwing operator new jumps once no handler is left: `std::__throw_bad_alloc`, or
/// `cannot_throw` without libstdc++.
#[cfg(target_arch = "x86_64")]
extern "C" fn cxx_bad_alloc_thrower() -> usize {
    match weak_throw() {
        0 => cannot_throw as extern "C" fn() -> ! as usize,
        t => t,
    }
}

extern "C" fn cannot_throw() -> ! {
    let mut l: crate::fmt::Line<128> = crate::fmt::Line::new();
    crate::fmt::prefix(&mut l)
        .s(b"ERROR: operator new failed and std::bad_alloc cannot be thrown; aborting\n");
    l.report();
    sys::abort()
}

/// `export_new!(name(args) => routine, "register setup")`: a naked export that sets the
/// routine's align, array and caller arguments (the caller is its return address) and jumps.
#[cfg(target_arch = "x86_64")]
macro_rules! export_new {
    ($name:ident ( $($arg:ident : $ty:ty),* ) => $routine:literal, $setup:literal) => {
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// # Safety
        /// The C++ contract of the operator of this mangled name.
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> *mut c_void {
            core::arch::naked_asm!($setup, "mov rcx, qword ptr [rsp]", concat!("jmp ", $routine));
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod cxx_new {
    use core::ffi::c_void;
    export_new!(_Znwm(n: usize) => "ft_cxx_new", "xor esi, esi\nxor edx, edx");
    export_new!(_Znam(n: usize) => "ft_cxx_new", "xor esi, esi\nmov edx, 1");
    export_new!(_ZnwmSt11align_val_t(n: usize, a: usize) => "ft_cxx_new", "xor edx, edx");
    export_new!(_ZnamSt11align_val_t(n: usize, a: usize) => "ft_cxx_new", "mov edx, 1");
    export_new!(_ZnwmRKSt9nothrow_t(n: usize, t: *const c_void) => "ft_cxx_new_nothrow", "xor esi, esi\nxor edx, edx");
    export_new!(_ZnamRKSt9nothrow_t(n: usize, t: *const c_void) => "ft_cxx_new_nothrow", "xor esi, esi\nmov edx, 1");
    export_new!(_ZnwmSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) => "ft_cxx_new_nothrow", "xor edx, edx");
    export_new!(_ZnamSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) => "ft_cxx_new_nothrow", "mov edx, 1");
}

/// operator new elsewhere: retries through the new_handler, then reports and aborts, since
/// these Rust frames cannot let a C++ exception through.
#[cfg(not(target_arch = "x86_64"))]
fn cpp_new(n: usize, align: usize, op: Op, caller: usize, nothrow: bool) -> *mut c_void {
    loop {
        let p = cxx_new_attempt(n, align, (op == Op::NewArr) as usize, caller);
        if !p.is_null() {
            return p;
        }
        let h = cxx_new_handler();
        if h != 0 {
            // SAFETY: a new_handler takes no argument and returns nothing (or throws).
            unsafe { core::mem::transmute::<usize, extern "C" fn()>(h)() };
            continue;
        }
        if nothrow {
            return core::ptr::null_mut();
        }
        cannot_throw();
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod cxx_new {
    use super::*;
    export!(_Znwm(n: usize) -> *mut c_void => new_impl, "rsi", "x1");
    export!(_Znam(n: usize) -> *mut c_void => new_arr_impl, "rsi", "x1");
    export!(_ZnwmRKSt9nothrow_t(n: usize, t: *const c_void) -> *mut c_void => new_nt_impl, "rdx", "x2");
    export!(_ZnamRKSt9nothrow_t(n: usize, t: *const c_void) -> *mut c_void => new_arr_nt_impl, "rdx", "x2");
    export!(_ZnwmSt11align_val_t(n: usize, a: usize) -> *mut c_void => new_al_impl, "rdx", "x2");
    export!(_ZnamSt11align_val_t(n: usize, a: usize) -> *mut c_void => new_arr_al_impl, "rdx", "x2");
    export!(_ZnwmSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) -> *mut c_void => new_al_nt_impl, "rcx", "x3");
    export!(_ZnamSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) -> *mut c_void => new_arr_al_nt_impl, "rcx", "x3");

    extern "C" fn new_impl(n: usize, caller: usize) -> *mut c_void {
        cpp_new(n, 0, Op::New, caller, false)
    }
    extern "C" fn new_arr_impl(n: usize, caller: usize) -> *mut c_void {
        cpp_new(n, 0, Op::NewArr, caller, false)
    }
    extern "C" fn new_nt_impl(n: usize, _t: *const c_void, caller: usize) -> *mut c_void {
        cpp_new(n, 0, Op::New, caller, true)
    }
    extern "C" fn new_arr_nt_impl(n: usize, _t: *const c_void, caller: usize) -> *mut c_void {
        cpp_new(n, 0, Op::NewArr, caller, true)
    }
    extern "C" fn new_al_impl(n: usize, a: usize, caller: usize) -> *mut c_void {
        cpp_new(n, a, Op::New, caller, false)
    }
    extern "C" fn new_arr_al_impl(n: usize, a: usize, caller: usize) -> *mut c_void {
        cpp_new(n, a, Op::NewArr, caller, false)
    }
    extern "C" fn new_al_nt_impl(
        n: usize,
        a: usize,
        _t: *const c_void,
        caller: usize,
    ) -> *mut c_void {
        cpp_new(n, a, Op::New, caller, true)
    }
    extern "C" fn new_arr_al_nt_impl(
        n: usize,
        a: usize,
        _t: *const c_void,
        caller: usize,
    ) -> *mut c_void {
        cpp_new(n, a, Op::NewArr, caller, true)
    }
}

fn cpp_delete(p: *mut c_void, sized: usize, op: Op, caller: usize) {
    if p.is_null() {
        return;
    }
    init::ensure();
    let _keep = sys::ErrnoGuard::new();
    let size = heap::deallocate(p as usize, op, caller, sized);
    if size != 0 {
        log::event(op, p as usize, 0, size, 0, caller);
    }
}

export!(_ZdlPv(p: *mut c_void) => del_impl, "rsi", "x1");
export!(_ZdaPv(p: *mut c_void) => del_arr_impl, "rsi", "x1");
export!(_ZdlPvm(p: *mut c_void, s: usize) => del_sized_impl, "rdx", "x2");
export!(_ZdaPvm(p: *mut c_void, s: usize) => del_arr_sized_impl, "rdx", "x2");
export!(_ZdlPvSt11align_val_t(p: *mut c_void, a: usize) => del_al_impl, "rdx", "x2");
export!(_ZdaPvSt11align_val_t(p: *mut c_void, a: usize) => del_arr_al_impl, "rdx", "x2");
export!(_ZdlPvmSt11align_val_t(p: *mut c_void, s: usize, a: usize) => del_sized_al_impl, "rcx", "x3");
export!(_ZdaPvmSt11align_val_t(p: *mut c_void, s: usize, a: usize) => del_arr_sized_al_impl, "rcx", "x3");
export!(_ZdlPvRKSt9nothrow_t(p: *mut c_void, t: *const c_void) => del_nt_impl, "rdx", "x2");
export!(_ZdaPvRKSt9nothrow_t(p: *mut c_void, t: *const c_void) => del_arr_nt_impl, "rdx", "x2");
export!(_ZdlPvSt11align_val_tRKSt9nothrow_t(p: *mut c_void, a: usize, t: *const c_void) => del_al_nt_impl, "rcx", "x3");
export!(_ZdaPvSt11align_val_tRKSt9nothrow_t(p: *mut c_void, a: usize, t: *const c_void) => del_arr_al_nt_impl, "rcx", "x3");

extern "C" fn del_impl(p: *mut c_void, caller: usize) {
    cpp_delete(p, 0, Op::Delete, caller)
}
extern "C" fn del_arr_impl(p: *mut c_void, caller: usize) {
    cpp_delete(p, 0, Op::DeleteArr, caller)
}
extern "C" fn del_sized_impl(p: *mut c_void, s: usize, caller: usize) {
    cpp_delete(p, s, Op::Delete, caller)
}
extern "C" fn del_arr_sized_impl(p: *mut c_void, s: usize, caller: usize) {
    // new[] of a type with a trivial destructor may store no cookie; the size passed is the
    // whole array's, so it is checked like a plain sized delete.
    cpp_delete(p, s, Op::DeleteArr, caller)
}
extern "C" fn del_al_impl(p: *mut c_void, _a: usize, caller: usize) {
    cpp_delete(p, 0, Op::Delete, caller)
}
extern "C" fn del_arr_al_impl(p: *mut c_void, _a: usize, caller: usize) {
    cpp_delete(p, 0, Op::DeleteArr, caller)
}
extern "C" fn del_sized_al_impl(p: *mut c_void, s: usize, _a: usize, caller: usize) {
    cpp_delete(p, s, Op::Delete, caller)
}
extern "C" fn del_arr_sized_al_impl(p: *mut c_void, s: usize, _a: usize, caller: usize) {
    cpp_delete(p, s, Op::DeleteArr, caller)
}
extern "C" fn del_nt_impl(p: *mut c_void, _t: *const c_void, caller: usize) {
    cpp_delete(p, 0, Op::Delete, caller)
}
extern "C" fn del_arr_nt_impl(p: *mut c_void, _t: *const c_void, caller: usize) {
    cpp_delete(p, 0, Op::DeleteArr, caller)
}
extern "C" fn del_al_nt_impl(p: *mut c_void, _a: usize, _t: *const c_void, caller: usize) {
    cpp_delete(p, 0, Op::Delete, caller)
}
extern "C" fn del_arr_al_nt_impl(p: *mut c_void, _a: usize, _t: *const c_void, caller: usize) {
    cpp_delete(p, 0, Op::DeleteArr, caller)
}
