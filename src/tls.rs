//! Per-thread state without allocation: one initial-exec TLS block declared in assembly and
//! reached through `@GOTTPOFF` (a cdylib's ordinary TLS goes through `__tls_get_addr`, whose
//! slow path can call malloc: PITFALLS (a)). Under LD_PRELOAD the library is in the static TLS
//! block, so the access is one load and one add.
//!
//! # Invariants
//! The block is zero-initialised for every new thread by the loader. Only the owning thread
//! touches its block (the fork child resets the forking thread's cached tid).

/// Per-thread state of the allocator (fits the 128-byte block declared below).
#[repr(C)]
pub struct ThreadState {
    /// Arena index + 1 (0 = not chosen yet).
    pub arena: u32,
    /// Cached kernel tid (0 = not read yet; reset in the fork child).
    pub tid: u32,
    /// Nesting depth of allocator calls on this thread (re-entry from a signal handler).
    pub depth: u32,
    /// Set while this thread runs init.
    pub initializing: u32,
    /// Set while this thread is writing a report (a second error aborts at once).
    pub reporting: u32,
    /// Sequence number the heap gave to this thread's current event (0: none yet); the log
    /// takes it so that log records and block histories use the same numbers.
    pub last_seq: u64,
    /// Free for the log and other layers (per-thread buffers, flags).
    pub scratch: [u64; 3],
    /// Allocations left before the next sampled (guarded) one, `sample=N`.
    pub sample_left: u32,
    /// Statistics stripe of this thread + 1 (0: not chosen yet), see `log::stripe`.
    pub stripe: u32,
    /// Live bytes allocated minus freed by this thread not yet added to `stats::LIVE`.
    pub live_delta: i64,
    pub _pad: [u64; 7],
}
const _: () = assert!(core::mem::size_of::<ThreadState>() == 128);

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl ft_malloc_tls_block",
    ".hidden ft_malloc_tls_block",
    "ft_malloc_tls_block: .zero 128",
    ".popsection"
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl ft_malloc_tls_block",
    ".hidden ft_malloc_tls_block",
    "ft_malloc_tls_block: .zero 128",
    ".popsection"
);

/// This thread's state block.
#[inline(always)]
pub fn state() -> *mut ThreadState {
    let p: *mut ThreadState;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the TLS offset from the GOT and adds the thread pointer; no memory is written.
    unsafe {
        core::arch::asm!(
            "mov {0}, qword ptr [rip + ft_malloc_tls_block@GOTTPOFF]",
            "add {0}, qword ptr fs:[0]",
            out(reg) p,
            options(nostack, readonly)
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads the TLS offset from the GOT and adds the thread pointer; no memory is written.
    unsafe {
        core::arch::asm!(
            "mrs {0}, tpidr_el0",
            "adrp {1}, :gottprel:ft_malloc_tls_block",
            "ldr {1}, [{1}, :gottprel_lo12:ft_malloc_tls_block]",
            "add {0}, {0}, {1}",
            out(reg) p,
            out(reg) _,
            options(nostack, readonly)
        );
    }
    p
}

/// A number unique to each live thread (the address of its TLS block).
#[inline(always)]
pub fn thread_tag() -> usize {
    state() as usize
}

/// Cached kernel thread id.
#[inline]
pub fn tid() -> u32 {
    let st = state();
    // SAFETY: st is this thread's own block.
    unsafe {
        if (*st).tid == 0 {
            (*st).tid = crate::sys::gettid();
        }
        (*st).tid
    }
}

/// Fork child: the surviving thread has a new tid.
pub fn reset_after_fork() {
    // SAFETY: our own block.
    unsafe { (*state()).tid = 0 };
}
