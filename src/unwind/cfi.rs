//! The unwind row of an address: runs the CFI program (the CIE's initial instructions, then
//! the FDE's up to the address), giving the CFA rule and one rule per register.
//!
//! # Invariants
//! - Every byte read comes from a slice built by `Segments::from` (bounded by a readable
//!   segment); malformed programs give `None`, never a fault or a panic (slice accesses are
//!   `get`, arithmetic checked or wrapping).
//! - Work is bounded: the program runs at most `MAX_OPS` instructions and keeps at most
//!   `STATES` remembered rows.
//! - Expressions are kept as offsets into the module's (readable, immutable) tables.

use super::fde::{Cie, find_fde, parse_fde};
use super::module::{Module, Segments};
use super::reader::Cursor;

/// Registers with a rule: DWARF x86-64 numbering 0..=15 (rax rdx rcx rbx rsi rdi rbp rsp
/// r8..r15) and 16, the return address column.
pub const NREGS: usize = 17;
pub const RBP: usize = 6;
pub const RSP: usize = 7;
pub const RA: usize = 16;

const MAX_OPS: usize = 4096;
const STATES: usize = 8;

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
    fn rows_of_a_function() {
        let f = probe_fn as fn(usize) -> usize as usize;
        let m = module::find(f, false).unwrap();
        let segs = Segments::of(&m);
        let fde = find_fde(&segs, m.eh_hdr, f).unwrap();
        let (_, begin, end, _) = parse_fde(&segs, fde, Some(f)).unwrap();
        assert_eq!(begin, f);
        // The row of the function's first instruction: CFA = rsp + 8, RA at CFA - 8.
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
}
