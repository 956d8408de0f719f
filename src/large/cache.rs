//! The mapping cache: freed LARGE mappings kept for reuse, so that alloc/free churn of big
//! blocks does not map, fault and unmap every time. Best fit; a much bigger range is split;
//! neighbouring ranges merge; bounded by twice the live LARGE bytes (4 to 256 MiB) and 32
//! ranges, the largest given back first.
//!
//! A range may keep the inaccessible region that followed its block (debugging mode): its
//! last `guard` bytes stay PROT_NONE, so that the next block of the same layout carved from
//! its top needs no mprotect.
//!
//! `Cache` is bookkeeping only: the system calls it asks for (unmap a range, make a guard
//! region accessible) go through the caller's functions (`state` maps them to `sys`).
//!
//! # Invariants
//! - An entry with `base == 0` is free; `bytes` is the sum of the other entries' lengths.
//! - Cached ranges do not overlap, and a guard region is only ever at the end of a range.

pub const CACHE_SLOTS: usize = 32;
const CACHE_MIN_BYTES: usize = 4 << 20;
const CACHE_MAX_BYTES: usize = 256 << 20;
/// A cached range is split when the rest is at least this big (and a quarter of the request).
const SPLIT_MIN: usize = 64 << 10;

/// A cached range `[base, base + len)` whose last `guard` bytes are PROT_NONE (0: none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub base: usize,
    pub len: usize,
    pub guard: usize,
}

impl Entry {
    const FREE: Entry = Entry {
        base: 0,
        len: 0,
        guard: 0,
    };
}

pub struct Cache {
    slots: [Entry; CACHE_SLOTS],
    bytes: usize,
}

/// A range taken from the cache: `[base, base + len)`; `guard_ready` when its last `guard`
/// bytes (as asked) are inaccessible already; `open`: a guard region the caller must make
/// accessible first (the range kept one the request does not want).
#[derive(Debug, PartialEq)]
pub struct Taken {
    pub base: usize,
    pub len: usize,
    pub guard_ready: bool,
    pub open: Option<(usize, usize)>,
}

impl Cache {
    pub const EMPTY: Cache = Cache {
        slots: [Entry::FREE; CACHE_SLOTS],
        bytes: 0,
    };

    /// Bytes the cache may hold: twice the live LARGE bytes, at least 4 MiB, at most 256 MiB
    /// (freed memory kept for reuse, as glibc keeps its heap).
    pub fn limit(live_bytes: usize) -> usize {
        live_bytes
            .saturating_mul(2)
            .clamp(CACHE_MIN_BYTES, CACHE_MAX_BYTES)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The cached ranges.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().copied().filter(|e| e.base != 0)
    }

    /// The best fitting range of at least `len` bytes, split when much larger. With
    /// `guard > 0` the caller wants the last `guard` bytes inaccessible, and a range that ends
    /// with a guard region of that size is carved from its top.
    pub fn take(&mut self, len: usize, guard: usize) -> Option<Taken> {
        let mut best = usize::MAX;
        let mut best_len = usize::MAX;
        for (i, e) in self.slots.iter().enumerate() {
            if e.base != 0 && e.len >= len && e.len < best_len {
                best = i;
                best_len = e.len;
            }
        }
        let e = *self.slots.get(best)?;
        let l = e.len;
        let tail_guard = e.guard != 0 && guard == e.guard;
        // A block with a region behind it must end right at that region: its range is cut to
        // the exact length, never handed out with slack.
        let split = if guard > 0 {
            l > len
        } else {
            l - len >= (len / 4).max(SPLIT_MIN)
        };
        if tail_guard {
            // Carve from the top: the block ends where the range's guard region starts.
            if split {
                self.slots[best] = Entry {
                    base: e.base,
                    len: l - len,
                    guard: 0,
                };
                self.bytes -= len;
                return Some(Taken {
                    base: e.base + l - len,
                    len,
                    guard_ready: true,
                    open: None,
                });
            }
            self.slots[best] = Entry::FREE;
            self.bytes -= l;
            return Some(Taken {
                base: e.base,
                len: l,
                guard_ready: true,
                open: None,
            });
        }
        // A guard region the caller does not want: made accessible first.
        let open = (e.guard != 0).then(|| (e.base + l - e.guard, e.guard));
        if split {
            self.slots[best] = Entry {
                base: e.base + len,
                len: l - len,
                guard: 0,
            };
            self.bytes -= len;
            return Some(Taken {
                base: e.base,
                len,
                guard_ready: false,
                open,
            });
        }
        self.slots[best] = Entry::FREE;
        self.bytes -= l;
        Some(Taken {
            base: e.base,
            len: l,
            guard_ready: false,
            open,
        })
    }

    /// Keeps the freed range `[base, base + len)` (its last `guard` bytes PROT_NONE, or 0),
    /// merged with adjacent cached ranges, within `limit` bytes: the largest ranges are given
    /// back to make room, or this one when it still does not fit. `unmap` gives a range back,
    /// `open` makes a guard region accessible.
    pub fn put(
        &mut self,
        mut base: usize,
        mut len: usize,
        mut guard: usize,
        limit: usize,
        unmap: &mut impl FnMut(usize, usize),
        open: &mut impl FnMut(usize, usize),
    ) {
        if guard != 0
            && self
                .slots
                .iter()
                .any(|e| e.base != 0 && e.base == base + len)
        {
            // A cached range starts right behind: merging beats keeping the guard region (a
            // fragmented cache maps and faults more than one mprotect costs).
            open(base + len - guard, guard);
            guard = 0;
        }
        for slot in self.slots.iter_mut() {
            if slot.base == 0 {
                continue;
            }
            // Ranges merge only where no guard region would end up inside the result.
            if slot.base + slot.len == base && slot.guard == 0 {
                base = slot.base;
                len += slot.len;
            } else if base + len == slot.base && guard == 0 {
                len += slot.len;
                guard = slot.guard;
            } else {
                continue;
            }
            self.bytes -= slot.len;
            *slot = Entry::FREE;
        }
        while self.bytes + len > limit && self.evict_one(unmap) {}
        if self.bytes + len > limit {
            unmap(base, len);
            return;
        }
        if !self.slots.iter().any(|e| e.base == 0) {
            self.evict_one(unmap);
        }
        if let Some(free) = self.slots.iter_mut().find(|e| e.base == 0) {
            *free = Entry { base, len, guard };
            self.bytes += len;
        } else {
            unmap(base, len);
        }
    }

    /// Gives back the largest cached range; false if there is none.
    pub fn evict_one(&mut self, unmap: &mut impl FnMut(usize, usize)) -> bool {
        let mut best = usize::MAX;
        let mut best_len = 0;
        for (i, e) in self.slots.iter().enumerate() {
            if e.base != 0 && (best == usize::MAX || e.len > best_len) {
                best = i;
                best_len = e.len;
            }
        }
        let Some(e) = self.slots.get_mut(best) else {
            return false;
        };
        let b = e.base;
        *e = Entry::FREE;
        self.bytes -= best_len;
        unmap(b, best_len);
        true
    }
}
