//! The ring read back for people: one event as a human line, a block's history in reports and
//! in `show_alloc_mem_ex_cmd`, the last events in dumps.

use super::ring::{self, Event};
use crate::fmt::{Line, prefix};
use ft_format::Op;

/// One event as a human line: `#seq t=Tus tid N malloc(24) = 0x... from 0x...` (no `t=`
/// without a log: its events are not timed).
fn human<const N: usize>(l: &mut Line<N>, e: &Event) {
    l.s(b"#").u(e.seq);
    if e.t != ring::NO_TIME {
        l.s(b" t=").u(e.t / 1000).s(b"us");
    }
    l.s(b" tid ").u(e.tid as u64).c(b' ');
    let name = e.op.call_name().as_bytes();
    match e.op {
        Op::Free | Op::Delete | Op::DeleteArr => {
            l.s(name).c(b'(').x(e.inp).s(b")");
            if e.size == 0 {
                l.s(b" refused");
            } else {
                l.s(b" [").u(e.size as u64).s(b" bytes]");
            }
        }
        Op::Realloc | Op::Reallocarray => {
            l.s(name)
                .c(b'(')
                .x(e.inp)
                .s(b", ")
                .u(e.size as u64)
                .s(b") = ")
                .x(e.out);
        }
        Op::Memalign | Op::PosixMemalign | Op::AlignedAlloc => {
            l.s(name)
                .c(b'(')
                .u(e.align as u64)
                .s(b", ")
                .u(e.size as u64)
                .s(b") = ")
                .x(e.out);
        }
        _ => {
            l.s(name).c(b'(');
            if e.size == usize::MAX {
                l.s(b"overflow");
            } else {
                l.u(e.size as u64);
            }
            if e.align != 0 && matches!(e.op, Op::New | Op::NewArr) {
                l.s(b", align ").u(e.align as u64);
            }
            l.s(b") = ").x(e.out);
        }
    }
    l.s(b" from ");
    crate::maps::describe(e.caller, l);
    if e.caller2 != 0 {
        l.s(b" <- ").x(e.caller2);
    }
    l.c(b'\n');
}

fn touches(e: &Event, p: usize) -> bool {
    (e.inp == p && p != 0) || e.out == p
}

/// The block the thread `tid` freed last, among the events of the ring (0 if none is there): a
/// lead for a fault through a pointer loaded from freed memory.
pub fn last_freed_by(tid: u32) -> usize {
    let mut last = 0;
    ring::each(u64::MAX, |e| {
        if e.tid != tid || e.inp == 0 {
            return;
        }
        if e.op.is_free() || (e.op.is_realloc() && e.out != 0 && e.out != e.inp) {
            last = e.inp;
        }
    });
    last
}

/// Prints the events of the in-memory ring that touched the block at `p` (reports): on the
/// report fd, prefixed like the other report lines.
pub fn report_history(p: usize) {
    if !ring::present() || p == 0 {
        return;
    }
    let mut count = 0usize;
    let mut l: Line<320> = Line::new();
    ring::each(u64::MAX, |e| {
        if touches(e, p) {
            count += 1;
        }
    });
    if count == 0 {
        return;
    }
    prefix(&mut l)
        .s(b"  history of ")
        .x(p)
        .s(b" in the last ")
        .u(ring::capacity())
        .s(b" events:\n");
    l.report();
    // The last 16 events on this address.
    let mut skip = count.saturating_sub(16);
    ring::each(u64::MAX, |e| {
        if touches(e, p) {
            if skip > 0 {
                skip -= 1;
                return;
            }
            l.clear();
            prefix(&mut l).s(b"    ");
            human(&mut l, e);
            l.report();
        }
    });
}

/// The events of the ring on block `p` (show_alloc_mem_ex_cmd `block`), on `fd`.
pub fn block_history(p: usize, fd: i32) {
    let mut l: Line<320> = Line::new();
    if !ring::present() {
        l.s(b"history: no event ring (MALLOC_DEBUG is not set)\n");
        l.write_fd(fd);
        return;
    }
    let mut any = false;
    ring::each(u64::MAX, |e| {
        if touches(e, p) {
            if !any {
                l.clear();
                l.s(b"history of ")
                    .x(p)
                    .s(b" (events still in the ring):\n");
                l.write_fd(fd);
                any = true;
            }
            l.clear();
            l.s(b"  ");
            human(&mut l, e);
            l.write_fd(fd);
        }
    });
    if !any {
        l.clear();
        l.s(b"history of ").x(p).s(b": no event in the ring\n");
        l.write_fd(fd);
    }
}

/// The last `n` events of the ring, oldest first, on `fd`.
pub fn dump_recent(fd: i32, n: usize) {
    let mut l: Line<320> = Line::new();
    if !ring::present() {
        l.s(b"log: no event ring (MALLOC_DEBUG is not set)\n");
        l.write_fd(fd);
        return;
    }
    let total = super::counters::events();
    let cap = ring::capacity();
    let n = (n as u64).min(cap);
    l.s(b"Last events (")
        .u(n.min(total))
        .s(b" of ")
        .u(total)
        .s(b"):\n");
    l.write_fd(fd);
    ring::each(n, |e| {
        l.clear();
        l.s(b"  ");
        human(&mut l, e);
        l.write_fd(fd);
    });
}
