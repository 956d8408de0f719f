//! Size classes (pure arithmetic).
//!
//! Thresholds, and why:
//! - TINY: blocks of 16..=512 bytes in 16 classes (16-byte steps to 128, then four classes per
//!   doubling). Most allocations of C, C++, Python and shells are below 512 bytes. A TINY zone
//!   holds at least 100 blocks of 512 bytes: `page_round(100 * 512)` (52 KiB with 4 KiB pages).
//! - SMALL: 513..=16384 bytes in 36 classes: four per doubling up to 1 KiB, then eight per
//!   doubling (at most 12.5% internal waste above 1 KiB). Real programs' buffers sit just above
//!   a power of two (a size histogram of their logs): sqlite3's page cache asks for 4104 and
//!   4368 bytes (a page and its header); with four classes per doubling 4104 took a 5 KiB block
//!   (25% lost), with eight a 4.5 KiB one. Over the 513..16384-byte allocations of sqlite3, gcc
//!   and python, the bytes lost to rounding went from 17.7%, 7.3% and 7.3% to 7.9%, 4.2% and
//!   4.1%. A SMALL zone holds at least 100 blocks of 16 KiB: `page_round(100 * 16384)` (1.6
//!   MiB; 100 blocks of its class where address space is scarce, `frugal_zone_size`). 16 KiB
//!   keeps common buffers (stdio's 4 KiB, 8–16 KiB I/O buffers) in zones; above that, slab
//!   classes cost memory: a buffer grown by realloc leaves a dirty slot in every class it
//!   passes through, where the LARGE ranges below are reused for any size.
//! - LARGE: above 16 KiB, page granular: each block owns its pages (up to 512 KiB carved from
//!   a 2 MiB mapping, above that a mapping of its own). Freed ranges stay resident in a cache
//!   (`large::cache`: best fit, split, merged, bounded by what recent LARGE use may need
//!   again), so churn of big blocks does not map, fault and unmap every time.
//!
//! Every zone serves one class (a slab), so the block index of a pointer is one multiply
//! (`div_magic`) and blocks of a power-of-two class are aligned to their size (up to a page),
//! which serves `memalign` from the zones.

pub const TINY_MAX: usize = 512;
pub const SMALL_MAX: usize = 16384;
pub const NCLASSES: usize = 52;
pub const NTINY: usize = 16;
/// Blocks per zone of the largest size of the class, as ft_malloc requires.
pub const MIN_BLOCKS_PER_ZONE: usize = 100;
pub const MIN_ALIGN: usize = 16;
/// The inaccessible region behind a LARGE block (and behind a guarded block above `SMALL_MAX`),
/// rounded up to whole pages where it is used: an access a few KiB past the end still faults.
pub const WIDE_GUARD: usize = 64 << 10;

/// The first class of eight per doubling (blocks above 1 KiB).
const FINE: usize = 20;

/// Class index of a request of `n` bytes (`n <= SMALL_MAX`).
#[inline]
#[unsafe(link_section = "ft_hot")]
pub const fn class_of(n: usize) -> usize {
    if n <= 128 {
        if n == 0 { 0 } else { n.div_ceil(16) - 1 }
    } else {
        let m = n - 1;
        let k = (usize::BITS - 1 - m.leading_zeros()) as usize; // floor(log2(n-1)) >= 7
        if k < 10 {
            8 + (k - 7) * 4 + ((m >> (k - 2)) - 4) // four per doubling
        } else {
            FINE + (k - 10) * 8 + ((m >> (k - 3)) - 8) // eight per doubling
        }
    }
}

/// Block size of class `c`.
#[inline]
pub const fn class_size(c: usize) -> usize {
    if c < 8 {
        16 * (c + 1)
    } else if c < FINE {
        let k = (c - 8) / 4 + 7;
        (1 << k) + ((c - 8) % 4 + 1) * (1 << (k - 2))
    } else {
        let k = (c - FINE) / 8 + 10;
        (1 << k) + ((c - FINE) % 8 + 1) * (1 << (k - 3))
    }
}

#[inline]
pub const fn is_tiny(c: usize) -> bool {
    c < NTINY
}

/// Zone data size for class `c` with page size `page`.
#[inline]
pub const fn zone_size(c: usize, page: usize) -> usize {
    let max = if is_tiny(c) { TINY_MAX } else { SMALL_MAX };
    let n = MIN_BLOCKS_PER_ZONE * max;
    (n + page - 1) & !(page - 1)
}

/// The zone data size for class `c` where address space is scarce (RLIMIT_AS or RLIMIT_DATA
/// set, or a full zone refused): room for `MIN_BLOCKS_PER_ZONE` blocks of a SMALL class itself,
/// since every SMALL zone of `zone_size` counts 1.6 MiB against the limit however few of its
/// pages are touched, and a program that uses many classes would run out of address space long
/// before it does with glibc. TINY zones (52 KiB) keep their size.
#[inline]
pub const fn frugal_zone_size(c: usize, page: usize) -> usize {
    if is_tiny(c) {
        return zone_size(c, page);
    }
    let n = MIN_BLOCKS_PER_ZONE * class_size(c);
    (n + page - 1) & !(page - 1)
}

pub const MAGIC_SHIFT: u32 = 40;

/// Multiplier so that `(off * m) >> 40 == off / size` for every offset inside a zone.
#[inline]
pub const fn div_magic(size: usize) -> u64 {
    (1u64 << MAGIC_SHIFT).div_ceil(size as u64)
}

/// The smallest class whose blocks are aligned to `align` (a power of two, `<= page`) and hold
/// `n` bytes: the power-of-two class `>= max(n, align)`. None if that is above SMALL_MAX.
pub const fn aligned_class(n: usize, align: usize) -> Option<usize> {
    let need = if n > align { n } else { align };
    if need > SMALL_MAX {
        return None;
    }
    let p = need.next_power_of_two();
    let p = if p < MIN_ALIGN { MIN_ALIGN } else { p };
    Some(class_of(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_and_round_up() {
        assert_eq!(class_size(NCLASSES - 1), SMALL_MAX);
        assert_eq!(class_size(NTINY - 1), TINY_MAX);
        let mut prev = 0;
        for c in 0..NCLASSES {
            assert!(class_size(c) > prev);
            assert_eq!(class_size(c) % 16, 0);
            assert_eq!(class_of(class_size(c)), c);
            prev = class_size(c);
        }
        for n in 0..=SMALL_MAX {
            let c = class_of(n);
            assert!(c < NCLASSES);
            assert!(class_size(c) >= n, "n={n}");
            if c > 0 {
                assert!(class_size(c - 1) < n, "n={n} not tight");
            }
        }
    }

    #[test]
    fn zones_hold_100_of_the_largest() {
        for page in [4096usize, 16384, 65536] {
            for c in 0..NCLASSES {
                let max = if is_tiny(c) { TINY_MAX } else { SMALL_MAX };
                assert!(zone_size(c, page) / max >= 100);
                assert_eq!(zone_size(c, page) % page, 0);
                let frugal = frugal_zone_size(c, page);
                assert!(frugal / class_size(c) >= 100);
                assert_eq!(frugal % page, 0);
                assert!(frugal <= zone_size(c, page));
                assert_eq!(
                    frugal == zone_size(c, page),
                    is_tiny(c) || c == NCLASSES - 1
                );
            }
        }
    }

    #[test]
    fn magic_division_is_exact() {
        for c in 0..NCLASSES {
            let s = class_size(c);
            let m = div_magic(s);
            let zs = zone_size(c, 65536);
            let mut off = 0;
            while off < zs {
                for d in [0usize, 1, s / 2, s - 1] {
                    let o = off + d;
                    assert_eq!(
                        ((o as u64 * m) >> MAGIC_SHIFT) as usize,
                        o / s,
                        "s={s} o={o}"
                    );
                }
                off += s;
            }
        }
    }

    #[test]
    fn aligned_classes() {
        assert_eq!(class_size(aligned_class(10, 64).unwrap()), 64);
        assert_eq!(class_size(aligned_class(100, 64).unwrap()), 128);
        assert_eq!(class_size(aligned_class(1, 4096).unwrap()), 4096);
        assert!(aligned_class(40000, 16).is_none());
    }
}
