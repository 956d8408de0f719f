//! The history stamp of a block allocated now: its sequence number (from the log's one event
//! counter), caller and thread.

use crate::block::DebugMeta;
use crate::log::seq::next_seq;
use crate::tls;

/// The history of a block allocated now by `caller` on this thread.
#[inline]
pub fn stamp_alloc(caller: usize) -> DebugMeta {
    DebugMeta {
        alloc_seq: next_seq(),
        free_seq: 0,
        alloc_caller: caller,
        free_caller: 0,
        alloc_tid: tls::tid(),
        free_tid: 0,
    }
}
