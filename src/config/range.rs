//! Ranges of the numeric MALLOC_DEBUG options and why an item is refused (`OptionError`): each
//! number's valid values, how a value outside them is replaced by the nearest valid one (with
//! the warning that says so), and how a range is written in warnings and in `help`.

use crate::fmt::Line;

/// Why a MALLOC_DEBUG item was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OptionError {
    /// No option of that name (nor, for `noNAME`, of NAME).
    Unknown,
    /// A known option with a value it does not take: what it expects.
    Invalid(&'static str),
    /// A value outside the option's range: the nearest valid one (`used`) was taken instead.
    OutOfRange {
        range: Range,
        used: u64,
        tag: &'static str,
    },
}

impl OptionError {
    /// The reason shown in the warning.
    pub fn reason(self) -> &'static str {
        match self {
            OptionError::Unknown => "unknown option",
            OptionError::Invalid(why) => why,
            OptionError::OutOfRange { .. } => "out of range",
        }
    }
}

/// Unit of a numeric option, for printing its range: bytes (with k/m/g) or a plain count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    Bytes,
    Count,
}

/// The valid values of a numeric option, both ends included. `Range::NONE`: not a number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
    pub unit: Unit,
}

impl Range {
    pub const NONE: Range = Range {
        lo: 0,
        hi: u64::MAX,
        unit: Unit::Count,
    };
    pub(super) const fn bytes(lo: u64, hi: u64) -> Range {
        Range {
            lo,
            hi,
            unit: Unit::Bytes,
        }
    }
    pub(super) const fn count(lo: u64, hi: u64) -> Range {
        Range {
            lo,
            hi,
            unit: Unit::Count,
        }
    }
    /// `n`, or the nearest end of the range and the warning that says so (`tag`: what the
    /// value is written after, `nth:` in `fail=nth:0`).
    pub(super) fn clamp(self, n: u64, tag: &'static str) -> (u64, Option<OptionError>) {
        let used = n.clamp(self.lo, self.hi);
        let w = (used != n).then_some(OptionError::OutOfRange {
            range: self,
            used,
            tag,
        });
        (used, w)
    }
}

/// Writes `n` as ranges are written: bytes with the largest exact k/m/g suffix, else digits.
pub fn range_value<const N: usize>(l: &mut Line<N>, unit: Unit, n: u64) {
    if unit == Unit::Bytes && n > 0 {
        for (shift, suffix) in [(30, b'g'), (20, b'm'), (10, b'k')] {
            if n.is_multiple_of(1u64 << shift) {
                l.u(n >> shift).c(suffix);
                return;
            }
        }
    }
    l.u(n);
}

/// A parsed number applied through its range: out of it, the nearest end is applied and the
/// warning returned.
pub(super) fn ranged(
    v: Result<u64, &'static str>,
    r: Range,
    f: &mut u64,
) -> Result<(), OptionError> {
    let (n, w) = r.clamp(v.map_err(OptionError::Invalid)?, "");
    *f = n;
    w.map_or(Ok(()), Err)
}

/// The warning of a value applied after clamping, if any.
pub(super) fn warned(w: Option<OptionError>) -> Result<(), OptionError> {
    w.map_or(Ok(()), Err)
}

/// Ranges of the numeric options (0 is off, or the default, where the option says so).
pub const MAX_QUARANTINE: u64 = 64 << 30;
pub const MAX_CHECK_EVERY: u64 = 1_000_000_000;
pub const MAX_SAMPLE: u64 = 1_000_000;
pub const MAX_GUARD_BUDGET: u64 = 64 << 30;
pub const MAX_RING: u64 = 1 << 24;
pub const MAX_STACK: u64 = crate::site::MAX_DEPTH as u64;
pub const MAX_HEXDUMP: u64 = 1 << 30;
pub(super) const EXIT_RANGE: Range = Range::count(0, 255);
pub(super) const FAIL_N_RANGE: Range = Range::count(1, u64::MAX);
