//! The recent peak of the LARGE mappings in use (in bytes) and the recent largest LARGE request,
//! which bound the mapping cache (`Cache::limit`): the highest values seen during the current
//! window of LARGE allocations and frees and during the window before it, so a peak is remembered
//! for one to two windows and then forgotten. A window lasts at least 1024 operations and at least
//! 100 ms, so a program that frees its big blocks all at once (at the end of a phase, or before it
//! exits) keeps them cached rather than paying a system call for each. When a window closes, the
//! cache gives back what the lower bound no longer allows (the delayed purge, `LargeState::purge`).

/// LARGE allocations and frees per window, at least.
const WINDOW: u32 = 1024;
/// A window lasts at least this long (nanoseconds of CLOCK_MONOTONIC).
pub const WINDOW_NS: u64 = 100_000_000;
/// Once a window has seen `WINDOW` operations, the clock is read once every this many.
const CLOCK_EVERY: u32 = 64;

pub struct Peak {
    cur: usize,
    prev: usize,
    big: usize,
    prev_big: usize,
    n: u32,
    /// When the current window opened.
    since: u64,
}

impl Peak {
    pub const EMPTY: Peak = Peak {
        cur: 0,
        prev: 0,
        big: 0,
        prev_big: 0,
        n: 0,
        since: 0,
    };

    /// Notes `live` LARGE bytes in use after an allocation of `request` bytes, or a free
    /// (`request` 0). True when a window closed (the peak may have dropped).
    pub fn note(&mut self, live: usize, request: usize, now: impl FnOnce() -> u64) -> bool {
        self.cur = self.cur.max(live);
        self.big = self.big.max(request);
        self.n += 1;
        if self.n < WINDOW {
            return false;
        }
        let t = now();
        if t.wrapping_sub(self.since) < WINDOW_NS {
            // Too soon: the clock is read again `CLOCK_EVERY` operations later.
            self.n = WINDOW - CLOCK_EVERY;
            return false;
        }
        self.since = t;
        self.prev = self.cur;
        self.cur = live;
        self.prev_big = self.big;
        self.big = request;
        self.n = 0;
        true
    }

    /// The recent peak of live bytes.
    pub fn get(&self) -> usize {
        self.cur.max(self.prev)
    }

    /// The recent largest request.
    pub fn big(&self) -> usize {
        self.big.max(self.prev_big)
    }
}
