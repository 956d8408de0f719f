//! Replays the events of a log into the set of live blocks (docs/LOGFORMAT.md, "Semantics a
//! reader replays"). Memory is O(live blocks).

use crate::parse::Op;
use crate::reader::Event;
/// splitmix64's finalizer: spreads the aligned, clustered addresses of a heap.
#[inline(always)]
fn mix(k: u64) -> u64 {
    let mut z = k;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// The live blocks by address: open addressing with linear probing and backward-shift
/// deletion (no tombstones, however long the churn), at most half full. Address 0 marks an
/// empty slot (no block starts at NULL). Its point over a general hash map is `prefetch`: the
/// replay loop asks for the slots of the next events while it handles the current one, so the
/// cache misses of a large heap overlap.
pub struct LiveMap {
    keys: Vec<u64>,
    vals: Vec<Block>,
    len: usize,
    shift: u32,
}

impl Default for LiveMap {
    fn default() -> Self {
        LiveMap {
            keys: vec![0; 1024],
            vals: vec![Block::EMPTY; 1024],
            len: 0,
            shift: 64 - 10,
        }
    }
}

impl LiveMap {
    #[inline(always)]
    fn slot(&self, k: u64) -> usize {
        (mix(k) >> self.shift) as usize
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.keys.len() - 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bring the slot of `k` into the cache (a hint; no effect on the contents).
    #[inline(always)]
    pub fn prefetch(&self, k: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let i = self.slot(k);
            let (kp, vp) = (self.keys[i..].as_ptr(), self.vals[i..].as_ptr());
            // SAFETY: a prefetch is only a hint: it never faults nor changes memory, and both
            // pointers point into live vectors anyway. SSE is part of the x86_64 baseline.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(kp.cast());
                _mm_prefetch::<_MM_HINT_T0>(vp.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = k;
    }

    #[inline]
    fn find(&self, k: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.slot(k);
        loop {
            let kk = self.keys[i];
            if kk == k {
                return Some(i);
            }
            if kk == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn get(&self, k: &u64) -> Option<&Block> {
        if *k == 0 {
            return None;
        }
        self.find(*k).map(|i| &self.vals[i])
    }

    #[inline]
    pub fn insert(&mut self, k: u64, v: Block) -> Option<Block> {
        debug_assert!(k != 0);
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.slot(k);
        loop {
            let kk = self.keys[i];
            if kk == k {
                return Some(std::mem::replace(&mut self.vals[i], v));
            }
            if kk == 0 {
                self.keys[i] = k;
                self.vals[i] = v;
                self.len += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn remove(&mut self, k: &u64) -> Option<Block> {
        if *k == 0 {
            return None;
        }
        let mut i = self.find(*k)?;
        let v = self.vals[i];
        let mask = self.mask();
        // Backward shift: pull later entries of the run into the hole when their home slot
        // is not cyclically in (hole, their slot].
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let kj = self.keys[j];
            if kj == 0 {
                break;
            }
            let home = self.slot(kj);
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.keys[i] = kj;
                self.vals[i] = self.vals[j];
                i = j;
            }
        }
        self.keys[i] = 0;
        self.len -= 1;
        Some(v)
    }

    fn grow(&mut self) {
        let n = self.keys.len() * 2;
        let keys = std::mem::replace(&mut self.keys, vec![0; n]);
        let vals = std::mem::replace(&mut self.vals, vec![Block::EMPTY; n]);
        self.shift -= 1;
        self.len = 0;
        for (k, v) in keys.into_iter().zip(vals) {
            if k != 0 {
                self.insert(k, v);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Block)> {
        self.keys
            .iter()
            .zip(self.vals.iter())
            .filter(|(k, _)| **k != 0)
    }
}

impl<'a> IntoIterator for &'a LiveMap {
    type Item = (&'a u64, &'a Block);
    type IntoIter = Box<dyn Iterator<Item = (&'a u64, &'a Block)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub size: u64,
    pub stack: u32,
    pub op: Op,
    pub seq: u64,
    pub t_ns: u64,
}

impl Block {
    const EMPTY: Block = Block {
        size: 0,
        stack: 0,
        op: Op::Malloc,
        seq: 0,
        t_ns: 0,
    };
}

/// What one event did to the heap.
#[derive(Default, Debug)]
pub struct Change {
    /// The block that ended (freed, or moved by realloc), with its address.
    pub ended: Option<(u64, Block)>,
    /// A block was created at `ev.out` with `ev.size` bytes.
    pub created: bool,
    /// The allocation failed (NULL returned for a request that is not a free).
    pub failed: bool,
    /// A free/realloc of a pointer that is not a live block (refused, or unknown to the log).
    pub unknown_in: bool,
    /// A new block replaced one already live at the same address (events missing in the log).
    pub replaced: Option<Block>,
}

#[derive(Default)]
pub struct Heap {
    pub live: LiveMap,
    pub bytes: u64,
}

impl Heap {
    /// Prefetch what `apply(ev)` will touch.
    #[inline(always)]
    pub fn prefetch(&self, ev: &Event) {
        self.live
            .prefetch(if ev.inp != 0 { ev.inp } else { ev.out });
    }

    #[inline]
    fn end(&mut self, addr: u64, logged_size: u64, c: &mut Change) {
        match self.live.remove(&addr) {
            // A refused free is logged with size 0: it must not end a live block of another size.
            Some(b) if logged_size == 0 && b.size != 0 => {
                self.live.insert(addr, b);
                c.unknown_in = true;
            }
            Some(b) => {
                self.bytes -= b.size;
                c.ended = Some((addr, b));
            }
            None => c.unknown_in = true,
        }
    }

    fn create(&mut self, ev: &Event, c: &mut Change) {
        let b = Block {
            size: ev.size,
            stack: ev.stack,
            op: ev.op,
            seq: ev.seq,
            t_ns: ev.t_ns,
        };
        if let Some(old) = self.live.insert(ev.out, b) {
            self.bytes -= old.size;
            c.replaced = Some(old);
        }
        self.bytes += ev.size;
        c.created = true;
    }

    #[inline]
    pub fn apply(&mut self, ev: &Event) -> Change {
        let mut c = Change::default();
        if ev.op.is_free() {
            if ev.inp != 0 {
                self.end(ev.inp, ev.size, &mut c);
            }
        } else if ev.op.is_realloc() {
            if ev.out != 0 {
                if ev.inp != 0 {
                    // The old block ends whatever its logged size was.
                    match self.live.remove(&ev.inp) {
                        Some(b) => {
                            self.bytes -= b.size;
                            c.ended = Some((ev.inp, b));
                        }
                        None => c.unknown_in = true,
                    }
                }
                self.create(ev, &mut c);
            } else if ev.size == 0 && ev.inp != 0 {
                // realloc(p, 0): frees p.
                match self.live.remove(&ev.inp) {
                    Some(b) => {
                        self.bytes -= b.size;
                        c.ended = Some((ev.inp, b));
                    }
                    None => c.unknown_in = true,
                }
            } else {
                c.failed = true;
            }
        } else if ev.out != 0 {
            self.create(ev, &mut c);
        } else {
            c.failed = true;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(size: u64) -> Block {
        Block {
            size,
            ..Block::EMPTY
        }
    }

    #[test]
    fn live_map_matches_a_hash_map() {
        let mut m = LiveMap::default();
        let mut r: std::collections::HashMap<u64, u64> = Default::default();
        let mut x = 88172645463325252u64;
        for n in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct keys, many collisions and removals.
            let k = ((x % 5000) + 1) * 16;
            if x.is_multiple_of(3) {
                assert_eq!(m.remove(&k).map(|b| b.size), r.remove(&k));
            } else {
                assert_eq!(m.insert(k, b(n)).map(|b| b.size), r.insert(k, n));
            }
            assert_eq!(m.len(), r.len());
        }
        for (k, v) in &r {
            assert_eq!(m.get(k).map(|b| b.size), Some(*v));
        }
        assert_eq!(m.iter().count(), r.len());
        assert!(m.get(&0).is_none() && m.get(&8).is_none());
    }
}
