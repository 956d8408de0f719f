//! Symbolizer: names a code address as `module+0xOFF function+0xOFF` from inside the process,
//! without allocating, so that a plain `LD_PRELOAD` user reads function names in reports with
//! no tool. One concept per file:
//! - `image`: a loaded object in memory (`Module`: path, span, load bias), read with bounds;
//! - `module`: which loaded object holds an address (`_dl_find_object`, else
//!   `dl_iterate_phdr`, else `/proc/self/maps`); `is_own`;
//! - `dynsym`: exported names from the dynamic symbol table in memory (signal-safe, no I/O);
//! - `symtab`: all names from `.symtab` of the object's file or its separate debug file;
//! - `symbolizer`: one report's lookups (`Symbolizer::frame`), with its mapped files;
//! - `frame`: the result and its line `#N 0xADDR module+0xOFF function+0xOFF`;
//! - `runtime`: which modules are the C/C++/Python runtime (a stack's headline skips them);
//! - `elf`, `name`, `os`: ELF reading with bounds, copied names, loader and kernel calls.
//!
//! ```ignore
//! let mut sym = Symbolizer::new(Lookup::SignalSafe);
//! for (n, &pc) in stack.iter().filter(|&&pc| !symbols::is_own(pc)).enumerate() {
//!     let f = sym.frame(pc, if n == 0 && faulting { Pc::Exact } else { Pc::Return });
//!     let mut l = Line::<512>::new();
//!     prefix(&mut l).s(b"  ");
//!     write_frame(&mut l, n, &f);
//!     l.c(b'\n').report();
//! }
//! ```
//!
//! Names are left mangled: the library has no C++ demangler (it would allocate or need tables);
//! the launcher and the report reader run addr2line/c++filt on the `module+0xOFF` part.
//!
//! # Invariants
//! Nothing here allocates, takes an allocator lock, or is meant for the malloc path; the only
//! lock ever taken is the loader's, by `Lookup::MayTakeLoaderLock` lookups (on glibc < 2.35,
//! and once to find `_dl_find_object`, as `init` does).

mod dynsym;
mod elf;
#[cfg(test)]
mod file_tests;
mod frame;
mod image;
mod module;
mod name;
mod os;
mod runtime;
mod symbolizer;
mod symtab;
#[cfg(test)]
mod tests;

pub use frame::{Frame, write_frame};
pub use image::Module;
pub use module::{Lookup, is_own};
pub use name::{NAME_CAP, Name, Source};
pub use runtime::{Runtime, is_runtime, runtime};
pub use symbolizer::{Pc, Symbolizer};

/// The module that holds `addr`, if any (see `Lookup` for what it may call).
/// The program's `errno` is kept.
pub fn module_of(addr: usize, lookup: Lookup) -> Option<Module> {
    let _keep = crate::sys::ErrnoGuard::new();
    module::find(addr, lookup)
}

/// The exported function of `m` that holds `addr`, from `.dynsym` alone: no system call, no
/// lock; for a signal handler that must not open files.
pub fn dynsym_name(m: &Module, addr: usize) -> Option<Name> {
    dynsym::lookup(m, addr)
}

/// Reads what later lookups reuse: where `_dl_find_object` is (through `dl_iterate_phdr`: no
/// /proc needed), the executable's path and our own span. Call once at start-up, outside any
/// lock, so that a first report from a signal handler finds them ready.
pub fn init() {
    let _keep = crate::sys::ErrnoGuard::new();
    module::has_find_object(Lookup::MayTakeLoaderLock);
    os::exe_path();
    is_own(0);
}
