//! A DWARF expression evaluator for call-frame rules (`DW_CFA_def_cfa_expression`,
//! `DW_CFA_expression`, `DW_CFA_val_expression`): the stack-machine subset that CFI uses —
//! constants, register-relative values (`DW_OP_bregN`, `bregx`), arithmetic, logic,
//! comparisons, branches, `deref` and `deref_size`. That covers the PLT's rule (CFA depends on
//! the pc's offset in the 16-byte entry), glibc's signal trampoline (every register saved in the
//! `ucontext` on the stack) and gcc's stack-realignment (DRAP) rules.
//!
//! # Invariants
//! - Bounded: at most `MAX_OPS` operations and `DEPTH` stack entries; a branch outside the
//!   expression, an unknown operation or an unknown register gives `None`.
//! - Memory is read only through `Mem` (never faults); without a `Mem` a `deref` fails, which
//!   lets the caller test whether a rule depends on memory.

use super::regs::Regs;
use super::stack::Mem;

const DEPTH: usize = 16;
const MAX_OPS: usize = 256;

/// Evaluates `code`; `push` is put on the stack first (the CFA, for register rules).
pub fn eval(
    code: &[u8],
    regs: &Regs,
    mut mem: Option<&mut Mem>,
    push: Option<usize>,
) -> Option<usize> {
    let mut st = [0usize; DEPTH];
    let mut sp = 0usize;
    macro_rules! push {
        ($v:expr) => {{
            let v = $v;
            *st.get_mut(sp)? = v;
            sp += 1;
        }};
    }
    macro_rules! pop {
        () => {{
            sp = sp.checked_sub(1)?;
            st[sp]
        }};
    }
    if let Some(v) = push {
        push!(v);
    }
    let mut c = super::reader::Cursor::new(code, 0);
    let mut ops = 0;
    while !c.done() {
        ops += 1;
        if ops > MAX_OPS {
            return None;
        }
        let op = c.u8()?;
        match op {
            0x03 => push!(c.u64()? as usize),
            0x06 => {
                let a = pop!();
                push!(mem.as_deref_mut()?.read(a)?)
            }
            0x94 => {
                let n = c.u8()? as u32;
                let a = pop!();
                if !(1..=8).contains(&n) {
                    return None;
                }
                let word = mem.as_deref_mut()?.read(a & !7)?;
                let shift = (a & 7) as u32 * 8;
                if (a & 7) as u32 + n > 8 {
                    return None;
                }
                let v = word >> shift;
                push!(if n == 8 {
                    v
                } else {
                    v & ((1usize << (n * 8)) - 1)
                })
            }
            0x08 => push!(c.u8()? as usize),
            0x09 => push!(c.u8()? as i8 as usize),
            0x0a => push!(c.u16()? as usize),
            0x0b => push!(c.u16()? as i16 as usize),
            0x0c => push!(c.u32()? as usize),
            0x0d => push!(c.u32()? as i32 as usize),
            0x0e | 0x0f => push!(c.u64()? as usize),
            0x10 => push!(c.uleb()? as usize),
            0x11 => push!(c.sleb()? as usize),
            0x12 => {
                let v = *st.get(sp.checked_sub(1)?)?;
                push!(v)
            }
            0x13 => {
                pop!();
            }
            0x14 => {
                let v = *st.get(sp.checked_sub(2)?)?;
                push!(v)
            }
            0x15 => {
                let i = c.u8()? as usize;
                let v = *st.get(sp.checked_sub(1 + i)?)?;
                push!(v)
            }
            0x16 => {
                let (a, b) = (pop!(), pop!());
                push!(a);
                push!(b)
            }
            0x17 => {
                let (a, b, d) = (pop!(), pop!(), pop!());
                push!(a);
                push!(d);
                push!(b)
            }
            0x19 => {
                let a = pop!() as isize;
                push!(a.unsigned_abs())
            }
            0x1a..=0x1e | 0x21 | 0x22 | 0x24..=0x27 | 0x29..=0x2e => {
                let (b, a) = (pop!(), pop!());
                let (sa, sb) = (a as isize, b as isize);
                push!(match op {
                    0x1a => a & b,
                    0x1b => sa.checked_div(sb)? as usize,
                    0x1c => a.wrapping_sub(b),
                    0x1d => a.checked_rem(b)?,
                    0x1e => a.wrapping_mul(b),
                    0x21 => a | b,
                    0x22 => a.wrapping_add(b),
                    0x24 => a.checked_shl(b as u32).unwrap_or(0),
                    0x25 => a.checked_shr(b as u32).unwrap_or(0),
                    0x26 =>
                        sa.checked_shr(b as u32)
                            .unwrap_or(if sa < 0 { -1 } else { 0 }) as usize,
                    0x27 => a ^ b,
                    0x29 => (sa == sb) as usize,
                    0x2a => (sa >= sb) as usize,
                    0x2b => (sa > sb) as usize,
                    0x2c => (sa <= sb) as usize,
                    0x2d => (sa < sb) as usize,
                    _ => (sa != sb) as usize,
                })
            }
            0x1f => {
                let a = pop!();
                push!(a.wrapping_neg())
            }
            0x20 => {
                let a = pop!();
                push!(!a)
            }
            0x23 => {
                let a = pop!();
                push!(a.wrapping_add(c.uleb()? as usize))
            }
            0x28 | 0x2f => {
                let off = c.u16()? as i16 as isize;
                let take = op == 0x2f || pop!() != 0;
                if take {
                    let to = (c.addr() as isize).checked_add(off)?;
                    if to < 0 || to as usize > code.len() {
                        return None;
                    }
                    c = super::reader::Cursor::new(code, 0);
                    c.skip(to as usize)?;
                }
            }
            0x30..=0x4f => push!((op - 0x30) as usize),
            0x70..=0x8f => {
                let off = c.sleb()?;
                push!(regs.get((op - 0x70) as usize)?.wrapping_add(off as usize))
            }
            0x92 => {
                let r = c.uleb()? as usize;
                let off = c.sleb()?;
                push!(regs.get(r)?.wrapping_add(off as usize))
            }
            0x96 => {}
            _ => return None,
        }
    }
    if sp == 0 { None } else { Some(st[sp - 1]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plt_rule_depends_on_the_pc_offset() {
        // breg7 8; breg16 0; lit15; and; lit11; ge; lit3; shl; plus
        let plt = [0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22];
        let mut r = Regs::empty();
        r.set(7, 0x1000);
        r.set(16, 0x5000 + 6);
        assert_eq!(eval(&plt, &r, None, None), Some(0x1008));
        r.set(16, 0x5000 + 11);
        assert_eq!(eval(&plt, &r, None, None), Some(0x1010));
        r.forget(16);
        assert_eq!(eval(&plt, &r, None, None), None, "unknown register");
    }

    #[test]
    fn deref_needs_memory_and_stays_safe() {
        let word = 0xdead_beefusize;
        let mut r = Regs::empty();
        r.set(6, &word as *const usize as usize + 8);
        let drap = [0x76, 0x78, 0x06]; // breg6 -8; deref
        assert_eq!(eval(&drap, &r, None, None), None);
        let mut mem = Mem::new(&word as *const usize as usize);
        assert_eq!(eval(&drap, &r, Some(&mut mem), None), Some(0xdead_beef));
        r.set(6, 16);
        assert_eq!(eval(&drap, &r, Some(&mut mem), None), None, "unmapped");
        // Branch out of range, stack underflow, unknown op.
        assert_eq!(eval(&[0x2f, 0x40, 0x00], &r, None, None), None);
        assert_eq!(eval(&[0x22], &r, None, None), None);
        assert_eq!(eval(&[0xe0], &r, None, None), None);
        // A loop is cut by the operation bound.
        assert_eq!(eval(&[0x2f, 0xfd, 0xff], &r, None, None), None);
        // push + plus_uconst.
        assert_eq!(eval(&[0x23, 0x10], &r, None, Some(0x100)), Some(0x110));
    }
}
