//! The only door to the kernel and to libc: every system call and libc function the library
//! uses is wrapped here, one concept per file. Nothing here allocates, and nothing here knows
//! the allocator (no page map, no blocks, no configuration).
//!
//! - `mem`: mappings (mmap, munmap, mprotect, mremap, madvise, guard markers, read-only file
//!   mappings), limits;
//! - `probe`: reads of our own memory that cannot fault, page residency, swap in use;
//! - `fd`: descriptors and files (open, stat, flock, pread/pwrite, high close-on-exec copies);
//! - `nofile`: a descriptor for our own file when the program has used up its own;
//! - `out`: where reports go (fd 2, a `report=` file opened on first use, the saved stderr);
//! - `errno`: errno, its saving, and the names of error numbers;
//! - `proc`: ids, clocks, random bytes, the initial environment, futexes, exit, /proc files;
//! - `signal`: the thread's signal mask, handlers;
//! - `room`: stack room for a signal handler's work (a stack of its own when the alternate
//!   signal stack is short);
//! - `image`: the library's own loaded image (where its writable segments lie).
//!
//! Invariant: these wrappers never touch `errno` visibly to the program except where the
//! caller asks for it (`set_errno`); callers that must preserve errno use `ErrnoGuard`.

pub mod errno;
pub mod fd;
pub mod image;
pub mod mem;
pub mod nofile;
pub mod out;
pub mod probe;
pub mod proc;
pub mod room;
pub mod signal;

pub use errno::*;
pub use fd::*;
pub use mem::*;
pub use out::*;
pub use probe::*;
pub use proc::*;
pub use signal::*;

// libc.so.6 named in the library's dynamic section whatever the `libc` crate's features: when a
// workspace build turns on its `std` feature (the reader's dependencies do), the crate links
// nothing itself, expecting std to. Without the entry the library's references carry no symbol
// versions, and ld.so binds memcpy to glibc's GLIBC_2.2.5 compatibility copy (a plain SSE2 loop).
#[link(name = "c")]
unsafe extern "C" {}
