//! Leak detection at exit, as LeakSanitizer does it: a conservative mark from the roots (every
//! readable, writable, private mapping that is not ours — modules' data, thread stacks from
//! their stack pointer, TLS — found in /proc/self/maps), following every word that points into
//! a live block (interior pointers count), transitively. Live blocks nothing reaches are
//! reported, grouped by allocation site, largest first.
//!
//! # Invariants
//! Runs with every arena lock and the LARGE lock held; the mark is bit 7 of a block's state
//! and is cleared before the locks are released.

use crate::block::USED;
use crate::fmt::{Line, prefix};
use crate::heap::{ARENAS, MAX_ARENAS, NARENAS};
use crate::large::{LARGE, Large};
use crate::pagemap;
use crate::sys;
use crate::zone::Zone;
use core::sync::atomic::Ordering;

const MARK: u8 = 0x80;
const STACK_CAP: usize = 1 << 20;
const MAX_SITES: usize = 512;

struct Scan {
    stack: *mut usize,
    len: usize,
    overflow: bool,
    lo: usize,
    hi: usize,
}

/// State byte of the block holding `w`, with its extent, if `w` points into a used block.
fn block_of(w: usize) -> Option<(*mut u8, usize, usize)> {
    let z = match pagemap::decode(pagemap::get(w)) {
        pagemap::Owner::None => return None,
        pagemap::Owner::Zone { zone, .. } => zone as *mut Zone,
        pagemap::Owner::Large(d) => {
            let d = d as *mut Large;
            // SAFETY: descriptors are never unmapped; all locks are held.
            unsafe {
                if (*d).user == 0 || (*d).state & !MARK != USED {
                    return None;
                }
                if w < (*d).user || w >= (*d).user + (*d).size.max(1) {
                    return None;
                }
                return Some((&raw mut (*d).state, (*d).user, (*d).size));
            }
        }
    };
    // SAFETY: the entry is current (locks held), so z is a live zone.
    unsafe {
        let i = (*z).index_of(w)?;
        let m = (*z).meta(i);
        if m.state & !MARK != USED {
            return None;
        }
        let user = (*z).slot_addr(i) + m.front as usize;
        if w < user || w >= user + (m.size as usize).max(1) {
            return None;
        }
        Some((&raw mut m.state, user, m.size as usize))
    }
}

impl Scan {
    fn visit(&mut self, w: usize) {
        if w <= self.lo || w >= self.hi {
            return;
        }
        if let Some((st, user, size)) = block_of(w) {
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
                let _ = size;
            } else {
                self.overflow = true;
            }
        }
    }

    /// Scans the words of `[from, to)`.
    fn range(&mut self, from: usize, to: usize) {
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
            if let Some((_, u, size)) = block_of(user) {
                self.range(u, u + size);
            }
        }
    }
}

fn for_each_used(mut f: impl FnMut(*mut u8, usize, usize, usize, u8, u64, u32)) {
    let n = NARENAS.load(Ordering::Relaxed);
    for a in ARENAS.iter().take(n) {
        // SAFETY: all locks are held by report_at_exit.
        let g = unsafe { a.get_unlocked() };
        let mut z = g.all;
        while !z.is_null() {
            // SAFETY: live zones (locks held).
            unsafe {
                for i in 0..(*z).hiwater as usize {
                    let m = (*z).meta(i);
                    if m.state & !MARK == USED {
                        let d = (*z)
                            .dbg(i)
                            .map(|d| d.get())
                            .map(|d| (d.alloc_caller, d.alloc_seq, d.alloc_tid))
                            .unwrap_or((0, 0, 0));
                        let user = (*z).slot_addr(i) + m.front as usize;
                        f(
                            &raw mut m.state,
                            user,
                            m.size as usize,
                            d.0,
                            m.origin,
                            d.1,
                            d.2,
                        );
                    }
                }
                z = (*z).all_next;
            }
        }
    }
    // SAFETY: locks held.
    let l = unsafe { LARGE.get_unlocked() };
    let mut d = l.live;
    while !d.is_null() {
        // SAFETY: live descriptors (lock held).
        unsafe {
            if (*d).state & !MARK == USED {
                f(
                    &raw mut (*d).state,
                    (*d).user,
                    (*d).size,
                    (*d).dbg.alloc_caller,
                    (*d).origin,
                    (*d).dbg.alloc_seq,
                    (*d).dbg.alloc_tid,
                );
            }
            d = (*d).next;
        }
    }
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
    let narenas = NARENAS.load(Ordering::Relaxed);
    // Take every lock (bounded: a thread stuck inside malloc at exit makes us give up).
    let mut held = 0;
    for a in ARENAS.iter().take(narenas) {
        match a.try_lock(2000) {
            Some(g) => {
                core::mem::forget(g);
                held += 1;
            }
            None => break,
        }
    }
    let large_ok = if held == narenas {
        match LARGE.try_lock(2000) {
            Some(g) => {
                core::mem::forget(g);
                true
            }
            None => false,
        }
    } else {
        false
    };
    let leaked = if held == narenas && large_ok {
        let r = scan_and_report(all, sp);
        // SAFETY: taken above on this thread.
        unsafe { LARGE.force_unlock() };
        r
    } else {
        let mut l: Line<160> = Line::new();
        prefix(&mut l).s(b"WARNING: leak check skipped: the heap stayed busy at exit\n");
        l.report();
        0
    };
    for a in ARENAS.iter().take(held) {
        // SAFETY: taken above on this thread.
        unsafe { a.force_unlock() };
    }
    let _ = MAX_ARENAS;
    leaked
}

fn scan_and_report(all: bool, sp: usize) -> usize {
    let stack_bytes = STACK_CAP * 8;
    let stack = sys::map(stack_bytes)
        .map(|p| p as *mut usize)
        .unwrap_or(core::ptr::null_mut());
    if !stack.is_null() {
        pagemap::set_range(stack as usize, stack_bytes, pagemap::META);
    }
    let mut s = Scan {
        stack,
        len: 0,
        overflow: false,
        lo: usize::MAX,
        hi: 0,
    };
    // Bounds of our blocks (a cheap filter before the page map). `lo` is kept one below the
    // lowest block: this frame is scanned too, and must not hold a block's own address.
    for_each_used(|_, user, size, _, _, _, _| {
        s.lo = s.lo.min(user - 1);
        s.hi = s.hi.max(user + size.max(1));
    });
    // Our own big tables hold no block addresses: not roots.
    let mut skip = [(0usize, 0usize); 128];
    let mut nskip = 0;
    skip[0] = crate::guard::ring_range();
    nskip += 1;
    pagemap::for_each_table(|b, l| {
        if nskip < skip.len() {
            skip[nskip] = (b, l);
            nskip += 1;
        }
    });
    // Nor do the freed LARGE ranges kept for reuse (their stale contents would hide leaks, and
    // reading their never-touched pages would fault them in).
    // SAFETY: the LARGE lock is held by report_at_exit.
    unsafe { LARGE.get_unlocked() }.for_each_cached(|b, l| {
        if nskip < skip.len() {
            skip[nskip] = (b, l);
            nskip += 1;
        }
    });
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
        let page = sys::page_size();
        let mut a = m.start;
        if sp >= m.start && sp < m.end {
            a = sp & !7;
        }
        while a < m.end {
            let pg_end = ((a & !(page - 1)) + page).min(m.end);
            if pagemap::get(a) == 0 && !skip[..nskip].iter().any(|&(b, l)| a >= b && a < b + l) {
                s.range(a, pg_end);
            }
            a = pg_end;
        }
        true
    });
    s.drain();
    while s.overflow {
        s.overflow = false;
        for_each_used(|st, user, size, _, _, _, _| {
            // SAFETY: st is a used block's state byte (locks held).
            if unsafe { *st } & MARK != 0 {
                s.range(user, user + size);
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
    for pass in 0..2 {
        if pass == 1 && !all {
            break;
        }
        nsites = 0;
        for_each_used(|st, user, size, caller, origin, seq, tid| {
            // SAFETY: state byte of a used block (locks held).
            let marked = unsafe { *st } & MARK != 0;
            if pass == 0 {
                if marked {
                    reach += 1;
                    reach_bytes += size;
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
                    seq,
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
            l.s(crate::block::Op::from_u8(site.origin).call_name())
                .s(b"() from ");
            crate::maps::describe(site.caller, &mut l);
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
            .s(b" block(s) still reachable\n");
        l.report();
    }
    // Clear the marks.
    for_each_used(|st, _, _, _, _, _, _| {
        // SAFETY: as above.
        unsafe { *st &= !MARK };
    });
    if !stack.is_null() {
        pagemap::clear_range(stack as usize, stack_bytes);
        // SAFETY: mapped above, no longer used.
        unsafe { sys::unmap(stack as *mut u8, stack_bytes) };
    }
    leaked
}
