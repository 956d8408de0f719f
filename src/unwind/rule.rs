//! Compact unwind rules and their cache.
//!
//! Most rows compilers emit for x86-64 say: CFA = rsp or rbp + offset (or, after gcc's stack
//! realignment, CFA = *(rbp + k)), the return address at CFA + r, rbp saved at CFA + s or
//! unchanged; or the return address is undefined (a thread's first frame). Such a row packs
//! into one `u64`. The cache maps a lookup address (a return address minus one, or an exact pc)
//! to that word in a fixed, direct-mapped table, so a frame seen before costs one hashed load.
//! Rows that do not fit (signal frames, other expressions, other registers) are not cached.
//!
//! # Invariants
//! - A slot is a seqlock whose sequence word is the key itself: a writer swaps the key to
//!   `BUSY` (one writer wins, the others skip caching), stores the value, then publishes the
//!   key (Release). A reader that loads the same key before and after its value load (Acquire
//!   fence between) holds that key's value. Readers and writers never wait.
//! - A value carries the stamp of the module it was derived from: after `dlclose` and a new
//!   object at the same address, the stamp differs and the rule is recomputed.
//! - The table is bounded (`SLOTS` entries of 16 bytes in .bss, two-way buckets); a third key
//!   in a bucket overwrites one of the two.

use super::cfi::{Cfa, RA, RBP, RSP, Row, Rule as Reg};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

/// Where the CFA comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// rsp + off
    Rsp,
    /// rbp + off
    Rbp,
    /// *(rbp + off): gcc's rule after realigning the stack through a DRAP register.
    RbpDeref,
}

/// A compact row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The return address is at CFA + 8·ra; rbp is saved at CFA + 8·rbp (0: unchanged); the
    /// caller's rsp is the CFA.
    Frame {
        base: Base,
        off: i32,
        ra: i8,
        rbp: i8,
    },
    /// The return address is undefined: the outermost frame (or no CFI covers the address).
    End,
}

const OFF_BITS: u32 = 24;

impl Rule {
    /// The compact form of a row, if it has one.
    pub fn from_row(row: &Row) -> Option<Rule> {
        if row.signal {
            return None;
        }
        let ra = match row.regs[RA] {
            Reg::Undefined | Reg::Unspecified => return Some(Rule::End),
            Reg::Offset(o) => eighths(o)?,
            _ => return None,
        };
        let rbp = match row.regs[RBP] {
            Reg::Unspecified | Reg::Same => 0,
            Reg::Offset(o) => eighths(o)?,
            _ => return None,
        };
        if !matches!(row.regs[RSP], Reg::Unspecified | Reg::Same) {
            return None;
        }
        let (base, off) = match row.cfa {
            Cfa::RegOff(r, off) if r as usize == RSP => (Base::Rsp, off),
            Cfa::RegOff(r, off) if r as usize == RBP => (Base::Rbp, off),
            Cfa::Expr(at, len) => (Base::RbpDeref, drap(row.expr(at, len))?),
            Cfa::RegOff(..) => return None,
        };
        let lim = 1i32 << (OFF_BITS - 1);
        if off < -lim || off >= lim {
            return None;
        }
        Some(Rule::Frame { base, off, ra, rbp })
    }

    fn pack(self, stamp: u16) -> u64 {
        let body = match self {
            Rule::End => 2,
            Rule::Frame { base, off, ra, rbp } => {
                1 | (base as u64) << 2
                    | ((off as u64) & ((1 << OFF_BITS) - 1)) << 20
                    | (ra as u8 as u64) << 44
                    | (rbp as u8 as u64) << 52
            }
        };
        body | (stamp as u64) << 4
    }

    #[cfg(test)]
    fn unpack(v: u64, stamp: u16) -> Option<Rule> {
        if (v >> 4) as u16 != stamp {
            return None;
        }
        match v & 3 {
            2 => Some(Rule::End),
            1 => {
                let base = match (v >> 2) & 3 {
                    0 => Base::Rsp,
                    1 => Base::Rbp,
                    2 => Base::RbpDeref,
                    _ => return None,
                };
                let raw = ((v >> 20) & ((1 << OFF_BITS) - 1)) as i64;
                let off = ((raw << (64 - OFF_BITS)) >> (64 - OFF_BITS)) as i32;
                Some(Rule::Frame {
                    base,
                    off,
                    ra: (v >> 44) as u8 as i8,
                    rbp: (v >> 52) as u8 as i8,
                })
            }
            _ => None,
        }
    }
}

/// An offset in 8-byte units fitting an `i8`, not 0.
fn eighths(o: i32) -> Option<i8> {
    if o == 0 || o % 8 != 0 {
        return None;
    }
    i8::try_from(o / 8).ok()
}

/// `DW_OP_breg6 k; DW_OP_deref` (gcc's CFA after stack realignment): k.
fn drap(code: &[u8]) -> Option<i32> {
    let (&op, rest) = code.split_first()?;
    let (&last, leb) = rest.split_last()?;
    if op != 0x76 || last != 0x06 {
        return None;
    }
    let mut c = super::reader::Cursor::new(leb, 0);
    let k = i32::try_from(c.sleb()?).ok()?;
    c.done().then_some(k)
}

/// Buckets of two slots: 2^15 buckets, 65536 slots, 1 MiB of .bss (touched where used).
const BITS: u32 = 15;
pub const SLOTS: usize = 2 << BITS;
const BUSY: usize = 1;

struct Slot {
    key: AtomicUsize,
    val: AtomicU64,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        key: AtomicUsize::new(0),
        val: AtomicU64::new(0),
    }
}; SLOTS];

/// A full 64-bit mix: return addresses come in strides (one per function), which a bare
/// multiplicative hash folds onto few buckets.
#[inline(always)]
fn hash(key: usize) -> u64 {
    let h = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// The two slots of `key`'s bucket.
#[inline(always)]
fn bucket(h: u64) -> &'static [Slot] {
    let b = (h >> (64 - BITS)) as usize * 2;
    &TABLE[b..b + 2]
}

/// The value of `key` in `s`, if `s` holds it (seqlock read, module invariants).
#[inline(always)]
fn read(s: &Slot, key: usize) -> Option<u64> {
    if s.key.load(Ordering::Acquire) != key {
        return None;
    }
    let v = s.val.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    (s.key.load(Ordering::Relaxed) == key).then_some(v)
}

/// A rule as packed in the cache, decoded in place by the walker's fast path.
#[derive(Clone, Copy, Debug)]
pub struct Packed(u64);

impl Packed {
    /// The packed form of a rule (no stamp).
    #[inline(always)]
    pub fn of(rule: Rule) -> Packed {
        Packed(rule.pack(0))
    }
    /// The packed word (kept by `memo`).
    #[inline(always)]
    pub fn raw(self) -> u64 {
        self.0
    }
    #[inline(always)]
    pub fn from_raw(v: u64) -> Packed {
        Packed(v)
    }
    /// A `Frame` rule (else `End`).
    #[inline(always)]
    pub fn is_frame(self) -> bool {
        self.0 & 3 == 1
    }
    /// `Base` as 0 (rsp), 1 (rbp), 2 (*(rbp + off)).
    #[inline(always)]
    pub fn base(self) -> u64 {
        (self.0 >> 2) & 3
    }
    #[inline(always)]
    pub fn off(self) -> isize {
        ((self.0 << (64 - 20 - OFF_BITS)) as i64 >> (64 - OFF_BITS)) as isize
    }
    /// Where the return address is, from the CFA, in bytes.
    #[inline(always)]
    pub fn ra(self) -> isize {
        (self.0 >> 44) as u8 as i8 as isize * 8
    }
    /// Where rbp is saved, from the CFA, in bytes (0: unchanged).
    #[inline(always)]
    pub fn rbp(self) -> isize {
        (self.0 >> 52) as u8 as i8 as isize * 8
    }
}

/// The cached rule of `key` for the module with `stamp`.
#[inline(always)]
pub fn get_packed(key: usize, stamp: u16) -> Option<Packed> {
    let h = hash(key);
    let b = bucket(h);
    let v = read(&b[0], key).or_else(|| read(&b[1], key))?;
    ((v >> 4) as u16 == stamp).then_some(Packed(v))
}

/// The cached rule of `key` for the module with `stamp`.
#[cfg(test)]
pub fn get(key: usize, stamp: u16) -> Option<Rule> {
    let h = hash(key);
    let b = bucket(h);
    let v = read(&b[0], key).or_else(|| read(&b[1], key))?;
    Rule::unpack(v, stamp)
}

/// Caches `rule` for `key`: in the slot already holding `key`, else an empty one, else the
/// one a bit of the hash picks (skipped when another thread is writing the slot).
pub fn put(key: usize, stamp: u16, rule: Rule) {
    let h = hash(key);
    let b = bucket(h);
    let (k0, k1) = (
        b[0].key.load(Ordering::Relaxed),
        b[1].key.load(Ordering::Relaxed),
    );
    let i = if k0 == key || k0 == 0 {
        0
    } else if k1 == key || k1 == 0 {
        1
    } else {
        (h >> 8) as usize & 1
    };
    let s = &b[i];
    let cur = if i == 0 { k0 } else { k1 };
    if cur == BUSY
        || s.key
            .compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    fence(Ordering::Release);
    s.val.store(rule.pack(stamp), Ordering::Relaxed);
    s.key.store(key, Ordering::Release);
}

/// Slots in use (for statistics; a racy count).
pub fn used() -> usize {
    TABLE
        .iter()
        .filter(|s| s.key.load(Ordering::Relaxed) > BUSY)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_checks_the_stamp() {
        let rules = [
            Rule::End,
            Rule::Frame {
                base: Base::Rsp,
                off: 8,
                ra: -1,
                rbp: 0,
            },
            Rule::Frame {
                base: Base::Rbp,
                off: 16,
                ra: -1,
                rbp: -2,
            },
            Rule::Frame {
                base: Base::RbpDeref,
                off: -8,
                ra: -1,
                rbp: -2,
            },
            Rule::Frame {
                base: Base::Rsp,
                off: (1 << 23) - 8,
                ra: -128,
                rbp: 127,
            },
            Rule::Frame {
                base: Base::Rsp,
                off: -(1 << 23),
                ra: 5,
                rbp: -128,
            },
        ];
        for r in rules {
            let v = r.pack(0xbeef);
            assert_eq!(Rule::unpack(v, 0xbeef), Some(r));
            assert_eq!(Rule::unpack(v, 0xbeee), None, "another module");
            let p = Packed::of(r);
            match r {
                Rule::End => assert!(!p.is_frame()),
                Rule::Frame { base, off, ra, rbp } => {
                    assert!(p.is_frame());
                    assert_eq!(p.base(), base as u64);
                    assert_eq!(p.off(), off as isize);
                    assert_eq!(p.ra(), ra as isize * 8);
                    assert_eq!(p.rbp(), rbp as isize * 8);
                }
            }
        }
    }

    #[test]
    fn cache_get_put_and_overwrite() {
        let key = 0x5555_0000_1234;
        assert_eq!(get(key, 7), None);
        let r = Rule::Frame {
            base: Base::Rsp,
            off: 40,
            ra: -1,
            rbp: 0,
        };
        put(key, 7, r);
        assert_eq!(get(key, 7), Some(r));
        assert_eq!(get(key, 8), None, "stamp of another object");
        put(key, 8, Rule::End);
        assert_eq!(get(key, 8), Some(Rule::End));
        assert_eq!(get(key, 7), None);
        assert!(used() >= 1);
    }

    #[test]
    fn strided_keys_stay_cached() {
        // 4096 return addresses one function apart, as a program's call sites are.
        let r = Rule::Frame {
            base: Base::Rsp,
            off: 16,
            ra: -1,
            rbp: 0,
        };
        for stride in [16usize, 32, 48, 64] {
            let keys: Vec<usize> = (0..4096)
                .map(|j| 0x5566_7788_0000 + stride * j + 7)
                .collect();
            for &k in &keys {
                put(k, 9, r);
            }
            let hits = keys.iter().filter(|&&k| get(k, 9).is_some()).count();
            assert!(hits > 4000, "stride {stride}: {hits} of 4096 kept");
        }
    }

    #[test]
    fn cache_from_threads() {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        let key = 0x7000_0000 + (i % 3000) * 16 + t;
                        let r = Rule::Frame {
                            base: Base::Rsp,
                            off: (i % 3000) as i32 * 8,
                            ra: -1,
                            rbp: 0,
                        };
                        put(key, 3, r);
                        if let Some(g) = get(key, 3) {
                            assert_eq!(g, r, "a reader never sees another key's rule");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}
