//! The mapping cache: freed LARGE mappings kept resident for reuse, so that alloc/free churn
//! of big blocks does not map, fault and unmap every time. Best fit; a much bigger range is
//! split; neighbouring ranges merge. A request that no range fits is built on the resident
//! pages the cache holds (`gather`): its largest range is grown by the kernel, and for a big
//! request the rest is filled with pages moved out of other ranges, so only what the cache
//! lacks is new memory. Bounded by 4096 ranges and a byte budget (`limit`: what recent LARGE
//! use may need again), the smallest ranges given back first; a huge range (above 32 MiB) is
//! kept only while the LARGE pages in use are at least half of it. A program that frees its
//! blocks at the end of a phase thus keeps up to its recent peak resident (at most 1 GiB), as
//! glibc's heap keeps what is freed in it, rather than paying a system call per block.
//!
//! A range may keep the inaccessible region that followed its block (debugging mode): its
//! last `guard` bytes stay inaccessible (guard markers, or PROT_NONE where the kernel has no
//! markers), so that the next block of the same layout carved from its top needs no system
//! call. Such a range is never the one a gathering grows, and a block with such a region is not
//! built by gathering either: when no range fits it, its new pages (and those a block of that
//! kind grows by), from 256 KiB up, are replaced with pages moved out of cached ranges
//! (`fill_from`).
//!
//! Best fit, the smallest and the largest range are found through size bins, and a range's
//! neighbours through address tables (`index`), so a call reads a few slots, not all 4096.
//!
//! `Cache` is bookkeeping only: the system calls it asks for (unmap a range, make a guard
//! region accessible, grow or move pages) go through the caller's functions (`state` maps
//! them to `sys`).
//!
//! # Invariants
//! - An entry with `base == 0` is free; `bytes` is the sum of the other entries' lengths and
//!   `count` their number; a used slot is in the bins and both address tables (`add`,
//!   `remove`), a free one below `fresh` is on the `free` stack.
//! - Cached ranges do not overlap, and a guard region is only ever at the end of a range.

use super::index::{Bins, CELLS, Table, bin};

pub const CACHE_SLOTS: usize = 4096;
const _: () = assert!(CACHE_SLOTS * 2 <= CELLS && CACHE_SLOTS < u16::MAX as usize);
const CACHE_MIN_BYTES: usize = 4 << 20;
const CACHE_MAX_BYTES: usize = 1 << 30;
/// Churn at a steady level keeps up to this share of the live LARGE bytes cached.
const LIVE_SHARE: usize = 8;
/// A request this big may be gathered from several ranges (each piece is a kernel mapping of
/// its own inside the block, so small blocks take one range at most).
const GATHER_MIN: usize = 1 << 20;
/// Ranges one request is gathered from, at most.
const GATHER_PIECES: usize = 4;
/// Cached ranges whose pages one new or grown debugging-mode block takes, at most: each piece
/// moved splits a kernel mapping or two, as a gathered block's do (`GATHER_PIECES`).
const FILL_PIECES: usize = GATHER_PIECES;
/// Fewest new bytes of a block that cached pages are moved over (a smaller block would split
/// mappings for a few page faults: blocks of a few hundred KiB are the most numerous).
const FILL_MIN: usize = 256 << 10;
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
    count: usize,
    /// Slots used at least once: `[fresh, CACHE_SLOTS)` were never used.
    fresh: usize,
    /// Slots below `fresh` that are free again (`nfree` of them).
    free: [u16; CACHE_SLOTS],
    nfree: usize,
    bins: Bins<CACHE_SLOTS>,
    /// Slots by the address where their range starts, and where it ends.
    starts: Table,
    ends: Table,
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
        count: 0,
        fresh: 0,
        free: [0; CACHE_SLOTS],
        nfree: 0,
        bins: Bins::EMPTY,
        starts: Table::EMPTY,
        ends: Table::EMPTY,
    };

    /// Puts `e` in a free slot (there is one: `count < CACHE_SLOTS`) and indexes it; the
    /// caller counts its bytes.
    #[unsafe(link_section = "ft_hot")]
    fn add(&mut self, e: Entry) {
        let i = if self.nfree > 0 {
            self.nfree -= 1;
            self.free[self.nfree] as usize
        } else {
            self.fresh += 1;
            self.fresh - 1
        };
        self.slots[i] = e;
        self.bins.link(i, e.len);
        self.starts.insert(e.base, i);
        self.ends.insert(e.base + e.len, i);
        self.count += 1;
    }

    /// Frees slot `i` and returns its range; the caller uncounts its bytes.
    #[unsafe(link_section = "ft_hot")]
    fn remove(&mut self, i: usize) -> Entry {
        let e = self.slots[i];
        let slots = &self.slots;
        self.bins.unlink(i, e.len);
        self.starts.remove(e.base, i, |j| slots[j].base);
        self.ends
            .remove(e.base + e.len, i, |j| slots[j].base + slots[j].len);
        self.slots[i] = Entry::FREE;
        self.free[self.nfree] = i as u16;
        self.nfree += 1;
        self.count -= 1;
        e
    }

    /// Replaces the range of slot `i` with `e` (the caller adjusts `bytes`).
    fn replace(&mut self, i: usize, e: Entry) {
        self.remove(i);
        self.add(e);
    }

    /// The slot whose range starts at `base`.
    fn starting_at(&self, base: usize) -> Option<usize> {
        self.starts.find(base, |j| self.slots[j].base)
    }

    /// The slot whose range ends at `end`.
    fn ending_at(&self, end: usize) -> Option<usize> {
        self.ends
            .find(end, |j| self.slots[j].base + self.slots[j].len)
    }

    /// Checks the indexes against the slots (tests).
    #[cfg(test)]
    pub(super) fn assert_indexed(&self) {
        let mut n = 0;
        for (i, e) in self.slots.iter().enumerate() {
            if e.base == 0 {
                continue;
            }
            n += 1;
            assert_eq!(self.starting_at(e.base), Some(i));
            assert_eq!(self.ending_at(e.base + e.len), Some(i));
            assert!(self.bins.slots(bin(e.len)).any(|j| j == i));
        }
        assert_eq!(n, self.count);
        assert_eq!(self.entries().map(|e| e.len).sum::<usize>(), self.bytes);
    }

    /// The shortest range in bin `b` of at least `len` bytes.
    fn shortest_in(&self, b: usize, len: usize) -> Option<usize> {
        let mut best = None;
        let mut best_len = usize::MAX;
        for i in self.bins.slots(b) {
            let l = self.slots[i].len;
            if l >= len && l < best_len {
                best = Some(i);
                best_len = l;
            }
        }
        best
    }

    /// The shortest range of at least `len` bytes: in `len`'s bin, else the shortest of the
    /// next bin in use (all of whose ranges are longer).
    #[unsafe(link_section = "ft_hot")]
    fn best_fit(&self, len: usize) -> Option<usize> {
        let b = bin(len);
        self.shortest_in(b, len)
            .or_else(|| self.shortest_in(self.bins.used_from(b + 1)?, 0))
    }

    /// Bytes the cache may hold with `live_bytes` bytes of LARGE mappings in use, a recent peak
    /// of `peak` such bytes and a recent largest request of `big` bytes: what it takes to get
    /// back to that peak without new memory, plus room for two such requests, at least 4 MiB
    /// and an eighth of the live bytes (churn at a steady level reuses resident pages); never
    /// more than the recent peak or twice the live bytes, whichever is more, nor 1 GiB.
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

    /// Whether a freed range of `len` bytes is worth keeping with `live_bytes` bytes of LARGE
    /// mappings in use: a huge one only while the program works at that scale, so that a single
    /// huge block, once freed, does not stay resident.
    pub fn worth_keeping(len: usize, live_bytes: usize) -> bool {
        len <= HUGE || len <= live_bytes.saturating_mul(2)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The cached ranges (read from the slots used so far only: the rest, never written, stay
    /// off the process's resident pages when a dump or the exit leak check lists the ranges).
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots[..self.fresh]
            .iter()
            .copied()
            .filter(|e| e.base != 0)
    }

    /// The best fitting range of at least `len` bytes, split when much larger. With
    /// `guard > 0` the caller wants the last `guard` bytes inaccessible, and a range that ends
    /// with a guard region of that size is carved from its top.
    #[unsafe(link_section = "ft_hot")]
    pub fn take(&mut self, len: usize, guard: usize) -> Option<Taken> {
        let best = self.best_fit(len)?;
        let e = self.slots[best];
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
                self.replace(
                    best,
                    Entry {
                        base: e.base,
                        len: l - len,
                        guard: 0,
                        stuck: e.stuck,
                    },
                );
                self.bytes -= len;
                return Some(Taken {
                    base: e.base + l - len,
                    len,
                    guard_ready: true,
                    open: None,
                });
            }
            self.remove(best);
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
            self.replace(
                best,
                Entry {
                    base: e.base + len,
                    len: l - len,
                    guard: 0,
                    stuck: e.stuck,
                },
            );
            self.bytes -= len;
            return Some(Taken {
                base: e.base,
                len,
                guard_ready: false,
                open,
            });
        }
        self.remove(best);
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
        if guard != 0 && self.starting_at(base + len).is_some() {
            // A cached range starts right behind: merging beats keeping the guard region (a
            // fragmented cache maps and faults more than one system call costs).
            open(base + len - guard, guard);
            guard = 0;
        }
        let mut stuck = false;
        // Ranges merge only where no guard region would end up inside the result.
        if let Some(i) = self.ending_at(base).filter(|&i| self.slots[i].guard == 0) {
            let front = self.remove(i);
            self.bytes -= front.len;
            stuck |= front.stuck;
            base = front.base;
            len += front.len;
        }
        if guard == 0
            && let Some(i) = self.starting_at(base + len)
        {
            let back = self.remove(i);
            self.bytes -= back.len;
            stuck |= back.stuck;
            len += back.len;
            guard = back.guard;
        }
        // Room is made by giving back the smallest ranges, this one included.
        while self.bytes + len > limit || self.count == CACHE_SLOTS {
            match self.smallest() {
                Some(i) if self.slots[i].len < len => self.evict(i, unmap),
                _ => {
                    unmap(base, len);
                    return;
                }
            }
        }
        self.add(Entry {
            base,
            len,
            guard,
            stuck,
        });
        self.bytes += len;
    }

    /// Whether a cached range of at least `len` bytes is there for `take`.
    pub fn fits(&self, len: usize) -> bool {
        self.best_fit(len).is_some()
    }

    /// Takes the first `want` bytes of the cached range that starts at `base` (one without a
    /// guard region), for the block that ends there to grow into; false, the cache unchanged,
    /// when there is no such range or it is shorter.
    pub fn take_at(&mut self, base: usize, want: usize) -> bool {
        let Some(i) = self
            .starting_at(base)
            .filter(|&i| self.slots[i].guard == 0 && self.slots[i].len >= want)
        else {
            return false;
        };
        let e = self.remove(i);
        if e.len != want {
            self.add(Entry {
                base: base + want,
                len: e.len - want,
                guard: 0,
                stuck: e.stuck,
            });
        }
        self.bytes -= want;
        true
    }

    /// Builds a range of `len` bytes (no guard region wanted) that no cached range fits on
    /// the cached pages: the largest range without a guard region is grown to `len` by
    /// `grow(base, old_len, new_len)` (the kernel may move it), and for a request of at least
    /// `GATHER_MIN` bytes the pages behind it are filled by `fill(src, n, dst)` (moves `n`
    /// bytes of pages from `src` to `dst`), taken out of the other ranges (`move_into`).
    /// None, the cache unchanged, when nothing is cached or the kernel refuses to grow.
    pub fn gather(
        &mut self,
        len: usize,
        grow: &mut impl FnMut(usize, usize, usize) -> Grown,
        fill: &mut impl FnMut(usize, usize, usize) -> bool,
    ) -> Option<Taken> {
        let mut tries = 0;
        let (e, base) = loop {
            let i = self.largest(0, true)?;
            let e = self.slots[i];
            if e.len >= len || tries == GATHER_PIECES {
                return None;
            }
            tries += 1;
            match grow(e.base, e.len, len) {
                Grown::At(base) => {
                    self.remove(i);
                    break (e, base);
                }
                Grown::Stuck => self.slots[i].stuck = true,
                Grown::NoMemory => return None,
            }
        };
        self.bytes -= e.len;
        if len >= GATHER_MIN {
            self.move_into(base + e.len, len - e.len, GATHER_PIECES - 1, fill);
        }
        Some(Taken {
            base,
            len,
            guard_ready: false,
            open: None,
        })
    }

    /// Moves cached pages over `[dst, dst + want)`, the fresh pages of a new or grown block
    /// (`move_into`, out of at most `FILL_PIECES` ranges; nothing when fewer than `FILL_MIN`
    /// bytes are wanted): the block then faults in no new page there. Returns how many bytes
    /// from `dst` up were covered.
    pub fn fill_from(
        &mut self,
        dst: usize,
        want: usize,
        fill: &mut impl FnMut(usize, usize, usize) -> bool,
    ) -> usize {
        if want < FILL_MIN {
            return 0;
        }
        self.move_into(dst, want, FILL_PIECES, fill)
    }

    /// Moves cached pages over `[dst, dst + want)` by `fill(src, n, dst)`, out of at most
    /// `max_pieces` ranges, those with the most bytes before their guard region first, at least
    /// `PIECE_MIN` of them each (or all that is still wanted). A range without a guard region
    /// gives its top (its front may be where the block before it grows, `take_at`), one with a
    /// guard region its front. A range the kernel refuses to move is marked and skipped.
    /// Returns how many bytes from `dst` up were covered.
    fn move_into(
        &mut self,
        dst: usize,
        want: usize,
        max_pieces: usize,
        fill: &mut impl FnMut(usize, usize, usize) -> bool,
    ) -> usize {
        let mut covered = 0;
        let mut pieces = 0;
        for _ in 0..max_pieces * 2 {
            if covered >= want || pieces == max_pieces {
                break;
            }
            let Some(i) = self.largest(PIECE_MIN.min(want - covered), false) else {
                break;
            };
            let e = self.slots[i];
            let n = (e.len - e.guard).min(want - covered);
            let (src, rest) = if e.guard == 0 {
                (e.base + e.len - n, e.base)
            } else {
                (e.base, e.base + n)
            };
            if !fill(src, n, dst + covered) {
                self.slots[i].stuck = true;
                continue;
            }
            self.remove(i);
            if e.len > n {
                self.add(Entry {
                    base: rest,
                    len: e.len - n,
                    ..e
                });
            }
            self.bytes -= n;
            covered += n;
            pieces += 1;
        }
        covered
    }

    /// The cached range with the most bytes before its guard region (at least `min`), not
    /// stuck; with `plain`, only ranges without a guard region.
    fn largest(&self, min: usize, plain: bool) -> Option<usize> {
        let mut best = None;
        let mut best_len = 0;
        for b in self.bins.used_downwards() {
            for i in self.bins.slots(b) {
                let e = &self.slots[i];
                let n = e.len - e.guard;
                if (!plain || e.guard == 0) && !e.stuck && n >= min.max(1) && n > best_len {
                    best = Some(i);
                    best_len = n;
                }
            }
            // The first bin with a range that gives enough: ranges of lower bins are shorter
            // (one with a guard region here may give less than one of them: close enough).
            if best.is_some() {
                return best;
            }
        }
        None
    }

    /// The smallest cached range.
    fn smallest(&self) -> Option<usize> {
        self.shortest_in(self.bins.used_from(0)?, 0)
    }

    fn evict(&mut self, i: usize, unmap: &mut impl FnMut(usize, usize)) {
        let e = self.remove(i);
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
