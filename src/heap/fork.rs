//! Fork: every allocator lock is taken before fork (prepare), released after it in the parent,
//! reset in the child (where the thread caches of the parent's other threads are emptied).

use super::arena::ARENAS;
use crate::large::LARGE;

/// Takes every allocator lock (fork prepare).
pub fn lock_all() {
    crate::guard::lock_forever();
    crate::debug::quarantine::lock_forever();
    for a in ARENAS.iter() {
        a.lock_forever();
    }
    super::tcache::lock_inboxes();
    LARGE.lock_forever();
}

/// Releases the locks `lock_all` took (fork, parent).
pub fn unlock_all() {
    // SAFETY: lock_all took these locks on this thread.
    unsafe {
        LARGE.force_unlock();
        super::tcache::unlock_inboxes();
        for a in ARENAS.iter() {
            a.force_unlock();
        }
    }
    crate::debug::quarantine::unlock_forever();
    crate::guard::unlock_forever();
}

/// Resets every allocator lock (fork, child: the only thread).
pub fn reset_all() {
    // SAFETY: fork child: we are the only thread.
    unsafe {
        LARGE.reset();
        super::tcache::reset_inboxes();
        for a in ARENAS.iter() {
            a.reset();
        }
    }
    crate::debug::quarantine::reset();
    crate::guard::reset();
    // The caches of the threads that do not exist here go back to the arenas.
    super::tcache::after_fork_child();
}
