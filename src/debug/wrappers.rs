//! A program's own `operator new` and `operator delete` around malloc and free. A shared object
//! with a private copy of them (libstdc++ linked in statically and bound locally, as Rust's
//! LLVM has it) makes its blocks with malloc, which we record as malloc's, and the program's
//! delete (ours) then releases them; or the reverse, with our new and its delete calling
//! free. Neither is a mismatch. `explains` tells such a pair from a real one by the function
//! that called malloc (for the block) or free (for this call): a mangled `operator new`
//! (`_Znw…`, `_Zna…`) or `operator delete` (`_Zdl…`, `_Zda…`).
//!
//! A name costs a symbol lookup (tens of microseconds: it maps the object's symbol file), and
//! such a program goes through the same few call sites millions of times: each site's answer
//! is remembered in `KNOWN`. Only a family mismatch gets here, never a correct program's
//! ordinary call.

use crate::block::{Family, Info, Op, OpFamily};
use crate::site;
use crate::symbols::{Lookup, Pc, Symbolizer};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Answers kept, one per call site: `pc << 2 | WRAPS | KNOWN_BIT` (code addresses fit in 62
/// bits); 0 is an empty entry.
const ENTRIES: usize = 64;
/// Entries of `KNOWN` a site may take, from its hash on.
const PROBE: usize = 4;
const KNOWN_BIT: usize = 1;
const WRAPS: usize = 2;

static KNOWN: [AtomicUsize; ENTRIES] = [const { AtomicUsize::new(0) }; ENTRIES];

/// Which wrapper a call site would be in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    New,
    Delete,
}

/// Whether the family mismatch of freeing `info`'s block with `op` (called from `caller`, a
/// site) comes from a program's own operator new or delete wrapping malloc or free: the block
/// was made by malloc called from an operator new and is freed by delete, or was made by new
/// and is freed by free called from an operator delete.
pub fn explains(info: &Info, op: Op, caller: usize) -> bool {
    match (info.origin.family(), op.family()) {
        (Family::Malloc, Family::New | Family::NewArr) if info.dbg.alloc_caller != 0 => {
            inside(site::pc(info.dbg.alloc_caller), Wrapper::New)
        }
        (Family::New | Family::NewArr, Family::Malloc) if op == Op::Free && caller != 0 => {
            inside(site::pc(caller), Wrapper::Delete)
        }
        _ => false,
    }
}

/// Whether the return address `pc` lies in an operator new (or delete), remembered per `pc`.
fn inside(pc: usize, w: Wrapper) -> bool {
    if pc == 0 || pc >> 62 != 0 {
        return false;
    }
    let key = pc << 2 | KNOWN_BIT;
    let h = (pc as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
    for i in 0..PROBE {
        let v = KNOWN[(h as usize + i) % ENTRIES].load(Ordering::Relaxed);
        if v & !WRAPS == key {
            return v & WRAPS != 0;
        }
    }
    let wraps = named_like(pc, w);
    let v = key | if wraps { WRAPS } else { 0 };
    for i in 0..PROBE {
        let e = &KNOWN[(h as usize + i) % ENTRIES];
        if e.compare_exchange(0, v, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    wraps
}

/// Whether the function holding the return address `pc` has the mangled name of an operator
/// new (or delete). The lookup takes no user-space lock: the caller may hold an allocator's.
fn named_like(pc: usize, w: Wrapper) -> bool {
    let f = Symbolizer::new(Lookup::SignalSafe).frame(pc, Pc::Return);
    let Some(name) = f.function else {
        return false;
    };
    let name = name.as_bytes();
    match w {
        Wrapper::New => name.starts_with(b"_Znw") || name.starts_with(b"_Zna"),
        Wrapper::Delete => name.starts_with(b"_Zdl") || name.starts_with(b"_Zda"),
    }
}
