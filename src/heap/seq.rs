//! The history stamps of LARGE and guarded blocks: an allocation's sequence number (from the
//! log's one event counter), caller and thread, and a free's sequence number.
//!
//! Such a block has no history at its address before its own, so its allocation's number is
//! taken above that of the last LARGE or guarded free of any thread (`FREED`): a new block at
//! the address of one another thread freed is numbered after that free, as a zone slot's next
//! allocation is numbered after its free (`log::seq::next_above`).

use crate::block::{DebugMeta, PackedDebug};
use crate::large::Large;
use crate::log::seq::{above, next_above};
use crate::tls;
use core::sync::atomic::{AtomicU64, Ordering};

/// The highest sequence number of a LARGE or guarded block's free so far.
static FREED: AtomicU64 = AtomicU64::new(0);

/// The history of a block allocated now by `caller` on this thread.
#[inline]
pub fn stamp_alloc(caller: usize) -> DebugMeta {
    DebugMeta {
        alloc_seq: next_above(FREED.load(Ordering::Relaxed)),
        free_seq: 0,
        alloc_caller: caller,
        free_caller: 0,
        alloc_tid: tls::tid(),
        free_tid: 0,
    }
}

/// Writes the free of the LARGE or guarded block `d` by `caller` into its history: `seq`, the
/// free's sequence number, or a higher one (`above` its allocation's).
/// # Safety
/// `d` is a descriptor in use whose history only this call writes.
#[inline]
pub unsafe fn stamp_free(d: *mut Large, seq: u64, caller: usize) {
    // SAFETY: per the caller.
    unsafe {
        let s = above(seq, (*d).dbg.alloc_seq);
        (*d).dbg.free_seq = s;
        (*d).dbg.free_caller = caller;
        (*d).dbg.free_tid = tls::tid();
        FREED.fetch_max(s, Ordering::Relaxed);
    }
}

/// Writes the free of a zone block by `caller` into its history `d`: `seq`, the free's sequence
/// number, or a higher one (`above` the block's last stamp).
#[inline]
pub fn stamp_zone_free(d: &mut PackedDebug, seq: u64, caller: usize) {
    d.set_free(above(seq, d.last_stamp()), caller, tls::tid());
}
