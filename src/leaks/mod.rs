//! Leak detection at exit, as LeakSanitizer does it: a conservative mark from the roots (every
//! readable, writable, private mapping that is not ours — modules' data, thread stacks from
//! their stack pointer, TLS — found in /proc/self/maps), following every word that points into
//! a live block (interior pointers count), transitively. Live blocks nothing reaches are
//! reported, grouped by allocation site (the whole call stack when stacks are kept), largest
//! first: the direct leaks, then the indirect ones, which only other leaked blocks point to
//! (`classify`; valgrind's "definitely" and "indirectly lost").
//!
//! Roots are read through `process_vm_readv` into a scratch buffer, never directly: a page that
//! cannot be read (a file mapped past the end of its file raises SIGBUS, a range unmapped by
//! another thread meanwhile or under a guard marker SIGSEGV) is skipped, and every readable
//! byte is still scanned, file-backed private mappings included (a module's `.data`, or a
//! program's private file mapping holding pointers). Where the kernel refuses that call
//! (seccomp, a kernel without it) roots are read directly, each page probed first
//! (`sys::pages_readable`), and the only file-backed mappings read are those of a file that
//! also has an executable mapping (a loaded module's data).
//! Pages that hold nothing are not read, which would fault them in: the allocator's own
//! mappings (zones whole, their pages that no block reached included), and, while no swap is
//! in use, the program's anonymous pages that are not resident (never written: the unused part
//! of a thread's stack, a big array never touched). Residency is asked with `mincore`, except
//! under a seccomp filter (`sys::note_seccomp`), which may kill the process for that call.
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
//! Runs with every arena lock and the LARGE lock held; the marks are the top bits of a block's
//! state byte (`mark::BITS`) and are cleared before the locks are released. `FORKS` changes only in the fork handlers,
//! when a single thread runs in the process (child) or every lock of ours is held (prepare).

mod mark;
mod roots;

use crate::block::USED;
use crate::fmt::{Line, prefix};
use crate::pagemap;
use crate::ranges::Ranges;
use crate::sys;
use crate::walk::{Block, View};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use mark::{BITS, INDIRECT, MARK, Mode, SEEN, STACK_CAP, Scan};
use roots::{MAX_MODULES, SCRATCH};

const MAX_SITES: usize = 512;

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
fn each_used(v: &View, f: impl FnMut(&Used)) {
    each_used_but(v, 0, f);
}

/// Every used block but those whose state byte has one of the bits `skip`.
fn each_used_but(v: &View, skip: u8, mut f: impl FnMut(&Used)) {
    v.each(|b: &Block| {
        if b.byte & !BITS != USED || b.byte & skip != 0 {
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
    /// Indirect leaks (pointed to only by other leaked blocks).
    indirect: bool,
}

/// Whether the used block `b` is a leak the report counts: not reached from the roots, not a
/// vanished thread's, not being allocated right now.
fn is_leak(b: &Used) -> bool {
    // SAFETY: a used block's state byte (every lock held).
    let reached = unsafe { *b.state } & MARK != 0;
    !reached && b.seq != IN_FLIGHT && !of_vanished_thread(b.seq, b.tid)
}

/// After the mark from the roots: which leaks are indirect (another leaked block points into
/// them), and, for a cycle of leaked blocks that no other leaked block points into, one block
/// that stands for it as a direct leak (the first the walk meets), so that every indirect leak
/// is reached from a direct one.
fn classify(s: &mut Scan) {
    let view = s.view;
    s.marked = 0;
    each_used_but(view, MARK, |b| {
        if is_leak(b) {
            s.mode = Mode::Indirect(b.user);
            s.range(b.user, b.user + b.size);
        }
    });
    let indirect = s.marked;
    if indirect == 0 {
        return;
    }
    s.mode = Mode::Leaks;
    s.marked = 0;
    each_used_but(view, MARK, |b| {
        // SAFETY: a used block's state byte (every lock held).
        if is_leak(b) && unsafe { *b.state } & INDIRECT == 0 {
            // SAFETY: as above.
            unsafe { *b.state |= SEEN };
            s.range(b.user, b.user + b.size);
            s.drain();
        }
    });
    finish_seen(s);
    // (Every block seen from a direct leak is an indirect one.)
    if s.marked >= indirect {
        return;
    }
    each_used_but(view, MARK, |b| {
        // SAFETY: as above.
        if is_leak(b) && unsafe { *b.state } & (INDIRECT | SEEN) == INDIRECT {
            // SAFETY: as above.
            unsafe { *b.state = (*b.state & !INDIRECT) | SEEN };
            s.range(b.user, b.user + b.size);
            s.drain();
            finish_seen(s);
        }
    });
}

/// Completes a `Mode::Leaks` mark whose stack overflowed: the words of every block it marked,
/// again, until the stack holds them all.
fn finish_seen(s: &mut Scan) {
    let view = s.view;
    while s.overflow {
        s.overflow = false;
        each_used_but(view, MARK, |b| {
            // SAFETY: a used block's state byte (every lock held).
            if unsafe { *b.state } & SEEN != 0 {
                s.range(b.user, b.user + b.size);
                s.drain();
            }
        });
    }
}

/// Finds and reports unreachable blocks (and reachable ones with `all`). Returns the number of
/// leaked blocks. The current thread's stack is scanned from `floor` up: `floor` is in the
/// frame of the library's entry point that asked (`sys::frame_address`), so that neither the
/// scanner's frames nor the dead frames of the work done before it (the check and the drain at
/// exit, which walked blocks) count as references. Nothing below is cleared: a thread's stack
/// may be as small as 16 KiB, or a coroutine's stack inside other memory.
pub fn report_at_exit(all: bool, floor: usize) -> usize {
    // `mincore` tells which pages hold nothing; a seccomp filter may kill the process for it.
    crate::sys::note_seccomp();
    // The roots are found in /proc: without it every block would look leaked.
    let mut any = false;
    crate::maps::for_each(|_| {
        any = true;
        false
    });
    if !any {
        // Why: asked again only now, when it failed.
        let err = match sys::open_maps() {
            Ok(fd) => {
                sys::close(fd);
                libc::ENOENT
            }
            Err(e) => e,
        };
        let mut l: Line<200> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: /proc/self/maps unreadable (");
        if err == libc::ENOENT {
            l.s(b"is /proc mounted?");
        } else {
            l.s(sys::errno_name(err)).s(b": ").s(sys::errno_desc(err));
        }
        l.s(b"), the program's memory could not be scanned\n");
        l.report();
        crate::announce::leak_check_skipped();
        return 0;
    }
    // Take every lock (bounded: a thread stuck inside malloc at exit makes us give up).
    let Some(view) = View::take_all() else {
        let mut l: Line<160> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: the heap stayed busy at exit\n");
        l.report();
        crate::announce::leak_check_skipped();
        return 0;
    };
    scan_and_report(&view, all, floor)
}

fn scan_and_report(view: &View, all: bool, sp: usize) -> usize {
    // Our own memory that the page map does not mark (META marks the rest): it holds no
    // reference of the program's, and its guards fault. Counted first, to size the scratch.
    let nchunks: usize = view.arenas().map(|a| a.meta.chunk_count()).sum();
    let mut nleaves = 0;
    pagemap::for_each_table(|_, _| nleaves += 1);
    let nzones: usize = view.arenas().map(|a| a.zones).sum();
    let skip_cap = 2 + nleaves + crate::large::CACHE_SLOTS + nchunks + nzones;
    let stack_bytes = STACK_CAP * 8;
    // The mapping: the mark stack, the read buffer, the module list, the ranges skipped.
    let modules_off = stack_bytes + SCRATCH;
    let skip_off = modules_off + MAX_MODULES * 8;
    let scratch_len = skip_off + skip_cap * core::mem::size_of::<(usize, usize)>();
    let Some(base) = crate::pagemap::map_internal(scratch_len) else {
        let mut l: Line<160> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: no memory for its scratch space\n");
        l.report();
        crate::announce::leak_check_skipped();
        return 0;
    };
    let stack = base as *mut usize;
    let mut s = Scan {
        view,
        mode: Mode::Roots,
        stack,
        len: 0,
        overflow: false,
        marked: 0,
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
    // The zones' mappings: their blocks are scanned as blocks, and the pages past the last
    // block reached are in no page-map entry but hold nothing (reading them would fault in
    // every page of every zone).
    view.each_zone_mapping(&mut add);
    // Nor do the freed LARGE ranges kept for reuse (their stale contents would hide leaks, and
    // reading their never-touched pages would fault them in).
    if let Some(l) = view.large() {
        l.for_each_cached(&mut add);
    }
    // (Ranges nest: the page map's first level lies in the library's statics.)
    skip.seal();
    // SAFETY: the SCRATCH bytes after the mark stack, in the mapping made above and used by
    // nothing else.
    let scratch = unsafe {
        core::slice::from_raw_parts_mut((base as usize + stack_bytes) as *mut u8, SCRATCH)
    };
    // SAFETY: the module list's bytes, 8-aligned (page-aligned offsets), used by nothing else.
    let modules = unsafe { &mut *((base as usize + modules_off) as *mut [u64; MAX_MODULES]) };
    roots::scan(&mut s, &skip, scratch, modules, sp);
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
    classify(&mut s);
    // Group the unmarked (leaked) and, with `all`, the marked (reachable) blocks by site, in
    // the scratch space the scan is done with (32 KiB: more than a small thread's stack).
    const _: () = assert!(MAX_SITES * core::mem::size_of::<Site>() <= SCRATCH);
    // SAFETY: the scratch bytes, page-aligned and no longer used by the scan, hold MAX_SITES
    // sites; each is written before it is read (`nsites` counts them).
    let sites =
        unsafe { core::slice::from_raw_parts_mut(scratch.as_mut_ptr() as *mut Site, MAX_SITES) };
    let mut nsites;
    let mut leaked = 0usize;
    let mut leaked_bytes = 0usize;
    let mut indirect = 0usize;
    let mut indirect_bytes = 0usize;
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
            let byte = unsafe { *state };
            let marked = byte & MARK != 0;
            let kind = !marked && byte & INDIRECT != 0;
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
                if kind {
                    indirect += 1;
                    indirect_bytes += size;
                }
            } else if !marked {
                return;
            }
            let mut found = false;
            for site in sites[..nsites].iter_mut() {
                if site.caller == caller && site.origin == origin && site.indirect == kind {
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
                    indirect: kind,
                };
                nsites += 1;
            }
        });
        // Direct leaks first: the indirect ones are lost with them.
        sites[..nsites].sort_unstable_by(|a, b| (a.indirect, b.bytes).cmp(&(b.indirect, a.bytes)));
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
            if site.indirect {
                l.s(b", indirectly lost (only leaked blocks point to them)");
            }
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
        if indirect > 0 {
            l.s(b"; of the unreachable, ")
                .u(indirect_bytes as u64)
                .s(b" bytes in ")
                .u(indirect as u64)
                .s(b" block(s) indirectly lost (only other unreachable blocks point to them)");
        }
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
        unsafe { *b.state &= !BITS };
    });
    // SAFETY: mapped above, no longer used.
    unsafe { crate::pagemap::unmap_internal(base, scratch_len) };
    leaked
}
