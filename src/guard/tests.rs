//! Unit tests of the guard layer's arithmetic: the pool class of a slot, the page bank's
//! put/take/evict bookkeeping, and guarded block alignment. The ranges are numbers, never
//! mapped.

use super::layout::{align_of, geometry, requested_align};
use super::pool::class_of;
use crate::block::Op;
use crate::large::{BANK_SLOTS, Bank, Large, POOL_MAX_PAGES};

const P: usize = 4096;

#[test]
fn pool_class_index() {
    // One data page, one-page guard: the first class.
    assert_eq!(class_of(P, P, P), Some((0, 0)));
    assert_eq!(class_of(3 * P, P, P), Some((0, 2)));
    // A wide guard (big blocks) is the second row.
    assert_eq!(class_of(2 * P, 16 * P, P), Some((1, 1)));
    // The last pooled size, and the first that gets a mapping of its own.
    assert_eq!(
        class_of(POOL_MAX_PAGES * P, P, P),
        Some((0, POOL_MAX_PAGES - 1))
    );
    assert_eq!(class_of((POOL_MAX_PAGES + 1) * P, P, P), None);
    assert_eq!(class_of(0, P, P), None);
    // Other page sizes.
    assert_eq!(class_of(2 << 16, 1 << 16, 1 << 16), Some((0, 1)));
}

#[test]
fn pool_class_of_real_blocks() {
    let page = crate::sys::page_size();
    // A small block: one data page, the narrow guard.
    let (a, guard, data_len) = geometry(24, 24, 0, false).unwrap();
    assert_eq!((a, guard, data_len), (16, page, page));
    assert_eq!(class_of(data_len, guard, page), Some((0, 0)));
    // A block whose size rounded up to its alignment fills its page takes that page alone.
    let (a, _, data_len) = geometry(page - 8, page - 8, 0, false).unwrap();
    assert_eq!((a, data_len), (16, page));
    let (_, _, data_len) = geometry(2 * page - 8, 2 * page - 8, 0, false).unwrap();
    assert_eq!(data_len, 2 * page);
    // A block past SMALL_MAX: the wide guard.
    let (_, guard, data_len) = geometry(100_000, 100_000, 0, false).unwrap();
    assert!(guard > page);
    assert_eq!(class_of(data_len, guard, page).map(|c| c.0), Some(1));
    // A block of many pages gets a mapping of its own.
    let (_, guard, data_len) = geometry(1 << 20, 1 << 20, 0, false).unwrap();
    assert_eq!(class_of(data_len, guard, page), None);
}

#[test]
fn guarded_alignment() {
    assert_eq!(align_of(24, 0, false), 16);
    assert_eq!(align_of(52, 0, false), 16);
    assert_eq!(align_of(32, 0, false), 16);
    assert_eq!(align_of(12, 0, false), 8);
    assert_eq!(align_of(7, 0, false), 8);
    assert_eq!(align_of(0, 0, false), 16);
    assert_eq!(align_of(24, 0, true), 1);
    assert_eq!(align_of(24, 64, false), 64);
    assert_eq!(align_of(24, 2, true), 2);
    assert_eq!(align_of(24, 2, false), 8);
}

/// Plain operator new gets 16 bytes whatever its size; the C functions 8 below 16 bytes; an
/// explicit alignment and `guard=exact` are kept.
#[test]
fn operator_new_alignment() {
    let new = |size, op, exact| align_of(size, requested_align(size, 0, op, exact), exact);
    for size in [1, 8, 24, 40, 100] {
        assert_eq!(new(size, Op::New, false), 16, "new {size}");
        assert_eq!(new(size, Op::NewArr, false), 16, "new[] {size}");
        assert_eq!(new(size, Op::Malloc, false), align_of(size, 0, false));
        assert_eq!(new(size, Op::New, true), 1);
    }
    assert_eq!(requested_align(24, 64, Op::New, false), 64);
}

fn desc(n: usize) -> *mut Large {
    (n * 128) as *mut Large
}

#[test]
fn bank_put_and_take() {
    let mut b = Bank::EMPTY;
    let mut gone = Vec::new();
    // A block of 100 pages in one mapping, and one of 300 pages in three (seams at 100, 200).
    assert!(b.put(
        desc(1),
        0x1000_0000,
        100 * P,
        &[0, 0, 0],
        P,
        64 << 20,
        &mut |a, l| gone.push((a, l))
    ));
    assert!(b.put(
        desc(2),
        0x2000_0000,
        300 * P,
        &[100, 200, 0],
        P,
        64 << 20,
        &mut |a, l| gone.push((a, l))
    ));
    assert!(gone.is_empty());
    assert_eq!(b.bytes, 400 * P);
    assert_eq!(b.slots.iter().filter(|e| e.addr != 0).count(), 4);
    // The smallest range at least as big as asked: exactly one of the 100-page ranges.
    let t = b.take(100 * P).unwrap();
    assert_eq!((t.len, t.cut), (100 * P, None));
    // Less than a range: the rest is cut off to be given back.
    let t = b.take(60 * P).unwrap();
    assert_eq!(t.len, 60 * P);
    assert_eq!(t.cut, Some((t.addr + 60 * P, 40 * P)));
    assert_eq!(b.bytes, 200 * P);
    // More than any range: the biggest, whole.
    let t = b.take(1000 * P).unwrap();
    assert_eq!((t.len, t.cut), (100 * P, None));
    let t = b.take(1000 * P).unwrap();
    assert_eq!(t.len, 100 * P);
    assert!(b.take(P).is_none());
    assert_eq!(b.bytes, 0);
}

#[test]
fn bank_budget_evicts_the_smallest() {
    let mut b = Bank::EMPTY;
    let mut gone = Vec::new();
    let budget = 300 * P;
    assert!(b.put(
        desc(1),
        0x1000_0000,
        50 * P,
        &[0; 3],
        P,
        budget,
        &mut |a, l| gone.push((a, l))
    ));
    assert!(b.put(
        desc(2),
        0x2000_0000,
        200 * P,
        &[0; 3],
        P,
        budget,
        &mut |a, l| gone.push((a, l))
    ));
    // 100 pages more pass the budget: the 50-page range is given back.
    assert!(b.put(
        desc(3),
        0x3000_0000,
        100 * P,
        &[0; 3],
        P,
        budget,
        &mut |a, l| gone.push((a, l))
    ));
    assert_eq!(gone, vec![(0x1000_0000, 50 * P)]);
    assert_eq!(b.bytes, 300 * P);
    // Bigger than the whole budget: not banked.
    assert!(!b.put(
        desc(4),
        0x4000_0000,
        301 * P,
        &[0; 3],
        P,
        budget,
        &mut |a, l| gone.push((a, l))
    ));
    // A block unmapped while banked is forgotten.
    b.forget(desc(2));
    assert_eq!(b.bytes, 100 * P);
    let mut all = Vec::new();
    b.clear(&mut |a, l| all.push((a, l)));
    assert_eq!(all, vec![(0x3000_0000, 100 * P)]);
    assert_eq!(b.bytes, 0);
}

#[test]
fn bank_slots_are_bounded() {
    let mut b = Bank::EMPTY;
    let mut gone = 0;
    for i in 0..BANK_SLOTS + 4 {
        assert!(b.put(
            desc(i + 1),
            0x1000_0000 * (i + 1),
            (10 + i) * P,
            &[0; 3],
            P,
            1 << 40,
            &mut |_, _| gone += 1
        ));
    }
    assert_eq!(gone, 4);
    assert_eq!(b.slots.iter().filter(|e| e.addr != 0).count(), BANK_SLOTS);
    // The smallest went first.
    assert!(b.slots.iter().all(|e| e.len >= 14 * P));
    // With the kernel unable to move pages, nothing is banked.
    b.off = true;
    assert!(!b.put(
        desc(99),
        0x9000_0000,
        P,
        &[0; 3],
        P,
        1 << 40,
        &mut |_, _| {}
    ));
}

#[test]
fn ring_keeps_a_bounded_fifo() {
    use super::ring::{OUT_MAX, POOLED, Ring};
    let mut r = Box::new(Ring::EMPTY);
    let mut out = [0usize; OUT_MAX];
    let big = 200 << 20;
    // Up to 512 MiB of address space stays; the pool flag does not count as a byte.
    assert_eq!(r.push(0x1000, big | POOLED, false, &mut out), 0);
    assert_eq!(r.push(0x2000, big, false, &mut out), 0);
    // A third passes the bound: the oldest leaves.
    assert_eq!(r.push(0x3000, big, false, &mut out), 1);
    assert_eq!(out[0], 0x1000);
    // Nested (a signal handler inside the allocator): nothing leaves for the byte bound.
    assert_eq!(r.push(0x4000, big, true, &mut out), 0);
    // The next push makes up for it: the oldest leave until the bound holds again.
    assert_eq!(r.push(0x5000, P, false, &mut out), 1);
    assert_eq!(out[0], 0x2000);
    assert_eq!(r.push(0x6000, 2 * big, false, &mut out), 2);
    assert_eq!(&out[..2], &[0x3000, 0x4000]);
}
