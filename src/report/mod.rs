//! Error reports: one block per error on stderr (or `report=PATH`), first line stable and
//! greppable (`ft_malloc[PID]: ERROR: <kind> ...`), then what a person needs: the block, its
//! zone, the caller as module+offset (for addr2line), when it was allocated and freed. Then the
//! `on_error` policy. With debugging off (`MALLOC_DEBUG` unset) a bad pointer is refused with
//! one WARNING line and the program goes on.
//!
//! # Invariants
//! Nothing here allocates or takes an allocator lock; callers drop their locks first. A second
//! error while a report is being written on the same thread aborts at once.

use crate::block::{Info, Op, State};
use crate::config;
use crate::fmt::{Line, prefix};
use crate::sys;
use parts::{begin, block_desc, called_from, end, history, with_room};

mod block;
mod parts;
pub use block::{bad_block, bad_block_at_exit};
pub use parts::{
    Bad, ERRORS, ErrorKind, begin_guard_fault, begin_wild_pointer, block_kind, end_fault,
    history_pub, summary_at_exit,
};

/// A pointer that is not a live block of ours was passed to `op`.
pub fn bad_pointer(op: Op, p: usize, bad: Bad, info: Option<&Info>, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    let cfg = config::get();
    crate::log::event(op, p, 0, 0, 0, caller);
    // With any debugging on (check, guard, sample...) a bad free is a bug to report in full;
    // only the plain allocator refuses it with one WARNING line and goes on.
    if !cfg.enabled {
        let mut l: Line<300> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: ")
            .s(op.call_name().as_bytes())
            .s(b"(): ");
        what(&mut l, p, bad, info);
        l.s(if matches!(op, Op::Realloc | Op::Reallocarray) {
            b"; returning NULL\n"
        } else {
            b"; ignored\n"
        });
        l.report();
        return;
    }
    let k = if op == Op::Realloc && bad == Bad::DoubleFree {
        ErrorKind::PointerIntoFreed
    } else {
        bad.kind()
    };
    if !begin(k, caller) {
        return;
    }
    with_room(|| bad_pointer_lines(op, p, bad, info, caller));
    end();
}

fn bad_pointer_lines(op: Op, p: usize, bad: Bad, info: Option<&Info>, caller: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: ");
    match (bad, op) {
        (Bad::DoubleFree, Op::Realloc | Op::Reallocarray) => {
            l.s(b"realloc of freed block ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        (Bad::DoubleFree, Op::UsableSize) => {
            l.s(b"malloc_usable_size of freed block ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        (Bad::DoubleFree, _) => {
            l.s(b"double free of ").x(p);
            if let Some(i) = info {
                block_desc(&mut l, i);
            }
        }
        _ => {
            l.s(b"invalid pointer ");
            what(&mut l, p, bad, info);
        }
    }
    l.s(b" in ").s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
    called_from(op, caller);
    if let Some(i) = info {
        history(i);
    }
}

fn what<const N: usize>(l: &mut Line<N>, p: usize, bad: Bad, info: Option<&Info>) {
    match bad {
        Bad::NotOurs => {
            l.x(p)
                .s(b" (not allocated by ft_malloc: stack, global, foreign or never allocated)");
        }
        Bad::DoubleFree => {
            l.s(b"double free of ").x(p);
            if let Some(i) = info {
                block_desc(l, i);
            }
        }
        Bad::Interior | Bad::InsideFreed | Bad::Misaligned => {
            l.x(p);
            if let Some(i) = info {
                l.s(if bad == Bad::Misaligned {
                    b" (misaligned, " as &[u8]
                } else {
                    b" ("
                });
                if p >= i.user {
                    l.u((p - i.user) as u64).s(b" bytes into the ");
                } else {
                    l.u((i.user - p) as u64).s(b" bytes before the ");
                }
                l.s(if i.state == State::Used {
                    b"" as &[u8]
                } else {
                    b"freed "
                });
                l.u(i.size as u64)
                    .s(b"-byte ")
                    .s(block_kind(i))
                    .s(b" block at ")
                    .x(i.user)
                    .c(b')');
            } else {
                l.s(b" (misaligned)");
            }
        }
        _ => {
            l.x(p);
        }
    }
}

/// A quarantined block's free fill was changed.
pub fn write_after_free(info: &Info, addr: usize) {
    let _e = sys::ErrnoGuard::new();
    if !begin(ErrorKind::WriteAfterFree, info.dbg.free_caller) {
        return;
    }
    with_room(|| write_after_free_lines(info, addr));
    end();
}

fn write_after_free_lines(info: &Info, addr: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: write after free: ").x(info.user);
    block_desc(&mut l, info);
    l.s(b" modified at offset ")
        .u((addr - info.user) as u64)
        .s(b" after it was freed (found when it left quarantine)\n");
    l.report();
    l.clear();
    prefix(&mut l)
        .s(b"  bytes at offset ")
        .u((addr - info.user) as u64)
        .s(b":");
    let stop = (addr + 16).min(info.user + info.size);
    for a in addr..stop {
        // SAFETY: the quarantined block is ours and readable.
        l.c(b' ').hx(unsafe { *(a as *const u8) } as u64, 2);
    }
    l.s(b" (expected ")
        .hx(crate::debug::canary::FREE_FILL as u64, 2)
        .s(b")\n");
    l.report();
    history(info);
}

/// A size above PTRDIFF_MAX: a negative length in disguise.
pub fn absurd_size(op: Op, size: usize, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    if !config::get().check || !begin(ErrorKind::AbsurdSize, caller) {
        return;
    }
    let mut l: Line<300> = Line::new();
    prefix(&mut l)
        .s(b"ERROR: absurd size ")
        .u(size as u64)
        .s(b" (")
        .i(size as i64)
        .s(b" as a signed value) in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
    with_room(|| called_from(op, caller));
    end();
}
