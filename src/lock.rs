//! `Mutex<T>`: a futex lock (three states, as in Drepper's "Futexes are tricky") with a short
//! spin, `try_lock` with a bounded number of attempts for dumps from signal handlers and
//! debuggers, and `force_unlock`/`reset` for the fork child.
//!
//! # Invariants
//! `state` is 0 (free), 1 (held) or 2 (held, maybe waiters). The data is only touched by the
//! holder. `owner` is the holder's thread tag (for re-entry detection), 0 when free.

use crate::sys;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

pub struct Mutex<T> {
    state: AtomicI32,
    owner: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `state`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

pub struct Guard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        Mutex {
            state: AtomicI32::new(0),
            owner: AtomicUsize::new(0),
            data: UnsafeCell::new(v),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        self.owner
            .store(crate::tls::thread_tag(), Ordering::Relaxed);
        Guard { m: self }
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        let mut c = self.state.swap(2, Ordering::Acquire);
        while c != 0 {
            sys::futex_wait(&self.state, 2);
            c = self.state.swap(2, Ordering::Acquire);
        }
    }

    /// Tries `attempts` times (yielding between tries); None if the lock stays busy.
    pub fn try_lock(&self, attempts: u32) -> Option<Guard<'_, T>> {
        for i in 0..attempts.max(1) {
            if self
                .state
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                self.owner
                    .store(crate::tls::thread_tag(), Ordering::Relaxed);
                return Some(Guard { m: self });
            }
            if i + 1 < attempts {
                sys::sched_yield();
            }
        }
        None
    }

    /// True if the calling thread holds this lock (re-entry from a signal handler).
    #[inline]
    pub fn held_by_me(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
            && self.owner.load(Ordering::Relaxed) == crate::tls::thread_tag()
    }

    #[inline]
    fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        if self.state.swap(0, Ordering::Release) == 2 {
            sys::futex_wake(&self.state);
        }
    }

    /// Takes the lock and forgets the guard (fork prepare); `force_unlock` releases it.
    pub fn lock_forever(&self) {
        core::mem::forget(self.lock());
    }

    /// # Safety
    /// The caller took the lock with `lock_forever` on this thread (fork parent).
    pub unsafe fn force_unlock(&self) {
        self.unlock();
    }

    /// Fork child: only the forking thread survives, so the lock is simply free again.
    /// # Safety
    /// No other thread can be using the lock (we are the single thread of a new child).
    pub unsafe fn reset(&self) {
        self.owner.store(0, Ordering::Relaxed);
        self.state.store(0, Ordering::Release);
    }

    /// Access without the lock.
    /// # Safety
    /// The caller guarantees exclusive access (init before Ready, or a read-only best-effort dump).
    #[allow(clippy::mut_from_ref)] // the caller guarantees exclusivity (see # Safety)
    pub unsafe fn get_unlocked(&self) -> &mut T {
        // SAFETY: the caller guarantees exclusivity.
        unsafe { &mut *self.data.get() }
    }
}

impl<T> core::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.m.data.get() }
    }
}
impl<T> core::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, by this thread only.
        unsafe { &mut *self.m.data.get() }
    }
}
impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.m.unlock();
    }
}
