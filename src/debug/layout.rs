//! The debug layout of a block, fixed at init: front canary, minimum tail canary, fill,
//! debugging history, zone guard pages, the inaccessible region behind LARGE blocks; and the
//! rule of where a guarded block's front canary starts.

use crate::config::Once;

/// Layout parameters of the debugging layer, fixed at init.
pub struct Layout {
    /// Bytes of front canary before each block (0 or 16).
    pub front: usize,
    /// Minimum bytes of tail canary (0 or 1).
    pub tail: usize,
    pub fill: bool,
    pub debug_meta: bool,
    pub zone_guards: bool,
    /// Bytes of the inaccessible region behind LARGE blocks (0 unless blocks are checked).
    pub large_guard: usize,
}

impl Layout {
    /// The layout with debugging off: no canaries, fill, history or guards.
    pub const PLAIN: Layout = Layout {
        front: 0,
        tail: 0,
        fill: false,
        debug_meta: false,
        zone_guards: false,
        large_guard: 0,
    };

    /// Whether blocks carry canaries (front and tail come together).
    #[inline]
    pub fn canaries(&self) -> bool {
        self.front > 0 || self.tail > 0
    }
}

pub static LAYOUT: Once<Layout> = Once::new(Layout::PLAIN);

#[inline]
pub fn layout() -> &'static Layout {
    LAYOUT.get()
}

/// Alloc fill of LARGE blocks covers at most this many bytes: touching every page of a big block
/// on each call would cost more than it finds (fresh LARGE pages read as zero, and freed ones
/// become inaccessible). Zone blocks are smaller than this, so the cap applies to every block.
pub const LARGE_FILL_MAX: usize = 64 << 10;

/// Where the front canary of a guarded block starts: at the start of its accessible part `lo`,
/// so every byte of its first page (or pages) in front of it is canary — the page prefix of a
/// block against its guard page after it, the alignment slack before one whose data it shares —
/// and an underwrite of any length that stays in the block's pages is seen when the block is
/// checked (at free, `check_every`, the `check` command, and at exit).
#[inline]
pub fn guarded_front(lo: usize) -> usize {
    lo
}
