//! Formatting of event lines without allocation: the `E` record of the text log
//! (docs/LOGFORMAT.md, format v2: one-letter ops, bare hex pointers, only the fields the
//! operation has), written with fixed-size stores and no per-digit bounds checks, and glibc's
//! mtrace records.

use super::ring::Event;
use crate::maps;
use core::sync::atomic::{AtomicU32, Ordering};
use ft_format::log::{MAIN_TID, T_UNIT_NS};

/// The longest line we format: an `E` record is under 200 bytes, an mtrace realloc pair with
/// two 256-byte paths under 700.
pub(super) const MAX_LINE: usize = 768;

/// Bytes a number write may touch past the current position: numbers are stored as one fixed
/// block (24 bytes) and the position then advances by their real length.
pub(super) const SLACK: usize = 24;

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Number of decimal digits of `v`.
#[inline(always)]
fn dec_len(v: u64) -> usize {
    // log10 from log2 (1233/4096 ~ log10(2)), corrected by one comparison.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let t = (bits * 1233) >> 12;
    t + 1 - ((v | 1) < POW10[t]) as usize
}

/// Spreads the 8 nibbles of `x` into the 8 bytes of a u64 (nibble k in byte k), as ASCII hex.
#[inline(always)]
fn hex8(x: u32) -> u64 {
    let mut v = x as u64;
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    v + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// A stack line for the hot path: no zeroing (unlike `Line`), numbers written as fixed-size
/// blocks without per-digit bounds checks.
///
/// # Invariants
/// `b[..n]` is initialised; `n <= MAX_LINE`; every write checks `n + len + SLACK <= b.len()`.
pub(super) struct Fast {
    b: [core::mem::MaybeUninit<u8>; MAX_LINE + SLACK],
    n: usize,
}

impl Fast {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Fast {
            b: [const { core::mem::MaybeUninit::uninit() }; MAX_LINE + SLACK],
            n: 0,
        }
    }
    #[inline(always)]
    fn room(&self, k: usize) -> bool {
        self.n + k <= MAX_LINE
    }
    #[inline(always)]
    fn c(&mut self, ch: u8) -> &mut Self {
        if self.room(1) {
            self.b[self.n] = core::mem::MaybeUninit::new(ch);
            self.n += 1;
        }
        self
    }
    #[inline(always)]
    fn s(&mut self, t: &[u8]) -> &mut Self {
        if self.room(t.len()) {
            // SAFETY: n + len <= MAX_LINE < b.len(), and t does not overlap our buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    t.as_ptr(),
                    self.b.as_mut_ptr().add(self.n) as *mut u8,
                    t.len(),
                )
            };
            self.n += t.len();
        }
        self
    }
    /// `0x` + lowercase hex: all 16 digits of the value shifted to the top are stored (two
    /// 8-byte stores), then the position advances past the significant ones.
    #[inline(always)]
    fn x(&mut self, v: usize) -> &mut Self {
        let v = v as u64;
        let digits = if v == 0 {
            1
        } else {
            (67 - v.leading_zeros() as usize) / 4
        };
        if !self.room(2 + digits) {
            return self;
        }
        let top = v << (4 * (16 - digits));
        let base = self.b.as_mut_ptr() as *mut u8;
        // SAFETY: the stores cover [n, n+18), and n + 18 <= MAX_LINE + SLACK = b.len().
        unsafe {
            core::ptr::write_unaligned(base.add(self.n) as *mut [u8; 2], *b"0x");
            core::ptr::write_unaligned(
                base.add(self.n + 2) as *mut u64,
                hex8((top >> 32) as u32).to_be(),
            );
            core::ptr::write_unaligned(base.add(self.n + 10) as *mut u64, hex8(top as u32).to_be());
        }
        self.n += 2 + digits;
        self
    }
    pub(super) fn as_bytes(&self) -> &[u8] {
        // SAFETY: b[..n] is initialised (type invariant).
        unsafe { core::slice::from_raw_parts(self.b.as_ptr() as *const u8, self.n) }
    }
}

/// The thread id that `E` records write as `-`: the process id of the log's header (set when
/// the header is written, in the fork child for its own file too).
pub(super) static MAIN: AtomicU32 = AtomicU32::new(0);

/// Longest `E` record: the tag, 5 decimals of at most 20 digits, the op, 2 pointers, the
/// caller (18 bytes) or `@` and a stack id (11), the spaces and the newline.
#[allow(dead_code)] // (read by the assertion below only, which older compilers do not count)
const MAX_E_LINE: usize = 2 + 5 * (20 + 1) + 2 + 2 * 17 + 19 + 1;
const _: () = assert!(MAX_E_LINE + SLACK <= MAX_LINE);

// Raw writers for the hot path: the position lives in a register (a pointer) and there is no
// bounds check per field; the whole record's bound is checked once (`MAX_E_LINE`).

/// Decimal, written from the last digit back, two at a time; returns the end.
/// # Safety
/// `[p, p+20)` is writable.
#[inline(always)]
unsafe fn put_u(p: *mut u8, mut v: u64) -> *mut u8 {
    let len = dec_len(v);
    // SAFETY: every store is in [p, p+len), len <= 20 (caller's room).
    unsafe {
        let mut i = p.add(len);
        while v >= 100 {
            let r = (v % 100) as usize * 2;
            v /= 100;
            i = i.sub(2);
            core::ptr::write_unaligned(i as *mut [u8; 2], [DIGITS2[r], DIGITS2[r + 1]]);
        }
        if v >= 10 {
            let r = v as usize * 2;
            core::ptr::write_unaligned(i.sub(2) as *mut [u8; 2], [DIGITS2[r], DIGITS2[r + 1]]);
        } else {
            *i.sub(1) = b'0' + v as u8;
        }
        p.add(len)
    }
}

/// Lowercase hex without `0x`: 16 bytes are stored, the position advances past the
/// significant digits (one for 0).
/// # Safety
/// `[p, p+16)` is writable.
#[inline(always)]
unsafe fn put_h(p: *mut u8, v: usize) -> *mut u8 {
    let v = v as u64;
    let digits = if v == 0 {
        1
    } else {
        (67 - v.leading_zeros() as usize) / 4
    };
    let top = v << (4 * (16 - digits));
    // SAFETY: the stores cover [p, p+16) (caller's room).
    unsafe {
        core::ptr::write_unaligned(p as *mut u64, hex8((top >> 32) as u32).to_be());
        core::ptr::write_unaligned(p.add(8) as *mut u64, hex8(top as u32).to_be());
        p.add(digits)
    }
}

/// `0x` + lowercase hex: 18 bytes are stored, the position advances past the significant ones.
/// # Safety
/// `[p, p+18)` is writable.
#[inline(always)]
unsafe fn put_x(p: *mut u8, v: usize) -> *mut u8 {
    // SAFETY: [p, p+2) and then [p+2, p+18) are writable (caller's room).
    unsafe {
        core::ptr::write_unaligned(p as *mut [u8; 2], *b"0x");
        put_h(p.add(2), v)
    }
}

/// One byte.
/// # Safety
/// `p` is writable.
#[inline(always)]
unsafe fn put_c(p: *mut u8, c: u8) -> *mut u8 {
    // SAFETY: caller's room.
    unsafe {
        *p = c;
        p.add(1)
    }
}

/// Formats the `E` record of `e` at `dst`; returns its length. Bytes after the record, up to
/// `SLACK` of them, may be overwritten with digits (the caller clears them where it matters).
/// # Safety
/// `[dst, dst + MAX_LINE)` is writable.
#[inline(always)]
pub(super) unsafe fn text_raw(dst: *mut u8, e: &Event, stack: u32) -> usize {
    let op = e.op;
    let (has_in, has_out) = op.pointers();
    // SAFETY: the record is at most MAX_E_LINE bytes and every write stores at most SLACK bytes
    // past its end; MAX_E_LINE + SLACK <= MAX_LINE (asserted above).
    unsafe {
        let mut p = dst;
        core::ptr::write_unaligned(p as *mut [u8; 2], *b"E ");
        p = p.add(2);
        p = put_c(put_u(p, e.seq), b' ');
        p = put_c(put_u(p, e.t / T_UNIT_NS), b' ');
        if e.tid == MAIN.load(Ordering::Relaxed) {
            core::ptr::write_unaligned(p as *mut [u8; 2], [MAIN_TID, b' ']);
            p = p.add(2);
        } else {
            p = put_c(put_u(p, e.tid as u64), b' ');
        }
        core::ptr::write_unaligned(p as *mut [u8; 2], [op.code(), b' ']);
        p = p.add(2);
        if has_in {
            p = put_c(put_h(p, e.inp), b' ');
        }
        if has_out {
            p = put_c(put_h(p, e.out), b' ');
        }
        p = put_c(put_u(p, e.size as u64), b' ');
        if op.is_aligned() || (op.may_align() && e.align != 0) {
            p = put_c(put_u(p, e.align as u64), b' ');
        }
        if stack != 0 {
            p = put_u(put_c(p, b'@'), super::stacks::log_id(stack) as u64);
        } else {
            p = put_x(p, e.caller);
        }
        p = put_c(p, b'\n');
        p.offset_from(dst) as usize
    }
}

/// The `E` record of `e` on a fresh line (`l` empty; nothing is written otherwise).
pub(super) fn text_line(l: &mut Fast, e: &Event, stack: u32) {
    if l.n != 0 {
        return;
    }
    // SAFETY: n = 0 and the buffer has MAX_LINE + SLACK bytes; text_raw initialises the
    // `len <= MAX_E_LINE <= MAX_LINE` bytes it reports.
    l.n = unsafe { text_raw(l.b.as_mut_ptr() as *mut u8, e, stack) };
}

fn mtrace_where(l: &mut Fast, caller: usize) {
    if caller < 4096 {
        return;
    }
    l.s(b"@ ");
    match maps::module_at(caller) {
        Some((base, path)) => {
            l.s(path).s(b":[").x(caller - base).s(b"] ");
        }
        None => {
            l.s(b"[").x(caller).s(b"] ");
        }
    }
}

fn mtrace_ptr(l: &mut Fast, p: usize) {
    if p == 0 {
        l.s(b"(nil)");
    } else {
        l.x(p);
    }
}

/// glibc mtrace records (malloc/mtrace-impl.c).
pub(super) fn mtrace_line(l: &mut Fast, e: &Event) {
    let free_like = e.op.is_free();
    let re = e.op.is_realloc();
    if free_like {
        mtrace_where(l, e.caller);
        l.s(b"- ").x(e.inp).c(b'\n');
    } else if re && e.inp != 0 {
        if e.out == 0 {
            mtrace_where(l, e.caller);
            if e.size == 0 {
                l.s(b"- ").x(e.inp).c(b'\n');
            } else {
                l.s(b"! ").x(e.inp).c(b' ').x(e.size).c(b'\n');
            }
        } else {
            mtrace_where(l, e.caller);
            l.s(b"< ").x(e.inp).c(b'\n');
            mtrace_where(l, e.caller);
            l.s(b"> ").x(e.out).c(b' ').x(e.size).c(b'\n');
        }
    } else {
        mtrace_where(l, e.caller);
        l.s(b"+ ");
        mtrace_ptr(l, e.out);
        l.c(b' ').x(e.size).c(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ft_format::Op;
    #[test]
    fn text_record() {
        let mut l = Fast::new();
        let e = Event {
            seq: 3,
            t: 2500,
            tid: 31337,
            op: Op::Free,
            align: 0,
            inp: 0x7f3a20000040,
            out: 0,
            size: 100,
            caller: 0x55d0c000118f,
            caller2: 0,
        };
        text_line(&mut l, &e, 0);
        assert_eq!(
            l.as_bytes(),
            b"E 3 2 31337 f 7f3a20000040 100 0x55d0c000118f\n"
        );
        let mut l = Fast::new();
        text_line(&mut l, &e, 65537);
        assert_eq!(l.as_bytes(), b"E 3 2 31337 f 7f3a20000040 100 @2\n");
        // The main thread, an aligned allocation, a realloc, operator new without and with an
        // alignment (written only when one was asked for).
        MAIN.store(31337, Ordering::Relaxed);
        let cases = [
            (
                Op::Memalign,
                0,
                0x7f00,
                64,
                31337,
                &b"E 3 2 - a 7f00 100 64 @9\n"[..],
            ),
            (Op::Realloc, 0x10, 0, 0, 7, b"E 3 2 7 r 10 0 100 @9\n"),
            (Op::New, 0, 0x7f00, 0, 7, b"E 3 2 7 n 7f00 100 @9\n"),
            (Op::New, 0, 0x7f00, 64, 7, b"E 3 2 7 n 7f00 100 64 @9\n"),
        ];
        for (op, inp, out, align, tid, want) in cases {
            let mut l = Fast::new();
            let ev = Event {
                op,
                inp,
                out,
                align,
                tid,
                ..e
            };
            text_line(&mut l, &ev, 65544);
            assert_eq!(l.as_bytes(), want);
        }
        MAIN.store(0, Ordering::Relaxed);
        for v in [0u64, 1, 9, 10, 99, 100, 12345678901234567890, u64::MAX] {
            let mut b = [0u8; 64];
            // SAFETY: 64 bytes hold a decimal (20), a space and a hex write (18).
            let n = unsafe {
                let p = put_x(put_c(put_u(b.as_mut_ptr(), v), b' '), v as usize);
                p.offset_from(b.as_ptr()) as usize
            };
            assert_eq!(&b[..n], format!("{v} {v:#x}").as_bytes());
        }
        let mut f = Fast::new();
        f.x(0xabcdef).x(0x10).x(0xffff_ffff_ffff_ffff);
        assert_eq!(f.as_bytes(), b"0xabcdef0x100xffffffffffffffff");
    }
}
