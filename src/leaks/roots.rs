//! The roots of the leak check: the program's own memory (every readable, writable mapping that
//! is not ours, found in /proc/self/maps; of a shared one, the pages in memory), read into a
//! scratch buffer and scanned word by word for references to blocks. Of another thread's stack
//! only the live part is read (`threads`).

use super::mark::Scan;
use super::threads;
use crate::pagemap;
use crate::ranges::Ranges;
use crate::sys;

/// Bytes of roots copied at a time.
pub(super) const SCRATCH: usize = 64 << 10;
/// Paths (hashed) of files with an executable mapping, for the direct-read fallback.
pub(super) const MAX_MODULES: usize = 512;

/// How roots are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// Copied with `process_vm_readv`: unreadable pages are skipped.
    Copy,
    /// Read in place (the copy was refused): only mappings known to be readable.
    Direct,
}

/// FNV-1a of a mapping's path.
fn path_hash(p: &[u8]) -> u64 {
    p.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Hashes the paths of the files with an executable mapping into `modules`; returns how many.
/// Out of line: its reading of the mappings keeps a buffer on the stack, which the scan of each
/// mapping must not carry (a thread's stack may be small).
#[inline(never)]
fn list_modules(modules: &mut [u64; MAX_MODULES]) -> usize {
    let mut n = 0;
    crate::maps::for_each(|m| {
        if m.executable && m.path.first() == Some(&b'/') && n < MAX_MODULES {
            modules[n] = path_hash(m.path);
            n += 1;
        }
        true
    });
    n
}

/// Pages of the program's memory asked about at once (one byte each, on the stack).
const RESIDENT_WINDOW: usize = 512;

/// Which pages of the program's anonymous memory the scan reads. With no swap in use, such a
/// page that is not resident was never written and reads as zeroes, no reference to a block;
/// reading it would fault it in (the unused part of a thread's stack, a big array never
/// touched). With swap in use every page is read, and so is every page of a file mapping (one
/// that left the page cache may hold what the program wrote into the file).
struct Resident {
    all: bool,
    /// The window of `pages` pages from `base` whose residency `map` holds.
    base: usize,
    pages: usize,
    map: [u8; RESIDENT_WINDOW],
}

impl Resident {
    /// Whether the page of `x` (in a mapping that ends at `end`) may hold data; `in_memory`:
    /// only if it is in memory, swap or no swap.
    fn holds(&mut self, x: usize, end: usize, in_memory: bool) -> bool {
        if self.all && !in_memory {
            return true;
        }
        let page = sys::page_size();
        let p = x & !(page - 1);
        if p < self.base || p >= self.base + self.pages * page {
            self.base = p;
            self.pages = ((end - p) / page).clamp(1, RESIDENT_WINDOW);
            if !sys::residency(p, &mut self.map[..self.pages]) {
                // Unknown (a seccomp filter may forbid the question): read it, but for shared
                // memory, whose holes a read would allocate.
                self.pages = 0;
                return !in_memory;
            }
        }
        self.map[(p - self.base) / page] & 1 != 0
    }
}

/// Scans the roots: the words of every mapping that may hold references of the program's,
/// from `sp` on in the current thread's stack and from its live part on in another thread's,
/// leaving out what `skip` holds (our own memory).
/// `modules` is room for the direct reader's list of loaded modules (out of the stack, which may
/// be a small thread's).
pub(super) fn scan(
    s: &mut Scan,
    skip: &Ranges,
    scratch: &mut [u8],
    modules: &mut [u64; MAX_MODULES],
    sp: usize,
) {
    let skipped = |x: usize| skip.contains(x);
    let mut reader = Reader::Copy;
    // Files with an executable mapping: loaded modules (for the direct reader only, listed
    // when it is first needed).
    let mut nmodules = None;
    let page = sys::page_size();
    let mut resident = Resident {
        all: sys::swap_in_use(),
        base: 0,
        pages: 0,
        map: [0; RESIDENT_WINDOW],
    };
    let id = threads::id_offset(scratch);
    // The end of the last mapping, if it was inaccessible (a guard page).
    let mut guard_end = 0;
    crate::maps::for_each(|m| {
        let above_guard = guard_end == m.start;
        guard_end = if m.readable || m.writable || m.executable {
            0
        } else {
            m.end
        };
        if !m.readable || !m.writable {
            return true;
        }
        // (Shared anonymous memory reads as /dev/zero.)
        if (m.path.starts_with(b"/dev/") && !m.path.starts_with(b"/dev/zero "))
            || m.path.starts_with(b"[vvar")
            || m.path.starts_with(b"[vsyscall")
        {
            return true;
        }
        if m.path.windows(12).any(|w| w == b"libft_malloc") {
            return true;
        }
        let file = m.path.first() == Some(&b'/');
        // Every page of a private file mapping is read (one that left the page cache may hold
        // what the program wrote); of a shared mapping, only the pages in memory: reading the
        // others would read a whole file, or allocate the holes of shared memory.
        let every_page = file && !m.shared;
        let mut a = m.start;
        // Another thread's stack read from its stack pointer: the thread, to check once that
        // part is read.
        let mut waiting = None;
        if sp >= m.start && sp < m.end {
            a = sp & !7;
        } else if above_guard
            && !file
            && pagemap::get(m.end - page) == 0
            && !skipped(m.end - page)
            && let Some(id) = id
            && let Some((live, w)) = threads::live_from(m.start, m.end, id, scratch)
        {
            (a, waiting) = (live, w);
        } else if m.path == b"[stack]"
            && let Some((live, w)) = threads::main_live_from(m.start, m.end)
        {
            (a, waiting) = (live, Some(w));
        }
        if let Some(w) = &waiting {
            let mut args = [0u8; 48];
            for (b, x) in args.chunks_exact_mut(8).zip(w.args) {
                b.copy_from_slice(&x.to_ne_bytes());
            }
            s.words(&args);
        }
        // The part read: [a, m.end), then [m.start, a) too if the waiting thread ran meanwhile.
        let from = a;
        let mut hi = m.end;
        loop {
            while a < hi {
                // A run of pages to read: not ours, not skipped, of a file or resident (or possibly
                // swapped out), at most SCRATCH bytes.
                let mut eligible = |x: usize| {
                    pagemap::get(x) == 0
                        && !skipped(x)
                        && (every_page || resident.holds(x, m.end, m.shared))
                };
                if !eligible(a) {
                    a = ((a & !(page - 1)) + page).min(hi);
                    continue;
                }
                let mut end = ((a & !(page - 1)) + page).min(hi);
                while end < hi && end - a < SCRATCH && eligible(end) {
                    end = (end + page).min(hi);
                }
                let end = end.min(a + SCRATCH);
                if reader == Reader::Copy {
                    match sys::read_own(a, end - a, scratch) {
                        Ok(n) => {
                            s.words(&scratch[..n & !7]);
                            if n < end - a {
                                // The page at a + n cannot be read: skip it.
                                a = (((a + n) & !(page - 1)) + page).min(hi);
                                continue;
                            }
                        }
                        Err(libc::EFAULT) => {
                            a = ((a & !(page - 1)) + page).min(hi);
                            continue;
                        }
                        Err(_) => reader = Reader::Direct,
                    }
                }
                if reader == Reader::Direct {
                    let n = *nmodules.get_or_insert_with(|| list_modules(modules));
                    if file && !modules[..n].contains(&path_hash(m.path)) {
                        // Possibly past the end of its file: reading it could raise SIGBUS.
                        return true;
                    }
                    // Page by page, each probed first (a guard marker of the program's faults),
                    // unless no probe works (then as it comes: the roots must be read).
                    let mut p = a;
                    while p < end {
                        let next = ((p & !(page - 1)) + page).min(end);
                        if sys::pages_readable(p & !(page - 1), next, page) || !sys::probes_work() {
                            s.range(p, next);
                        }
                        p = next;
                    }
                }
                a = end;
            }
            if hi == m.end
                && from > m.start
                && waiting.as_ref().is_some_and(|w| !threads::still_waiting(w))
            {
                (a, hi) = (m.start, from);
                continue;
            }
            break;
        }
        true
    });
}
