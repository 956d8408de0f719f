//! A call site in a report: its headline (`module+0xOFF` of the first frame outside the C/C++
//! runtime, the loader and libpython, which is where the user's code called into them) and,
//! for a whole stack, one line per frame under it:
//!
//! ```text
//! ft_malloc[PID]:   allocated by malloc() at event #12, thread 31337, from /tmp/prog+0x1169
//! ft_malloc[PID]:     #0 0x7f3a1009a52a /usr/lib/x86_64-linux-gnu/libc.so.6+0x9f52a strndup+0x1a
//! ft_malloc[PID]:     #1 0x55d0c0001169 /tmp/prog+0x1169 next_token+0x19
//! ```
//!
//! `module+0xOFF` is what `addr2line -e module 0xOFF` takes (the launcher rewrites it into
//! `function (file:line)`); function names come from the module's own symbol tables.
//! Frames inside ft_malloc are never shown.
//!
//! # Invariants
//! Allocation-free, takes no allocator lock, and looks modules up with `Lookup::SignalSafe`
//! only: reports are written from signal handlers and with every allocator lock held.

use crate::fmt::{Line, prefix};
use crate::site;
use crate::symbols::{self, Frame, Lookup, Pc, Symbolizer};

/// The frame a stack is named by: the first one outside the runtime libraries (and outside
/// ft_malloc), else the first one.
pub fn headline(frames: &[usize]) -> usize {
    let mut first = 0;
    for &pc in frames {
        let Some(m) = symbols::module_of(pc.saturating_sub(1), Lookup::SignalSafe) else {
            // JIT or anonymous code: not a runtime library, and not ours.
            return pc;
        };
        if symbols::is_own(m.start) {
            continue;
        }
        if first == 0 {
            first = pc;
        }
        if !symbols::is_runtime(m.path()) {
            return pc;
        }
    }
    first
}

/// The headline frame of a site (see `headline`).
pub fn headline_of(site: usize) -> usize {
    let mut one = [0];
    headline(site::frames(site, &mut one))
}

/// Appends the site's headline as `module+0xOFF` (a bare address when no module holds it).
pub fn write_headline<const N: usize>(l: &mut Line<N>, site: usize) {
    write_pc(l, headline_of(site));
}

/// Appends `module+0xOFF` for a code address (a bare address when no module holds it).
pub fn write_pc<const N: usize>(l: &mut Line<N>, pc: usize) {
    match symbols::module_of(pc.saturating_sub(1), Lookup::SignalSafe) {
        Some(m) if !m.path().is_empty() => {
            l.s(m.path()).c(b'+').x(m.offset(pc));
        }
        _ => {
            l.x(pc);
        }
    }
}

/// Writes one line per frame of a whole-stack site (nothing for a bare caller: its headline
/// said all there is), indented under the line that named it.
pub fn write_frames(site: usize) {
    if site::id(site).is_none() {
        return;
    }
    let mut one = [0];
    write_list(site::frames(site, &mut one), false);
}

/// Writes one line per frame of `frames`; with `exact_first`, the first is an exact pc (a
/// faulting instruction) rather than a return address.
pub fn write_list(frames: &[usize], exact_first: bool) {
    let mut sym = Symbolizer::new(Lookup::SignalSafe);
    let mut n = 0;
    for (i, &pc) in frames.iter().enumerate() {
        let kind = if i == 0 && exact_first {
            Pc::Exact
        } else {
            Pc::Return
        };
        let f: Frame = sym.frame(pc, kind);
        if f.is_own() {
            continue;
        }
        let mut l: Line<640> = Line::new();
        prefix(&mut l).s(b"    ");
        symbols::write_frame(&mut l, n, &f);
        l.c(b'\n').report();
        n += 1;
    }
}

/// Appends the stack depot's figures: `call stacks: N distinct, M KiB of records (cap C MiB)`,
/// and how many could not be stored when it filled up.
pub fn write_depot_stats<const N: usize>(l: &mut Line<N>) {
    let s = crate::depot::stats();
    l.s(b"call stacks: ")
        .u(s.stacks)
        .s(b" distinct, ")
        .u(s.used.div_ceil(1024) as u64)
        .s(b" KiB in ")
        .u((s.mapped >> 10) as u64)
        .s(b" KiB mapped (cap ")
        .u((crate::depot::cap() >> 20) as u64)
        .s(b" MiB)");
    if s.full > 0 {
        l.s(b", ").u(s.full).s(b" not stored (depot full)");
    }
}
