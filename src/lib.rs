//! ft_malloc: a memory-debugging and tracing malloc for LD_PRELOAD.
//! See README.md for the design; each module's header states what it owns and its invariants.
//!
//! Code layout: the functions a program runs with debugging off (the exported entry points,
//! the heap's fast and locked paths, the LARGE cache, start-up, exit and fork) are linked
//! together in the `ft_hot` section (`#[unsafe(link_section = "ft_hot")]`, and
//! `body(link_section)` for the constructors), which `src/hot.ld` places at the end of the
//! text with the C runtime's start-up code, on pages of its own. The kernel maps a library's
//! code a folio or a 64 KiB window at a time around each page that faults, and every mapped
//! page counts in the program's resident size: scattered over the text, those paths made all
//! of its pages resident in a two-thread program; together, about a quarter are
//! (`tests/c/code_resident.c`).
#![cfg_attr(not(test), no_std)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

pub mod announce;
pub mod block;
pub mod callstack;
pub mod check;
pub mod cmd;
pub mod config;
pub mod debug;
pub mod depot;
pub mod dump;
#[cfg(not(test))]
pub mod entry;
pub mod fifo;
pub mod fmt;
pub mod guard;
pub mod heap;
pub mod large;
pub mod leaks;
pub mod lifecycle;
pub mod lock;
pub mod log;
pub mod maps;
pub mod outfile;
pub mod pad;
pub mod pagemap;
pub mod ranges;
pub mod report;
#[cfg(not(test))]
pub mod segv;
pub mod site;
pub mod size_class;
pub mod stats;
pub mod symbols;
pub mod sys;
pub mod tls;
pub mod unwind;
pub mod walk;
pub mod zone;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    sys::write_all(2, b"ft_malloc: internal error (panic); aborting\n");
    sys::abort()
}
