//! One step of a walk: the registers the compact rules track (`Frame`) and the caller's frame
//! by a compact rule (`apply`), used by the walk (whose words `memo` keeps).

use super::cfi::RBP;
use super::regs::Regs;
use super::rule::Packed;
use super::stack::Mem;

/// An unknown frame pointer: rule offsets (at most 8 MiB) keep it above every user address.
pub const NO_FP: usize = 1 << 63;

/// The registers the compact rules track: pc, stack pointer, frame pointer (if known).
#[derive(Clone, Copy)]
pub struct Frame {
    pub pc: usize,
    pub sp: usize,
    /// `NO_FP` when unknown (an address no read accepts, even moved by a rule's offset).
    pub fp: usize,
}

impl Frame {
    pub fn of(r: &Regs) -> Frame {
        Frame {
            pc: r.pc(),
            sp: r.sp(),
            fp: r.get(RBP).unwrap_or(NO_FP),
        }
    }
}

/// The caller's frame by a compact rule.
#[inline(always)]
pub fn apply(p: Packed, f: &Frame, mem: &mut Mem) -> Option<Frame> {
    if !p.is_frame() {
        return None;
    }
    let cfa = match p.base() {
        0 => f.sp.wrapping_add_signed(p.off()),
        1 => f.fp.wrapping_add_signed(p.off()),
        _ => mem.read(f.fp.wrapping_add_signed(p.off()))?,
    };
    let pc = mem.read(cfa.wrapping_add_signed(p.ra()))?;
    let fp = if p.rbp() != 0 {
        mem.read(cfa.wrapping_add_signed(p.rbp()))?
    } else {
        f.fp
    };
    Some(Frame { pc, sp: cfa, fp })
}
