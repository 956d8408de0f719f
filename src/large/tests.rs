//! Unit tests of the mapping cache's arithmetic: best fit, splitting, merging, guard regions
//! kept or opened, and the byte bound. Only bookkeeping: the ranges are numbers, never mapped.

use super::cache::{Cache, Entry, Taken};

const K: usize = 1 << 10;
const M: usize = 1 << 20;
const LIMIT: usize = 64 * M;

/// Puts a range, returning the ranges given back and the guard regions opened.
fn put(
    c: &mut Cache,
    base: usize,
    len: usize,
    guard: usize,
    limit: usize,
) -> (Vec<(usize, usize)>, Vec<(usize, usize)>) {
    let mut unmapped = Vec::new();
    let mut opened = Vec::new();
    c.put(
        base,
        len,
        guard,
        limit,
        &mut |b, l| unmapped.push((b, l)),
        &mut |b, l| opened.push((b, l)),
    );
    (unmapped, opened)
}

fn entries(c: &Cache) -> Vec<Entry> {
    let mut v: Vec<Entry> = c.entries().collect();
    v.sort_by_key(|e| e.base);
    v
}

#[test]
fn adjacent_ranges_merge() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, M, 0, LIMIT);
    put(&mut c, 0x1000_0000 + 2 * M, M, 0, LIMIT);
    assert_eq!(entries(&c).len(), 2);
    // The range between joins both neighbours into one.
    let (gone, opened) = put(&mut c, 0x1000_0000 + M, M, 0, LIMIT);
    assert!(gone.is_empty() && opened.is_empty());
    assert_eq!(
        entries(&c),
        vec![Entry {
            base: 0x1000_0000,
            len: 3 * M,
            guard: 0
        }]
    );
    assert_eq!(c.bytes(), 3 * M);
}

#[test]
fn best_fit_and_split() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x2000_0000, 4 * M, 0, LIMIT);
    put(&mut c, 0x3000_0000, M, 0, LIMIT);
    // Best fit: the 1 MiB range, a rest under a quarter of the request is not split off.
    let t = c.take(900 * K, 0).unwrap();
    assert_eq!(
        t,
        Taken {
            base: 0x3000_0000,
            len: M,
            guard_ready: false,
            open: None
        }
    );
    // A much bigger range is split: the block takes its bottom, the rest stays cached.
    let t = c.take(M, 0).unwrap();
    assert_eq!(
        t,
        Taken {
            base: 0x2000_0000,
            len: M,
            guard_ready: false,
            open: None
        }
    );
    assert_eq!(
        entries(&c),
        vec![Entry {
            base: 0x2000_0000 + M,
            len: 3 * M,
            guard: 0
        }]
    );
    assert_eq!(c.bytes(), 3 * M);
    // Nothing big enough: a miss.
    assert!(c.take(4 * M, 0).is_none());
}

#[test]
fn guard_region_is_kept_for_the_same_layout() {
    let g = 64 * K;
    let mut c = Cache::EMPTY;
    put(&mut c, 0x4000_0000, 2 * M, g, LIMIT);
    // A block with the same region behind it is carved from the top, its region ready.
    let t = c.take(M, g).unwrap();
    assert_eq!(
        t,
        Taken {
            base: 0x4000_0000 + M,
            len: M,
            guard_ready: true,
            open: None
        }
    );
    // The bottom part has no region any more.
    assert_eq!(
        entries(&c),
        vec![Entry {
            base: 0x4000_0000,
            len: M,
            guard: 0
        }]
    );
}

#[test]
fn guard_region_is_opened_when_not_wanted() {
    let g = 64 * K;
    let mut c = Cache::EMPTY;
    put(&mut c, 0x5000_0000, M, g, LIMIT);
    let t = c.take(M, 0).unwrap();
    assert_eq!(
        t,
        Taken {
            base: 0x5000_0000,
            len: M,
            guard_ready: false,
            open: Some((0x5000_0000 + M - g, g))
        }
    );
    assert_eq!(c.bytes(), 0);
}

#[test]
fn guard_region_gives_way_to_a_merge() {
    let g = 64 * K;
    let mut c = Cache::EMPTY;
    put(&mut c, 0x6000_0000 + M, M, 0, LIMIT);
    // A range with a region behind it, followed by a cached range: the region is opened and
    // both merge.
    let (gone, opened) = put(&mut c, 0x6000_0000, M, g, LIMIT);
    assert!(gone.is_empty());
    assert_eq!(opened, vec![(0x6000_0000 + M - g, g)]);
    assert_eq!(
        entries(&c),
        vec![Entry {
            base: 0x6000_0000,
            len: 2 * M,
            guard: 0
        }]
    );
    // A range in front of one with a region merges, and the region stays at the end.
    put(&mut c, 0x7000_0000 + M, M, g, LIMIT);
    let (_, opened) = put(&mut c, 0x7000_0000, M, 0, LIMIT);
    assert!(opened.is_empty());
    assert!(entries(&c).contains(&Entry {
        base: 0x7000_0000,
        len: 2 * M,
        guard: g
    }));
}

#[test]
fn bound_gives_back_the_largest_first() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1_0000_0000, 6 * M, 0, 10 * M);
    put(&mut c, 0x2_0000_0000, 3 * M, 0, 10 * M);
    // 2 MiB more would pass 10 MiB: the largest range goes.
    let (gone, _) = put(&mut c, 0x3_0000_0000, 2 * M, 0, 10 * M);
    assert_eq!(gone, vec![(0x1_0000_0000, 6 * M)]);
    assert_eq!(c.bytes(), 5 * M);
    // A range bigger than the bound once the cache is empty is given back itself.
    let (gone, _) = put(&mut c, 0x4_0000_0000, 11 * M, 0, 10 * M);
    assert!(gone.contains(&(0x4_0000_0000, 11 * M)));
}

#[test]
fn full_cache_makes_room() {
    let mut c = Cache::EMPTY;
    for i in 0..super::CACHE_SLOTS {
        put(
            &mut c,
            0x10_0000_0000 + i * 4 * M,
            M + i * 4 * K,
            0,
            1 << 40,
        );
    }
    assert_eq!(entries(&c).len(), super::CACHE_SLOTS);
    let (gone, _) = put(&mut c, 0x20_0000_0000, M, 0, 1 << 40);
    // The largest (the last) range made room.
    assert_eq!(gone, vec![(0x10_0000_0000 + 31 * 4 * M, M + 31 * 4 * K)]);
    assert_eq!(entries(&c).len(), super::CACHE_SLOTS);
}
