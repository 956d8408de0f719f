//! The log across fork and exit: the fork handlers (no thread inside the file lock while the
//! process is copied; the child drops the parent's chunks and descriptors and opens a file of
//! its own) and the exit (records in flight finish, the file is trimmed to its content, later
//! lines are appended whole).

use super::dest::{MTRACE, SINK, SINK_LATE, SINK_MAP, SINK_NONE, SINK_PENDING, SPEC};
use super::file::{self, BUSY, FILE, FILE_SINK, set_cursor, tls_cursor};
use super::{clock, open, sink};
use crate::outfile;
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The forking process's pid (set in the fork prepare handler): the child's `forked_from`, even
/// if the parent is gone by the time the child writes its header.
static FORK_PARENT: AtomicU32 = AtomicU32::new(0);

/// Fork prepare: no thread may be inside the file lock while the process is copied. Taken after
/// every allocator lock: a signal handler that interrupted the holder of one of them waits for
/// this lock to write its record.
pub fn lock_for_fork() {
    FORK_PARENT.store(sys::getpid(), Ordering::Relaxed);
    if FILE_SINK.load(Ordering::Relaxed) {
        FILE.lock_forever();
    }
}

pub fn unlock_after_fork() {
    if FILE_SINK.load(Ordering::Relaxed) {
        // SAFETY: lock_for_fork took it on this thread.
        unsafe { FILE.force_unlock() };
    }
}

/// Fork child (atfork handler; only this thread exists): the parent's mapped chunks must not
/// receive the child's events, and its descriptors are the parent's (with the parent's lock):
/// the child drops them and claims a file of its own (PATH with `%p`, else PATH.PID, since the
/// parent holds PATH).
pub fn reset_in_child() {
    crate::maps::reset_in_child();
    super::stacks::reset_in_child();
    if !FILE_SINK.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: single thread of a new child: nobody else can hold or wait for the lock.
    unsafe { FILE.reset() };
    if FILE.held_by_me() {
        // A signal handler that interrupted this thread inside the file lock forked: the
        // interrupted code goes on with the parent's file when the handler returns. The file of
        // the child is claimed once it has let go of the lock.
        PENDING_TID.store(tls::tid(), Ordering::Relaxed);
        SINK.store(SINK_PENDING, Ordering::Release);
        return;
    }
    detach_and_open();
}

/// The thread of a fork child whose file is still to be claimed (`SINK_PENDING`).
static PENDING_TID: AtomicU32 = AtomicU32::new(0);
/// Events of such a child that came before its file was claimed (not logged).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// An event of a fork child in `SINK_PENDING` that could not claim its file: not logged.
#[cold]
pub(super) fn drop_pending() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Says how many events of this process were not logged, and why (once; none: nothing).
fn warn_dropped(then: &[u8]) {
    let n = DROPPED.swap(0, Ordering::Relaxed);
    if n == 0 {
        return;
    }
    let mut l: crate::fmt::Line<300> = crate::fmt::Line::new();
    crate::fmt::prefix(&mut l).s(b"WARNING: log: ").u(n).s(
        b" event(s) of this process not logged: a signal handler that interrupted the log's \
              writer forked it",
    );
    l.s(then).c(b'\n');
    l.report();
}

/// `SINK_PENDING`: claims the child's own file if the calling thread is the forking one and no
/// longer inside the file lock. True when the sink was set again (to whatever the claim gave).
#[cold]
pub(super) fn claim_pending() -> bool {
    if tls::tid() != PENDING_TID.load(Ordering::Relaxed) || FILE.held_by_me() {
        return false;
    }
    if SINK
        .compare_exchange(SINK_PENDING, SINK_NONE, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    detach_and_open();
    warn_dropped(b"; its file was opened after them");
    true
}

/// Fork child: gives up the parent's chunks and descriptors and opens the child's own file.
fn detach_and_open() {
    let c = tls_cursor();
    let mut f = FILE.lock();
    // The parent's mappings in this child: unmapping them does not touch the parent's.
    let own = *c;
    set_cursor(c, [0; 3]);
    file::release_in_child(&mut f, &own);
    let shared = f.g;
    file::release(&mut f, &shared, true);
    f.g = [0; 3];
    // The parent's descriptors (their open files hold the parent's locks) stay open until this
    // process has claimed its own file: the parent may exit meanwhile (a daemon's fork), and its
    // file must still count as in use.
    let inherited = [(f.fd, f.id), (f.base, f.base_id)];
    f.fd = -1;
    f.base = -1;
    f.base_name = outfile::Name::EMPTY;
    f.off = 0;
    f.closed = false;
    f.stopped = false;
    f.name = outfile::Name::EMPTY;
    // Only this thread survives the fork.
    f.nwriters = 0;
    drop(f);
    FILE_SINK.store(false, Ordering::Release);
    SINK.store(SINK_NONE, Ordering::Release);
    clock::START_NS.store(sys::now_ns(), Ordering::Relaxed);
    open::open_sink(SPEC.get().as_bytes(), FORK_PARENT.load(Ordering::Relaxed));
    for (fd, id) in inherited {
        // Our copy: closing it leaves the parent's lock in place while the parent lives.
        if fd >= 0 && sys::fd_names(fd, id) {
            sys::close(fd);
        }
    }
}

/// Exit: trims the file to its content (the calling thread's and the shared cursor's unused
/// tails are given back; chunks of threads still running stay whole, their unused rest blank
/// lines). Later events are appended with pwrite.
pub fn close_at_exit() {
    if !FILE_SINK.load(Ordering::Relaxed) {
        return;
    }
    if SINK.load(Ordering::Relaxed) == SINK_PENDING && !claim_pending() {
        // A fork child still holding the parent's file state: its length is not ours to set.
        warn_dropped(b"; it has no log file");
        return;
    }
    if FILE.held_by_me() {
        return;
    }
    if MTRACE.load(Ordering::Relaxed) {
        sink::emit(b"= End\n");
    }
    // Threads still running log on, but from now on with whole-line pwrites under the lock:
    // wait for the records they are writing in place, so that the exit does not cut one.
    let _ = SINK.compare_exchange(SINK_MAP, SINK_LATE, Ordering::AcqRel, Ordering::Relaxed);
    let c = tls_cursor();
    let mut g = FILE.lock();
    let f = &mut *g;
    f.closed = true;
    let me = tls::state() as usize;
    let deadline = sys::now_ns() + 50_000_000;
    for &t in &f.writers[..f.nwriters] {
        if t == me {
            continue;
        }
        // SAFETY: a registered thread is alive (it unregisters under the lock we hold, before
        // its TLS block goes away); its flags word is only stored atomically.
        let flags = unsafe { AtomicU64::from_ptr(&mut (*(t as *mut tls::ThreadState)).scratch[2]) };
        while flags.load(Ordering::Relaxed) & BUSY != 0 && sys::now_ns() < deadline {
            sys::sched_yield();
        }
    }
    // This thread's chunk may now lie past the end of the file: forget it (no more stores).
    let own = [c[0], c[1], c[2] & !BUSY];
    set_cursor(c, [0; 3]);
    file::release(f, &own, false);
    let shared = f.g;
    file::release(f, &shared, false);
    f.g = [0; 3];
    let off = f.off;
    if !file::CUT.load(Ordering::Acquire)
        && let Some(fd) = file::file_fd(f)
    {
        let _ = sys::ftruncate(fd, off);
    }
}
