//! A line's way out: `emit` hands a complete line to the destination in use; the descriptor
//! destination (`log=stderr|fd:N`) gets one `write(2)` per line.

use super::dest::{SINK, SINK_FD, SINK_LATE, SINK_MAP, SINK_NONE, SPEC};
use super::file;
use crate::fmt::{Line, prefix};
use crate::outfile;
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The descriptor written by `log=stderr|fd:N` (2, or our duplicate of N).
pub(super) static SINK_FD_NO: AtomicI32 = AtomicI32::new(-1);
/// `log=fd:N`: our duplicate of N, checked before every write.
pub(super) static SINK_FD_FILE: sys::OwnedFd = sys::OwnedFd::none();
/// The descriptor is a pipe or a socket: written without SIGPIPE (`sys::write_all_quiet`).
pub(super) static SINK_FD_PIPE: AtomicBool = AtomicBool::new(false);

/// Writes `line` to `log=stderr|fd:N`; a failed write (or our descriptor closed by the
/// program) stops the log with one warning.
fn fd_put(line: &[u8]) {
    let fd = SINK_FD_NO.load(Ordering::Relaxed);
    let ours = fd != 2;
    if ours && SINK_FD_FILE.get().is_none() {
        SINK.store(SINK_NONE, Ordering::Release);
        fd_warn(b"was closed by the program", 0);
        return;
    }
    let written = if SINK_FD_PIPE.load(Ordering::Relaxed) {
        sys::write_all_quiet(fd, line)
    } else {
        sys::write_all(fd, line)
    };
    if !written {
        let e = sys::errno();
        SINK.store(SINK_NONE, Ordering::Release);
        if ours {
            fd_warn(b"cannot be written", e);
        }
    }
}

fn fd_warn(what: &[u8], e: i32) {
    let mut l: Line<300> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: log: ")
        .s(SPEC.get().as_bytes())
        .c(b' ')
        .s(what);
    if e != 0 {
        l.c(b' ');
        outfile::errno_text(&mut l, e);
    }
    l.s(b"; logging stops, the program goes on\n");
    l.report();
}

/// Writes one complete line (or several) to the log destination.
pub(super) fn emit(line: &[u8]) {
    match SINK.load(Ordering::Relaxed) {
        SINK_FD => fd_put(line),
        sink @ (SINK_MAP | SINK_LATE) => file::put(line, sink),
        _ => {}
    }
}
