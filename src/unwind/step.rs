//! One step of a walk: the registers the compact rules track (`Frame`) and the caller's frame
//! by a compact rule (`apply`), shared by the walk and by the replay of kept stacks (`memo`).

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

/// What `apply` reads stack words through: `Mem` for a walk, a reader that also notes every
/// word it reads when a kept stack is recorded (`memo`).
pub trait Words {
    /// The 8-byte word at `addr`, or None when it is not known readable.
    fn word(&mut self, addr: usize) -> Option<usize>;
}

impl Words for Mem {
    #[inline(always)]
    fn word(&mut self, addr: usize) -> Option<usize> {
        self.read(addr)
    }
}

/// The caller's frame by a compact rule.
#[inline(always)]
pub fn apply<W: Words>(p: Packed, f: &Frame, mem: &mut W) -> Option<Frame> {
    if !p.is_frame() {
        return None;
    }
    let cfa = match p.base() {
        0 => f.sp.wrapping_add_signed(p.off()),
        1 => f.fp.wrapping_add_signed(p.off()),
        _ => mem.word(f.fp.wrapping_add_signed(p.off()))?,
    };
    let pc = mem.word(cfa.wrapping_add_signed(p.ra()))?;
    let fp = if p.rbp() != 0 {
        mem.word(cfa.wrapping_add_signed(p.rbp()))?
    } else {
        f.fp
    };
    Some(Frame { pc, sp: cfa, fp })
}
