//! Stacks of threads that have exited, which glibc keeps mapped for its next threads (its stack
//! cache): their frames are dead, and what they still hold must not count as references, or a
//! block a thread leaked before it exited looks reachable from its own dead frames. valgrind
//! reads no dead thread's stack either.
//!
//! A stack glibc maps for a thread is one mapping right above its guard page, with the thread's
//! descriptor (`struct pthread`, whose first word and third word hold its own address) a few
//! KiB below its top. The kernel clears the descriptor's thread id when the thread exits, and
//! glibc sets it to -1 when it caches the stack. Of such a mapping the check reads the
//! descriptor and what lies above it only (a joinable thread's result waits there for its
//! join).
//!
//! Where the thread id lies in a descriptor is read off this thread's own: the first 32-bit
//! word of it that holds this thread's id. Nothing is skipped when that fails (another C
//! library, an unreadable descriptor) or when the mapping cannot be read.

use crate::sys;

/// Bytes of this thread's descriptor searched for its id.
const ID_SPAN: usize = 1024;
/// Bytes at the top of a stack searched for a descriptor.
const TOP: usize = 8 << 10;
/// Alignment of a descriptor (glibc's static TLS alignment is at least this).
const ALIGN: usize = 64;

/// Where the thread id lies in a thread descriptor (an offset from its start), read off this
/// thread's own; `buf` is scratch room of at least `ID_SPAN` bytes.
pub(super) fn id_offset(buf: &mut [u8]) -> Option<usize> {
    let me = sys::gettid() as i32;
    let n = sys::read_own(sys::thread_self(), ID_SPAN, buf).ok()?;
    (0..n / 4)
        .map(|k| k * 4)
        .find(|&o| i32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]) == me)
}

/// For a mapping `[start, end)` that lies right above an inaccessible one: the address of the
/// descriptor of the exited thread whose stack it is, from which on the mapping is read. None:
/// no descriptor found (not a thread's stack), a live thread's, or unreadable. `id` is
/// `id_offset`; `buf` is scratch room of at least `TOP` bytes.
pub(super) fn dead_stack(start: usize, end: usize, id: usize, buf: &mut [u8]) -> Option<usize> {
    let from = end.saturating_sub(TOP).max(start);
    let len = end - from;
    if sys::read_own(from, len, buf).ok()? < len {
        return None;
    }
    let word = |a: usize| usize::from_ne_bytes(core::array::from_fn(|k| buf[a - from + k]));
    let mut x = (end - ALIGN) & !(ALIGN - 1);
    while x >= from {
        if x + 24 <= end && word(x) == x && word(x + 16) == x {
            if x + id + 4 > end {
                return None;
            }
            let o = x + id - from;
            let tid = i32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
            return (tid <= 0).then_some(x);
        }
        x = x.checked_sub(ALIGN)?;
    }
    None
}
