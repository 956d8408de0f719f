//! The leak check's report, once the marks are set: the leaked blocks (and, with `leaks=all`,
//! the reachable ones) grouped by allocation site, direct leaks first, largest first; the sites
//! a suppression pattern matches left out and counted apart; the summary.

use super::mark::{INDIRECT, MARK};
use super::roots::SCRATCH;
use super::suppress::Suppressions;
use super::used::{IN_FLIGHT, Used, each_used, of_vanished_thread};
use crate::fmt::{Line, prefix};
use crate::walk::View;

/// Sites kept at most (the blocks of others are counted, not listed).
const MAX: usize = 512;

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
    /// The suppression pattern that matched the site, plus one (0: none).
    suppressed: u16,
}
const _: () = assert!(MAX * core::mem::size_of::<Site>() <= SCRATCH);
const _: () = assert!(super::suppress::MAX < u16::MAX as usize);

/// (bytes, blocks) of each kind the report counts.
#[derive(Clone, Copy, Default)]
struct Totals {
    leaked: (usize, usize),
    indirect: (usize, usize),
    reachable: (usize, usize),
    vanished: (usize, usize),
    suppressed: (usize, usize),
}

fn add(t: &mut (usize, usize), bytes: usize, blocks: usize) {
    t.0 += bytes;
    t.1 += blocks;
}

fn sub(t: &mut (usize, usize), bytes: usize, blocks: usize) {
    t.0 -= bytes;
    t.1 -= blocks;
}

/// Writes the report; returns the number of leaked blocks reported (suppressed ones left out).
/// # Safety
/// `scratch` is `SCRATCH` bytes, page-aligned, that nothing else uses meanwhile; every lock
/// of the heap is held, and the marks are set.
pub(super) unsafe fn report(view: &View, scratch: *mut u8, all: bool) -> usize {
    // SAFETY: per the caller, room for MAX sites; each is written before it is read.
    let sites = unsafe { core::slice::from_raw_parts_mut(scratch as *mut Site, MAX) };
    let cfg = crate::config::get();
    let mut supp = if cfg.suppress.is_set() {
        Suppressions::load(cfg.suppress.as_bytes())
    } else {
        None
    };
    let mut t = Totals::default();
    for pass in 0..2 {
        if pass == 1 && !all {
            break;
        }
        let n = group(view, sites, pass == 0, &mut t);
        let sites = &mut sites[..n];
        if pass == 0
            && let Some(s) = supp.as_mut()
        {
            suppress(s, sites, &mut t);
        }
        // Direct leaks first: the indirect ones are lost with them.
        sites.sort_unstable_by(|a, b| (a.indirect, b.bytes).cmp(&(b.indirect, a.bytes)));
        for site in sites.iter().filter(|s| s.suppressed == 0) {
            write_site(site, pass == 0);
        }
    }
    if let Some(s) = &supp {
        for i in 0..s.n {
            let (bytes, blocks) = s.took(i);
            if blocks == 0 {
                continue;
            }
            let mut l: Line<400> = Line::new();
            prefix(&mut l)
                .s(b"suppressed: ")
                .u(bytes as u64)
                .s(b" bytes in ")
                .u(blocks as u64)
                .s(b" block(s) by leak:")
                .s(s.pattern(i))
                .c(b'\n');
            l.report();
        }
    }
    summary(&t, all);
    t.leaked.1
}

/// Groups the leaked blocks (`leaks`; else the reachable ones) by site into `sites`, counting
/// every used block by kind on the first pass; returns the number of sites.
fn group(view: &View, sites: &mut [Site], leaks: bool, t: &mut Totals) -> usize {
    let mut n = 0;
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
        if leaks {
            if marked {
                add(&mut t.reachable, size, 1);
                return;
            }
            if of_vanished_thread(seq, tid) {
                add(&mut t.vanished, size, 1);
                return;
            }
            if seq == IN_FLIGHT {
                // Being allocated by a thread still running at exit.
                return;
            }
            add(&mut t.leaked, size, 1);
            if kind {
                add(&mut t.indirect, size, 1);
            }
        } else if !marked {
            return;
        }
        if let Some(site) = sites[..n]
            .iter_mut()
            .find(|s| s.caller == caller && s.origin == origin && s.indirect == kind)
        {
            site.bytes += size;
            site.count += 1;
        } else if n < sites.len() {
            sites[n] = Site {
                caller,
                origin,
                bytes: size,
                count: 1,
                example: user,
                example_size: size,
                seq: if seq == IN_FLIGHT { 0 } else { seq },
                tid,
                indirect: kind,
                suppressed: 0,
            };
            n += 1;
        }
    });
    n
}

/// Marks the sites a suppression pattern matches, and moves their blocks from the leaked
/// totals to the suppressed ones.
fn suppress(s: &mut Suppressions, sites: &mut [Site], t: &mut Totals) {
    for site in sites.iter_mut() {
        let mut one = [0usize; 1];
        let frames = crate::site::frames(site.caller, &mut one);
        let Some(i) = s.find(frames) else {
            continue;
        };
        site.suppressed = i as u16 + 1;
        s.take(i, site.bytes, site.count);
        add(&mut t.suppressed, site.bytes, site.count);
        sub(&mut t.leaked, site.bytes, site.count);
        if site.indirect {
            sub(&mut t.indirect, site.bytes, site.count);
        }
    }
}

/// The LEAK (or REACHABLE) line of a site, its example block and its stack.
fn write_site(site: &Site, leak: bool) {
    let mut l: Line<700> = Line::new();
    prefix(&mut l).s(if leak {
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

/// The summary line: `LEAK SUMMARY` when something leaked, else (`leaks=all`, or every leak
/// suppressed) `leak summary`.
fn summary(t: &Totals, all: bool) {
    let leaked = t.leaked.1 > 0;
    if !leaked && !all && t.suppressed.1 == 0 {
        return;
    }
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(if leaked {
        b"LEAK SUMMARY: " as &[u8]
    } else {
        b"leak summary: "
    });
    let amount = |l: &mut Line<400>, (bytes, blocks): (usize, usize), what: &[u8]| {
        l.u(bytes as u64)
            .s(b" bytes in ")
            .u(blocks as u64)
            .s(b" ")
            .s(what);
    };
    amount(&mut l, t.leaked, b"unreachable block(s); ");
    amount(&mut l, t.reachable, b"block(s) still reachable");
    // The parts said only when they count something: separator, (bytes, blocks), what.
    type Part<'a> = (&'a [u8], (usize, usize), &'a [u8]);
    let parts: [Part; 3] = [
        (
            b"; of the unreachable, ",
            t.indirect,
            b"block(s) indirectly lost (only other unreachable blocks point to them)",
        ),
        (b"; ", t.suppressed, b"unreachable block(s) suppressed"),
        (
            b"; ",
            t.vanished,
            b"unreachable block(s) of threads that fork() left behind, not counted",
        ),
    ];
    for (sep, a, what) in parts {
        if a.1 > 0 {
            l.s(sep);
            amount(&mut l, a, what);
        }
    }
    l.c(b'\n');
    l.report();
}
