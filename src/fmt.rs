//! `Line`: a fixed stack buffer that formats text, decimal (itoa) and hex without allocating,
//! then goes out with one raw `write(2)`. Used by reports, dumps, the log and the signal handler.
//!
//! # Invariants
//! `len <= N`; text past the capacity is dropped (a truncated line is better than a crash).

use crate::sys;

pub struct Line<const N: usize = 512> {
    buf: [u8; N],
    len: usize,
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Line<N> {
    pub const fn new() -> Self {
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Room left.
    pub fn room(&self) -> usize {
        N - self.len
    }

    pub fn s(&mut self, t: &[u8]) -> &mut Self {
        let n = t.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&t[..n]);
        self.len += n;
        self
    }

    pub fn c(&mut self, ch: u8) -> &mut Self {
        if self.len < N {
            self.buf[self.len] = ch;
            self.len += 1;
        }
        self
    }

    /// Decimal.
    pub fn u(&mut self, v: u64) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let t = b.format(v);
        self.s(t.as_bytes())
    }

    pub fn i(&mut self, v: i64) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let t = b.format(v);
        self.s(t.as_bytes())
    }

    /// Decimal right-aligned in `w` columns.
    pub fn u_w(&mut self, v: u64, w: usize) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let t = b.format(v);
        for _ in t.len()..w {
            self.c(b' ');
        }
        self.s(t.as_bytes())
    }

    fn hex_digits(&mut self, v: u64, min: usize, digits: &[u8; 16]) -> &mut Self {
        let mut tmp = [0u8; 16];
        let mut n = 0;
        let mut x = v;
        loop {
            tmp[15 - n] = digits[(x & 15) as usize];
            n += 1;
            x >>= 4;
            if x == 0 && n >= min {
                break;
            }
            if n == 16 {
                break;
            }
        }
        self.s(&tmp[16 - n..])
    }

    /// `0x` + lowercase hex.
    pub fn x(&mut self, v: usize) -> &mut Self {
        self.s(b"0x").hex_digits(v as u64, 1, HEX_LOWER)
    }

    /// `0x` + uppercase hex digits (show_alloc_mem's classic format).
    pub fn xu(&mut self, v: usize) -> &mut Self {
        self.s(b"0x").hex_digits(v as u64, 1, HEX_UPPER)
    }

    /// Lowercase hex without prefix, zero padded to `min` digits.
    pub fn hx(&mut self, v: u64, min: usize) -> &mut Self {
        self.hex_digits(v, min, HEX_LOWER)
    }

    /// Writes to the report destination (stderr or report=PATH).
    pub fn report(&self) {
        sys::write_report(self.as_bytes());
    }

    pub fn write_fd(&self, fd: i32) -> bool {
        sys::write_all(fd, self.as_bytes())
    }

    /// Writes to `fd` and empties the buffer.
    pub fn flush_fd(&mut self, fd: i32) {
        sys::write_all(fd, self.as_bytes());
        self.len = 0;
    }
}

/// The standard prefix `ft_malloc[PID]: `.
pub fn prefix<const N: usize>(l: &mut Line<N>) -> &mut Line<N> {
    l.s(b"ft_malloc[").u(sys::getpid() as u64).s(b"]: ")
}

/// Parses a decimal or 0x-hex number (used for options and dump commands).
pub fn parse_num(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let (digits, radix) = if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        (&s[2..], 16u64)
    } else {
        (s, 10u64)
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &ch in digits {
        let d = match ch {
            b'0'..=b'9' => (ch - b'0') as u64,
            b'a'..=b'f' if radix == 16 => (ch - b'a' + 10) as u64,
            b'A'..=b'F' if radix == 16 => (ch - b'A' + 10) as u64,
            _ => return None,
        };
        v = v.checked_mul(radix)?.checked_add(d)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats() {
        let mut l: Line<64> = Line::new();
        l.s(b"a ")
            .u(42)
            .c(b' ')
            .x(0xabc)
            .c(b' ')
            .xu(0xabc)
            .c(b' ')
            .hx(5, 4);
        assert_eq!(l.as_bytes(), b"a 42 0xabc 0xABC 0005");
        let mut t: Line<4> = Line::new();
        t.s(b"123456");
        assert_eq!(t.as_bytes(), b"1234");
        let mut z: Line<8> = Line::new();
        z.x(0);
        assert_eq!(z.as_bytes(), b"0x0");
    }
    #[test]
    fn numbers() {
        assert_eq!(parse_num(b"42"), Some(42));
        assert_eq!(parse_num(b"0x1F"), Some(31));
        assert_eq!(parse_num(b"x"), None);
        assert_eq!(parse_num(b"99999999999999999999999"), None);
    }
}
