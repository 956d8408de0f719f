//! The stack depot: every distinct call stack stored once, named by a 4-byte id, so a block's
//! history can keep one id for its allocation and one for its free.
//!
//! A hash of the frames picks a bucket; a bucket is a singly linked list of records (linked by
//! id), pushed with compare-and-swap. Records are bump-allocated from 1 MiB chunks mapped on
//! demand and never freed or moved, so `get` hands out `&'static` slices. An id encodes where
//! its record is: `(chunk + 1) << 16 | offset / 16`.
//!
//! Memory is bounded by a cap (`set_cap`, 64 MiB by default). Once the chunks under the cap are
//! used up, `put` of a stack not yet stored answers with the id of its first frame alone when
//! that one-frame stack is stored, else with `FULL` (whose `get` is empty), and counts it.
//!
//! # Invariants
//! - Ids below `1 << 16` are reserved: `NONE` (0) and `FULL` (1); every other id handed out
//!   names a record whose header and frames were written before its `len` (Release) and before
//!   the CAS that linked it (Release): a reader that sees either sees the whole record.
//! - Records are immutable once linked and live as long as the process; chunks are only ever
//!   added (a lost race to install a chunk unmaps the loser's own mapping, never a used one).
//! - Lock-free and allocation-free: `put` and `get` never wait for another thread and only call
//!   `mmap`/`munmap`, so they are async-signal-safe. Two threads storing the same new stack at
//!   once both write a record; the loser finds the winner's after its failed CAS and returns
//!   that id (its own record stays unlinked: wasted bytes, counted).

use crate::sys;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// No stack.
pub const NONE: u32 = 0;
/// The depot was full and the stack (nor its first frame) was not stored.
pub const FULL: u32 = 1;
/// Frames kept per stack at most (longer stacks are truncated).
pub const MAX_FRAMES: usize = 64;

const CHUNK: usize = 1 << 20;
const GRAIN: usize = 16;
const MAX_CHUNKS: usize = 4096;
const BUCKET_BITS: u32 = 17;
const HDR: usize = 16;
const _: () = assert!(CHUNK / GRAIN == 1 << 16);

/// Record header, followed by `len` frames.
#[repr(C)]
struct Record {
    /// Next record of the bucket (id), 0 at the end.
    next: AtomicU32,
    hash: AtomicU32,
    /// Its own id (checked by `get`).
    id: AtomicU32,
    /// Number of frames; written last (Release).
    len: AtomicU32,
}
const _: () = assert!(core::mem::size_of::<Record>() == HDR);

/// Counters and memory of a depot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Distinct stacks stored.
    pub stacks: u64,
    /// `put` calls refused for lack of room (answered with a first-frame id or `FULL`).
    pub full: u64,
    /// Bytes of records written and then not linked (lost races).
    pub wasted: u64,
    /// Bytes mapped for records.
    pub mapped: usize,
    /// Bytes of the chunks handed out to records so far.
    pub used: usize,
}

pub struct Depot {
    buckets: [AtomicU32; 1 << BUCKET_BITS],
    chunks: [AtomicPtr<u8>; MAX_CHUNKS],
    /// Bump position over all chunks: chunk index × CHUNK + offset.
    next: AtomicUsize,
    cap_chunks: AtomicUsize,
    stacks: AtomicU64,
    full: AtomicU64,
    wasted: AtomicU64,
    mapped: AtomicUsize,
}

/// The process's depot.
pub static DEPOT: Depot = Depot::new();

/// Stores `frames` in the process's depot (see `Depot::put`).
pub fn put(frames: &[usize]) -> u32 {
    DEPOT.put(frames)
}

/// The frames of `id` in the process's depot (see `Depot::get`).
pub fn get(id: u32) -> &'static [usize] {
    DEPOT.get(id)
}

/// Sets the process's depot cap in bytes (rounded up to whole 1 MiB chunks, at least one).
pub fn set_cap(bytes: usize) {
    DEPOT.set_cap(bytes)
}

pub fn stats() -> Stats {
    DEPOT.stats()
}

/// The process's depot cap in bytes.
pub fn cap() -> usize {
    DEPOT.cap_chunks.load(Ordering::Relaxed) * CHUNK
}

/// The largest id the process's depot can hand out under its cap.
pub fn max_id() -> usize {
    ((DEPOT.cap_chunks.load(Ordering::Relaxed) + 1) << 16) - 1
}

fn hash(frames: &[usize]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 31;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The frames of the record at offset `off` of its chunk (empty while it is being written).
fn frames_of(rec: &'static Record, off: usize) -> &'static [usize] {
    let len = rec.len.load(Ordering::Acquire) as usize;
    if len == 0 || len > MAX_FRAMES || off + HDR + len * 8 > CHUNK {
        return &[];
    }
    let at = rec as *const Record as usize;
    // SAFETY: len was published (Release) after the frames were written; they are never
    // written again, and they lie inside the record's chunk (checked above).
    unsafe { core::slice::from_raw_parts((at + HDR) as *const usize, len) }
}

impl Depot {
    pub const fn new() -> Depot {
        Depot {
            buckets: [const { AtomicU32::new(0) }; 1 << BUCKET_BITS],
            chunks: [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CHUNKS],
            next: AtomicUsize::new(0),
            cap_chunks: AtomicUsize::new(64),
            stacks: AtomicU64::new(0),
            full: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            mapped: AtomicUsize::new(0),
        }
    }

    /// Sets the cap in bytes (whole chunks, at least one, at most 4 GiB).
    pub fn set_cap(&self, bytes: usize) {
        let n = bytes.div_ceil(CHUNK).clamp(1, MAX_CHUNKS);
        self.cap_chunks.store(n, Ordering::Relaxed);
    }

    /// The id of `frames` (innermost first, at most `MAX_FRAMES` kept), storing it if new;
    /// `NONE` for an empty stack, a fallback id when the depot is full (module docs).
    pub fn put(&self, frames: &[usize]) -> u32 {
        let frames = &frames[..frames.len().min(MAX_FRAMES)];
        if frames.is_empty() {
            return NONE;
        }
        let h = hash(frames);
        let bucket = &self.buckets[(h >> (64 - BUCKET_BITS)) as usize];
        let mut head = bucket.load(Ordering::Acquire);
        // (A hit writes nothing: every call of every thread comes here.)
        if let Some(id) = self.find(head, NONE, h as u32, frames) {
            return id;
        }
        let size = HDR + frames.len() * 8;
        let Some((id, rec)) = self.alloc(size) else {
            self.full.fetch_add(1, Ordering::Relaxed);
            if frames.len() > 1 {
                let first = &frames[..1];
                let h1 = hash(first);
                let b1 = self.buckets[(h1 >> (64 - BUCKET_BITS)) as usize].load(Ordering::Acquire);
                if let Some(id) = self.find(b1, NONE, h1 as u32, first) {
                    return id;
                }
            }
            return FULL;
        };
        // SAFETY: alloc handed out `size` bytes at rec, 16-aligned, for this thread alone.
        unsafe {
            let r = &*(rec as *const Record);
            r.hash.store(h as u32, Ordering::Relaxed);
            r.id.store(id, Ordering::Relaxed);
            core::ptr::copy_nonoverlapping(
                frames.as_ptr(),
                (rec + HDR) as *mut usize,
                frames.len(),
            );
            r.len.store(frames.len() as u32, Ordering::Release);
        }
        // SAFETY: as above; the record stays valid forever.
        let r = unsafe { &*(rec as *const Record) };
        loop {
            r.next.store(head, Ordering::Relaxed);
            match bucket.compare_exchange(head, id, Ordering::Release, Ordering::Acquire) {
                Ok(_) => {
                    self.stacks.fetch_add(1, Ordering::Relaxed);
                    return id;
                }
                Err(now) => {
                    if let Some(found) = self.find(now, head, h as u32, frames) {
                        self.wasted.fetch_add(size as u64, Ordering::Relaxed);
                        return found;
                    }
                    head = now;
                }
            }
        }
    }

    /// Walks a bucket from `from` until `until` (exclusive) or its end, for `frames`.
    fn find(&self, mut id: u32, until: u32, h: u32, frames: &[usize]) -> Option<u32> {
        while id != NONE && id != until {
            let (rec, off) = self.record(id)?;
            if rec.hash.load(Ordering::Relaxed) == h && frames_of(rec, off) == frames {
                return Some(id);
            }
            id = rec.next.load(Ordering::Relaxed);
        }
        None
    }

    /// The record an id names and its offset in its chunk, if the id is well formed and its
    /// chunk exists.
    fn record(&self, id: u32) -> Option<(&'static Record, usize)> {
        let chunk = ((id >> 16) as usize).checked_sub(1)?;
        let off = (id as usize & 0xffff) * GRAIN;
        let base = self.chunks.get(chunk)?.load(Ordering::Acquire);
        if base.is_null() || off + HDR > CHUNK {
            return None;
        }
        // SAFETY: chunks are CHUNK bytes, mapped forever, 16-aligned records inside; every
        // header word is an atomic, so reading one a writer is filling is no data race.
        let rec = unsafe { &*((base as usize + off) as *const Record) };
        (rec.id.load(Ordering::Relaxed) == id).then_some((rec, off))
    }

    /// The frames of `id` (empty for `NONE`, `FULL` or an id this depot never handed out).
    pub fn get(&self, id: u32) -> &'static [usize] {
        match self.record(id) {
            Some((r, off)) => frames_of(r, off),
            None => &[],
        }
    }

    /// `size` bytes (rounded to 16) for a new record and its id; None at the cap or when the
    /// kernel refuses a chunk.
    fn alloc(&self, size: usize) -> Option<(u32, usize)> {
        let size = size.div_ceil(GRAIN) * GRAIN;
        let cap = self.cap_chunks.load(Ordering::Relaxed);
        loop {
            if self.next.load(Ordering::Relaxed) >= cap * CHUNK {
                return None;
            }
            let pos = self.next.fetch_add(size, Ordering::Relaxed);
            let (chunk, off) = (pos / CHUNK, pos % CHUNK);
            if chunk >= cap {
                return None;
            }
            if off + size > CHUNK {
                continue; // the tail of a chunk: the next position is in the next chunk
            }
            let base = self.chunk(chunk)?;
            let id = ((chunk as u32 + 1) << 16) | (off / GRAIN) as u32;
            return Some((id, base + off));
        }
    }

    /// The base of chunk `i`, mapped on first use.
    fn chunk(&self, i: usize) -> Option<usize> {
        let slot = self.chunks.get(i)?;
        let p = slot.load(Ordering::Acquire);
        if !p.is_null() {
            return Some(p as usize);
        }
        let mine = crate::pagemap::map_internal(CHUNK)?;
        match slot.compare_exchange(
            core::ptr::null_mut(),
            mine,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.mapped.fetch_add(CHUNK, Ordering::Relaxed);
                Some(mine as usize)
            }
            Err(theirs) => {
                crate::pagemap::set_range(mine as usize, CHUNK, 0);
                // SAFETY: our own fresh mapping, never published.
                unsafe { sys::unmap(mine, CHUNK) };
                Some(theirs as usize)
            }
        }
    }

    pub fn stats(&self) -> Stats {
        let cap = self.cap_chunks.load(Ordering::Relaxed) * CHUNK;
        Stats {
            stacks: self.stacks.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
            mapped: self.mapped.load(Ordering::Relaxed),
            used: self.next.load(Ordering::Relaxed).min(cap),
        }
    }
}

impl Default for Depot {
    fn default() -> Self {
        Depot::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupes_and_round_trips() {
        static D: Depot = Depot::new();
        assert_eq!(D.put(&[]), NONE);
        assert_eq!(D.get(NONE), &[] as &[usize]);
        assert_eq!(D.get(FULL), &[] as &[usize]);
        let a = [0x401000usize, 0x402000, 0x403000];
        let b = [0x401000usize, 0x402000, 0x403008];
        let ia = D.put(&a);
        let ib = D.put(&b);
        assert!(ia >= 1 << 16 && ib >= 1 << 16);
        assert_ne!(ia, ib);
        assert_eq!(D.put(&a), ia);
        assert_eq!(D.put(&a[..2]), D.put(&a[..2]));
        assert_ne!(D.put(&a[..2]), ia, "a prefix is another stack");
        assert_eq!(D.get(ia), &a);
        assert_eq!(D.get(ib), &b);
        let long: Vec<usize> = (0..100).map(|i| 0x500000 + i * 8).collect();
        let il = D.put(&long);
        assert_eq!(D.get(il), &long[..MAX_FRAMES], "truncated to MAX_FRAMES");
        // Ids never handed out read as empty, without faulting.
        for bad in [2u32, ia + 1, (200 << 16) | 5, u32::MAX, ia ^ 0x8000] {
            assert_eq!(D.get(bad), &[] as &[usize], "{bad:#x}");
        }
        let s = D.stats();
        assert_eq!(s.stacks, 4);
        assert_eq!(s.mapped, CHUNK);
        assert!(s.used >= 4 * HDR && s.used < 2000);
    }

    #[test]
    fn bounded_by_the_cap() {
        static D: Depot = Depot::new();
        D.set_cap(1);
        let first = D.put(&[0x1000]);
        let mut last = 0;
        let mut n = 0u64;
        for i in 0..20_000usize {
            let id = D.put(&[
                0x1000,
                0x2000 + i * 16,
                0x3000,
                0x4000,
                0x5000,
                0x6000,
                0x7000,
            ]);
            if id == first {
                break;
            }
            last = id;
            n += 1;
        }
        assert!(n > 10_000 && n < 20_000, "{n} stacks in 1 MiB");
        assert_eq!(D.get(last).len(), 7, "stored before the cap are kept");
        assert_eq!(D.put(&[0x9999, 0x1]), FULL, "nothing to fall back on");
        assert_eq!(
            D.put(&[0x1000, 0x1]),
            first,
            "falls back to the first frame"
        );
        let s = D.stats();
        assert_eq!(s.mapped, CHUNK, "never more than the cap");
        assert_eq!(s.full, 3);
        assert_eq!(D.put(&[0x1000]), first, "stored stacks are still found");
    }

    #[test]
    fn threads_agree_on_ids() {
        static D: Depot = Depot::new();
        let run = |t: usize| {
            let mut ids = Vec::new();
            for i in 0..5000usize {
                let k = (i * 7 + t) % 3000;
                let st = [0x10_0000 + k, 0x20_0000 + k % 17, 0x30_0000];
                let id = D.put(&st);
                assert_eq!(D.get(id), &st);
                ids.push((k, id));
            }
            ids
        };
        let hs: Vec<_> = (0..4).map(|t| std::thread::spawn(move || run(t))).collect();
        let mut by_key = std::collections::HashMap::new();
        for h in hs {
            for (k, id) in h.join().unwrap() {
                assert_eq!(*by_key.entry(k).or_insert(id), id, "one id per stack");
            }
        }
        assert_eq!(by_key.len(), 3000);
        assert_eq!(D.stats().stacks, 3000);
    }
}
