//! The DWARF call-frame information of a module (`.eh_frame` through `.eh_frame_hdr`): finds
//! the FDE covering an address (binary search of the header's table, or a linear scan when a
//! linker wrote no table), parses its CIE and FDE (versions 1, 3, 4; augmentations `z`, `R`,
//! `P`, `L`, `S`, `B`, `G`; every pointer encoding but `textrel`) and runs the CFA program up to
//! the address, giving the row: the CFA rule and one rule per register.
//!
//! # Invariants
//! - Every byte read comes from a slice built by `Segments::from`, so parsing stops at the end
//!   of a readable segment; malformed tables give `None`, never a fault or a panic (all slice
//!   accesses are `get`, all arithmetic wrapping or checked).
//! - Work is bounded: the CFA program runs at most `MAX_OPS` instructions and keeps at most
//!   `STATES` remembered rows; the linear scan stops after `MAX_SCAN` entries.
//! - Expressions are kept as addresses into the module's (readable, immutable) tables.

use super::module::{Module, Segments};

/// Registers with a rule: DWARF x86-64 numbering 0..=15 (rax rdx rcx rbx rsi rdi rbp rsp
/// r8..r15) and 16, the return address column.
pub const NREGS: usize = 17;
pub const RBP: usize = 6;
pub const RSP: usize = 7;
pub const RA: usize = 16;

const MAX_OPS: usize = 4096;
const STATES: usize = 8;
const MAX_SCAN: usize = 1 << 20;

/// The rule of one register in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rule {
    /// No rule: callee-saved registers keep their value, the return address is unknown.
    #[default]
    Unspecified,
    Undefined,
    Same,
    /// Saved at CFA + n.
    Offset(i32),
    /// Its value is CFA + n.
    ValOffset(i32),
    /// Its value is in that register.
    Register(u8),
    /// Saved at the address computed by the expression (CFA pushed first): (offset of the
    /// expression from the module's start, length).
    Expr(u32, u16),
    /// Its value is the expression's result (CFA pushed first).
    ValExpr(u32, u16),
}
const _: () = assert!(core::mem::size_of::<Rule>() == 8);

/// How the CFA is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cfa {
    RegOff(u8, i32),
    /// (offset of the expression from the module's start, length)
    Expr(u32, u16),
}

/// The unwind row of one address.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub cfa: Cfa,
    pub regs: [Rule; NREGS],
    /// The CIE says `S`: this is a signal frame, the caller's pc is exact (not a return address).
    pub signal: bool,
    /// The module's start (expressions are stored relative to it).
    pub base: usize,
}

impl Row {
    /// The bytes of an expression of this row.
    pub fn expr(&self, off: u32, len: u16) -> &'static [u8] {
        // SAFETY: the expression was read from a readable segment of the module that starts at
        // `base` (the parser checked its bounds), and module tables are not written.
        unsafe {
            core::slice::from_raw_parts((self.base + off as usize) as *const u8, len as usize)
        }
    }
}

/// A little-endian reader over a slice; every read checks the bounds.
pub struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
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

/// What a CIE says about its FDEs.
pub(super) struct Cie {
    code_align: u64,
    data_align: i64,
    ra: u64,
    fde_enc: u8,
    has_aug_data: bool,
    signal: bool,
    /// Initial instructions: address and length.
    instr: (usize, usize),
}

/// Length and body of the entry (CIE or FDE) at the cursor: (body start, body length); a zero
/// length is the terminator (None).
fn entry(c: &mut Cursor) -> Option<(usize, usize)> {
    let len = match c.u32()? {
        0 => return None,
        0xffff_ffff => c.u64()? as usize,
        n => n as usize,
    };
    let start = c.pos;
    c.skip(len)?;
    Some((start, len))
}

fn parse_cie(segs: &Segments, at: usize) -> Option<Cie> {
    let mut c = Cursor::new(segs.from(at)?, at);
    let (start, len) = entry(&mut c)?;
    let mut c = Cursor::new(c.b.get(start..start + len)?, at.wrapping_add(start));
    if c.u32()? != 0 {
        return None; // an FDE, not a CIE
    }
    let version = c.u8()?;
    if !matches!(version, 1 | 3 | 4) {
        return None;
    }
    let mut aug = [0u8; 8];
    let mut naug = 0;
    loop {
        let ch = c.u8()?;
        if ch == 0 {
            break;
        }
        *aug.get_mut(naug)? = ch;
        naug += 1;
    }
    if version == 4 {
        let (addr_size, seg_size) = (c.u8()?, c.u8()?);
        if addr_size != 8 || seg_size != 0 {
            return None;
        }
    }
    let code_align = c.uleb()?;
    let data_align = c.sleb()?;
    let ra = if version == 1 {
        c.u8()? as u64
    } else {
        c.uleb()?
    };
    let mut cie = Cie {
        code_align,
        data_align,
        ra,
        fde_enc: 0,
        has_aug_data: false,
        signal: false,
        instr: (0, 0),
    };
    let aug = &aug[..naug];
    if let Some((&b'z', rest)) = aug.split_first() {
        cie.has_aug_data = true;
        let alen = c.uleb()? as usize;
        let data_end = c.pos.checked_add(alen)?;
        for &ch in rest {
            match ch {
                b'R' => cie.fde_enc = c.u8()?,
                b'L' => {
                    c.u8()?;
                }
                b'P' => {
                    let enc = c.u8()?;
                    c.pointer(enc & 0x7f, 0)?;
                }
                b'S' => cie.signal = true,
                b'B' | b'G' => {}
                _ => return None,
            }
        }
        if c.pos > data_end {
            return None;
        }
        c.pos = data_end;
    } else if !aug.is_empty() {
        return None;
    }
    cie.instr = (c.addr(), c.b.len().checked_sub(c.pos)?);
    Some(cie)
}

/// Reads the FDE at `at`: its CIE, range and instructions, if it covers `pc`.
pub(super) fn parse_fde(
    segs: &Segments,
    at: usize,
    pc: Option<usize>,
) -> Option<(Cie, usize, usize, (usize, usize))> {
    let mut c = Cursor::new(segs.from(at)?, at);
    let (start, len) = entry(&mut c)?;
    let mut c = Cursor::new(c.b.get(start..start + len)?, at.wrapping_add(start));
    let id_at = c.addr();
    let id = c.u32()? as usize;
    if id == 0 {
        return None; // a CIE
    }
    let cie = parse_cie(segs, id_at.wrapping_sub(id))?;
    let begin = c.pointer(cie.fde_enc, 0)?;
    let range = c.pointer(cie.fde_enc & 0x0f, 0)?;
    let end = begin.wrapping_add(range);
    if let Some(pc) = pc
        && !(pc >= begin && pc < end)
    {
        return None;
    }
    if cie.has_aug_data {
        let n = c.uleb()? as usize;
        c.skip(n)?;
    }
    let instr = (c.addr(), c.b.len().checked_sub(c.pos)?);
    Some((cie, begin, end, instr))
}

/// The FDE address for `pc`, from the header's sorted table (or a scan of `.eh_frame`).
pub(super) fn find_fde(segs: &Segments, hdr: usize, pc: usize) -> Option<usize> {
    let mut c = Cursor::new(segs.from(hdr)?, hdr);
    let version = c.u8()?;
    let (frame_enc, count_enc, table_enc) = (c.u8()?, c.u8()?, c.u8()?);
    if version != 1 {
        return None;
    }
    let eh_frame = c.pointer(frame_enc, hdr)?;
    let count = if count_enc == 0xff {
        None
    } else {
        c.pointer(count_enc, hdr)
    };
    match count {
        // datarel sdata4 pairs, the only table encoding linkers write: binary search.
        Some(n) if table_enc == 0x3b => {
            let table = c.b.get(c.pos..c.pos.checked_add(n.checked_mul(8)?)?)?;
            let key = |i: usize| -> Option<(usize, usize)> {
                let e = table.get(i * 8..i * 8 + 8)?;
                let loc = i32::from_le_bytes([e[0], e[1], e[2], e[3]]) as isize as usize;
                let fde = i32::from_le_bytes([e[4], e[5], e[6], e[7]]) as isize as usize;
                Some((hdr.wrapping_add(loc), hdr.wrapping_add(fde)))
            };
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if key(mid)?.0 <= pc {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Some(key(lo.checked_sub(1)?)?.1)
        }
        _ => scan(segs, eh_frame, pc),
    }
}

/// Linear search of `.eh_frame` from its start to the terminator or the segment's end.
fn scan(segs: &Segments, eh_frame: usize, pc: usize) -> Option<usize> {
    let b = segs.from(eh_frame)?;
    let mut c = Cursor::new(b, eh_frame);
    for _ in 0..MAX_SCAN {
        let at = c.addr();
        let (start, _) = entry(&mut c)?;
        let id = u32::from_le_bytes(b.get(start..start + 4)?.try_into().ok()?);
        if id != 0 && parse_fde(segs, at, Some(pc)).is_some() {
            return Some(at);
        }
    }
    None
}

/// The row at `pc` in module `m` (`pc` is an exact pc or a return address minus one).
pub fn row_at(m: &Module, segs: &Segments, pc: usize) -> Option<Row> {
    if m.eh_hdr == 0 {
        return None;
    }
    let fde = find_fde(segs, m.eh_hdr, pc)?;
    let (cie, begin, _, instr) = parse_fde(segs, fde, Some(pc))?;
    let mut row = Row {
        cfa: Cfa::RegOff(RSP as u8, 8),
        regs: [Rule::Unspecified; NREGS],
        signal: cie.signal,
        base: m.start,
    };
    if cie.ra as usize != RA {
        return None;
    }
    let mut m = Machine {
        row: &mut row,
        initial: [Rule::Unspecified; NREGS],
        stack: [(Cfa::RegOff(0, 0), [Rule::Unspecified; NREGS]); STATES],
        depth: 0,
        cie: &cie,
        ops: 0,
    };
    m.run(segs, cie.instr, usize::MAX, 0)?;
    m.initial = m.row.regs;
    m.run(segs, instr, pc, begin)?;
    Some(row)
}

/// The CFA program interpreter.
struct Machine<'a> {
    row: &'a mut Row,
    /// Rules after the CIE's instructions (`DW_CFA_restore`).
    initial: [Rule; NREGS],
    stack: [(Cfa, [Rule; NREGS]); STATES],
    depth: usize,
    cie: &'a Cie,
    ops: usize,
}

impl Machine<'_> {
    fn set(&mut self, reg: u64, r: Rule) {
        if let Some(slot) = self.row.regs.get_mut(reg as usize) {
            *slot = r;
        }
    }
    fn restore(&mut self, reg: u64) {
        if let Some(&r) = self.initial.get(reg as usize) {
            self.set(reg, r);
        }
    }
    fn off(&self, factored: i64) -> Option<i32> {
        i32::try_from(factored.checked_mul(self.cie.data_align)?).ok()
    }
    /// An expression at `at` of `n` bytes, as stored in a row.
    fn expr(&self, at: usize, n: usize) -> Option<(u32, u16)> {
        let off = u32::try_from(at.checked_sub(self.row.base)?).ok()?;
        Some((off, u16::try_from(n).ok()?))
    }

    /// Runs the instructions at `(addr, len)` while the location stays `<= pc`.
    fn run(
        &mut self,
        segs: &Segments,
        (addr, len): (usize, usize),
        pc: usize,
        start: usize,
    ) -> Option<()> {
        let b = segs.from(addr)?.get(..len)?;
        let mut c = Cursor::new(b, addr);
        let mut loc = start;
        let ca = self.cie.code_align as usize;
        while !c.done() {
            self.ops += 1;
            if self.ops > MAX_OPS {
                return None;
            }
            let op = c.u8()?;
            let advance = match op >> 6 {
                1 => Some((op & 0x3f) as usize),
                2 => {
                    let o = self.off(c.uleb()? as i64)?;
                    self.set((op & 0x3f) as u64, Rule::Offset(o));
                    None
                }
                3 => {
                    self.restore((op & 0x3f) as u64);
                    None
                }
                _ => match op {
                    0x00 => None,
                    0x01 => {
                        let to = c.pointer(self.cie.fde_enc, 0)?;
                        if to > pc {
                            return Some(());
                        }
                        loc = to;
                        None
                    }
                    0x02 => Some(c.u8()? as usize),
                    0x03 => Some(c.u16()? as usize),
                    0x04 => Some(c.u32()? as usize),
                    0x05 => {
                        let (r, o) = (c.uleb()?, c.uleb()? as i64);
                        let o = self.off(o)?;
                        self.set(r, Rule::Offset(o));
                        None
                    }
                    0x06 => {
                        let r = c.uleb()?;
                        self.restore(r);
                        None
                    }
                    0x07 => {
                        let r = c.uleb()?;
                        self.set(r, Rule::Undefined);
                        None
                    }
                    0x08 => {
                        let r = c.uleb()?;
                        self.set(r, Rule::Same);
                        None
                    }
                    0x09 => {
                        let (r, r2) = (c.uleb()?, c.uleb()?);
                        self.set(r, Rule::Register(r2.min(255) as u8));
                        None
                    }
                    0x0a => {
                        let s = self.stack.get_mut(self.depth)?;
                        *s = (self.row.cfa, self.row.regs);
                        self.depth += 1;
                        None
                    }
                    0x0b => {
                        self.depth = self.depth.checked_sub(1)?;
                        let (cfa, regs) = self.stack[self.depth];
                        // The CFA rule is part of the remembered state (as in libgcc).
                        self.row.cfa = cfa;
                        self.row.regs = regs;
                        None
                    }
                    0x0c => {
                        let (r, o) = (c.uleb()?, i32::try_from(c.uleb()?).ok()?);
                        self.row.cfa = Cfa::RegOff(r.min(255) as u8, o);
                        None
                    }
                    0x0d => {
                        let r = c.uleb()?.min(255) as u8;
                        self.row.cfa = match self.row.cfa {
                            Cfa::RegOff(_, o) => Cfa::RegOff(r, o),
                            Cfa::Expr(..) => return None,
                        };
                        None
                    }
                    0x0e | 0x13 => {
                        let o = if op == 0x0e {
                            i32::try_from(c.uleb()?).ok()?
                        } else {
                            self.off(c.sleb()?)?
                        };
                        self.row.cfa = match self.row.cfa {
                            Cfa::RegOff(r, _) => Cfa::RegOff(r, o),
                            Cfa::Expr(..) => return None,
                        };
                        None
                    }
                    0x0f => {
                        let n = c.uleb()? as usize;
                        let at = c.addr();
                        c.skip(n)?;
                        let (e, n) = self.expr(at, n)?;
                        self.row.cfa = Cfa::Expr(e, n);
                        None
                    }
                    0x10 | 0x16 => {
                        let r = c.uleb()?;
                        let n = c.uleb()? as usize;
                        let at = c.addr();
                        c.skip(n)?;
                        let (e, n) = self.expr(at, n)?;
                        self.set(
                            r,
                            if op == 0x10 {
                                Rule::Expr(e, n)
                            } else {
                                Rule::ValExpr(e, n)
                            },
                        );
                        None
                    }
                    0x11 => {
                        let (r, o) = (c.uleb()?, c.sleb()?);
                        let o = self.off(o)?;
                        self.set(r, Rule::Offset(o));
                        None
                    }
                    0x12 => {
                        let (r, o) = (c.uleb()?.min(255) as u8, c.sleb()?);
                        self.row.cfa = Cfa::RegOff(r, self.off(o)?);
                        None
                    }
                    0x14 | 0x15 => {
                        let r = c.uleb()?;
                        let o = if op == 0x14 {
                            c.uleb()? as i64
                        } else {
                            c.sleb()?
                        };
                        let o = self.off(o)?;
                        self.set(r, Rule::ValOffset(o));
                        None
                    }
                    0x2e => {
                        c.uleb()?; // DW_CFA_GNU_args_size: no effect on the row
                        None
                    }
                    0x2f => {
                        let (r, o) = (c.uleb()?, c.uleb()? as i64);
                        let o = self.off(o)?.checked_neg()?;
                        self.set(r, Rule::Offset(o));
                        None
                    }
                    _ => return None,
                },
            };
            if let Some(delta) = advance {
                let to = loc.wrapping_add(delta.wrapping_mul(ca));
                if to > pc {
                    return Some(());
                }
                loc = to;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::module;

    #[inline(never)]
    fn probe_fn(x: usize) -> usize {
        core::hint::black_box(x).wrapping_mul(3)
    }

    #[test]
    fn own_eh_frame_hdr_is_parsed() {
        let f = probe_fn as fn(usize) -> usize as usize;
        let m = module::find(f, false).unwrap();
        let segs = Segments::of(&m);
        // The table is sorted and every entry's FDE covers its own start.
        let mut c = Cursor::new(segs.from(m.eh_hdr).unwrap(), m.eh_hdr);
        assert_eq!(c.u8(), Some(1), "version");
        let (fe, ce, te) = (c.u8().unwrap(), c.u8().unwrap(), c.u8().unwrap());
        assert_eq!(te, 0x3b, "datarel sdata4 table");
        c.pointer(fe, m.eh_hdr).unwrap();
        let n = c.pointer(ce, m.eh_hdr).unwrap();
        assert!(n > 100, "{n} FDEs");
        let mut prev = 0;
        for _ in 0..n {
            let loc = m
                .eh_hdr
                .wrapping_add(c.u32().unwrap() as i32 as isize as usize);
            let fde = m
                .eh_hdr
                .wrapping_add(c.u32().unwrap() as i32 as isize as usize);
            assert!(loc >= prev);
            prev = loc;
            let (_, begin, end, _) = parse_fde(&segs, fde, None).expect("FDE parses");
            assert_eq!(begin, loc);
            assert!(end > begin);
        }
        // The row of the function's first instruction: CFA = rsp + 8, RA at CFA - 8.
        let fde = find_fde(&segs, m.eh_hdr, f).unwrap();
        let (_, begin, end, _) = parse_fde(&segs, fde, Some(f)).unwrap();
        assert_eq!(begin, f);
        let row = row_at(&m, &segs, f).expect("row");
        assert_eq!(row.cfa, Cfa::RegOff(RSP as u8, 8));
        assert_eq!(row.regs[RA], Rule::Offset(-8));
        assert!(!row.signal);
        // Past the frame-pointer prologue: CFA = rbp + 16, rbp saved at CFA - 16.
        let late = row_at(&m, &segs, end - 1).unwrap();
        assert!(
            matches!(late.cfa, Cfa::RegOff(6, 16) | Cfa::RegOff(7, 8)),
            "{late:?}"
        );
        // Nothing below the first FDE.
        assert!(row_at(&m, &segs, m.start).is_none());
    }

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
