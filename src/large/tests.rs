//! Unit tests of the mapping cache's arithmetic: best fit, splitting, merging, guard regions
//! kept or opened, gathering, the byte bound and the recent peak behind it. Only bookkeeping:
//! the ranges are numbers, never mapped.

use super::budget::Peak;
use super::cache::{Cache, Entry, Grown, Taken};

const K: usize = 1 << 10;
const M: usize = 1 << 20;
const LIMIT: usize = 64 * M;

/// Ranges `(base, len)` a call gave back or opened.
type Ranges = Vec<(usize, usize)>;
/// Kernel calls a gather asked for: grow `(base, old, new)` or fill `(src, len, dst)`.
type Moves = Vec<(usize, usize, usize)>;

/// Puts a range, returning the ranges given back and the guard regions opened.
fn put(c: &mut Cache, base: usize, len: usize, guard: usize, limit: usize) -> (Ranges, Ranges) {
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
            guard: 0,
            stuck: false,
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
            guard: 0,
            stuck: false,
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
            guard: 0,
            stuck: false,
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
            guard: 0,
            stuck: false,
        }]
    );
    // A range in front of one with a region merges, and the region stays at the end.
    put(&mut c, 0x7000_0000 + M, M, g, LIMIT);
    let (_, opened) = put(&mut c, 0x7000_0000, M, 0, LIMIT);
    assert!(opened.is_empty());
    assert!(entries(&c).contains(&Entry {
        base: 0x7000_0000,
        len: 2 * M,
        guard: g,
        stuck: false,
    }));
}

#[test]
fn bound_gives_back_the_smallest_first() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1_0000_0000, 6 * M, 0, 10 * M);
    put(&mut c, 0x2_0000_0000, 3 * M, 0, 10 * M);
    // 4 MiB more would pass 10 MiB: the smallest range goes.
    let (gone, _) = put(&mut c, 0x3_0000_0000, 4 * M, 0, 10 * M);
    assert_eq!(gone, vec![(0x2_0000_0000, 3 * M)]);
    assert_eq!(c.bytes(), 10 * M);
    // A range smaller than every cached one that does not fit is given back itself.
    let (gone, _) = put(&mut c, 0x5_0000_0000, M, 0, 10 * M);
    assert_eq!(gone, vec![(0x5_0000_0000, M)]);
    assert_eq!(c.bytes(), 10 * M);
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
            0x10_0000_0000 + i * 32 * M,
            M + i * 4 * K,
            0,
            1 << 40,
        );
    }
    assert_eq!(entries(&c).len(), super::CACHE_SLOTS);
    // A bigger range takes the slot of the smallest (the first).
    let (gone, _) = put(&mut c, 0x40_0000_0000, 2 * M, 0, 1 << 40);
    assert_eq!(gone, vec![(0x10_0000_0000, M)]);
    assert_eq!(entries(&c).len(), super::CACHE_SLOTS);
    // A smaller one than all of them is given back itself.
    let (gone, _) = put(&mut c, 0x50_0000_0000, M / 2, 0, 1 << 40);
    assert_eq!(gone, vec![(0x50_0000_0000, M / 2)]);
    assert_eq!(entries(&c).len(), super::CACHE_SLOTS);
}

/// Gathers a range of `len` bytes: the kernel calls are recorded, `grow` refuses the bases
/// in `refuse` (as spanning several mappings) and `NOMEM` (for lack of memory), and moves a
/// grown range to `0x9_0000_0000`.
fn gather(c: &mut Cache, len: usize, refuse: &[usize]) -> (Option<Taken>, Moves, Moves) {
    let mut grown = Vec::new();
    let mut filled = Vec::new();
    let t = c.gather(
        len,
        &mut |b, old, new| {
            grown.push((b, old, new));
            if b == NOMEM {
                Grown::NoMemory
            } else if refuse.contains(&b) {
                Grown::Stuck
            } else {
                Grown::At(0x9_0000_0000)
            }
        },
        &mut |src, n, dst| {
            filled.push((src, n, dst));
            !refuse.contains(&(src & !0xfff_ffff))
        },
    );
    (t, grown, filled)
}

#[test]
fn gather_grows_the_largest_range_and_fills_from_the_others() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, 3 * M, 0, LIMIT);
    put(&mut c, 0x2000_0000, 2 * M, 0, LIMIT);
    put(&mut c, 0x3000_0000, 2 * M, 0, LIMIT);
    put(&mut c, 0x4000_0000, 32 * K, 0, LIMIT);
    // Nothing fits 6 MiB: the 3 MiB range is grown, then 2 MiB and 1 MiB (the top of a
    // 2 MiB range) are moved behind it; the 32 KiB range is too small to move.
    let (t, grown, filled) = gather(&mut c, 6 * M, &[]);
    let t = t.unwrap();
    assert_eq!(
        (t.base, t.len, t.guard_ready, t.open),
        (0x9_0000_0000, 6 * M, false, None)
    );
    assert_eq!(grown, vec![(0x1000_0000, 3 * M, 6 * M)]);
    assert_eq!(filled.len(), 2);
    assert_eq!(filled[0].1, 2 * M);
    assert_eq!(filled[0].2, 0x9_0000_0000 + 3 * M);
    assert_eq!(filled[1].1, M);
    assert_eq!(filled[1].2, 0x9_0000_0000 + 5 * M);
    // What is left: one 2 MiB range's bottom half and the 32 KiB range.
    assert_eq!(c.bytes(), M + 32 * K);
    assert_eq!(entries(&c).len(), 2);
    assert_eq!(c.entries().map(|e| e.len).max(), Some(M));
}

#[test]
fn gather_of_a_small_request_grows_one_range_only() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, 200 * K, 0, LIMIT);
    put(&mut c, 0x2000_0000, 100 * K, 0, LIMIT);
    let (t, grown, filled) = gather(&mut c, 400 * K, &[]);
    assert_eq!(t.unwrap().len, 400 * K);
    assert_eq!(grown, vec![(0x1000_0000, 200 * K, 400 * K)]);
    assert!(filled.is_empty());
    assert_eq!(c.bytes(), 100 * K);
    // A request a cached range fits is not gathered (best fit serves it).
    assert!(gather(&mut c, 100 * K, &[]).0.is_none());
}

#[test]
fn gather_skips_ranges_the_kernel_refuses() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, 3 * M, 0, LIMIT);
    put(&mut c, 0x2000_0000, 2 * M, 0, LIMIT);
    // The largest range cannot be grown (several kernel mappings): the next one is.
    let (t, grown, _) = gather(&mut c, 4 * M, &[0x1000_0000]);
    assert_eq!(t.unwrap().len, 4 * M);
    assert_eq!(
        grown,
        vec![(0x1000_0000, 3 * M, 4 * M), (0x2000_0000, 2 * M, 4 * M)]
    );
    // The refused range stays cached, is not tried again, and best fit still hands it out.
    assert_eq!(c.bytes(), 3 * M);
    let (t, grown, filled) = gather(&mut c, 8 * M, &[]);
    assert!(t.is_none() && grown.is_empty() && filled.is_empty());
    assert_eq!(c.take(3 * M, 0).unwrap().base, 0x1000_0000);
}

const NOMEM: usize = 0x7000_0000;

#[test]
fn gather_stops_when_memory_runs_out() {
    let mut c = Cache::EMPTY;
    put(&mut c, NOMEM, 3 * M, 0, LIMIT);
    put(&mut c, 0x2000_0000, 2 * M, 0, LIMIT);
    // No other range is tried, and the refused one is not marked: it is tried again later.
    let (t, grown, _) = gather(&mut c, 4 * M, &[]);
    assert!(t.is_none());
    assert_eq!(grown, vec![(NOMEM, 3 * M, 4 * M)]);
    assert_eq!(c.bytes(), 5 * M);
    let (_, grown, _) = gather(&mut c, 4 * M, &[]);
    assert_eq!(grown, vec![(NOMEM, 3 * M, 4 * M)]);
}

#[test]
fn gather_leaves_guard_regions_alone() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, M, 64 * K, LIMIT);
    let (t, grown, _) = gather(&mut c, 2 * M, &[]);
    assert!(t.is_none() && grown.is_empty());
    assert_eq!(c.bytes(), M);
}

/// Fills `want` bytes at `dst` from the cache; the sources in `refuse` are refused. Returns
/// the bytes covered and the moves `(src, len, dst)` made.
fn fill(c: &mut Cache, dst: usize, want: usize, refuse: &[usize]) -> (usize, Moves) {
    let mut moves = Vec::new();
    let covered = c.fill_from(dst, want, &mut |src, n, to| {
        if refuse.contains(&src) {
            return false;
        }
        moves.push((src, n, to));
        true
    });
    (covered, moves)
}

#[test]
fn fill_moves_pages_of_the_largest_ranges_and_leaves_guard_regions() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, 512 * K, 64 * K, LIMIT);
    put(&mut c, 0x2000_0000, 256 * K, 0, LIMIT);
    put(&mut c, 0x3000_0000, 96 * K, 64 * K, LIMIT);
    // The 448 KiB before the first range's guard region (its front), then the top of the
    // second range, which has none; the third has 32 KiB to give, less than a piece.
    let moves = vec![
        (0x1000_0000, 448 * K, 0x9_0000_0000),
        (0x2000_0000 + 104 * K, 152 * K, 0x9_0000_0000 + 448 * K),
    ];
    assert_eq!(fill(&mut c, 0x9_0000_0000, 600 * K, &[]), (600 * K, moves));
    assert_eq!(
        entries(&c),
        vec![
            Entry {
                base: 0x1000_0000 + 448 * K,
                len: 64 * K,
                guard: 64 * K,
                stuck: false,
            },
            Entry {
                base: 0x2000_0000,
                len: 104 * K,
                guard: 0,
                stuck: false,
            },
            Entry {
                base: 0x3000_0000,
                len: 96 * K,
                guard: 64 * K,
                stuck: false,
            },
        ]
    );
    assert_eq!(c.bytes(), 264 * K);
    // The last bytes wanted may come from a piece under 64 KiB.
    put(&mut c, 0x4000_0000, 272 * K, 0, LIMIT);
    let moves = vec![
        (0x4000_0000, 272 * K, 0x9_0000_0000),
        (0x2000_0000 + 76 * K, 28 * K, 0x9_0000_0000 + 272 * K),
    ];
    assert_eq!(fill(&mut c, 0x9_0000_0000, 300 * K, &[]), (300 * K, moves));
    // What is left is guard regions and pieces under 64 KiB: a big request is covered no
    // further than they go. A block that grows by less than 256 KiB is not filled at all.
    let (covered, _) = fill(&mut c, 0x9_0000_0000, M, &[]);
    assert_eq!(covered, 76 * K);
    put(&mut c, 0x5000_0000, M, 0, LIMIT);
    assert_eq!(fill(&mut c, 0x9_0000_0000, 200 * K, &[]), (0, vec![]));
}

#[test]
fn fill_takes_four_ranges_at_most() {
    let mut c = Cache::EMPTY;
    for k in 0..6 {
        put(&mut c, 0x1000_0000 * (k + 1), 128 * K, 0, LIMIT);
    }
    let (covered, moves) = fill(&mut c, 0x9_0000_0000, M, &[]);
    assert_eq!((covered, moves.len()), (512 * K, 4));
    assert_eq!(c.bytes(), 256 * K);
}

#[test]
fn fill_skips_ranges_the_kernel_refuses() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, 2 * M, 0, LIMIT);
    put(&mut c, 0x2000_0000, M, 0, LIMIT);
    let (covered, moves) = fill(&mut c, 0x9_0000_0000, M, &[0x1000_0000 + M]);
    assert_eq!(covered, M);
    assert_eq!(moves, vec![(0x2000_0000, M, 0x9_0000_0000)]);
    // The refused range stays cached, marked, and is not tried again.
    assert_eq!(c.bytes(), 2 * M);
    assert!(entries(&c)[0].stuck);
    assert_eq!(fill(&mut c, 0x9_0000_0000, M, &[]), (0, vec![]));
}

#[test]
fn limit_follows_the_recent_peak() {
    // Steady use: the way back to the peak plus room for two of the largest requests, or an
    // eighth of the live bytes.
    assert_eq!(Cache::limit(20 * M, 21 * M, 64 * K), M + 4 * M);
    assert_eq!(Cache::limit(400 * M, 401 * M, 64 * K), M + 50 * M);
    assert_eq!(Cache::limit(20 * M, 36 * M, 4 * M), 16 * M + 8 * M);
    // Never more than the peak (or twice the live bytes), nor 1 GiB.
    assert_eq!(Cache::limit(4 * M, 36 * M, 8 * M), 36 * M);
    assert_eq!(Cache::limit(0, 0, 0), 4 * M);
    assert_eq!(Cache::limit(2048 * M, 4096 * M, 64 * M), 1024 * M);
    assert_eq!(Cache::limit(200 * M, 300 * M, 64 * K), 100 * M + 25 * M);
}

#[test]
fn a_huge_range_is_kept_only_at_its_scale() {
    assert!(Cache::worth_keeping(32 * M, 0));
    assert!(!Cache::worth_keeping(64 * M, 16 * M));
    assert!(Cache::worth_keeping(64 * M, 32 * M));
}

#[test]
fn peak_is_forgotten_after_two_windows() {
    use super::budget::WINDOW_NS;
    let mut p = Peak::EMPTY;
    // A clock far past the first window's opening.
    let t0 = 10 * WINDOW_NS;
    assert!(!p.note(100 * M, 50 * M, || t0));
    for _ in 0..1022 {
        assert!(!p.note(10 * M, 0, || t0));
    }
    // The first window closes: its peak is still remembered.
    assert!(p.note(10 * M, 0, || t0));
    assert_eq!((p.get(), p.big()), (100 * M, 50 * M));
    // The next one has its operations but not its time: it stays open, whatever the count.
    for _ in 0..5000 {
        assert!(!p.note(10 * M, M, || t0 + WINDOW_NS - 1));
    }
    assert_eq!((p.get(), p.big()), (100 * M, 50 * M));
    // Once its time is up, it closes within one clock reading: the old peak is forgotten.
    let closed = (0..64)
        .filter(|_| p.note(10 * M, M, || t0 + WINDOW_NS))
        .count();
    assert_eq!(closed, 1);
    assert_eq!((p.get(), p.big()), (10 * M, M));
}

#[test]
fn take_at_hands_out_the_bottom_of_the_range_behind_a_block() {
    let mut c = Cache::EMPTY;
    put(&mut c, 0x1000_0000, M, 0, LIMIT);
    put(&mut c, 0x2000_0000, M, 64 * K, LIMIT);
    assert!(c.fits(M) && !c.fits(M + 4 * K));
    // Not the start of a range, too long, or a range with a guard region: refused.
    assert!(!c.take_at(0x1000_1000, 4 * K));
    assert!(!c.take_at(0x1000_0000, 2 * M));
    assert!(!c.take_at(0x2000_0000, 4 * K));
    assert_eq!(c.bytes(), 2 * M);
    // The bottom 256 KiB; the rest stays cached.
    assert!(c.take_at(0x1000_0000, 256 * K));
    assert!(entries(&c).contains(&Entry {
        base: 0x1000_0000 + 256 * K,
        len: 768 * K,
        guard: 0,
        stuck: false,
    }));
    // All of what is left.
    assert!(c.take_at(0x1000_0000 + 256 * K, 768 * K));
    assert_eq!(c.bytes(), M);
    assert_eq!(entries(&c).len(), 1);
}

/// Random puts, takes and evictions: best fit is the shortest range that fits, no two
/// cached ranges overlap, a range is merged with a neighbour unless a guard region separates
/// them, and the indexes agree with the slots throughout.
#[test]
fn random_use_keeps_best_fit_and_merges() {
    let mut c = Cache::EMPTY;
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    };
    let page = 4 * K;
    for round in 0..20_000 {
        let before = entries(&c);
        match rnd(4) {
            0 | 1 => {
                // A range somewhere in a 64 MiB window, kept off every cached one.
                let len = (1 + rnd(80) as usize) * page;
                let base = 0x7000_0000 + rnd(16 * 1024) as usize * page;
                if before
                    .iter()
                    .all(|e| base + len <= e.base || e.base + e.len <= base)
                {
                    let guard = if rnd(4) == 0 && len > page { page } else { 0 };
                    put(&mut c, base, len, guard, 48 * M);
                }
            }
            2 => {
                let len = (1 + rnd(80) as usize) * page;
                let best = before.iter().filter(|e| e.len >= len).map(|e| e.len).min();
                let got = c.take(len, 0);
                assert_eq!(got.is_some(), best.is_some(), "round {round}");
                if let Some(t) = got {
                    let from = before
                        .iter()
                        .find(|e| e.base <= t.base && t.base < e.base + e.len)
                        .unwrap();
                    assert_eq!(Some(from.len), best, "round {round}: not the best fit");
                }
            }
            _ => {
                c.evict_one(&mut |_, _| {});
            }
        }
        c.assert_indexed();
        let now = entries(&c);
        for w in now.windows(2) {
            assert!(w[0].base + w[0].len <= w[1].base, "round {round}: overlap");
            if w[0].base + w[0].len == w[1].base {
                assert!(w[0].guard != 0, "round {round}: neighbours not merged");
            }
        }
    }
}
