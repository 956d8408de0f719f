//! `Mutex<T>`: a futex lock whose word names its holder, with a short spin, `enter` for the
//! paths a signal handler can re-enter, `try_lock` with a bounded number of attempts for dumps
//! from signal handlers and debuggers, and the fork trio `lock_forever`/`force_unlock`/`reset`.
//!
//! A signal handler that calls malloc may interrupt its thread anywhere in the allocator, with
//! a lock held. Two rules keep it from hanging:
//! - Ownership is exact: the word is `owner | WAITERS`, the holder's kernel thread id (0 when
//!   free; ids are below 2^22) set by the very compare-exchange that takes the lock, so a
//!   handler always sees that a lock is its own thread's and never waits for it (`enter`
//!   returns None; `lock`, for paths no handler reaches, aborts with a message rather than
//!   hang).
//! - A thread that holds any allocator lock does not wait for another one (`enter` returns
//!   None once a short spin fails): otherwise two threads, each interrupted inside one lock,
//!   could each wait in a handler for the other's. Each thread counts the locks it holds
//!   (`tls::ThreadState::locks`); only the fork handlers, which take every lock in one fixed
//!   order, wait while holding others.
//!
//! A caller that gets None takes a way around (another arena) or leaves the work for later
//! (`heap::defer`), done at the end of the thread's first allocator call that holds no lock
//! (`heap::drain::settle`).
//!
//! `WAITERS` means a thread may sleep on the futex (state 2 of Drepper's "Futexes are tricky");
//! an unlock that finds it wakes one sleeper. A thread woken so may run a signal handler before
//! it takes the lock, and the handler may itself wait for a lock: before it sleeps, it passes
//! the wake on to another sleeper of the first lock (`ThreadState::waiting_on`), or the others
//! would sleep on a free lock for ever.
//!
//! # Invariants
//! - The owner bits of `state` are 0 or the kernel tid of the thread that holds the lock; only
//!   that thread clears them (unlock), only a compare-exchange from a free word sets them.
//! - The data is only touched by the holder.
//! - `ThreadState::locks` counts the locks the thread holds or is taking: it goes up before
//!   the compare-exchange that takes a lock and down after the swap that releases it, so
//!   whenever a word names this thread, the count is at least one (a handler that finds it 0
//!   knows the thread holds no lock). A signal handler leaves it as it found it (every lock it
//!   takes it releases), so the count is updated with plain read-modify-writes.
//! - `skipped` is set only by `lock_forever` (fork prepare) on a lock the forking thread held
//!   already, and cleared by `force_unlock` or `reset` on that thread.

use crate::sys;
use crate::tls;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering, compiler_fence};

/// Attempts of `try_lock` (a yield between two), the one bound for every caller that must not
/// wait for a lock: dumps from signal handlers and debuggers, the leak scan at exit, reports,
/// the totals of mallinfo. On a lock held by a stopped or stuck thread it gives up after about
/// this many scheduler yields.
pub const TRY_ATTEMPTS: u32 = 2000;

const OWNER: i32 = 0x3fff_ffff;
const WAITERS: i32 = i32::MIN;

/// Spins before a waiter sleeps on the futex (or, holding another lock, gives up).
const SPINS: u32 = 100;

pub struct Mutex<T> {
    state: AtomicI32,
    /// `lock_forever` (fork prepare) left this lock alone: the forking thread held it already
    /// (fork from a signal handler that interrupted the holder), so the fork handlers must not
    /// release it.
    skipped: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `state`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

pub struct Guard<'a, T> {
    m: &'a Mutex<T>,
}

/// Whether this thread holds any allocator lock (a signal handler running now interrupted
/// it inside the allocator, or the caller itself holds one).
#[inline]
pub fn holds_any() -> bool {
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).locks != 0 }
}

/// This thread's owner tag: its kernel tid (never 0, below 2^30).
#[inline(always)]
fn me() -> i32 {
    tls::tid() as i32 & OWNER
}

/// One more lock held (or being taken) by this thread.
#[inline(always)]
fn count_up() {
    // SAFETY: our own TLS block.
    unsafe { (*tls::state()).locks += 1 };
    // A signal handler sees the count before the compare-exchange that follows.
    compiler_fence(Ordering::SeqCst);
}

/// One lock less.
#[inline(always)]
fn count_down() {
    // After the swap that released the lock, as a signal handler sees it.
    compiler_fence(Ordering::SeqCst);
    let st = tls::state();
    // SAFETY: our own TLS block.
    unsafe { (*st).locks = (*st).locks.wrapping_sub(1) };
}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        Mutex {
            state: AtomicI32::new(0),
            skipped: AtomicBool::new(false),
            data: UnsafeCell::new(v),
        }
    }

    /// Takes the lock, waiting for another holder (even while this thread holds other
    /// locks: only for paths no signal handler reaches, the fork handlers' fixed order, or a
    /// lock taken last, whose holders wait for no other: the log file's). A thread that holds
    /// it already is a bug of ours: it aborts with a message rather than wait for itself.
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        let me = me();
        count_up();
        if self
            .state
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
            && !self.lock_slow(me, true)
        {
            self_deadlock();
        }
        Guard { m: self }
    }

    /// Takes the lock, waiting for another holder unless this thread holds some lock; None if
    /// this thread holds this one (a signal handler interrupted the holder), or holds another
    /// one and this one stays busy through a short spin. The caller then takes its fallback.
    #[inline]
    pub fn enter(&self) -> Option<Guard<'_, T>> {
        let me = me();
        count_up();
        if self
            .state
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
            && !self.lock_slow(me, false)
        {
            count_down();
            return None;
        }
        Some(Guard { m: self })
    }

    /// Waits for the lock; false (without taking it) if this thread is its holder, or if
    /// `wait_holding` is false, this thread holds another lock and the spin fails. The caller
    /// counted this lock already.
    #[cold]
    #[unsafe(link_section = "ft_hot")]
    fn lock_slow(&self, me: i32, wait_holding: bool) -> bool {
        for _ in 0..SPINS {
            let s = self.state.load(Ordering::Relaxed);
            if s & OWNER == me {
                return false;
            }
            if s & OWNER == 0
                && self
                    .state
                    .compare_exchange(s, s | me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return true;
            }
            core::hint::spin_loop();
        }
        let st = tls::state();
        // SAFETY: our own TLS block.
        if !wait_holding && unsafe { (*st).locks } > 1 {
            return false;
        }
        // While this thread sleeps for the lock it does not count it: a signal handler that
        // runs meanwhile finds it holding nothing, and may wait for locks itself.
        // SAFETY: our own TLS block (as in the loop below).
        unsafe { (*st).locks -= 1 };
        // A lock wait in a signal handler that interrupted this thread's own wait: the
        // interrupted wait may have been woken (and will not take its lock before this one
        // ends), so the wake goes on to another sleeper of that lock (at worst a sleeper
        // wakes for nothing and sleeps again).
        // SAFETY: our own TLS block.
        let outer = unsafe { (*st).waiting_on };
        if outer != 0 && outer != &self.state as *const AtomicI32 as usize {
            // SAFETY: `outer` is the state word of a lock the interrupted frame is waiting for
            // (locks are statics, or lie in mappings that are never unmapped).
            sys::futex_wake(unsafe { &*(outer as *const AtomicI32) });
        }
        // SAFETY: our own TLS block.
        unsafe { (*st).waiting_on = &self.state as *const AtomicI32 as usize };
        let taken = self.sleep_for(me, st);
        // SAFETY: our own TLS block.
        unsafe { (*st).waiting_on = outer };
        taken
    }

    /// `lock_slow`'s sleep loop: takes the lock (true) or finds this thread its holder
    /// (false); the caller uncounted it.
    #[inline(always)]
    fn sleep_for(&self, me: i32, st: *mut tls::ThreadState) -> bool {
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & OWNER == 0 {
                // SAFETY: as above.
                unsafe { (*st).locks += 1 };
                // Taken with WAITERS set: others may still sleep, our unlock wakes one.
                if self
                    .state
                    .compare_exchange(s, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                // SAFETY: as above.
                unsafe { (*st).locks -= 1 };
                continue;
            }
            if s & OWNER == me {
                // SAFETY: as above.
                unsafe { (*st).locks += 1 };
                return false;
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            sys::futex_wait(&self.state, s | WAITERS);
        }
    }

    /// Tries `TRY_ATTEMPTS` times (yielding between tries); None if the lock stays busy or
    /// this thread holds it.
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        let me = me();
        let attempts = TRY_ATTEMPTS;
        count_up();
        for i in 0..attempts {
            let s = self.state.load(Ordering::Relaxed);
            if s & OWNER == me {
                break;
            }
            if s & OWNER == 0
                && self
                    .state
                    .compare_exchange(s, s | me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(Guard { m: self });
            }
            if i + 1 < attempts {
                sys::sched_yield();
            }
        }
        count_down();
        None
    }

    /// True if the calling thread holds this lock (re-entry from a signal handler).
    #[inline]
    pub fn held_by_me(&self) -> bool {
        self.state.load(Ordering::Relaxed) & OWNER == me()
    }

    #[inline(always)]
    fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) & WAITERS != 0 {
            sys::futex_wake(&self.state);
        }
        count_down();
    }

    /// Takes the lock and forgets the guard (fork prepare, in the fixed order of the fork
    /// handlers); `force_unlock` releases it. A lock this thread holds already (fork from a
    /// signal handler that interrupted its holder) is left to its holder.
    pub fn lock_forever(&self) {
        let me = me();
        count_up();
        if self
            .state
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
            && !self.lock_slow(me, true)
        {
            count_down();
            self.skipped.store(true, Ordering::Relaxed);
        }
    }

    /// Releases a lock taken and forgotten on this thread (`lock_forever`, or a guard passed to
    /// `mem::forget`); a lock `lock_forever` left to its holder stays held.
    /// # Safety
    /// The caller took the lock on this thread and forgot its guard.
    pub unsafe fn force_unlock(&self) {
        if !self.skipped.swap(false, Ordering::Relaxed) {
            self.unlock();
        }
    }

    /// Fork child: only the forking thread survives. A lock it took in `lock_forever` is free
    /// again; one it held before (its holder, interrupted by the handler that forked, goes on
    /// in the child) is given the child's thread id; any other is freed.
    /// # Safety
    /// No other thread can be using the lock (we are the single thread of a new child), the
    /// fork prepare handler ran `lock_forever` on it, and `tls::reset_after_fork` ran (so the
    /// thread id is the child's).
    pub unsafe fn reset(&self) {
        if self.skipped.swap(false, Ordering::Relaxed) {
            self.state.store(me(), Ordering::Release);
            return;
        }
        if self.state.load(Ordering::Relaxed) & OWNER != 0 {
            // SAFETY: our own TLS block; `lock_forever` counted this lock.
            unsafe { (*tls::state()).locks = (*tls::state()).locks.wrapping_sub(1) };
        }
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

/// A lock taken again by its holder's thread on a path that has no fallback: waiting would
/// hang the program for good, so say so and abort.
#[cold]
#[inline(never)]
fn self_deadlock() -> ! {
    sys::write_all(
        2,
        b"ft_malloc: internal error: a lock was taken again by the thread that holds it; aborting\n",
    );
    sys::abort()
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
    #[inline(always)]
    fn drop(&mut self) {
        self.m.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_exact() {
        let m = Mutex::new(5u32);
        assert!(!m.held_by_me());
        assert!(!holds_any());
        {
            let g = m.lock();
            assert_eq!(*g, 5);
            assert!(m.held_by_me());
            assert!(holds_any());
            assert!(m.enter().is_none());
            assert!(m.try_lock().is_none());
        }
        assert!(!m.held_by_me());
        assert!(!holds_any());
        assert!(m.enter().is_some());
    }

    #[test]
    fn other_thread_waits() {
        static M: Mutex<u64> = Mutex::new(0);
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20000 {
                        let mut g = M.enter().expect("holding no other lock, enter waits");
                        *g += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*M.lock(), 80000);
    }

    #[test]
    fn no_wait_while_holding_another() {
        static A: Mutex<()> = Mutex::new(());
        static B: Mutex<()> = Mutex::new(());
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _b = B.lock();
            tx.send(()).unwrap();
            done_rx.recv().unwrap();
        });
        rx.recv().unwrap();
        {
            let _a = A.lock();
            // B is busy elsewhere and this thread holds A: no waiting.
            assert!(B.enter().is_none());
        }
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(B.enter().is_some());
    }
}
