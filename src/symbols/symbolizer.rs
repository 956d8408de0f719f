//! `Symbolizer`: turns code addresses into `Frame`s for one report. It finds each address's
//! module, then the function: `.symtab` of the module's file (or of its debug file) when it
//! has one, else `.dynsym` in memory. Up to `SLOTS` mapped files are kept between frames, so
//! a stack that goes back and forth between the program and libc maps each file once; they
//! are unmapped when the `Symbolizer` is dropped. Make one per report, on the stack.
//!
//! Rules for callers:
//! - Never on the malloc path: a lookup scans whole symbol tables (about 6 us for libc's
//!   `.dynsym`, 20 to 50 us for a frame whose file is mapped for it; `bench_lookups` in the
//!   tests prints them).
//! - `Lookup::SignalSafe` in signal handlers and whenever an allocator lock is held; it uses
//!   only `_dl_find_object`, `/proc/self/maps`, `readlink`, `open`/`fstat`/`mmap`/`munmap`/
//!   `close`: plain system calls that take no user-space lock (`mmap` is not on POSIX's
//!   async-signal-safe list, but glibc's is the bare system call). `Lookup::MayTakeLoaderLock` adds `dl_iterate_phdr` on a
//!   glibc older than 2.35, which takes the loader's lock: no allocator lock may be held.
//! - `without_files` names from `.dynsym` only (no file is opened).
//! - The program's `errno` is kept.
//!
//! # Invariants
//! A slot's `key` is the span of the module whose file (or lack of one: `None`) it caches;
//! key (0, 0) is an empty slot.

use super::dynsym;
use super::frame::Frame;
use super::image::Module;
use super::module::{self, Lookup};
use super::name::Name;
use super::symtab::SymFile;

/// Mapped files kept during one report.
const SLOTS: usize = 4;

/// What kind of code address a frame holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pc {
    /// The instruction itself (a faulting pc, a function's address).
    Exact,
    /// A return address: the call is the instruction before it, so the function is looked up
    /// at `addr - 1` (a call at the very end of a function that does not return would
    /// otherwise be named after the next function). Printed offsets stay those of `addr`.
    Return,
}

struct Slot {
    key: (usize, usize),
    file: Option<SymFile>,
}

pub struct Symbolizer {
    lookup: Lookup,
    files: bool,
    slots: [Slot; SLOTS],
    next: usize,
}

impl Symbolizer {
    /// A symbolizer that reads `.symtab` from files.
    pub fn new(lookup: Lookup) -> Self {
        Symbolizer {
            lookup,
            files: true,
            slots: [const {
                Slot {
                    key: (0, 0),
                    file: None,
                }
            }; SLOTS],
            next: 0,
        }
    }

    /// A symbolizer that opens no file: exported names only, from `.dynsym` in memory.
    pub fn without_files(lookup: Lookup) -> Self {
        let mut s = Self::new(lookup);
        s.files = false;
        s
    }

    /// Module and function of `addr`.
    pub fn frame(&mut self, addr: usize, pc: Pc) -> Frame {
        let _keep = crate::sys::ErrnoGuard::new();
        let at = if pc == Pc::Return && addr > 0 {
            addr - 1
        } else {
            addr
        };
        let module = module::find(at, self.lookup);
        let function = module.as_ref().and_then(|m| {
            let mut n = self.function(m, at)?;
            n.offset = n.offset.wrapping_add(addr - at);
            Some(n)
        });
        Frame {
            addr,
            module,
            function,
        }
    }

    /// The function of `m` holding `at`: `.symtab` first, `.dynsym` if that has none.
    fn function(&mut self, m: &Module, at: usize) -> Option<Name> {
        if self.files
            && let Some(n) = self.file(m).and_then(|f| f.lookup(m.offset(at)))
        {
            return Some(n);
        }
        dynsym::lookup(m, at)
    }

    /// The symbol file of `m`, mapped now or earlier in this report.
    fn file(&mut self, m: &Module) -> Option<&SymFile> {
        let key = (m.start, m.end);
        let i = match self.slots.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (self.next + 1) % SLOTS;
                // Unmap the oldest file before mapping the next one.
                self.slots[i] = Slot { key, file: None };
                self.slots[i].file = open(m);
                i
            }
        };
        self.slots[i].file.as_ref()
    }
}

/// Maps the file of `m` (the running executable itself through /proc/self/exe, which still
/// works when its path was deleted or replaced, unless /proc/self/exe is ld.so).
fn open(m: &Module) -> Option<SymFile> {
    let id = m.build_id();
    if m.is_main && !super::os::exe_is_loader() {
        let name = m.path_cstr().unwrap_or(b"/proc/self/exe\0");
        // thread-self first: /proc/self/exe is gone once the main thread has exited.
        for link in [b"/proc/thread-self/exe\0".as_slice(), b"/proc/self/exe\0"] {
            if let Some(f) = SymFile::open(link, name, id.as_ref()) {
                return Some(f);
            }
        }
    }
    let path = m.path_cstr()?;
    SymFile::open(path, path, id.as_ref())
}
