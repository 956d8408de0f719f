//! Stack room for reports, dumps and a signal handler's work. A report with its symbol lookups
//! needs more stack than some programs give: a thread made with a 16 KiB stack (glibc's
//! minimum), a coroutine's, an alternate signal stack (Rust's standard library gives each
//! thread 8 KiB). `with_room` runs such work on a mapping of its own (between guard pages) when
//! the stack in use has less than `ROOM` bytes below the stack pointer, and unmaps it after;
//! elsewhere it runs the work in place.
//!
//! # Invariants
//! The switch is one `call` on the new stack between two moves of the stack pointer, which a
//! callee-saved register keeps: the work returns to the frame that switched, and nothing of
//! the old stack is read while the new one is in use but through pointers the work was given.

use core::ffi::c_void;

/// Stack bytes a report, a dump or our fault handler's work may take (symbol lookups, the
/// stack walk), with a margin.
pub const ROOM: usize = 96 * 1024;
/// The stack mapped when the one in use is short of room.
const SIZE: usize = 256 * 1024;
/// Probe granularity below the stack pointer: every real page size is a multiple of it.
const GRAIN: usize = 4096;

/// Runs `f` on a stack with `ROOM` bytes: this one when it has that room left, else a stack
/// mapped for it (in place if mapping fails).
pub fn with_room<F: FnMut()>(mut f: F) {
    if !short_of_room() {
        f();
        return;
    }
    // Guard pages on both sides where the kernel allows them: the work faults rather than run
    // into other memory.
    let Some(base) = super::map_guarded(SIZE) else {
        f();
        return;
    };
    let top = (base as usize + SIZE) & !15;
    // SAFETY: [base, base + SIZE) is a fresh mapping of ours, the new stack; the trampoline
    // gets a pointer to `f`, which lives in this frame until the switch returns.
    unsafe {
        switch(top, trampoline::<F>, &mut f as *mut F as *mut c_void);
        super::unmap_guarded(base, SIZE);
    }
}

/// Whether the stack in use has less than `ROOM` bytes below the stack pointer: on the
/// thread's alternate signal stack, by its bounds; elsewhere (the thread's stack, a
/// coroutine's), when a page of that range cannot be read (a guard page, another mapping's
/// end, or a main thread's stack not grown that far yet, which costs a mapping for nothing).
fn short_of_room() -> bool {
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    // SAFETY: a zeroed stack_t is a valid out-parameter; sigaltstack with no new stack only
    // reads the thread's.
    let ss = unsafe {
        let mut ss: libc::stack_t = core::mem::zeroed();
        (libc::sigaltstack(core::ptr::null(), &mut ss) == 0).then_some(ss)
    };
    if let Some(ss) = ss
        && ss.ss_flags & libc::SS_ONSTACK != 0
    {
        return sp.saturating_sub(ss.ss_sp as usize) < ROOM;
    }
    let top = sp & !(GRAIN - 1);
    !super::pages_readable(top.saturating_sub(ROOM), top, GRAIN)
}

extern "C" fn trampoline<F: FnMut()>(f: *mut c_void) {
    // SAFETY: `with_room` passes a pointer to its live `F`.
    unsafe { (*(f as *mut F))() }
}

/// Calls `f(arg)` with the stack pointer at `top` (16-aligned), then comes back to this stack.
/// # Safety
/// `top` is the end of a writable stack large enough for `f`; `f` returns normally.
#[cfg(target_arch = "x86_64")]
unsafe fn switch(top: usize, f: extern "C" fn(*mut c_void), arg: *mut c_void) {
    // SAFETY: per the caller; r12 is callee-saved, so it still holds the old stack pointer
    // when `f` returns.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {f}",
            "mov rsp, r12",
            top = in(reg) top,
            f = in(reg) f,
            in("rdi") arg,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

/// `switch` for aarch64 (x20 is callee-saved; LLVM keeps x19 for itself).
/// # Safety
/// As on x86_64.
#[cfg(target_arch = "aarch64")]
unsafe fn switch(top: usize, f: extern "C" fn(*mut c_void), arg: *mut c_void) {
    // SAFETY: per the caller; x20 still holds the old stack pointer when `f` returns.
    unsafe {
        core::arch::asm!(
            "mov x20, sp",
            "mov sp, {top}",
            "blr {f}",
            "mov sp, x20",
            top = in(reg) top,
            f = in(reg) f,
            in("x0") arg,
            out("x20") _,
            clobber_abi("C"),
        );
    }
}

/// Elsewhere the work runs in place.
/// # Safety
/// None needed.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn switch(_top: usize, f: extern "C" fn(*mut c_void), arg: *mut c_void) {
    f(arg)
}
