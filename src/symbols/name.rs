//! `Name`: a function name found for an address, copied out of the symbol table it came from
//! (the file mapping of `.symtab` is gone by the time the name is printed), with the offset of
//! the address inside the function and which table named it.
//!
//! Names are printed as the table spells them: C++ and Rust names stay mangled (`_ZN...`), as
//! the library carries no demangler; the launcher and the report reader demangle offline.
//!
//! # Invariants
//! `len <= NAME_CAP`; a longer name keeps its first `NAME_CAP` bytes and sets `truncated`.

use super::elf::Bytes;

/// Bytes kept of a name (mangled C++ names can be longer; they are cut).
pub const NAME_CAP: usize = 256;

/// Which table a name came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    /// `.symtab` of the object's own file.
    Symtab,
    /// `.symtab` of its separate debug file (build-id or `.gnu_debuglink`).
    DebugFile,
    /// `.dynsym`, read in memory.
    Dynsym,
}

pub struct Name {
    buf: [u8; NAME_CAP],
    len: usize,
    pub truncated: bool,
    /// The address minus the function's start: the `+0xOFF` after the name.
    pub offset: usize,
    pub source: Source,
}

impl Name {
    /// Copies the NUL-terminated string at `at` in `strings`; None if it is outside or empty.
    pub fn copy(strings: Bytes, at: u32, offset: usize, source: Source) -> Option<Name> {
        let s = strings.cstr(at as u64)?;
        if s.is_empty() {
            return None;
        }
        let len = s.len().min(NAME_CAP);
        let mut n = Name {
            buf: [0; NAME_CAP],
            len,
            truncated: s.len() > NAME_CAP,
            offset,
            source,
        };
        n.buf[..len].copy_from_slice(&s[..len]);
        Some(n)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
