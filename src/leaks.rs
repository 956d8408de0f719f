//! Leak detection at exit, as LeakSanitizer does it: a conservative mark from the roots (every
//! readable, writable, private mapping that is not ours — modules' data, thread stacks from
//! their stack pointer, TLS — found in /proc/self/maps), following every word that points into
//! a live block (interior pointers count), transitively. Live blocks nothing reaches are
//! reported, grouped by allocation site (the whole call stack when stacks are kept), largest
//! first.
//!
//! Roots are read through `process_vm_readv` into a scratch buffer, never directly: a page that
//! cannot be read (a file mapped past the end of its file raises SIGBUS, a range unmapped by
//! another thread meanwhile or under a guard marker SIGSEGV) is skipped, and every readable
//! byte is still scanned, file-backed private mappings included (a module's `.data`, or a
//! program's private file mapping holding pointers). Where the kernel refuses that call
//! (seccomp, a kernel without it) roots are read directly, and the only file-backed mappings
//! read are those of a file that also has an executable mapping (a loaded module's data).
//!
//! A forked child that has not exec'd inherits the blocks of every thread of its parent, but
//! only the forking thread lives on in it: blocks that other threads held in their registers
//! (or that the program drops in an atfork handler) look unreachable there. The scan leaves out
//! the unreachable blocks allocated, before a fork this process descends from, by a thread
//! that does not continue in it, and says how many; the parent's own report covers them. The
//! child's own leaks (blocks it allocated, or its forking thread's blocks it dropped) are
//! reported. (LeakSanitizer reports in a child forked without exec too, and valgrind reports
//! per process; both count the vanished threads' blocks, as this scan did.)
//!
//! # Invariants
//! Runs with every arena lock and the LARGE lock held; the mark is bit 7 of a block's state
//! and is cleared before the locks are released. `FORKS` changes only in the fork handlers,
//! when a single thread runs in the process (child) or every lock of ours is held (prepare).

use crate::block::USED;
use crate::fmt::{Line, prefix};
use crate::pagemap;
use crate::ranges::Ranges;
use crate::sys;
use crate::walk::{Block, View};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

const MARK: u8 = 0x80;
const STACK_CAP: usize = 1 << 20;
const MAX_SITES: usize = 512;
/// Bytes of roots copied at a time.
const SCRATCH: usize = 64 << 10;
/// A block of at least these many pages is scanned only where its pages are resident.
const RESIDENT_MIN_PAGES: usize = 16;
/// Paths (hashed) of files with an executable mapping, for the direct-read fallback.
const MAX_MODULES: usize = 512;

/// Forks this process descends from, oldest first (`MAX_FORKS` kept, the oldest dropped): the
/// event sequence number reached at the fork, the forking thread's tid in the parent, and the
/// child's pid, which is that thread's tid in the child.
const MAX_FORKS: usize = 8;
struct ForkRec {
    seq: AtomicU64,
    parent_tid: AtomicU32,
    child_pid: AtomicU32,
}
static FORKS: [ForkRec; MAX_FORKS] = [const {
    ForkRec {
        seq: AtomicU64::new(0),
        parent_tid: AtomicU32::new(0),
        child_pid: AtomicU32::new(0),
    }
}; MAX_FORKS];
static NFORKS: AtomicUsize = AtomicUsize::new(0);
/// The forking thread's tid, noted in the prepare handler (the child's thread has a new one).
static FORKING_TID: AtomicU32 = AtomicU32::new(0);

/// Fork prepare: notes the forking thread.
pub fn before_fork() {
    FORKING_TID.store(crate::tls::tid(), Ordering::Relaxed);
}

/// Fork child (the only thread): records the fork in the lineage. The sequence number is read
/// here, in the child's copy of the parent's memory: every block allocated in the parent has a
/// number at most this one, every block of the child a greater one.
pub fn after_fork_child() {
    let mut n = NFORKS.load(Ordering::Relaxed);
    if n == MAX_FORKS {
        for i in 1..MAX_FORKS {
            let (a, b) = (&FORKS[i - 1], &FORKS[i]);
            a.seq
                .store(b.seq.load(Ordering::Relaxed), Ordering::Relaxed);
            a.parent_tid
                .store(b.parent_tid.load(Ordering::Relaxed), Ordering::Relaxed);
            a.child_pid
                .store(b.child_pid.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        n -= 1;
    }
    let f = &FORKS[n];
    f.seq.store(crate::log::seq::last(), Ordering::Relaxed);
    f.parent_tid
        .store(FORKING_TID.load(Ordering::Relaxed), Ordering::Relaxed);
    f.child_pid.store(sys::getpid(), Ordering::Relaxed);
    NFORKS.store(n + 1, Ordering::Relaxed);
}

/// The sequence number `each_used` gives a zone block whose history its allocating thread
/// has not written yet (it does so after dropping the arena lock): that thread holds the block
/// in its registers, so it is no leak. In a forked child the thread is another thread of the
/// parent (the forking thread is inside fork()), which does not exist there.
const IN_FLIGHT: u64 = u64::MAX;

/// Whether a block allocated at event `seq` by thread `tid` belongs to a thread that does not
/// continue in this process: it was allocated before a fork of the lineage, by a thread other
/// than that fork's forking thread, or the thread it became in the child did not fork the
/// next generation. False for blocks of this process and for blocks without history.
fn of_vanished_thread(seq: u64, tid: u32) -> bool {
    let n = NFORKS.load(Ordering::Relaxed);
    if seq == IN_FLIGHT {
        return n > 0;
    }
    if seq == 0 {
        return false;
    }
    let Some(k) = (0..n).find(|&k| seq <= FORKS[k].seq.load(Ordering::Relaxed)) else {
        return false;
    };
    if tid != FORKS[k].parent_tid.load(Ordering::Relaxed) {
        return true;
    }
    (k + 1..n).any(|j| {
        FORKS[j].parent_tid.load(Ordering::Relaxed)
            != FORKS[j - 1].child_pid.load(Ordering::Relaxed)
    })
}

struct Scan<'v> {
    view: &'v View,
    stack: *mut usize,
    len: usize,
    overflow: bool,
    lo: usize,
    hi: usize,
}

/// State byte of the block holding `w`, with its extent, if `w` points into a used block.
fn block_of(v: &View, w: usize) -> Option<(*mut u8, usize, usize)> {
    let b = v.at(w)?;
    if b.byte & !MARK != USED || w < b.user || w >= b.user + b.size.max(1) {
        return None;
    }
    Some((b.state_byte(), b.user, b.size))
}

impl Scan<'_> {
    fn visit(&mut self, w: usize) {
        if w <= self.lo || w >= self.hi {
            return;
        }
        if let Some((st, user, _)) = block_of(self.view, w) {
            // SAFETY: st points at the state byte of a used block (locks held).
            unsafe {
                if *st & MARK != 0 {
                    return;
                }
                *st |= MARK;
            }
            if self.len < STACK_CAP && !self.stack.is_null() {
                // SAFETY: len < STACK_CAP entries of the scratch mapping.
                unsafe { *self.stack.add(self.len) = user };
                self.len += 1;
            } else {
                self.overflow = true;
            }
        }
    }

    /// Scans the words of a copy of memory (8-byte aligned in the original). A function of its
    /// own: inlined into the scan of the mappings, its loop had to reload the copy's address
    /// from the stack for every word.
    #[inline(never)]
    fn words(&mut self, bytes: &[u8]) {
        for w in bytes.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.visit(usize::from_ne_bytes(b));
        }
    }

    /// Scans the words of `[from, to)`, our own memory (a live block). A big block (LARGE)
    /// is scanned only where its pages are resident: a page never touched holds no pointer,
    /// and reading it would fault it in (a program that leaves gigabytes allocated and
    /// untouched would wait seconds for its exit).
    fn range(&mut self, from: usize, to: usize) {
        if to - from < RESIDENT_MIN_PAGES * sys::page_size() {
            self.words_in(from, to);
        } else {
            sys::each_resident_run(from, to, |lo, hi| self.words_in(lo, hi));
        }
    }

    /// Scans the words of `[from, to)`, readable memory of ours.
    fn words_in(&mut self, from: usize, to: usize) {
        let mut a = (from + 7) & !7;
        while a + 8 <= to {
            // SAFETY: the caller passes readable memory.
            let w = unsafe { *(a as *const usize) };
            self.visit(w);
            a += 8;
        }
    }

    fn drain(&mut self) {
        while self.len > 0 {
            self.len -= 1;
            // SAFETY: index < len.
            let user = unsafe { *self.stack.add(self.len) };
            if let Some((_, u, size)) = block_of(self.view, user) {
                self.range(u, u + size);
            }
        }
    }
}

/// A used block, as the scan groups it.
struct Used {
    state: *mut u8,
    user: usize,
    size: usize,
    caller: usize,
    origin: u8,
    seq: u64,
    tid: u32,
}

/// Every used block (marked or not), with its allocation site.
fn each_used(v: &View, mut f: impl FnMut(&Used)) {
    v.each(|b: &Block| {
        if b.byte & !MARK != USED {
            return;
        }
        let h = b.history();
        let (caller, seq, tid) = match (b.zone(), h) {
            // A zone block's history not written yet (a fresh slot's zeros, or the last
            // user's, freed): the block is being allocated right now.
            (Some(_), Some(d)) if d.alloc_seq == 0 || d.free_seq != 0 => {
                (d.alloc_caller, IN_FLIGHT, d.alloc_tid)
            }
            (_, Some(d)) => (d.alloc_caller, d.alloc_seq, d.alloc_tid),
            (_, None) => (0, 0, 0),
        };
        // A block the program tried to free (the free was refused) is not a leak.
        if crate::heap::refused::contains(b.user, h.map_or(0, |d| d.alloc_seq)) {
            return;
        }
        f(&Used {
            state: b.state_byte(),
            user: b.user,
            size: b.size,
            caller,
            origin: b.origin,
            seq,
            tid,
        });
    });
}

#[derive(Clone, Copy)]
struct Site {
    caller: usize,
    origin: u8,
    bytes: usize,
    count: usize,
    example: usize,
    example_size: usize,
    seq: u64,
    tid: u32,
}

/// Finds and reports unreachable blocks (and reachable ones with `all`). Returns the number of
/// leaked blocks.
pub fn report_at_exit(all: bool) -> usize {
    // The current thread's stack is scanned from here up: the scanner's own frames (below)
    // hold block addresses of their own and must not count as references.
    let marker = 0usize;
    let sp = core::hint::black_box(&marker) as *const usize as usize;
    // Take every lock (bounded: a thread stuck inside malloc at exit makes us give up).
    let Some(view) = View::take_all() else {
        let mut l: Line<160> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: the heap stayed busy at exit\n");
        l.report();
        return 0;
    };
    scan_and_report(&view, all, sp)
}

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

fn scan_and_report(view: &View, all: bool, sp: usize) -> usize {
    // Our own memory that the page map does not mark (META marks the rest): it holds no
    // reference of the program's, and its guards fault. Counted first, to size the scratch.
    let nchunks: usize = view.arenas().map(|a| a.meta.chunk_count()).sum();
    let mut nleaves = 0;
    pagemap::for_each_table(|_, _| nleaves += 1);
    let skip_cap = 2 + nleaves + crate::large::CACHE_SLOTS + nchunks;
    let stack_bytes = STACK_CAP * 8;
    let skip_off = stack_bytes + SCRATCH;
    let scratch_len = skip_off + skip_cap * core::mem::size_of::<(usize, usize)>();
    let Some(base) = crate::pagemap::map_internal(scratch_len) else {
        let mut l: Line<160> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: no memory for its scratch space\n");
        l.report();
        return 0;
    };
    let stack = base as *mut usize;
    let mut s = Scan {
        view,
        stack,
        len: 0,
        overflow: false,
        lo: usize::MAX,
        hi: 0,
    };
    // Bounds of our blocks (a cheap filter before the page map). `lo` is kept one below the
    // lowest block: this frame is scanned too, and must not hold a block's own address.
    each_used(view, |b| {
        s.lo = s.lo.min(b.user - 1);
        s.hi = s.hi.max(b.user + b.size.max(1));
    });
    // SAFETY: the end of the scratch mapping, room for skip_cap ranges, used by nothing else.
    let mut skip = Ranges::new(unsafe {
        core::slice::from_raw_parts_mut((base as usize + skip_off) as *mut (usize, usize), skip_cap)
    });
    let mut add = |b: usize, l: usize| skip.add(b, l);
    // The address-space quarantine's ring, the page map's tables, the zones' metadata.
    let (b, l) = crate::guard::ring_range();
    add(b, l);
    // The library's own statics: `.bss` ends in an anonymous mapping, which the path test
    // below does not recognise. Its pointers are our bookkeeping, not the program's.
    if let Some((lo, hi)) = crate::sys::image::writable_range() {
        add(lo, hi - lo);
    }
    pagemap::for_each_table(&mut add);
    for a in view.arenas() {
        a.meta.for_each_chunk(&mut add);
    }
    // Nor do the freed LARGE ranges kept for reuse (their stale contents would hide leaks, and
    // reading their never-touched pages would fault them in).
    if let Some(l) = view.large() {
        l.for_each_cached(&mut add);
    }
    // (Ranges nest: the page map's first level lies in the library's statics.)
    skip.seal();
    let skipped = |x: usize| skip.contains(x);
    let mut reader = Reader::Copy;
    // Files with an executable mapping: loaded modules (for the direct reader only).
    let mut modules = [0u64; MAX_MODULES];
    let mut nmodules = 0;
    crate::maps::for_each(|m| {
        if m.executable && m.path.first() == Some(&b'/') && nmodules < MAX_MODULES {
            modules[nmodules] = path_hash(m.path);
            nmodules += 1;
        }
        true
    });
    // SAFETY: the SCRATCH bytes after the mark stack, in the mapping made above and used by
    // nothing else.
    let scratch = unsafe {
        core::slice::from_raw_parts_mut((base as usize + stack_bytes) as *mut u8, SCRATCH)
    };
    let page = sys::page_size();
    crate::maps::for_each(|m| {
        if !m.readable || !m.writable || m.shared {
            return true;
        }
        if m.path.starts_with(b"/dev/")
            || m.path.starts_with(b"[vvar")
            || m.path.starts_with(b"[vsyscall")
        {
            return true;
        }
        if m.path.windows(12).any(|w| w == b"libft_malloc") {
            return true;
        }
        let file = m.path.first() == Some(&b'/');
        let mut a = m.start;
        if sp >= m.start && sp < m.end {
            a = sp & !7;
        }
        while a < m.end {
            // A run of pages to read: not ours, not skipped, at most SCRATCH bytes.
            let eligible = |x: usize| pagemap::get(x) == 0 && !skipped(x);
            if !eligible(a) {
                a = ((a & !(page - 1)) + page).min(m.end);
                continue;
            }
            let mut end = ((a & !(page - 1)) + page).min(m.end);
            while end < m.end && end - a < SCRATCH && eligible(end) {
                end = (end + page).min(m.end);
            }
            let end = end.min(a + SCRATCH);
            if reader == Reader::Copy {
                match sys::read_own(a, end - a, scratch) {
                    Ok(n) => {
                        s.words(&scratch[..n & !7]);
                        if n < end - a {
                            // The page at a + n cannot be read: skip it.
                            a = (((a + n) & !(page - 1)) + page).min(m.end);
                            continue;
                        }
                    }
                    Err(libc::EFAULT) => {
                        a = ((a & !(page - 1)) + page).min(m.end);
                        continue;
                    }
                    Err(_) => reader = Reader::Direct,
                }
            }
            if reader == Reader::Direct {
                if file && !modules[..nmodules].contains(&path_hash(m.path)) {
                    // Possibly past the end of its file: reading it could raise SIGBUS.
                    return true;
                }
                s.range(a, end);
            }
            a = end;
        }
        true
    });
    s.drain();
    while s.overflow {
        s.overflow = false;
        each_used(view, |b| {
            // SAFETY: a used block's state byte (every lock held).
            if unsafe { *b.state } & MARK != 0 {
                s.range(b.user, b.user + b.size);
                s.drain();
            }
        });
    }
    // Group the unmarked (leaked) and, with `all`, the marked (reachable) blocks by site.
    let mut sites = [Site {
        caller: 0,
        origin: 0,
        bytes: 0,
        count: 0,
        example: 0,
        example_size: 0,
        seq: 0,
        tid: 0,
    }; MAX_SITES];
    let mut nsites;
    let mut leaked = 0usize;
    let mut leaked_bytes = 0usize;
    let mut reach = 0usize;
    let mut reach_bytes = 0usize;
    let mut vanished = 0usize;
    let mut vanished_bytes = 0usize;
    for pass in 0..2 {
        if pass == 1 && !all {
            break;
        }
        nsites = 0;
        each_used(view, |b| {
            let &Used {
                state,
                user,
                size,
                caller,
                origin,
                seq,
                tid,
            } = b;
            // SAFETY: state byte of a used block (every lock held).
            let marked = unsafe { *state } & MARK != 0;
            if pass == 0 {
                if marked {
                    reach += 1;
                    reach_bytes += size;
                    return;
                }
                if of_vanished_thread(seq, tid) {
                    vanished += 1;
                    vanished_bytes += size;
                    return;
                }
                if seq == IN_FLIGHT {
                    // Being allocated by a thread still running at exit.
                    return;
                }
                leaked += 1;
                leaked_bytes += size;
            } else if !marked {
                return;
            }
            let mut found = false;
            for site in sites[..nsites].iter_mut() {
                if site.caller == caller && site.origin == origin {
                    site.bytes += size;
                    site.count += 1;
                    found = true;
                    break;
                }
            }
            if !found && nsites < MAX_SITES {
                sites[nsites] = Site {
                    caller,
                    origin,
                    bytes: size,
                    count: 1,
                    example: user,
                    example_size: size,
                    seq: if seq == IN_FLIGHT { 0 } else { seq },
                    tid,
                };
                nsites += 1;
            }
        });
        sites[..nsites].sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes));
        for site in &sites[..nsites] {
            let mut l: Line<700> = Line::new();
            prefix(&mut l).s(if pass == 0 {
                b"LEAK: " as &[u8]
            } else {
                b"REACHABLE: "
            });
            l.u(site.bytes as u64)
                .s(b" bytes in ")
                .u(site.count as u64)
                .s(b" block(s) allocated by ");
            l.s(crate::block::Op::from_u8(site.origin)
                .unwrap_or(crate::block::Op::Malloc)
                .call_name()
                .as_bytes())
                .s(b"() from ");
            crate::callstack::write_headline(&mut l, site.caller);
            l.c(b'\n');
            l.report();
            l.clear();
            prefix(&mut l)
                .s(b"  e.g. ")
                .x(site.example)
                .s(b" (")
                .u(site.example_size as u64)
                .s(b" bytes), allocated at event #");
            l.u(site.seq).s(b", thread ").u(site.tid as u64).c(b'\n');
            l.report();
            crate::callstack::write_frames(site.caller);
        }
    }
    if leaked > 0 || all {
        let mut l: Line<300> = Line::new();
        prefix(&mut l).s(if leaked > 0 {
            b"LEAK SUMMARY: " as &[u8]
        } else {
            b"leak summary: "
        });
        l.u(leaked_bytes as u64)
            .s(b" bytes in ")
            .u(leaked as u64)
            .s(b" unreachable block(s); ");
        l.u(reach_bytes as u64)
            .s(b" bytes in ")
            .u(reach as u64)
            .s(b" block(s) still reachable");
        if vanished > 0 {
            l.s(b"; ")
                .u(vanished_bytes as u64)
                .s(b" bytes in ")
                .u(vanished as u64)
                .s(b" unreachable block(s) of threads that fork() left behind, not counted");
        }
        l.c(b'\n');
        l.report();
    }
    // Clear the marks.
    each_used(view, |b| {
        // SAFETY: as above.
        unsafe { *b.state &= !MARK };
    });
    // SAFETY: mapped above, no longer used.
    unsafe { crate::pagemap::unmap_internal(base, scratch_len) };
    leaked
}
