//! The used blocks as the leak check sees them (`each_used`), and which of the unreached ones
//! it counts as leaks (`is_leak`): not those of a thread that a fork left behind (the lineage
//! of forks is kept here), nor those being allocated right now.
//!
//! # Invariants
//! `FORKS` changes only in the fork handlers, when a single thread runs in the process (child)
//! or every lock of ours is held (prepare).

use super::mark::{BITS, MARK};
use crate::block::USED;
use crate::sys;
use crate::walk::{Block, View};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Forks this process descends from, oldest first (`MAX_FORKS` kept, the oldest dropped): the
/// event sequence number reached at the fork, the forking thread's tid in the parent, and the
/// child's pid, which is that thread's tid in the child.
const MAX_FORKS: usize = 8;
struct ForkRec {
    seq: AtomicU64,
    parent_tid: AtomicU32,
    child_pid: AtomicU32,
}
static FORKS: [ForkRec; MAX_FORKS] = [const {
    ForkRec {
        seq: AtomicU64::new(0),
        parent_tid: AtomicU32::new(0),
        child_pid: AtomicU32::new(0),
    }
}; MAX_FORKS];
static NFORKS: AtomicUsize = AtomicUsize::new(0);
/// The forking thread's tid, noted in the prepare handler (the child's thread has a new one).
static FORKING_TID: AtomicU32 = AtomicU32::new(0);

/// Fork prepare: notes the forking thread.
pub fn before_fork() {
    FORKING_TID.store(crate::tls::tid(), Ordering::Relaxed);
}

/// Fork child (the only thread): records the fork in the lineage. The sequence number is read
/// here, in the child's copy of the parent's memory: every block allocated in the parent has a
/// number at most this one, every block of the child a greater one.
pub fn after_fork_child() {
    let mut n = NFORKS.load(Ordering::Relaxed);
    if n == MAX_FORKS {
        for i in 1..MAX_FORKS {
            let (a, b) = (&FORKS[i - 1], &FORKS[i]);
            a.seq
                .store(b.seq.load(Ordering::Relaxed), Ordering::Relaxed);
            a.parent_tid
                .store(b.parent_tid.load(Ordering::Relaxed), Ordering::Relaxed);
            a.child_pid
                .store(b.child_pid.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        n -= 1;
    }
    let f = &FORKS[n];
    f.seq.store(crate::log::seq::last(), Ordering::Relaxed);
    f.parent_tid
        .store(FORKING_TID.load(Ordering::Relaxed), Ordering::Relaxed);
    f.child_pid.store(sys::getpid(), Ordering::Relaxed);
    NFORKS.store(n + 1, Ordering::Relaxed);
}

/// The sequence number `each_used` gives a zone block whose history its allocating thread
/// has not written yet (it does so after dropping the arena lock): that thread holds the block
/// in its registers, so it is no leak. In a forked child the thread is another thread of the
/// parent (the forking thread is inside fork()), which does not exist there.
pub(super) const IN_FLIGHT: u64 = u64::MAX;

/// Whether a block allocated at event `seq` by thread `tid` belongs to a thread that does not
/// continue in this process: it was allocated before a fork of the lineage, by a thread other
/// than that fork's forking thread, or the thread it became in the child did not fork the
/// next generation. False for blocks of this process and for blocks without history.
pub(super) fn of_vanished_thread(seq: u64, tid: u32) -> bool {
    let n = NFORKS.load(Ordering::Relaxed);
    if seq == IN_FLIGHT {
        return n > 0;
    }
    if seq == 0 {
        return false;
    }
    let Some(k) = (0..n).find(|&k| seq <= FORKS[k].seq.load(Ordering::Relaxed)) else {
        return false;
    };
    if tid != FORKS[k].parent_tid.load(Ordering::Relaxed) {
        return true;
    }
    (k + 1..n).any(|j| {
        FORKS[j].parent_tid.load(Ordering::Relaxed)
            != FORKS[j - 1].child_pid.load(Ordering::Relaxed)
    })
}

/// A used block, as the scan groups it.
pub(super) struct Used {
    pub(super) state: *mut u8,
    pub(super) user: usize,
    pub(super) size: usize,
    pub(super) caller: usize,
    pub(super) origin: u8,
    pub(super) seq: u64,
    pub(super) tid: u32,
}

/// Every used block (marked or not), with its allocation site.
pub(super) fn each_used(v: &View, f: impl FnMut(&Used)) {
    each_used_but(v, 0, f);
}

/// Every used block but those whose state byte has one of the bits `skip`.
pub(super) fn each_used_but(v: &View, skip: u8, mut f: impl FnMut(&Used)) {
    v.each(|b: &Block| {
        if b.byte & !BITS != USED || b.byte & skip != 0 {
            return;
        }
        let h = b.history();
        let (caller, seq, tid) = match (b.zone(), h) {
            // A zone block's history not written yet (a fresh slot's zeros, or the last
            // user's, freed): the block is being allocated right now.
            (Some(_), Some(d)) if d.alloc_seq == 0 || d.free_seq != 0 => {
                (d.alloc_caller, IN_FLIGHT, d.alloc_tid)
            }
            (_, Some(d)) => (d.alloc_caller, d.alloc_seq, d.alloc_tid),
            (_, None) => (0, 0, 0),
        };
        // A block the program tried to free (the free was refused) is not a leak.
        if crate::heap::refused::contains(b.user, h.map_or(0, |d| d.alloc_seq)) {
            return;
        }
        f(&Used {
            state: b.state_byte(),
            user: b.user,
            size: b.size,
            caller,
            origin: b.origin,
            seq,
            tid,
        });
    });
}

/// Whether the used block `b` is a leak the report counts: not reached from the roots, not a
/// vanished thread's, not being allocated right now.
pub(super) fn is_leak(b: &Used) -> bool {
    // SAFETY: a used block's state byte (every lock held).
    let reached = unsafe { *b.state } & MARK != 0;
    !reached && b.seq != IN_FLIGHT && !of_vanished_thread(b.seq, b.tid)
}
