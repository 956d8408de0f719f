//! The mapping cache's indexes, kept beside its slots so that no operation on the hot path
//! reads all of them: size bins (a list of slots per bin, and a bitmap of the bins in use) for
//! best fit and for the smallest and largest range, and address tables (open addressing, one
//! keyed by where a range starts, one by where it ends) for merging a freed range with its
//! neighbours. Everything is zero when empty: a link or a table cell holds a slot number + 1.
//!
//! # Invariants
//! - A slot is in exactly one bin list, `bin(len)` of its length, while it holds a range, and
//!   bit `b` of `used` is set exactly when list `b` is not empty.
//! - A table holds each range's key once; every key between a cell's home and the cell
//!   itself is in use (linear probing, deletion by backward shift, never a tombstone).

/// Bins: one per page up to 16 pages, then four per doubling; the last also takes every
/// length beyond it. Lengths in a higher bin are always longer.
pub const BINS: usize = 64;
/// Cells of an address table: at least twice the slots it indexes (asserted where the cache
/// sizes them), so that probes stay short and a table is never full, which `insert` and `find`
/// rely on. Slot numbers + 1 must fit a `u16`.
pub const CELLS: usize = 8192;
const BIN_UNIT_SHIFT: u32 = 12;

/// The bin of a range of `len` bytes (non-decreasing in `len`).
#[inline]
pub fn bin(len: usize) -> usize {
    let p = len >> BIN_UNIT_SHIFT;
    if p < 16 {
        return p;
    }
    let lg = (usize::BITS - 1 - p.leading_zeros()) as usize;
    (16 + (lg - 4) * 4 + ((p >> (lg - 2)) & 3)).min(BINS - 1)
}

/// Doubly linked lists of slot numbers, one per bin.
pub struct Bins<const N: usize> {
    heads: [u16; BINS],
    /// `[prev, next]` of each slot, slot number + 1 (0: none).
    links: [[u16; 2]; N],
    used: u64,
}

impl<const N: usize> Bins<N> {
    pub const EMPTY: Self = Bins {
        heads: [0; BINS],
        links: [[0; 2]; N],
        used: 0,
    };

    /// Puts slot `i` (a range of `len` bytes) at the head of its bin.
    pub fn link(&mut self, i: usize, len: usize) {
        let b = bin(len);
        let h = self.heads[b];
        self.links[i] = [0, h];
        if h != 0 {
            self.links[h as usize - 1][0] = i as u16 + 1;
        }
        self.heads[b] = i as u16 + 1;
        self.used |= 1 << b;
    }

    /// Takes slot `i` (a range of `len` bytes) out of its bin.
    pub fn unlink(&mut self, i: usize, len: usize) {
        let b = bin(len);
        let [prev, next] = self.links[i];
        if prev == 0 {
            self.heads[b] = next;
        } else {
            self.links[prev as usize - 1][1] = next;
        }
        if next != 0 {
            self.links[next as usize - 1][0] = prev;
        }
        self.links[i] = [0, 0];
        if self.heads[b] == 0 {
            self.used &= !(1 << b);
        }
    }

    /// The slots of bin `b`.
    pub fn slots(&self, b: usize) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.heads[b];
        core::iter::from_fn(move || {
            let i = at.checked_sub(1)? as usize;
            at = self.links[i][1];
            Some(i)
        })
    }

    /// The lowest bin in use at or above `b`.
    pub fn used_from(&self, b: usize) -> Option<usize> {
        if b >= BINS {
            return None;
        }
        let m = self.used >> b;
        (m != 0).then(|| b + m.trailing_zeros() as usize)
    }

    /// The bins in use, highest first.
    pub fn used_downwards(&self) -> impl Iterator<Item = usize> {
        let mut m = self.used;
        core::iter::from_fn(move || {
            let b = (u64::BITS - 1).checked_sub(m.leading_zeros())? as usize;
            m &= !(1 << b);
            Some(b)
        })
    }
}

/// An address table: slot numbers found by a key (a range's start or end address) that the
/// caller derives from the slot (`key_of`).
pub struct Table {
    cells: [u16; CELLS],
}

impl Table {
    pub const EMPTY: Table = Table { cells: [0; CELLS] };

    #[inline]
    fn home(key: usize) -> usize {
        ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CELLS.trailing_zeros())) as usize
    }

    /// Adds slot `i` under `key` (not in the table yet; fewer entries than cells).
    pub fn insert(&mut self, key: usize, i: usize) {
        let mut c = Self::home(key);
        while self.cells[c] != 0 {
            c = (c + 1) % CELLS;
        }
        self.cells[c] = i as u16 + 1;
    }

    /// The slot whose key is `key`.
    #[inline]
    pub fn find(&self, key: usize, key_of: impl Fn(usize) -> usize) -> Option<usize> {
        let mut c = Self::home(key);
        loop {
            let i = self.cells[c].checked_sub(1)? as usize;
            if key_of(i) == key {
                return Some(i);
            }
            c = (c + 1) % CELLS;
        }
    }

    /// Removes slot `i`, whose key is `key`; the entries probed past its cell move back.
    pub fn remove(&mut self, key: usize, i: usize, key_of: impl Fn(usize) -> usize) {
        let mut hole = Self::home(key);
        while self.cells[hole] as usize != i + 1 {
            if self.cells[hole] == 0 {
                return;
            }
            hole = (hole + 1) % CELLS;
        }
        let mut c = hole;
        loop {
            c = (c + 1) % CELLS;
            let Some(j) = self.cells[c].checked_sub(1) else {
                break;
            };
            let h = Self::home(key_of(j as usize));
            // The entry at `c` may fill the hole when its home is not in (hole, c].
            let stays = if hole <= c {
                hole < h && h <= c
            } else {
                hole < h || h <= c
            };
            if !stays {
                self.cells[hole] = self.cells[c];
                hole = c;
            }
        }
        self.cells[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_grow_with_the_length() {
        let mut last = 0;
        for p in 1..100_000usize {
            let b = bin(p << 12);
            assert!(b >= last && b < BINS);
            last = b;
        }
        assert_eq!(bin(usize::MAX), BINS - 1);
    }

    #[test]
    fn table_finds_what_is_left_after_removals() {
        let keys: Vec<usize> = (0..500).map(|k| 0x7f00_0000_0000 + k * 0x3000).collect();
        let mut t = Table::EMPTY;
        for (i, &k) in keys.iter().enumerate() {
            t.insert(k, i);
        }
        for i in (0..500).step_by(3) {
            t.remove(keys[i], i, |j| keys[j]);
        }
        for (i, &k) in keys.iter().enumerate() {
            let want = (i % 3 != 0).then_some(i);
            assert_eq!(t.find(k, |j| keys[j]), want, "slot {i}");
        }
    }

    #[test]
    fn bin_lists_and_bitmap() {
        let mut b: Bins<8> = Bins::EMPTY;
        b.link(0, 4096);
        b.link(1, 4096);
        b.link(2, 1 << 20);
        assert_eq!(b.slots(1).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(b.used_from(0), Some(1));
        assert_eq!(b.used_from(2), Some(bin(1 << 20)));
        b.unlink(1, 4096);
        b.unlink(0, 4096);
        assert_eq!(b.used_from(0), Some(bin(1 << 20)));
        assert_eq!(b.used_downwards().collect::<Vec<_>>(), vec![bin(1 << 20)]);
    }
}
