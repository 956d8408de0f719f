//! `Frame`: one symbolized code address (module, offset, function), and its report line
//! `#N 0xADDR module+0xOFF function+0xOFF`, formatted into a stack `Line`.
//!
//! The function part is left out when no table names the address; the module part is the
//! bare `0xADDR` when no module holds it (JIT code, anonymous memory). Module paths are
//! printed in full (a `Line` drops what does not fit). `module+0xOFF` is what
//! `addr2line -e module 0xOFF` takes; names are printed mangled (no demangler in the library).
//!
//! # Invariants
//! A `Frame` is plain data: formatting reads no memory outside it (the module's path excepted,
//! which the loader keeps while the object is loaded) and makes no system call.

use super::image::Module;
use super::module;
use super::name::Name;
use super::runtime;
use crate::fmt::Line;

pub struct Frame {
    /// The address as captured (a return address is printed as is, though named from the call
    /// instruction before it).
    pub addr: usize,
    pub module: Option<Module>,
    pub function: Option<Name>,
}

impl Frame {
    /// Inside the C/C++ runtime, the loader or libpython (see `runtime`).
    pub fn is_runtime(&self) -> bool {
        self.module
            .as_ref()
            .is_some_and(|m| runtime::is_runtime(m.path()))
    }

    /// Inside ft_malloc itself.
    pub fn is_own(&self) -> bool {
        self.module
            .as_ref()
            .is_some_and(|m| module::is_own(m.start))
    }
}

/// Appends `#N 0xADDR module+0xOFF function+0xOFF` (no prefix, no newline) to `l`.
pub fn write_frame<const N: usize>(l: &mut Line<N>, n: usize, f: &Frame) {
    l.c(b'#').u(n as u64).c(b' ').x(f.addr).c(b' ');
    match &f.module {
        Some(m) => {
            let path = m.path();
            l.s(if path.is_empty() { b"?" } else { path })
                .c(b'+')
                .x(m.offset(f.addr));
        }
        None => {
            l.x(f.addr);
        }
    }
    if let Some(name) = &f.function {
        l.c(b' ').s(name.as_bytes()).c(b'+').x(name.offset);
    }
}
