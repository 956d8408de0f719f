//! A file name of the output files: a NUL-terminated absolute path in a fixed buffer, with
//! the `.PID[.K]` suffixes and the directory part the claim needs.

use crate::sys;

/// Longest path handled (the expanded spec made absolute, plus a `.PID.N` suffix).
pub const NAME_MAX: usize = 1024;

/// A NUL-terminated path.
#[derive(Clone, Copy)]
pub struct Name {
    pub(super) buf: [u8; NAME_MAX + 1],
    pub(super) len: usize,
}

impl Name {
    pub const EMPTY: Name = Name {
        buf: [0; NAME_MAX + 1],
        len: 0,
    };

    /// `path` made absolute (the program may change directory before we reopen it; a relative
    /// path stays relative if the current directory cannot be had); None if it does not fit.
    pub fn absolute(path: &[u8]) -> Option<Name> {
        let mut n = Name::EMPTY;
        if path.first() != Some(&b'/')
            && let Some(cwd) = sys::getcwd(&mut n.buf[..NAME_MAX])
        {
            n.len = cwd;
            if n.len > 1 || n.buf[0] != b'/' {
                n.push(b"/")?;
            }
        }
        n.push(path)?;
        Some(n)
    }

    pub(super) fn push(&mut self, s: &[u8]) -> Option<()> {
        if self.len + s.len() > NAME_MAX - 24 || s.contains(&0) {
            return None;
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        self.buf[self.len] = 0;
        Some(())
    }

    /// This name + `.PID`, + `.K` when `k >= 2`.
    pub(super) fn suffixed(&self, pid: u32, k: u32) -> Name {
        let mut n = *self;
        let mut b = itoa::Buffer::new();
        let _ = n.push(b".");
        let _ = n.push(b.format(pid).as_bytes());
        if k >= 2 {
            let _ = n.push(b".");
            let _ = n.push(b.format(k).as_bytes());
        }
        n
    }

    /// The path without its NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The path with its NUL (for system calls).
    pub fn c(&self) -> &[u8] {
        &self.buf[..self.len + 1]
    }

    /// The directory part, NUL terminated (`/` for a file at the root, `.` for a bare name).
    pub(super) fn dir(&self) -> Name {
        let mut d = *self;
        match self.as_bytes().iter().rposition(|&b| b == b'/') {
            Some(cut) => d.len = cut.max(1),
            None => {
                d.buf[0] = b'.';
                d.len = 1;
            }
        }
        d.buf[d.len] = 0;
        d
    }
}
