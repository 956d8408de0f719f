//! The allocation log: every call of the malloc family becomes an event (docs/LOGFORMAT.md),
//! counted, kept in the in-memory ring and written to the log destination, all without
//! allocation or stdio. This file owns the event path (`event`) and start-up (`init`); each
//! concept lives in a file of its own, lowest first:
//!
//! - `seq`: event sequence numbers (shared with the heap's block stamps);
//! - `clock`: event times (TSC or vDSO clock);
//! - `counters`: calls per operation, failures, the size histogram;
//! - `ring`: the in-memory ring of binary records;
//! - `history`: the ring read back as human lines (reports, dumps);
//! - `text`: the `E` record and mtrace formatting;
//! - `dest`: which destination and format are in use;
//! - `file`: the log file written through mapped chunks and per-thread cursors;
//! - `sink`: `emit`, and the descriptor destination (`log=stderr|fd:N`);
//! - `stacks`: the `S` records (which call stacks the file has defined);
//! - `modules`: the `M` records (the module table itself is `maps`');
//! - `open`: opening the destination and its header;
//! - `fork_exit`: the log across fork and at exit.
//!
//! # Invariants
//! `ON` is set once during init (single-threaded) and never cleared in this process, except
//! that the fork child may switch its file sink off; with it clear, `event` is one branch.

mod clock;
mod counters;
mod dest;
mod file;
mod fork_exit;
mod history;
mod modules;
mod open;
mod ring;
pub mod seq;
mod sink;
mod stacks;
mod text;

pub use counters::{HIST_BUCKETS, allocations, calls, failures, hist, hist_range};
pub use file::{bus_fault, file_id};
pub use fork_exit::{close_at_exit, lock_for_fork, reset_in_child, unlock_after_fork};
pub use history::{block_history, dump_recent, last_freed_by, report_history};
pub use open::expand;

use crate::config::{Config, LogFormat};
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicBool, Ordering};
use dest::{MTRACE, SINK, SINK_MAP, SINK_NONE, SINK_PENDING, SPEC};
use ft_format::Op;
use ring::Event;

/// Debugging is on: events are counted, kept in the ring and (maybe) written.
static ON: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Called once during init (single-threaded) when MALLOC_DEBUG is set.
pub fn init(c: &Config) {
    clock::start_tsc();
    clock::START_NS.store(sys::now_ns(), Ordering::Relaxed);
    MTRACE.store(c.log_format == LogFormat::Mtrace, Ordering::Relaxed);
    let n = if c.ring == 0 {
        crate::config::DEFAULT_RING
    } else {
        c.ring.min(1 << 24)
    };
    ring::init(n.next_power_of_two());
    seq::set_batched(!c.log.is_set());
    ON.store(true, Ordering::Release);
    if !c.log.is_set() {
        return;
    }
    crate::maps::init_modules();
    stacks::init(crate::depot::max_id());
    // SAFETY: single-threaded init.
    unsafe { SPEC.set(c.log) };
    if let Some(key) = sys::thread_key_create(file::thread_exit) {
        file::KEY.store(key as u64, Ordering::Relaxed);
    }
    open::open_sink(c.log.as_bytes(), 0);
}

/// One event: called by every entry point after the operation (failures have out = 0).
#[inline(always)]
pub fn event(op: Op, inp: usize, out: usize, size: usize, align: usize, caller: usize) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    event_slow(op, inp, out, size, align, caller);
}

#[inline(never)]
fn event_slow(op: Op, inp: usize, out: usize, size: usize, align: usize, site: usize) {
    let seq = seq::take_seq();
    let tid = tls::tid();
    counters::count(op, size, out);
    // Only the log's records need a time: events kept for reports alone go by number (a
    // clock read is a tenth of what `MALLOC_DEBUG=1` adds to a small allocation).
    let sink = SINK.load(Ordering::Relaxed);
    let t = if sink == SINK_NONE {
        ring::NO_TIME
    } else {
        clock::clock_ns().saturating_sub(clock::START_NS.load(Ordering::Relaxed))
    };
    let mut e = Event {
        seq,
        t,
        tid,
        op,
        align,
        inp,
        out,
        size,
        caller: 0,
        caller2: 0,
    };
    ring::put(&e, site);
    match sink {
        SINK_NONE => return,
        SINK_PENDING if !fork_exit::claim_pending() => {
            fork_exit::drop_pending();
            return;
        }
        _ => {}
    }
    let mut one = [0usize; 1];
    let frames = crate::site::frames(site, &mut one);
    let caller = frames.first().copied().unwrap_or(0);
    e.caller = caller;
    e.caller2 = frames.get(1).copied().unwrap_or(0);
    modules::check_caller(caller);
    if !op.logged() {
        return; // not a record of the file formats
    }
    let mtrace = MTRACE.load(Ordering::Relaxed);
    let stack = if mtrace {
        0
    } else {
        crate::site::id(site).unwrap_or(0)
    };
    if stack != 0 && stacks::first_time(stack) {
        define_stack(stack, frames);
    }
    if !mtrace && SINK.load(Ordering::Relaxed) == SINK_MAP && file::text_in_place(&e, stack) {
        return;
    }
    // A new chunk, mtrace or an fd sink: system calls, which must not change the program's errno.
    let _keep = sys::ErrnoGuard::new();
    let mut l = text::Fast::new();
    if mtrace {
        text::mtrace_line(&mut l, &e);
    } else {
        text::text_line(&mut l, &e, stack);
    }
    sink::emit(l.as_bytes());
}

/// Writes the `S` record of a stack that this file's events had not named yet. Its frames are
/// checked against the module table first, so the `M` record of a module seen only deeper in a
/// stack still comes before the end of the file.
#[cold]
fn define_stack(id: u32, frames: &[usize]) {
    for &f in frames.iter().skip(1) {
        modules::check_caller(f);
    }
    let _keep = sys::ErrnoGuard::new();
    let mut l: crate::fmt::Line<1400> = crate::fmt::Line::new();
    stacks::record(&mut l, id, frames);
    sink::emit(l.as_bytes());
}
