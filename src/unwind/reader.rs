//! A bounds-checked little-endian reader over module bytes: fixed-size words, LEB128 and the
//! `DW_EH_PE_*` pointer encodings of `.eh_frame` and `.eh_frame_hdr`.
//!
//! # Invariants
//! Every read checks the slice's bounds and returns `None` past its end; arithmetic on decoded
//! values wraps (a malformed table yields a wrong address, later refused, never a panic).

/// A little-endian reader over a slice; every read checks the bounds.
pub struct Cursor<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    /// Address of `b[0]` (for pc-relative pointers).
    base: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8], base: usize) -> Self {
        Cursor { b, pos: 0, base }
    }
    pub fn addr(&self) -> usize {
        self.base.wrapping_add(self.pos)
    }
    pub fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.pos..self.pos.checked_add(N)?)?;
        self.pos += N;
        s.try_into().ok()
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes().map(u64::from_le_bytes)
    }
    pub fn uleb(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= ((b & 0x7f) as u64) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    }
    pub fn sleb(&mut self) -> Option<i64> {
        let (mut v, mut shift) = (0i64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= ((b & 0x7f) as i64) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1i64 << shift;
                }
                return Some(v);
            }
        }
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.b.len()).then(|| self.pos = end)
    }
    /// A pointer in encoding `enc` (`DW_EH_PE_*`); `data` is the base of `datarel`.
    pub fn pointer(&mut self, enc: u8, data: usize) -> Option<usize> {
        if enc == 0xff {
            return None;
        }
        let here = self.addr();
        let v = match enc & 0x0f {
            0x00 | 0x04 => self.u64()? as usize,
            0x01 => self.uleb()? as usize,
            0x02 => self.u16()? as usize,
            0x03 => self.u32()? as usize,
            0x09 => self.sleb()? as usize,
            0x0a => self.u16()? as i16 as usize,
            0x0b => self.u32()? as i32 as usize,
            0x0c => self.u64()? as usize,
            _ => return None,
        };
        let base = match enc & 0x70 {
            0x00 => 0,
            0x10 => here,
            0x30 => data,
            _ => return None,
        };
        Some(base.wrapping_add(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_pointer_encodings() {
        let b = [0xe5, 0x8e, 0x26, 0x7f, 0x80, 0x7f];
        let mut c = Cursor::new(&b, 0x1000);
        assert_eq!(c.uleb(), Some(624485));
        assert_eq!(c.sleb(), Some(-1));
        assert_eq!(c.sleb(), Some(-128));
        assert_eq!(c.u8(), None);
        let b = (-16i32).to_le_bytes();
        let mut c = Cursor::new(&b, 0x1000);
        assert_eq!(c.pointer(0x1b, 0), Some(0x1000 - 16), "pcrel sdata4");
        let mut c = Cursor::new(&b, 0x1000);
        assert_eq!(c.pointer(0x3b, 0x5000), Some(0x5000 - 16), "datarel sdata4");
        let mut c = Cursor::new(&b, 0x1000);
        assert_eq!(c.pointer(0x2b, 0), None, "textrel is refused");
        let mut c = Cursor::new(&b[..2], 0x1000);
        assert_eq!(c.u32(), None, "short");
    }
}
