//! Per-thread state without allocation: one initial-exec TLS block declared in assembly and
//! reached through `@GOTTPOFF` (a cdylib's ordinary TLS goes through `__tls_get_addr`, whose
//! slow path can call malloc). Under LD_PRELOAD the library is in the static TLS
//! block, so the access is one load and one add.
//!
//! It also holds the work signal handlers defer for their thread (`push_deferred`): 16 slots
//! in the block, then a table shared by all threads (`OVERFLOW`), whose entries name their
//! thread.
//!
//! # Invariants
//! The block is zero-initialised for every new thread by the loader. Only the owning thread
//! touches its block (the fork child resets the forking thread's cached tid). An entry of
//! `OVERFLOW` is claimed, filled and taken only by the thread it names (the fork child renames
//! the forking thread's and drops the others').

use core::sync::atomic::{AtomicUsize, Ordering};

/// Per-thread state of the allocator (fits the 384-byte block declared below).
#[repr(C)]
pub struct ThreadState {
    /// Arena index + 1 (0 = not chosen yet).
    pub arena: u32,
    /// Cached kernel tid (0 = not read yet; reset in the fork child).
    pub tid: u32,
    /// Allocator locks this thread holds (`lock::Mutex`); a signal handler that finds it
    /// non-zero interrupted this thread inside one, and must not wait for any other lock.
    pub locks: u32,
    /// Set while this thread runs init.
    pub initializing: u32,
    /// Set while this thread is writing a report (a second error aborts at once).
    pub reporting: u32,
    /// Set when `deferred` (or the overflow table) holds work of this thread: the next
    /// allocator call that ends holding no lock does it (`heap::drain::settle`). Next to `locks`: both
    /// are read at the end of every call.
    pub pending: u32,
    /// Sequence number the heap gave to this thread's current event (0: none yet); the log
    /// takes it so that log records and block histories use the same numbers.
    pub last_seq: u64,
    /// Free for the log and other layers (per-thread buffers, flags).
    pub scratch: [u64; 3],
    /// Allocations left before the next sampled (guarded) one, `sample=N`.
    pub sample_left: u32,
    /// Statistics stripe of this thread + 1 (0: not chosen yet), see `log::counters`.
    pub stripe: u32,
    /// Live bytes allocated minus freed by this thread not yet added to `stats::LIVE`.
    pub live_delta: i64,
    /// This thread's cache of free zone slots (`heap::tcache`): the address of its area, 0
    /// when it has none yet.
    pub tcache: usize,
    /// The futex word of the lock this thread is waiting for in `lock::Mutex::lock_slow`'s
    /// sleep loop (asleep, or woken and not yet holding it); 0 when none.
    pub waiting_on: usize,
    /// `heap::tcache` flags: busy (a signal handler that finds it set leaves the cache alone)
    /// and gone (the thread's exit flushed the cache: no new one).
    pub tcache_flags: u32,
    /// Entries of this thread may be in the shared overflow table (`OVERFLOW`).
    pub overflow: u32,
    /// Set while this thread runs `heap::drain_deferred` (which then takes what signal
    /// handlers add meanwhile: no second drain starts inside it).
    pub draining: u32,
    pub _pad32: u32,
    /// This thread's next event sequence number from its batch, encoded (`log::seq`; 0: none).
    pub seq_next: u64,
    pub _pad: [u64; 2],
    /// Work a signal handler left for this thread because the lock it needs is held by the
    /// code the handler interrupted (`heap::defer`); drained when that lock is released.
    pub deferred: [Deferred; DEFERRED_SLOTS],
}
const _: () = assert!(core::mem::size_of::<ThreadState>() == 128 + 16 * DEFERRED_SLOTS);

/// Deferred work slots per thread: each holds one free (or one release from a quarantine)
/// that a signal handler could not do at once. More go to the shared `OVERFLOW` table (a
/// thread interrupted by handlers faster than it gets through its own lock defers one or two
/// per handler call until it does).
pub const DEFERRED_SLOTS: usize = 16;

/// Entries of the shared overflow table, for all threads.
const OVERFLOW_SLOTS: usize = 16384;

/// A deferred entry of some thread (`tid`) that did not fit in its own slots.
struct Overflow {
    d: Deferred,
    tid: core::sync::atomic::AtomicU32,
}

static OVERFLOW: [Overflow; OVERFLOW_SLOTS] = [const {
    Overflow {
        d: Deferred {
            p: AtomicUsize::new(0),
            word: AtomicUsize::new(0),
        },
        tid: core::sync::atomic::AtomicU32::new(0),
    }
}; OVERFLOW_SLOTS];

/// One deferred piece of work: `p` is 0 (empty), `CLAIMED` (being written) or the block's
/// address; `word` is what to do with it (written before `p` is published).
#[repr(C)]
pub struct Deferred {
    pub p: AtomicUsize,
    pub word: AtomicUsize,
}

/// `Deferred::p` of a slot that a handler claimed and is filling in.
pub const CLAIMED: usize = 1;

/// Fills a free slot with `(p, word)`. A slot is claimed with a compare-exchange (from 0 to
/// `CLAIMED`), filled, then published by storing `p` (release), so every reader, a signal
/// handler nested in the writer included, sees a free slot, a slot being filled (skipped), or
/// a complete entry.
fn claim(s: &Deferred, p: usize, word: usize) -> bool {
    if s.p
        .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    s.word.store(word, Ordering::Relaxed);
    s.p.store(p, Ordering::Release);
    true
}

/// Empties a complete slot; its entry, or None.
fn take(s: &Deferred) -> Option<(usize, usize)> {
    let p = s.p.load(Ordering::Acquire);
    if p <= CLAIMED {
        return None;
    }
    // Read before the slot is freed: it may be claimed again right after.
    let w = s.word.load(Ordering::Relaxed);
    s.p.compare_exchange(p, 0, Ordering::Relaxed, Ordering::Relaxed)
        .ok()
        .map(|_| (p, w))
}

/// Puts `(p, word)` in a free deferred slot of this thread, or in the shared overflow table.
/// False if both are full.
pub fn push_deferred(p: usize, word: usize) -> bool {
    let st = state();
    // SAFETY: our own TLS block.
    if unsafe { &(*st).deferred }.iter().any(|s| claim(s, p, word)) {
        return true;
    }
    let t = tid();
    let start = t as usize * 61 % OVERFLOW_SLOTS;
    for k in 0..OVERFLOW_SLOTS {
        let o = &OVERFLOW[(start + k) % OVERFLOW_SLOTS];
        if o.d.p.load(Ordering::Relaxed) != 0 {
            continue;
        }
        // The owner is written before the entry is published (`claim`'s release store).
        if o.d
            .p
            .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            o.tid.store(t, Ordering::Relaxed);
            o.d.word.store(word, Ordering::Relaxed);
            o.d.p.store(p, Ordering::Release);
            // SAFETY: our own TLS block.
            unsafe { (*st).overflow = 1 };
            return true;
        }
    }
    false
}

/// Takes this thread's complete deferred entries (its slots, then its entries of the overflow
/// table) into `out`; returns how many. Called again until it returns 0.
pub fn take_deferred(out: &mut [(usize, usize)]) -> usize {
    let st = state();
    let mut n = 0;
    // SAFETY: our own TLS block.
    for s in unsafe { &(*st).deferred }.iter() {
        if n == out.len() {
            return n;
        }
        if let Some(e) = take(s) {
            out[n] = e;
            n += 1;
        }
    }
    // SAFETY: our own TLS block.
    if unsafe { (*st).overflow } == 0 {
        return n;
    }
    // Cleared first: an entry a handler adds during the scan sets it again.
    // SAFETY: as above.
    unsafe { (*st).overflow = 0 };
    let t = tid();
    for o in OVERFLOW.iter() {
        if n == out.len() {
            // The rest next time.
            // SAFETY: as above.
            unsafe { (*st).overflow = 1 };
            return n;
        }
        // The owner was written before the entry was published.
        if o.d.p.load(Ordering::Acquire) > CLAIMED
            && o.tid.load(Ordering::Relaxed) == t
            && let Some(e) = take(&o.d)
        {
            out[n] = e;
            n += 1;
        }
    }
    n
}

/// Fork child: entries of the parent's other threads in the overflow table are dropped (those
/// threads do not exist here); the forking thread's are given its new thread id.
fn reset_overflow_after_fork(old_tid: u32) {
    let t = tid();
    for o in OVERFLOW.iter() {
        if o.d.p.load(Ordering::Relaxed) == 0 {
            continue;
        }
        if o.tid.load(Ordering::Relaxed) == old_tid {
            o.tid.store(t, Ordering::Relaxed);
        } else {
            o.d.p.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl ft_malloc_tls_block",
    ".hidden ft_malloc_tls_block",
    "ft_malloc_tls_block: .zero 384",
    ".popsection"
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl ft_malloc_tls_block",
    ".hidden ft_malloc_tls_block",
    "ft_malloc_tls_block: .zero 384",
    ".popsection"
);

/// This thread's state block. Its address never changes for a thread, so the assembly is
/// declared pure and memory-free: repeated calls in one function fold into one.
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
            options(pure, nomem, nostack)
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
            options(pure, nomem, nostack)
        );
    }
    p
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
    let old = tid();
    // SAFETY: our own block.
    unsafe {
        (*state()).tid = 0;
        // The child's events are numbered after the fork's (its lineage compares them).
        (*state()).seq_next = 0;
    }
    reset_overflow_after_fork(old);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_entries_overflow_and_come_back() {
        let mut out = [(0usize, 0usize); DEFERRED_SLOTS];
        let n = DEFERRED_SLOTS + 5;
        for i in 0..n {
            assert!(push_deferred(0x1000 + 16 * i, i));
        }
        let mut seen = std::vec::Vec::new();
        loop {
            let k = take_deferred(&mut out);
            if k == 0 {
                break;
            }
            seen.extend_from_slice(&out[..k]);
        }
        seen.sort();
        let want: std::vec::Vec<_> = (0..n).map(|i| (0x1000 + 16 * i, i)).collect();
        assert_eq!(seen, want);
        // Another thread's entries are not this one's.
        std::thread::spawn(|| {
            for i in 0..DEFERRED_SLOTS + 2 {
                assert!(push_deferred(0x9000 + 16 * i, 1));
            }
        })
        .join()
        .unwrap();
        assert_eq!(take_deferred(&mut out), 0);
    }
}
