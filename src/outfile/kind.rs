//! What an output file is for (the allocation log or the report file): how it is opened and
//! how a refusal is said (one WARNING line naming what follows from it).

use crate::fmt::{Line, prefix};
use crate::sys;

/// What the caller writes: the allocation log (header, filler, append after the content) or
/// the report file (appended lines only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    Report,
}

impl Kind {
    pub(super) fn word(self) -> &'static [u8] {
        match self {
            Kind::Log => b"log",
            Kind::Report => b"report",
        }
    }
    pub(super) fn flags(self) -> i32 {
        let base = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        match self {
            Kind::Log => base,
            Kind::Report => base | libc::O_APPEND,
        }
    }
}

/// `(ENOENT: No such file or directory)`: an errno by name and text, never translated.
pub fn errno_text<const N: usize>(l: &mut Line<N>, e: i32) -> &mut Line<N> {
    l.s(b"(")
        .s(sys::errno_name(e))
        .s(b": ")
        .s(sys::errno_desc(e))
        .s(b")")
}

/// One WARNING line: `ft_malloc[PID]: WARNING: log: <what> '<name>' <why>; <consequence>`.
pub(super) fn warn(kind: Kind, head: &[u8], name: &[u8], why: impl FnOnce(&mut Line<1400>)) {
    let mut l: Line<1400> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: ")
        .s(kind.word())
        .s(b": ")
        .s(head)
        .s(b" '")
        .s(name)
        .s(b"' ");
    why(&mut l);
    l.s(match kind {
        Kind::Log => b"; no log\n".as_slice(),
        Kind::Report => b"; reports go to stderr\n".as_slice(),
    });
    l.report();
}
