//! The recent peak of LARGE bytes in use and the recent largest LARGE request, which bound
//! the mapping cache (`Cache::limit`): the highest values seen during the current window of
//! LARGE allocations and frees and during the window before it, so a peak is remembered for
//! one to two windows and then forgotten. When a window closes, the cache gives back what the
//! lower bound no longer allows (the delayed purge, `LargeState::purge`).

/// LARGE allocations and frees per window.
const WINDOW: u32 = 1024;

pub struct Peak {
    cur: usize,
    prev: usize,
    big: usize,
    prev_big: usize,
    n: u32,
}

impl Peak {
    pub const EMPTY: Peak = Peak {
        cur: 0,
        prev: 0,
        big: 0,
        prev_big: 0,
        n: 0,
    };

    /// Notes `live` LARGE bytes in use after an allocation of `request` bytes, or a free
    /// (`request` 0). True when a window closed (the peak may have dropped).
    pub fn note(&mut self, live: usize, request: usize) -> bool {
        self.cur = self.cur.max(live);
        self.big = self.big.max(request);
        self.n += 1;
        if self.n < WINDOW {
            return false;
        }
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
