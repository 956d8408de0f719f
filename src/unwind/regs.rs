//! The register set a walk carries from frame to frame, and the two ways a walk starts: the
//! current context (a naked helper reports its caller's pc, stack and frame pointer) and a
//! signal handler's `ucontext`.
//!
//! # Invariants
//! - A register is `known` only with a value that the row rules derived exactly; a rule that
//!   needs an unknown register fails instead of guessing.
//! - Numbering is DWARF x86-64: 0..=15 the general registers, 16 the pc (return address column).

use super::cfi::{NREGS, RA, RSP};

/// DWARF register number → index in `mcontext_t.gregs` (`REG_RAX` = 13, ...).
const GREG: [usize; NREGS] = [13, 12, 14, 11, 9, 8, 10, 15, 0, 1, 2, 3, 4, 5, 6, 7, 16];

#[derive(Clone, Copy, Debug)]
pub struct Regs {
    v: [usize; NREGS],
    known: u32,
}

impl Regs {
    pub const fn empty() -> Regs {
        Regs {
            v: [0; NREGS],
            known: 0,
        }
    }

    #[inline]
    pub fn get(&self, r: usize) -> Option<usize> {
        (r < NREGS && self.known & (1 << r) != 0).then(|| self.v[r])
    }

    #[inline]
    pub fn set(&mut self, r: usize, v: usize) {
        if r < NREGS {
            self.v[r] = v;
            self.known |= 1 << r;
        }
    }

    #[cfg(test)]
    pub fn forget(&mut self, r: usize) {
        if r < NREGS {
            self.known &= !(1 << r);
        }
    }

    #[inline]
    pub fn pc(&self) -> usize {
        self.v[RA]
    }

    #[inline]
    pub fn sp(&self) -> usize {
        self.v[RSP]
    }

    /// The registers of a `ucontext_t` (every general register and the pc).
    ///
    /// # Safety
    /// `uc` points to a readable `ucontext_t` (a signal handler's third argument).
    pub unsafe fn from_ucontext(uc: *const libc::ucontext_t) -> Regs {
        let mut r = Regs::empty();
        for (dw, &g) in GREG.iter().enumerate() {
            // SAFETY: the caller's contract; gregs has 23 entries.
            r.set(dw, unsafe { (*uc).uc_mcontext.gregs[g] } as usize);
        }
        r
    }

    /// The registers saved by the kernel in a signal frame whose `ucontext_t` is at `uc`, read
    /// through `read` (which validates every address).
    pub fn from_saved_ucontext(
        uc: usize,
        mut read: impl FnMut(usize) -> Option<usize>,
    ) -> Option<Regs> {
        let gregs = uc.checked_add(core::mem::offset_of!(libc::ucontext_t, uc_mcontext))?;
        let mut r = Regs::empty();
        for (dw, &g) in GREG.iter().enumerate() {
            r.set(dw, read(gregs + g * 8)?);
        }
        Some(r)
    }
}

/// The context of the caller of this function, as it is right after the call returns: `[pc =
/// the return address, stack pointer above it, frame pointer unchanged]`.
#[inline(always)]
pub fn current() -> [usize; 3] {
    let mut w = [0usize; 3];
    // SAFETY: `here` writes three words to the array it is given and touches nothing else.
    unsafe { here(&mut w) };
    w
}

/// Stores its return address, the stack pointer its caller has after the return, and rbp.
#[unsafe(naked)]
unsafe extern "C" fn here(out: *mut [usize; 3]) {
    core::arch::naked_asm!(
        "mov rax, qword ptr [rsp]",
        "mov qword ptr [rdi], rax",
        "lea rax, [rsp + 8]",
        "mov qword ptr [rdi + 8], rax",
        "mov qword ptr [rdi + 16], rbp",
        "ret"
    );
}
