//! Where the log goes and in which format: the kind of destination in use (none, a
//! descriptor, the mapped file, the file after exit), the mtrace switch and the `log=` spec.
//!
//! # Invariants
//! `MTRACE` and `SPEC` are set once during init (single-threaded). `SINK` is set when a
//! destination is opened (at init, or in a fork child), becomes `SINK_NONE` when logging stops
//! and `SINK_LATE` at exit (`SINK_PENDING` in a fork child, see there).

use core::sync::atomic::{AtomicBool, AtomicU8};

/// `log_format=mtrace`: glibc's mtrace records instead of the text log.
pub(super) static MTRACE: AtomicBool = AtomicBool::new(false);

pub(super) const SINK_NONE: u8 = 0;
pub(super) const SINK_FD: u8 = 1;
pub(super) const SINK_MAP: u8 = 2;
/// The file after exit (`close_at_exit`): every line is appended whole with pwrite under the
/// lock, none is formatted in place, so the exit cannot cut one.
pub(super) const SINK_LATE: u8 = 3;
/// A fork child whose forking thread was inside the file lock (the fork of a signal handler
/// that interrupted the log's writer): the code it interrupted still uses the parent's file.
/// The child claims a file of its own at that thread's next event, once the lock is free
/// (`fork_exit::claim_pending`); nothing is written meanwhile.
pub(super) const SINK_PENDING: u8 = 4;
pub(super) static SINK: AtomicU8 = AtomicU8::new(SINK_NONE);

/// The log spec (path with %p, kept for the fork child).
pub(super) static SPEC: crate::config::Once<crate::config::Path> =
    crate::config::Once::new(crate::config::Path::NONE);
