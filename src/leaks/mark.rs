//! The marks of the leak check. From the roots, a word that points into a used block marks it
//! reached (`MARK`), and a marked block's own words are scanned in turn (a stack of blocks to
//! scan, in the scratch mapping). Then, among the blocks left unreached, those another one
//! points to are marked `INDIRECT` (valgrind's "indirectly lost", LeakSanitizer's "indirect
//! leak"), and what each of the others reaches is marked `SEEN`, so that a cycle of unreached
//! blocks that nothing else points to can have one of its blocks stand for it.

use crate::block::USED;
use crate::sys;
use crate::walk::View;

/// Bit 7 of a block's state byte: reached from the roots.
pub(super) const MARK: u8 = 0x80;
/// Bit 6: not reached, and another unreached block points into it.
pub(super) const INDIRECT: u8 = 0x40;
/// Bit 5: not reached, and reached from an unreached block that stands for a leak.
pub(super) const SEEN: u8 = 0x20;
/// Every bit the leak check sets (the states of a block are below them).
pub(super) const BITS: u8 = MARK | INDIRECT | SEEN;
const _: () = assert!(crate::block::CACHED < SEEN);
/// Marked blocks waiting to be scanned, at most (beyond: `overflow`, and another pass).
pub(super) const STACK_CAP: usize = 1 << 20;
/// A block of at least these many pages is scanned only where its pages are resident.
const RESIDENT_MIN_PAGES: usize = 16;

/// What a word that points into a used block does to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Marks it `MARK` (the block is scanned next).
    Roots,
    /// Marks it `INDIRECT` unless it is reached, or is the block at this address (the one
    /// being scanned).
    Indirect(usize),
    /// Marks it `SEEN` unless it is reached (the block is scanned next).
    Leaks,
}

/// The mark's state: the blocks marked and not scanned yet (a stack in the scratch mapping),
/// whether it overflowed, and the bounds of the blocks (a cheap filter before the page map).
pub(super) struct Scan<'v> {
    pub view: &'v View,
    pub mode: Mode,
    pub stack: *mut usize,
    pub len: usize,
    pub overflow: bool,
    /// Blocks this scan marked: `Indirect`, newly indirect; `Leaks`, indirect and newly seen.
    pub marked: usize,
    pub lo: usize,
    pub hi: usize,
}

/// State byte of the block holding `w`, with its extent, if `w` points into a used block.
fn block_of(v: &View, w: usize) -> Option<(*mut u8, usize, usize)> {
    let b = v.at(w)?;
    if b.byte & !BITS != USED || w < b.user || w >= b.user + b.size.max(1) {
        return None;
    }
    Some((b.state_byte(), b.user, b.size))
}

impl Scan<'_> {
    fn visit(&mut self, w: usize) {
        if w <= self.lo || w >= self.hi {
            return;
        }
        if let Some((st, user, _)) = block_of(self.view, w) {
            // SAFETY: st points at the state byte of a used block (locks held).
            unsafe {
                match self.mode {
                    Mode::Roots if *st & MARK == 0 => *st |= MARK,
                    Mode::Indirect(from) => {
                        if *st & (MARK | INDIRECT) == 0 && user != from {
                            *st |= INDIRECT;
                            self.marked += 1;
                        }
                        return;
                    }
                    Mode::Leaks if *st & (MARK | SEEN) == 0 => {
                        *st |= SEEN;
                        if *st & INDIRECT != 0 {
                            self.marked += 1;
                        }
                    }
                    _ => return,
                }
            }
            if self.len < STACK_CAP && !self.stack.is_null() {
                // SAFETY: len < STACK_CAP entries of the scratch mapping.
                unsafe { *self.stack.add(self.len) = user };
                self.len += 1;
            } else {
                self.overflow = true;
            }
        }
    }

    /// Scans the words of a copy of memory (8-byte aligned in the original). A function of its
    /// own: inlined into the scan of the mappings, its loop had to reload the copy's address
    /// from the stack for every word.
    #[inline(never)]
    pub(super) fn words(&mut self, bytes: &[u8]) {
        for w in bytes.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.visit(usize::from_ne_bytes(b));
        }
    }

    /// Scans the words of `[from, to)`, our own memory (a live block). A big block (LARGE)
    /// is scanned only where its pages are resident: a page never touched holds no pointer,
    /// and reading it would fault it in (a program that leaves gigabytes allocated and
    /// untouched would wait seconds for its exit).
    pub(super) fn range(&mut self, from: usize, to: usize) {
        if to - from < RESIDENT_MIN_PAGES * sys::page_size() {
            self.words_in(from, to);
        } else {
            sys::each_resident_run(from, to, |lo, hi| self.words_in(lo, hi));
        }
    }

    /// Scans the words of `[from, to)`, readable memory of ours.
    pub(super) fn words_in(&mut self, from: usize, to: usize) {
        let mut a = (from + 7) & !7;
        while a + 8 <= to {
            // SAFETY: the caller passes readable memory.
            let w = unsafe { *(a as *const usize) };
            self.visit(w);
            a += 8;
        }
    }

    pub(super) fn drain(&mut self) {
        while self.len > 0 {
            self.len -= 1;
            // SAFETY: index < len.
            let user = unsafe { *self.stack.add(self.len) };
            if let Some((_, u, size)) = block_of(self.view, user) {
                self.range(u, u + size);
            }
        }
    }
}
