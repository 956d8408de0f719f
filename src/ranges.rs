//! A set of address ranges in a buffer the caller provides (no allocation): ranges are added,
//! then sorted and merged once (`seal`), then looked up by binary search (`contains`). The leak
//! scanner keeps the library's own memory in one, to skip it.
//!
//! # Invariants
//! After `seal`, `r[..n]` is sorted by start and no two ranges overlap or touch, so the last
//! range starting at or below an address is the only one that can hold it.

pub struct Ranges<'a> {
    r: &'a mut [(usize, usize)],
    n: usize,
}

impl<'a> Ranges<'a> {
    /// An empty set over `buf` (`(start, len)` pairs); ranges beyond its capacity are dropped.
    pub fn new(buf: &'a mut [(usize, usize)]) -> Self {
        Ranges { r: buf, n: 0 }
    }

    /// Adds `[start, start + len)`.
    pub fn add(&mut self, start: usize, len: usize) {
        if self.n < self.r.len() {
            self.r[self.n] = (start, len);
            self.n += 1;
        }
    }

    /// Sorts the ranges and merges those that overlap or touch (ranges may nest).
    pub fn seal(&mut self) {
        let r = &mut self.r[..self.n];
        r.sort_unstable_by_key(|x| x.0);
        let mut merged = 0;
        for i in 0..r.len() {
            let (b, l) = r[i];
            if merged > 0 && b <= r[merged - 1].0 + r[merged - 1].1 {
                let last = &mut r[merged - 1];
                last.1 = last.1.max(b + l - last.0);
            } else {
                r[merged] = (b, l);
                merged += 1;
            }
        }
        self.n = merged;
    }

    /// Whether `x` lies in a range (after `seal`).
    pub fn contains(&self, x: usize) -> bool {
        let r = &self.r[..self.n];
        let i = r.partition_point(|y| y.0 <= x);
        i > 0 && x < r[i - 1].0 + r[i - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_touching_ranges_merge() {
        let mut buf = [(0, 0); 8];
        let mut s = Ranges::new(&mut buf);
        s.add(0x1000, 0x10000);
        s.add(0x3000, 0x1000); // inside the first
        s.add(0x11000, 0x1000); // touches its end
        s.add(0x20000, 0x10);
        s.seal();
        for (x, inside) in [
            (0xfff, false),
            (0x1000, true),
            (0x5000, true),
            (0x11fff, true),
            (0x12000, false),
            (0x2000f, true),
            (0x20010, false),
        ] {
            assert_eq!(s.contains(x), inside, "{x:#x}");
        }
    }
}
