//! The one-pass analysis behind `summary`, `leaks`, `top` and `plot`.
//!
//! Memory: O(live blocks + distinct call stacks + threads + plot buckets).

use crate::parse::OP_COUNT;
use crate::reader::{Event, Sink};
use crate::replay::Heap;
use rustc_hash::{FxHashMap, FxHashSet};

/// The size histogram's buckets are the library's (0, then `[2^(k-1), 2^k)`), from the format
/// crate both sides share.
pub use ft_format::{HIST_BUCKETS, bucket as hist_bucket, bucket_range as hist_range};

#[derive(Clone, Copy, Default, Debug)]
pub struct Site {
    /// Allocation calls made from this stack (failed ones included).
    pub calls: u64,
    /// Bytes of the blocks allocated from this stack.
    pub bytes: u64,
    /// Blocks freed before any other allocation happened (heaptrack's "temporary").
    pub temporary: u64,
    pub live_bytes: u64,
    pub live_blocks: u64,
    /// Live bytes/blocks of this stack at the moment of the heap's peak.
    pub peak_bytes: u64,
    pub peak_blocks: u64,
    dirty: bool,
}

impl Site {
    /// Adds the counts of `o` (the same stack under another id).
    pub fn add(&mut self, o: &Site) {
        self.calls += o.calls;
        self.bytes += o.bytes;
        self.temporary += o.temporary;
        self.live_bytes += o.live_bytes;
        self.live_blocks += o.live_blocks;
        self.peak_bytes += o.peak_bytes;
        self.peak_blocks += o.peak_blocks;
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub min: u64,
    pub max: u64,
    pub last: u64,
}

/// Memory in use over time, downsampled into at most `cap` buckets whose width doubles as
/// needed (bounded memory whatever the length of the log).
pub struct Timeline {
    pub origin: Option<u64>,
    pub width: u64,
    pub buckets: Vec<Bucket>,
    cap: usize,
}

impl Timeline {
    pub fn new(cap: usize) -> Self {
        Timeline {
            origin: None,
            width: 1,
            buckets: Vec::new(),
            cap: cap.max(2) & !1,
        }
    }

    #[inline]
    pub fn record(&mut self, x: u64, live: u64) {
        let origin = *self.origin.get_or_insert(x);
        let rel = x.saturating_sub(origin);
        let mut idx = (rel / self.width) as usize;
        while idx >= self.cap {
            let merged: Vec<Bucket> = self
                .buckets
                .chunks(2)
                .map(|c| match c {
                    [a, b] => Bucket {
                        min: a.min.min(b.min),
                        max: a.max.max(b.max),
                        last: b.last,
                    },
                    [a] => *a,
                    _ => unreachable!(),
                })
                .collect();
            self.buckets = merged;
            self.width *= 2;
            idx = (rel / self.width) as usize;
        }
        if idx >= self.buckets.len() {
            let prev = self.buckets.last().map_or(0, |b| b.last);
            self.buckets.resize(
                idx + 1,
                Bucket {
                    min: prev,
                    max: prev,
                    last: prev,
                },
            );
        }
        let b = &mut self.buckets[idx];
        b.min = b.min.min(live);
        b.max = b.max.max(live);
        b.last = live;
    }
}

pub struct Stats {
    pub heap: Heap,
    pub calls: [u64; OP_COUNT],
    pub failed: [u64; OP_COUNT],
    /// Frees/reallocs of pointers that were not live blocks (refused, or allocated before the log).
    pub unknown_frees: u64,
    /// Blocks created where one was already live (events missing from the log).
    pub replaced: u64,
    pub alloc_blocks: u64,
    pub alloc_bytes: u64,
    pub peak_bytes: u64,
    pub peak_blocks: u64,
    pub peak_seq: u64,
    pub peak_t: u64,
    peak_pending: bool,
    pub hist: [u64; HIST_BUCKETS],
    pub sites: Vec<Site>,
    dirty: Vec<u32>,
    last_alloc_seq: u64,
    pub temporary: u64,
    pub threads: FxHashSet<u32>,
    last_tid: u32,
    pub first_t: Option<u64>,
    pub last_t: u64,
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    /// Memory in use over time (x = t_ns), and over event numbers.
    pub by_time: Timeline,
    pub by_seq: Timeline,
    pub track_timeline: bool,
}

impl Stats {
    pub fn new(track_timeline: bool) -> Self {
        Stats {
            heap: Heap::default(),
            calls: [0; OP_COUNT],
            failed: [0; OP_COUNT],
            unknown_frees: 0,
            replaced: 0,
            alloc_blocks: 0,
            alloc_bytes: 0,
            peak_bytes: 0,
            peak_blocks: 0,
            peak_seq: 0,
            peak_t: 0,
            peak_pending: false,
            hist: [0; HIST_BUCKETS],
            sites: Vec::new(),
            dirty: Vec::new(),
            last_alloc_seq: 0,
            temporary: 0,
            threads: FxHashSet::default(),
            last_tid: u32::MAX,
            first_t: None,
            last_t: 0,
            first_seq: None,
            last_seq: 0,
            by_time: Timeline::new(2048),
            by_seq: Timeline::new(2048),
            track_timeline,
        }
    }

    #[inline]
    fn site(&mut self, id: u32) -> &mut Site {
        let i = id as usize;
        if i >= self.sites.len() {
            self.sites.resize(i + 1, Site::default());
        }
        &mut self.sites[i]
    }

    #[inline]
    fn touch(&mut self, id: u32) {
        let s = &mut self.sites[id as usize];
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Copy the current per-site live counts into the peak columns (only the sites that changed).
    fn snapshot_peak(&mut self) {
        for &id in &self.dirty {
            let s = &mut self.sites[id as usize];
            s.peak_bytes = s.live_bytes;
            s.peak_blocks = s.live_blocks;
            s.dirty = false;
        }
        self.dirty.clear();
        self.peak_pending = false;
    }

    /// Call at the end of the log.
    pub fn finish(&mut self) {
        if self.peak_pending {
            self.snapshot_peak();
        }
    }

    pub fn live_bytes(&self) -> u64 {
        self.heap.bytes
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// Time from the start of the process (`start_ns`) to the last event.
    pub fn duration_ns(&self) -> u64 {
        self.last_t
    }
}

impl Sink for Stats {
    #[inline(always)]
    fn prefetch(&self, ev: &Event) {
        self.heap.prefetch(ev);
    }

    #[inline]
    fn event(&mut self, ev: &Event) -> bool {
        let op = ev.op as usize;
        self.calls[op] += 1;
        if self.first_t.is_none() {
            self.first_t = Some(ev.t_ns);
            self.first_seq = Some(ev.seq);
        }
        self.last_t = self.last_t.max(ev.t_ns);
        self.last_seq = self.last_seq.max(ev.seq);
        if ev.tid != self.last_tid {
            self.last_tid = ev.tid;
            self.threads.insert(ev.tid);
        }
        let before = self.heap.bytes;
        let c = self.heap.apply(ev);
        if c.failed {
            self.failed[op] += 1;
        }
        if c.unknown_in {
            self.unknown_frees += 1;
        }
        if self.heap.bytes < before && self.peak_pending {
            // Going down from a peak: the per-site counts are still those of the peak.
            self.snapshot_peak();
        }
        if let Some((_, b)) = c.ended {
            let temporary = b.seq == self.last_alloc_seq && !ev.op.is_realloc();
            let s = self.site(b.stack);
            s.live_bytes -= b.size;
            s.live_blocks -= 1;
            if temporary {
                s.temporary += 1;
                self.temporary += 1;
            }
            self.touch(b.stack);
        }
        if let Some(b) = c.replaced {
            self.replaced += 1;
            let s = self.site(b.stack);
            s.live_bytes -= b.size;
            s.live_blocks -= 1;
            self.touch(b.stack);
        }
        if !ev.op.is_free() && (!ev.op.is_realloc() || ev.out != 0 || ev.size != 0) {
            let s = self.site(ev.stack);
            s.calls += 1;
            if c.created {
                s.bytes += ev.size;
                s.live_bytes += ev.size;
                s.live_blocks += 1;
                self.touch(ev.stack);
                self.alloc_blocks += 1;
                self.alloc_bytes += ev.size;
                self.hist[hist_bucket(ev.size)] += 1;
                self.last_alloc_seq = ev.seq;
            }
        }
        if self.heap.bytes > self.peak_bytes
            || (self.heap.bytes == self.peak_bytes && self.peak_seq == 0 && c.created)
        {
            self.peak_bytes = self.heap.bytes;
            self.peak_blocks = self.heap.live.len() as u64;
            self.peak_seq = ev.seq;
            self.peak_t = ev.t_ns;
            self.peak_pending = true;
        }
        if self.track_timeline {
            self.by_time.record(ev.t_ns, self.heap.bytes);
            self.by_seq.record(ev.seq, self.heap.bytes);
        }
        true
    }
}

impl Stats {
    /// The per-stack counts grouped by `canon` (see `Stacks::canonical`): (id, counts) of
    /// every stack that allocated or held bytes at the peak, by id.
    pub fn sites_by(&self, canon: &[u32]) -> Vec<(u32, Site)> {
        let mut m: FxHashMap<u32, Site> = FxHashMap::default();
        for (i, s) in self.sites.iter().enumerate() {
            if s.calls > 0 || s.peak_bytes > 0 {
                m.entry(canon[i]).or_default().add(s);
            }
        }
        let mut v: Vec<(u32, Site)> = m.into_iter().collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }
}

/// Blocks still live, grouped by allocation stack.
#[derive(Clone, Copy, Debug)]
pub struct LeakSite {
    pub stack: u32,
    pub bytes: u64,
    pub blocks: u64,
    pub min_size: u64,
    pub max_size: u64,
    pub first_seq: u64,
    pub first_addr: u64,
}

/// The live blocks of `heap` grouped by stack (`canon`: see `Stacks::canonical`), most bytes
/// first.
pub fn leak_sites(heap: &Heap, canon: &[u32]) -> Vec<LeakSite> {
    let mut m: FxHashMap<u32, LeakSite> = FxHashMap::default();
    for (&addr, b) in &heap.live {
        let stack = canon[b.stack as usize];
        let e = m.entry(stack).or_insert(LeakSite {
            stack,
            bytes: 0,
            blocks: 0,
            min_size: u64::MAX,
            max_size: 0,
            first_seq: u64::MAX,
            first_addr: addr,
        });
        e.bytes += b.size;
        e.blocks += 1;
        e.min_size = e.min_size.min(b.size);
        e.max_size = e.max_size.max(b.size);
        if b.seq < e.first_seq {
            e.first_seq = b.seq;
            e.first_addr = addr;
        }
    }
    let mut v: Vec<LeakSite> = m.into_values().collect();
    v.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.blocks.cmp(&a.blocks))
            .then(a.first_seq.cmp(&b.first_seq))
            .then(a.stack.cmp(&b.stack))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(1), 1);
        assert_eq!(hist_bucket(2), 2);
        assert_eq!(hist_bucket(3), 2);
        assert_eq!(hist_bucket(4), 3);
        assert_eq!(hist_bucket(5), 3);
        assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS - 1);
        for b in 0..HIST_BUCKETS {
            let (lo, hi) = hist_range(b);
            assert_eq!(hist_bucket(lo), b);
            assert_eq!(hist_bucket(hi), b);
        }
    }

    #[test]
    fn timeline_bounded() {
        let mut t = Timeline::new(16);
        for x in 0..1000u64 {
            t.record(x * 10, x);
        }
        assert!(t.buckets.len() <= 16);
        assert_eq!(t.buckets.last().unwrap().last, 999);
        assert_eq!(t.buckets.iter().map(|b| b.max).max(), Some(999));
    }
}
