//! Unit tests of the quarantine ring: FIFO order, eviction in batches down to 1/16 under the
//! budget, no eviction from a nested call, a full ring, wrap-around, and the byte count.

use super::*;

/// `Ring::admit` into a new batch.
fn admit(q: &mut Ring, p: usize, size: usize, budget: usize, nested: bool) -> Batch {
    let mut b = Batch::empty();
    q.admit(p, size, budget, nested, &mut b);
    b
}

/// A ring over entries of our own (the library maps them with `map_internal`).
fn ring(store: &mut Vec<(usize, usize)>) -> Ring {
    store.resize(CAP, (0, 0));
    Ring(fifo::Ring::new(Mapped(store.as_mut_ptr())))
}

/// The oldest entry, taken out.
fn take_head(q: &mut Ring) -> (usize, usize) {
    q.0.pop().unwrap()
}

#[test]
fn under_budget_nothing_leaves() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    for i in 0..10 {
        let b = admit(&mut q, 0x1000 + i * 64, 64, 1 << 20, false);
        assert!(b.as_slice().is_empty());
    }
    assert_eq!(q.0.len(), 10);
    assert_eq!(q.0.weight(), 640);
}

#[test]
fn over_budget_the_oldest_leave_first_down_to_low_water() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    let budget = 1600; // 25 blocks of 64; low water 1500
    for i in 0..25 {
        assert!(admit(&mut q, i, 64, budget, false).as_slice().is_empty());
    }
    let b = admit(&mut q, 25, 64, budget, false);
    // 26 * 64 = 1664 > 1600: down to <= 1500, i.e. 23 blocks stay, the 3 oldest leave.
    assert_eq!(b.as_slice(), &[(0, 64), (1, 64), (2, 64)]);
    assert_eq!(q.0.len(), 23);
    assert_eq!(q.0.weight(), 23 * 64);
    assert_eq!(take_head(&mut q), (3, 64));
}

#[test]
fn a_batch_holds_at_most_evict_batch_blocks() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    for i in 0..200 {
        admit(&mut q, i, 100, usize::MAX / 2, false);
    }
    // The budget shrinks (a quarantine that adapts to a smaller heap): one batch at a time.
    let b = admit(&mut q, 200, 100, 100, false);
    assert_eq!(b.as_slice().len(), EVICT_BATCH);
    assert_eq!(b.as_slice()[0], (0, 100));
    assert_eq!(b.as_slice()[EVICT_BATCH - 1], (EVICT_BATCH - 1, 100));
    assert_eq!(q.0.len(), 201 - EVICT_BATCH);
}

#[test]
fn a_nested_call_evicts_nothing() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    for i in 0..10 {
        assert!(admit(&mut q, i, 1000, 100, true).as_slice().is_empty());
    }
    assert_eq!(q.0.len(), 10);
    // The next call made outside a handler catches up.
    let b = admit(&mut q, 10, 1000, 100, false);
    assert_eq!(b.as_slice().len(), 11);
    assert_eq!(q.0.len(), 0);
    assert_eq!(q.0.weight(), 0);
}

#[test]
fn small_blocks_count_sixteen_bytes() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    admit(&mut q, 1, 0, 1 << 20, false);
    admit(&mut q, 2, 5, 1 << 20, false);
    assert_eq!(q.0.weight(), 32);
    assert_eq!(take_head(&mut q), (1, 0));
    assert_eq!(q.0.weight(), 16);
}

#[test]
fn a_full_ring_makes_room_for_a_batch_and_wraps() {
    let mut store = Vec::new();
    let mut q = ring(&mut store);
    // Tiny blocks under a huge budget: only the entry count bounds the ring.
    let mut out = Vec::new();
    for i in 0..CAP + 10 {
        out.extend_from_slice(admit(&mut q, i, 16, usize::MAX / 2, false).as_slice());
    }
    // Filling the ring evicts one batch, the oldest blocks, making room for a batch.
    assert_eq!(out.len(), EVICT_BATCH);
    assert!(out.iter().enumerate().all(|(k, &(p, _))| p == k));
    assert_eq!(q.0.len(), CAP + 10 - EVICT_BATCH);
    // FIFO across the wrap-around of the ring's storage.
    for k in EVICT_BATCH..CAP + 10 {
        assert_eq!(take_head(&mut q), (k, 16));
    }
    assert_eq!((q.0.len(), q.0.weight()), (0, 0));
}
