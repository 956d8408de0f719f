//! The C++ operators new and delete.
//!
//!
//! operator new must be able to throw std::bad_alloc, and a new_handler may throw through it.
//! Our Rust frames are built with panic=abort: their unwind tables name a personality that cannot
//! let an exception pass, so no C++ exception may ever unwind through one. On x86_64 the
//! operators are therefore two assembly routines with their own CFI, entered from thin naked
//! exports:
//!
//! - `ft_cxx_new` (throwing forms) loops { one Rust allocation attempt; if it failed, call the
//!   new_handler from this CFI-described frame (it may throw through it) }; with no handler it
//!   pops its frame and tail-jumps to `std::__throw_bad_alloc`, so the exception starts in a
//!   frame whose caller is the program's call site and none of ours is on the stack.
//! - `ft_cxx_new_nothrow` runs the same loop; its frame has libstdc++'s personality and a
//!   catch(...) around the handler call, so an exception from the handler ends there and the
//!   operator returns NULL, as the standard's nothrow forms do.
//!
//! Both keep a frame-pointer frame, so the log's backtrace walk passes through them. libstdc++'s
//! symbols are weak: a program without it gets NULL from the personality slot (never used, as no
//! handler can be set), and a failed throwing new aborts with a message.

use crate::block::Op;
use crate::heap;
use crate::lifecycle;
use crate::log;
use crate::site::{self, At};
use crate::sys;
use core::ffi::c_void;

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
    ".pushsection ft_hot,\"ax\",@progbits",
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
    // The program's frame as it is once this call returns: its stack and frame pointers.
    "lea r8, [rbp + 16]",
    "mov r9, qword ptr [rbp]",
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
    ".pushsection ft_hot,\"ax\",@progbits",
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
    // The program's frame as it is once this call returns: its stack and frame pointers.
    "lea r8, [rbp + 16]",
    "mov r9, qword ptr [rbp]",
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

/// One allocation attempt of operator new (logged); NULL when it failed. `at` is the
/// program's frame at the call (the routines above pass it in the next two registers).
#[unsafe(link_section = "ft_hot")]
extern "C" fn cxx_new_attempt(
    n: usize,
    align: usize,
    array: usize,
    caller: usize,
    at: At,
) -> *mut c_void {
    lifecycle::ensure();
    let caller = site::here_at(caller, at);
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
        #[unsafe(link_section = "ft_hot")]
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
fn cpp_new(n: usize, align: usize, op: Op, caller: usize, at: At, nothrow: bool) -> *mut c_void {
    loop {
        let p = cxx_new_attempt(n, align, (op == Op::NewArr) as usize, caller, at);
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
    export!(_Znwm(n: usize) -> *mut c_void => new_impl);
    export!(_Znam(n: usize) -> *mut c_void => new_arr_impl);
    export!(_ZnwmRKSt9nothrow_t(n: usize, t: *const c_void) -> *mut c_void => new_nt_impl);
    export!(_ZnamRKSt9nothrow_t(n: usize, t: *const c_void) -> *mut c_void => new_arr_nt_impl);
    export!(_ZnwmSt11align_val_t(n: usize, a: usize) -> *mut c_void => new_al_impl);
    export!(_ZnamSt11align_val_t(n: usize, a: usize) -> *mut c_void => new_arr_al_impl);
    export!(_ZnwmSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) -> *mut c_void => new_al_nt_impl);
    export!(_ZnamSt11align_val_tRKSt9nothrow_t(n: usize, a: usize, t: *const c_void) -> *mut c_void => new_arr_al_nt_impl);

    extern "C" fn new_impl(n: usize, caller: usize, at: At) -> *mut c_void {
        cpp_new(n, 0, Op::New, caller, at, false)
    }
    extern "C" fn new_arr_impl(n: usize, caller: usize, at: At) -> *mut c_void {
        cpp_new(n, 0, Op::NewArr, caller, at, false)
    }
    extern "C" fn new_nt_impl(n: usize, _t: *const c_void, caller: usize, at: At) -> *mut c_void {
        cpp_new(n, 0, Op::New, caller, at, true)
    }
    extern "C" fn new_arr_nt_impl(
        n: usize,
        _t: *const c_void,
        caller: usize,
        at: At,
    ) -> *mut c_void {
        cpp_new(n, 0, Op::NewArr, caller, at, true)
    }
    extern "C" fn new_al_impl(n: usize, a: usize, caller: usize, at: At) -> *mut c_void {
        cpp_new(n, a, Op::New, caller, at, false)
    }
    extern "C" fn new_arr_al_impl(n: usize, a: usize, caller: usize, at: At) -> *mut c_void {
        cpp_new(n, a, Op::NewArr, caller, at, false)
    }
    extern "C" fn new_al_nt_impl(
        n: usize,
        a: usize,
        _t: *const c_void,
        caller: usize,
        at: At,
    ) -> *mut c_void {
        cpp_new(n, a, Op::New, caller, at, true)
    }
    extern "C" fn new_arr_al_nt_impl(
        n: usize,
        a: usize,
        _t: *const c_void,
        caller: usize,
        at: At,
    ) -> *mut c_void {
        cpp_new(n, a, Op::NewArr, caller, at, true)
    }
}

#[unsafe(link_section = "ft_hot")]
fn cpp_delete(p: *mut c_void, sized: usize, op: Op, caller: usize, at: At) {
    if p.is_null() {
        return;
    }
    lifecycle::ensure();
    heap::prefetch_free(p as usize);
    let _keep = sys::ErrnoGuard::new();
    let caller = site::here_at(caller, at);
    let size = heap::deallocate(p as usize, op, caller, sized);
    if size != 0 {
        log::event(op, p as usize, 0, size, 0, caller);
    }
}

export!(_ZdlPv(p: *mut c_void) => del_impl);
export!(_ZdaPv(p: *mut c_void) => del_arr_impl);
export!(_ZdlPvm(p: *mut c_void, s: usize) => del_sized_impl);
export!(_ZdaPvm(p: *mut c_void, s: usize) => del_arr_sized_impl);
export!(_ZdlPvSt11align_val_t(p: *mut c_void, a: usize) => del_al_impl);
export!(_ZdaPvSt11align_val_t(p: *mut c_void, a: usize) => del_arr_al_impl);
export!(_ZdlPvmSt11align_val_t(p: *mut c_void, s: usize, a: usize) => del_sized_al_impl);
export!(_ZdaPvmSt11align_val_t(p: *mut c_void, s: usize, a: usize) => del_arr_sized_al_impl);
export!(_ZdlPvRKSt9nothrow_t(p: *mut c_void, t: *const c_void) => del_nt_impl);
export!(_ZdaPvRKSt9nothrow_t(p: *mut c_void, t: *const c_void) => del_arr_nt_impl);
export!(_ZdlPvSt11align_val_tRKSt9nothrow_t(p: *mut c_void, a: usize, t: *const c_void) => del_al_nt_impl);
export!(_ZdaPvSt11align_val_tRKSt9nothrow_t(p: *mut c_void, a: usize, t: *const c_void) => del_arr_al_nt_impl);

extern "C" fn del_impl(p: *mut c_void, caller: usize, at: At) {
    cpp_delete(p, 0, Op::Delete, caller, at)
}
extern "C" fn del_arr_impl(p: *mut c_void, caller: usize, at: At) {
    cpp_delete(p, 0, Op::DeleteArr, caller, at)
}
extern "C" fn del_sized_impl(p: *mut c_void, s: usize, caller: usize, at: At) {
    cpp_delete(p, s, Op::Delete, caller, at)
}
extern "C" fn del_arr_sized_impl(p: *mut c_void, s: usize, caller: usize, at: At) {
    // new[] of a type with a trivial destructor may store no cookie; the size passed is the
    // whole array's, so it is checked like a plain sized delete.
    cpp_delete(p, s, Op::DeleteArr, caller, at)
}
extern "C" fn del_al_impl(p: *mut c_void, _a: usize, caller: usize, at: At) {
    cpp_delete(p, 0, Op::Delete, caller, at)
}
extern "C" fn del_arr_al_impl(p: *mut c_void, _a: usize, caller: usize, at: At) {
    cpp_delete(p, 0, Op::DeleteArr, caller, at)
}
extern "C" fn del_sized_al_impl(p: *mut c_void, s: usize, _a: usize, caller: usize, at: At) {
    cpp_delete(p, s, Op::Delete, caller, at)
}
extern "C" fn del_arr_sized_al_impl(p: *mut c_void, s: usize, _a: usize, caller: usize, at: At) {
    cpp_delete(p, s, Op::DeleteArr, caller, at)
}
extern "C" fn del_nt_impl(p: *mut c_void, _t: *const c_void, caller: usize, at: At) {
    cpp_delete(p, 0, Op::Delete, caller, at)
}
extern "C" fn del_arr_nt_impl(p: *mut c_void, _t: *const c_void, caller: usize, at: At) {
    cpp_delete(p, 0, Op::DeleteArr, caller, at)
}
extern "C" fn del_al_nt_impl(p: *mut c_void, _a: usize, _t: *const c_void, caller: usize, at: At) {
    cpp_delete(p, 0, Op::Delete, caller, at)
}
extern "C" fn del_arr_al_nt_impl(
    p: *mut c_void,
    _a: usize,
    _t: *const c_void,
    caller: usize,
    at: At,
) {
    cpp_delete(p, 0, Op::DeleteArr, caller, at)
}
