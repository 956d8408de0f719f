//! The mapping cache: freed LARGE mappings kept resident for reuse, so that alloc/free churn
//! of big blocks does not map, fault and unmap every time. Best fit; a much bigger range is
//! split; neighbouring ranges merge. A request that no range fits is built on the resident
//! pages the cache holds (`gather`): its largest range is grown by the kernel, and for a big
//! request the rest is filled with pages moved out of other ranges, so only what the cache
//! lacks is new memory. Bounded by 512 ranges and a byte budget (`limit`: what recent LARGE
//! use may need again), the smallest ranges given back first; a huge range (above 32 MiB) is
//! kept only while the live LARGE bytes are at least half of it.
//!
//! A range may keep the inaccessible region that followed its block (debugging mode): its
//! last `guard` bytes stay inaccessible (guard markers, or PROT_NONE where the kernel has no
//! markers), so that the next block of the same layout carved from its top needs no system
//! call. Such ranges are never gathered.
//!
//! `Cache` is bookkeeping only: the system calls it asks for (unmap a range, make a guard
//! region accessible, grow or move pages) go through the caller's functions (`state` maps
//! them to `sys`).
//!
//! # Invariants
//! - An entry with `base == 0` is free; `bytes` is the sum of the other entries' lengths.
//! - Cached ranges do not overlap, and a guard region is only ever at the end of a range.

pub const CACHE_SLOTS: usize = 512;
const CACHE_MIN_BYTES: usize = 4 << 20;
const CACHE_MAX_BYTES: usize = 256 << 20;
/// Churn at a steady level keeps up to this share of the live LARGE bytes cached.
const LIVE_SHARE: usize = 8;
/// A request this big may be gathered from several ranges (each piece is a kernel mapping of
/// its own inside the block, so small blocks take one range at most).
const GATHER_MIN: usize = 1 << 20;
/// Ranges one request is gathered from, at most.
const GATHER_PIECES: usize = 4;
/// A freed range above this size is kept only while the live LARGE bytes are at least half
/// of it (glibc gives such blocks back at once).
const HUGE: usize = 32 << 20;
/// Smallest range moved into a gathered request.
const PIECE_MIN: usize = 64 << 10;
/// A cached range is split when the rest is at least this big (and a quarter of the request).
const SPLIT_MIN: usize = 16 << 10;

/// A cached range `[base, base + len)` whose last `guard` bytes are inaccessible (0: none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub base: usize,
    pub len: usize,
    pub guard: usize,
    /// The kernel refused to grow or move this range (it spans several kernel mappings):
    /// `gather` leaves it alone; best fit still hands it out.
    pub stuck: bool,
}

impl Entry {
    const FREE: Entry = Entry {
        base: 0,
        len: 0,
        guard: 0,
        stuck: false,
    };
}

pub struct Cache {
    slots: [Entry; CACHE_SLOTS],
    bytes: usize,
}

/// What became of a cached range the cache asked to grow (`gather`).
#[derive(Debug, PartialEq)]
pub enum Grown {
    /// Grown, now at this base (the kernel may have moved it).
    At(usize),
    /// Refused for this range (it spans several kernel mappings): left to best fit.
    Stuck,
    /// Refused for lack of memory or address space: no other range would do better.
    NoMemory,
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

    /// Bytes the cache may hold with `live_bytes` LARGE bytes in use, a recent peak of `peak`
    /// LARGE bytes and a recent largest request of `big` bytes: what it takes to get back to
    /// that peak without new memory, plus room for two such requests, at least 4 MiB and an
    /// eighth of the live bytes (churn at a steady level reuses resident pages); never more
    /// than the recent peak or twice the live bytes, whichever is more, nor 256 MiB.
    pub fn limit(live_bytes: usize, peak: usize, big: usize) -> usize {
        let cap = live_bytes
            .saturating_mul(2)
            .max(peak)
            .clamp(CACHE_MIN_BYTES, CACHE_MAX_BYTES);
        peak.saturating_sub(live_bytes)
            .saturating_add(
                big.saturating_mul(2)
                    .max(CACHE_MIN_BYTES)
                    .max(live_bytes / LIVE_SHARE),
            )
            .min(cap)
    }

    /// Whether a freed range of `len` bytes is worth keeping with `live_bytes` LARGE bytes in
    /// use: a huge one only while the program works at that scale, so that a single huge
    /// block, once freed, does not stay resident.
    pub fn worth_keeping(len: usize, live_bytes: usize) -> bool {
        len <= HUGE || len <= live_bytes.saturating_mul(2)
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
                    stuck: e.stuck,
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
                stuck: e.stuck,
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

    /// Keeps the freed range `[base, base + len)` (its last `guard` bytes inaccessible, or 0),
    /// merged with adjacent cached ranges, within `limit` bytes: the smallest ranges are given
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
            // fragmented cache maps and faults more than one system call costs).
            open(base + len - guard, guard);
            guard = 0;
        }
        let mut stuck = false;
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
            stuck |= slot.stuck;
            self.bytes -= slot.len;
            *slot = Entry::FREE;
        }
        // Room is made by giving back the smallest ranges, this one included.
        while self.bytes + len > limit || !self.slots.iter().any(|e| e.base == 0) {
            match self.smallest() {
                Some(i) if self.slots[i].len < len => self.evict(i, unmap),
                _ => {
                    unmap(base, len);
                    return;
                }
            }
        }
        if let Some(i) = self.slots.iter().position(|e| e.base == 0) {
            self.slots[i] = Entry {
                base,
                len,
                guard,
                stuck,
            };
            self.bytes += len;
        }
    }

    /// Whether a cached range of at least `len` bytes is there for `take`.
    pub fn fits(&self, len: usize) -> bool {
        self.slots.iter().any(|e| e.base != 0 && e.len >= len)
    }

    /// Takes the first `want` bytes of the cached range that starts at `base` (one without a
    /// guard region), for the block that ends there to grow into; false, the cache unchanged,
    /// when there is no such range or it is shorter.
    pub fn take_at(&mut self, base: usize, want: usize) -> bool {
        let Some(i) = self
            .slots
            .iter()
            .position(|e| e.base == base && e.guard == 0 && e.len >= want)
        else {
            return false;
        };
        let e = self.slots[i];
        self.slots[i] = if e.len == want {
            Entry::FREE
        } else {
            Entry {
                base: base + want,
                len: e.len - want,
                guard: 0,
                stuck: e.stuck,
            }
        };
        self.bytes -= want;
        true
    }

    /// Builds a range of `len` bytes (no guard region wanted) that no cached range fits on
    /// the cached pages: the largest range without a guard region is grown to `len` by
    /// `grow(base, old_len, new_len)` (the kernel may move it), and for a request of at least
    /// `GATHER_MIN` bytes the pages behind it are filled by `fill(src, n, dst)` (moves `n`
    /// bytes of pages from `src` to `dst`), taken from the top of the largest other ranges.
    /// None, the cache unchanged, when nothing is cached or the kernel refuses to grow.
    pub fn gather(
        &mut self,
        len: usize,
        grow: &mut impl FnMut(usize, usize, usize) -> Grown,
        fill: &mut impl FnMut(usize, usize, usize) -> bool,
    ) -> Option<Taken> {
        let mut tries = 0;
        let (e, base) = loop {
            let i = self.largest_plain(0)?;
            let e = self.slots[i];
            if e.len >= len || tries == GATHER_PIECES {
                return None;
            }
            tries += 1;
            match grow(e.base, e.len, len) {
                Grown::At(base) => {
                    self.slots[i] = Entry::FREE;
                    break (e, base);
                }
                Grown::Stuck => self.slots[i].stuck = true,
                Grown::NoMemory => return None,
            }
        };
        self.bytes -= e.len;
        let mut covered = e.len;
        let mut pieces = 1;
        if len >= GATHER_MIN {
            for _ in 1..GATHER_PIECES * 2 {
                let Some(i) = self.largest_plain(PIECE_MIN) else {
                    break;
                };
                if covered >= len || pieces == GATHER_PIECES {
                    break;
                }
                let p = self.slots[i];
                let n = p.len.min(len - covered);
                if !fill(p.base + p.len - n, n, base + covered) {
                    self.slots[i].stuck = true;
                    continue;
                }
                self.slots[i].len -= n;
                if self.slots[i].len == 0 {
                    self.slots[i] = Entry::FREE;
                }
                self.bytes -= n;
                covered += n;
                pieces += 1;
            }
        }
        Some(Taken {
            base,
            len,
            guard_ready: false,
            open: None,
        })
    }

    /// The largest cached range without a guard region of at least `min` bytes.
    fn largest_plain(&self, min: usize) -> Option<usize> {
        let mut best = None;
        let mut best_len = 0;
        for (i, e) in self.slots.iter().enumerate() {
            if e.base != 0 && e.guard == 0 && !e.stuck && e.len >= min.max(1) && e.len > best_len {
                best = Some(i);
                best_len = e.len;
            }
        }
        best
    }

    /// The smallest cached range.
    fn smallest(&self) -> Option<usize> {
        let mut best = None;
        let mut best_len = usize::MAX;
        for (i, e) in self.slots.iter().enumerate() {
            if e.base != 0 && e.len < best_len {
                best = Some(i);
                best_len = e.len;
            }
        }
        best
    }

    fn evict(&mut self, i: usize, unmap: &mut impl FnMut(usize, usize)) {
        let e = self.slots[i];
        self.slots[i] = Entry::FREE;
        self.bytes -= e.len;
        unmap(e.base, e.len);
    }

    /// Gives back the smallest cached range (the least likely to serve a request, and a
    /// large range keeps the most pages resident per entry); false if there is none.
    pub fn evict_one(&mut self, unmap: &mut impl FnMut(usize, usize)) -> bool {
        let Some(i) = self.smallest() else {
            return false;
        };
        self.evict(i, unmap);
        true
    }
}
