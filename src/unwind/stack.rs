//! Reads of stack memory during a walk that never fault.
//!
//! Owns: the current thread's cached stack range (a 16-byte initial-exec TLS block of its own:
//! ordinary TLS could call malloc, see tls.rs), the page probes (`sys::pages_readable`:
//! `process_vm_readv` on our own pid, which answers EFAULT instead of raising SIGSEGV, or
//! `rt_sigprocmask` where a seccomp filter refuses it) and `Mem`, the one reader of stack words
//! a walk uses.
//!
//! A word is read directly when it lies in the thread's cached range, or in a page this walk has
//! already probed; any other address costs one probe (bounded per walk) and fails cleanly when
//! the page is unmapped or `PROT_NONE`. So coroutine stacks, sigaltstacks and garbage pointers
//! are all safe, and the common case (the thread's own stack) costs two compares per word.
//!
//! # Invariants
//! - A thread's cached range `[lo, hi)` was probed readable page by page, ends at the thread
//!   pointer (a glibc thread: its descriptor sits right above its stack, inside the same
//!   mapping) or at `__libc_stack_end` (the main thread), and starts at a page an earlier walk
//!   started from. That memory is the thread's own stack and stays mapped while the thread
//!   lives (a fork child keeps it too). A thread that runs with a guard size of 0 on a stack
//!   whose neighbour below is a mapping later unmapped breaks this; glibc's default guard page
//!   stops the probe at the stack's end.
//! - Only the owning thread reads or writes its cached range (TLS); an update stores an empty
//!   range first, so a signal handler that interrupts it sees the old range, no range, or the
//!   new one.
//! - The unwinder's system calls go through `sys` (`pages_readable`): they are
//!   async-signal-safe and allocate nothing.

/// Probe granularity: every real page size is a multiple of it.
const GRAIN: usize = 4096;
/// A stack deeper than this above `sp` is not taken for the thread's own.
const MAX_STACK: usize = 1 << 30;
/// Pages a walk may probe outside the cached range (each probe is one system call).
const MAX_PROBES: u32 = 24;

unsafe extern "C" {
    /// Set by ld.so before any code runs: the main thread's stack pointer at process start.
    static __libc_stack_end: *mut core::ffi::c_void;
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 4",
    ".local ft_malloc_unwind_stack",
    "ft_malloc_unwind_stack: .zero 16",
    ".popsection"
);

/// This thread's cached stack range `[lo, hi)` (zero in a new thread).
#[inline(always)]
fn cached() -> *mut [usize; 2] {
    let p: *mut [usize; 2];
    // SAFETY: reads the TLS offset from the GOT and adds the thread pointer; writes nothing.
    unsafe {
        core::arch::asm!(
            "mov {0}, qword ptr [rip + ft_malloc_unwind_stack@GOTTPOFF]",
            "add {0}, qword ptr fs:[0]",
            out(reg) p,
            options(nostack, readonly, preserves_flags)
        );
    }
    p
}

/// The thread pointer (glibc: the thread's descriptor, above its stack for a created thread).
#[inline(always)]
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads the thread pointer's self-reference at fs:0; writes nothing.
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
            options(nostack, readonly, preserves_flags))
    };
    tp
}

/// Where the stack holding `sp` ends, if it may be this thread's own (0 otherwise).
fn stack_top(sp: usize) -> usize {
    let tp = thread_pointer();
    if sp < tp && tp - sp <= MAX_STACK {
        return tp;
    }
    // SAFETY: written by ld.so before any code runs, read-only afterwards.
    let end = unsafe { __libc_stack_end } as usize;
    if sp < end && end - sp <= MAX_STACK {
        return end;
    }
    0
}

/// True when every `GRAIN` page in `[from, to)` (`from` aligned) is readable (one byte of each
/// read by the kernel for us, in batches; stops at the first unreadable page).
fn probe(from: usize, to: usize) -> bool {
    crate::sys::pages_readable(from, to, GRAIN)
}

/// This thread's cached stack range as it is now, read without probing anything: the replay
/// of a kept stack (`memo`) reads its words through it and takes a `Mem` only for a word
/// outside it.
pub struct Cached {
    lo: usize,
    /// `(hi - lo) / 8`: words in the range (0: none).
    words: usize,
}

impl Cached {
    #[inline(always)]
    pub fn now() -> Cached {
        // SAFETY: our own TLS block, touched only by this thread.
        let [lo, hi] = unsafe { *cached() };
        // A signal handler may run between `adopt`'s stores: those leave hi <= lo (empty).
        if lo < hi && hi - lo <= MAX_STACK {
            Cached {
                lo,
                words: (hi - lo) / 8,
            }
        } else {
            Cached { lo: 0, words: 0 }
        }
    }

    /// The 8-byte word at `addr` when it lies in the range (aligned), else None.
    #[inline(always)]
    pub fn read(&self, addr: usize) -> Option<usize> {
        // As in `Mem::read`: one compare for "aligned and inside".
        if addr.wrapping_sub(self.lo).rotate_right(3) < self.words {
            // SAFETY: [lo, hi) is this thread's stack, probed readable (module invariants);
            // addr is 8-aligned below hi (8-aligned), so the whole word lies inside.
            return Some(unsafe { core::ptr::read_volatile(addr as *const usize) });
        }
        None
    }
}

/// The reader of stack words of one walk.
pub struct Mem {
    /// The thread's cached readable range (`lo` page aligned).
    lo: usize,
    hi: usize,
    /// `(hi - lo) / 8`: words in the range.
    words: usize,
    /// Pages outside it found readable during this walk.
    pages: [usize; 8],
    npages: usize,
    probes: u32,
}

impl Mem {
    /// A reader for a walk that starts at stack pointer `sp`.
    pub fn new(sp: usize) -> Mem {
        // SAFETY: our own TLS block, touched only by this thread.
        let [lo, hi] = unsafe { *cached() };
        // A signal handler may run between `adopt`'s stores: those leave hi <= lo (empty).
        let (lo, hi) = if lo < hi && hi - lo <= MAX_STACK {
            (lo, hi)
        } else {
            (0, 0)
        };
        let mut m = Mem {
            lo,
            hi,
            words: (hi - lo) / 8,
            pages: [0; 8],
            npages: 0,
            probes: 0,
        };
        m.adopt(sp);
        m
    }

    /// Takes the stack holding `sp` into the thread's cached range when it is the thread's own
    /// stack and every page from `sp` up to the stack's end is readable.
    pub fn adopt(&mut self, sp: usize) {
        if sp >= self.lo && sp < self.hi {
            return;
        }
        let top = stack_top(sp);
        if top == 0 {
            return;
        }
        let from = sp & !(GRAIN - 1);
        // Deeper in the same stack: only the new pages need a probe.
        let to = if self.hi == top && self.lo > from {
            self.lo
        } else {
            top
        };
        if !probe(from, to) {
            return;
        }
        self.lo = from;
        self.hi = top;
        self.words = (top - from) / 8;
        // SAFETY: our own TLS block; the range was just probed readable. A signal handler
        // of this thread may read the block between the stores: hi goes to 0 first, so it sees
        // the old range, an empty one (hi <= lo), or the new one; never a mix.
        unsafe {
            let c = cached() as *mut usize;
            core::ptr::write_volatile(c.add(1), 0);
            core::ptr::write_volatile(c, from);
            core::ptr::write_volatile(c.add(1), top);
        }
    }

    /// The 8-byte word at `addr`, or None when it is misaligned or not known readable.
    #[inline]
    pub fn read(&mut self, addr: usize) -> Option<usize> {
        // One compare for "aligned and inside": a misaligned offset rotates its low bits to the
        // top (lo is page aligned), an address below lo wraps around.
        if addr.wrapping_sub(self.lo).rotate_right(3) < self.words {
            // SAFETY: [lo, hi) is this thread's stack, probed readable (module invariants);
            // addr is 8-aligned below hi (8-aligned), so the whole word lies inside.
            return Some(unsafe { core::ptr::read_volatile(addr as *const usize) });
        }
        self.read_slow(addr)
    }

    #[inline(never)]
    fn read_slow(&mut self, addr: usize) -> Option<usize> {
        // Misaligned, the null page, or above any user address (57-bit at most).
        if addr & 7 != 0 || !(GRAIN..1 << 56).contains(&addr) {
            return None;
        }
        let page = addr & !(GRAIN - 1);
        if !self.pages[..self.npages].contains(&page) {
            if self.probes >= MAX_PROBES || !probe(page, page + GRAIN) {
                self.probes += 1;
                return None;
            }
            self.probes += 1;
            let i = if self.npages < self.pages.len() {
                self.npages += 1;
                self.npages - 1
            } else {
                (self.probes as usize) % self.pages.len()
            };
            self.pages[i] = page;
        }
        // SAFETY: the page was probed readable during this walk; an aligned word does not
        // cross it.
        Some(unsafe { core::ptr::read_volatile(addr as *const usize) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stack_is_cached_and_garbage_is_refused() {
        let local = 0x1234_5678usize;
        let addr = &local as *const usize as usize;
        let mut m = Mem::new(addr);
        assert!(m.lo <= addr && addr < m.hi, "the thread's stack is adopted");
        assert_eq!(m.read(addr), Some(0x1234_5678));
        assert_eq!(m.read(addr + 1), None, "misaligned");
        assert_eq!(m.read(8), None, "null page");
        assert_eq!(m.read(0x7fff_ffff_0000_0000 & !7), None, "non-canonical");
        // A PROT_NONE page is refused without a fault, once probed and again.
        let g = crate::sys::map_anon(4096, libc::PROT_NONE, 0).unwrap() as usize;
        assert_eq!(m.read(g), None);
        assert_eq!(m.read(g + 8), None);
        // A readable mapping outside the stack is read after a probe.
        let r = crate::sys::map(4096).unwrap() as usize;
        // SAFETY: a fresh read-write mapping.
        unsafe { *(r as *mut usize) = 77 };
        assert_eq!(m.read(r), Some(77));
        // SAFETY: both mappings were made above and are no longer used.
        unsafe {
            crate::sys::unmap(g as *mut u8, 4096);
            crate::sys::unmap(r as *mut u8, 4096);
        }
    }

    #[test]
    fn a_new_thread_gets_its_own_range() {
        let main_range = {
            let x = 0usize;
            let m = Mem::new(&x as *const usize as usize);
            (m.lo, m.hi)
        };
        let other = std::thread::spawn(|| {
            let x = 0usize;
            let m = Mem::new(&x as *const usize as usize);
            (m.lo, m.hi)
        })
        .join()
        .unwrap();
        assert_ne!(main_range, other);
        assert!(other.0 < other.1);
    }
}
