//! Reports of a live block that failed a debug check: a changed canary after or before it
//! (heap overflow, underflow), a release by the wrong family, a sized delete of the wrong size,
//! other corruption; found by a call or at exit. The bytes found are shown against the canary
//! expected there.

use super::parts::{Bad, begin, block_desc, called_from, end, history, with_room};
use crate::block::{Info, Op};
use crate::fmt::{Line, prefix};
use crate::sys;

/// A live block failed a debug check (canary, family, sized delete).
pub fn bad_block(op: Op, p: usize, bad: Bad, info: &Info, caller: usize) {
    bad_block_in(Some(op), p, bad, info, caller);
}

/// A live block whose canaries were found changed at exit: no call to name (the first line
/// says `found at exit`), reported once per allocation site (`on_error=continue`).
pub fn bad_block_at_exit(bad: Bad, info: &Info) {
    bad_block_in(None, info.user, bad, info, info.dbg.alloc_caller);
}

fn bad_block_in(call: Option<Op>, p: usize, bad: Bad, info: &Info, caller: usize) {
    let _e = sys::ErrnoGuard::new();
    if !begin(bad.kind(), caller) {
        return;
    }
    let op = call.unwrap_or(Op::Malloc);
    with_room(|| {
        match bad {
            Bad::Overflow(a) => heap_overflow(call, p, a, info),
            Bad::Underflow(a) => heap_underflow(call, p, a, info),
            Bad::Mismatch => mismatch(op, p, info),
            Bad::SizedDelete(s) => sized_delete(op, p, s, info),
            _ => corrupted(op, p, info),
        }
        if call.is_some() {
            called_from(op, caller);
        }
        history(info);
    });
    end();
}

/// `found in CALL()`, or `found at exit` for no call.
fn found_in<const N: usize>(l: &mut Line<N>, call: Option<Op>) {
    match call {
        Some(op) => l.s(b"found in ").s(op.call_name().as_bytes()).s(b"()\n"),
        None => l.s(b"found at exit\n"),
    };
}

/// The canary after the block was changed, first at `a`.
fn heap_overflow(op: Option<Op>, p: usize, a: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: heap overflow: ").x(p);
    block_desc(&mut l, info);
    l.s(b" written past its end at offset ")
        .u((a - info.user) as u64);
    let n = (a - info.user - info.size) as u64 + 1;
    let unit: &[u8] = if n == 1 { b" byte" } else { b" bytes" };
    l.s(b" (").u(n).s(unit).s(b" past the end), ");
    found_in(&mut l, op);
    l.report();
    let end = info.slot_end.min(info.user + info.size + 16);
    bytes_vs_canary(info.user + info.size, end, a, info.user);
}

/// The canary before the block was changed, first at `a`.
fn heap_underflow(op: Option<Op>, p: usize, a: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: heap underflow: ").x(p);
    block_desc(&mut l, info);
    l.s(b" written ")
        .u((info.user - a) as u64)
        .s(b" bytes before its start, ");
    found_in(&mut l, op);
    l.report();
    // The 16 bytes before the block, or from the first changed one (a guarded block's front
    // canary is the rest of its page).
    let from = info.slot.max(a.min(info.user.saturating_sub(16)));
    bytes_vs_canary(from, info.user.min(from + 16), a, info.user);
}

/// Released by the wrong family.
fn mismatch(op: Op, p: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: alloc-dealloc mismatch: ").x(p);
    block_desc(&mut l, info);
    l.s(b" allocated by ")
        .s(info.origin.call_name().as_bytes())
        .s(b"(), released by ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// A sized delete whose size `s` is not the block's.
fn sized_delete(op: Op, p: usize, s: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: sized delete mismatch: ").x(p);
    block_desc(&mut l, info);
    l.s(b" released with size ").u(s as u64).s(b" in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// Any other finding on a live block.
fn corrupted(op: Op, p: usize, info: &Info) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l).s(b"ERROR: corrupted block ").x(p);
    block_desc(&mut l, info);
    l.s(b" in ");
    l.s(op.call_name().as_bytes()).s(b"()\n");
    l.report();
}

/// Shows the bytes of `[from, to)` against the canary expected there.
fn bytes_vs_canary(from: usize, to: usize, _first: usize, user: usize) {
    let mut l: Line<400> = Line::new();
    prefix(&mut l)
        .s(b"  bytes at offset ")
        .i(from as i64 - user as i64)
        .s(b":");
    for a in from..to {
        // SAFETY: the slot is ours and readable.
        let v = unsafe { *(a as *const u8) };
        l.c(b' ').hx(v as u64, 2);
    }
    l.c(b'\n');
    l.report();
    l.clear();
    prefix(&mut l).s(b"  expected canary  :");
    for a in from..to {
        l.c(b' ').hx(crate::debug::canary::byte_at(a) as u64, 2);
    }
    l.c(b'\n');
    l.report();
}
