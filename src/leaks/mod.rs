//! Leak detection at exit, as LeakSanitizer does it: a conservative mark from the roots (every
//! readable, writable, private mapping that is not ours — modules' data, thread stacks from
//! their stack pointer, TLS — found in /proc/self/maps), following every word that points into
//! a live block (interior pointers count), transitively. Live blocks nothing reaches are
//! reported, grouped by allocation site (the whole call stack when stacks are kept), largest
//! first: the direct leaks, then the indirect ones, which only other leaked blocks point to
//! (`classify`; valgrind's "definitely" and "indirectly lost"). The sites whose stack a
//! `suppress=FILE` pattern matches are counted apart (`sites`, `suppress`).
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
//! state byte (`mark::BITS`) and are cleared before the locks are released. The lineage of
//! forks (`used`) changes only in the fork handlers, when a single thread runs in the process
//! (child) or every lock of ours is held (prepare).

mod mark;
mod roots;
mod sites;
mod suppress;
mod threads;
mod used;

use used::{each_used, each_used_but, is_leak};

pub use suppress::check as check_suppressions;
pub use used::{after_fork_child, before_fork};

use crate::fmt::{Line, prefix};
use crate::pagemap;
use crate::ranges::Ranges;
use crate::sys;
use crate::walk::View;
use mark::{BITS, INDIRECT, MARK, Mode, SEEN, STACK_CAP, Scan};
use roots::{MAX_MODULES, SCRATCH};

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
    // (Threads still running may map more caches meanwhile: room for a few.)
    let mut ncaches = 8;
    crate::heap::each_cache_mapping(|_, _| ncaches += 1);
    let skip_cap = 2 + nleaves + crate::large::CACHE_SLOTS + nchunks + nzones + ncaches;
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
    // The thread caches: their arrays keep the addresses of slots they handed out.
    crate::heap::each_cache_mapping(&mut add);
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
    // SAFETY: the scratch bytes, page-aligned and no longer used by the scan, hold
    // `sites::MAX` sites (each written before it is read).
    let leaked = unsafe { sites::report(view, scratch.as_mut_ptr(), all) };
    // Clear the marks.
    each_used(view, |b| {
        // SAFETY: as above.
        unsafe { *b.state &= !BITS };
    });
    // SAFETY: mapped above, no longer used.
    unsafe { crate::pagemap::unmap_internal(base, scratch_len) };
    leaked
}
