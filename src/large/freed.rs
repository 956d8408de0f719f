//! Where the last `FREED_SLOTS` LARGE blocks freed for good were (after any quarantine), and
//! their history: a later free of one of those addresses, when no block is there any more, is
//! a double free that can name its first free. A fixed ring under the `LARGE` lock, written by
//! `LargeState::free`; nothing is allocated.

use crate::block::{DebugMeta, GuardAt};

/// Freed LARGE blocks remembered (the oldest is forgotten first).
pub const FREED_SLOTS: usize = 1024;

/// One freed LARGE block.
#[derive(Clone, Copy)]
pub struct Freed {
    pub user: usize,
    pub size: usize,
    pub map_base: usize,
    /// Where its guard page was (`GuardAt::No` for a plain LARGE block).
    pub guarded: GuardAt,
    /// The `Op` that allocated it, as a byte.
    pub origin: u8,
    pub dbg: DebugMeta,
}

impl Freed {
    const EMPTY: Freed = Freed {
        user: 0,
        size: 0,
        map_base: 0,
        guarded: GuardAt::No,
        origin: 0,
        dbg: DebugMeta::EMPTY,
    };
}

pub struct FreedRing {
    slots: [Freed; FREED_SLOTS],
    /// Entries ever written; the next one goes to `next % FREED_SLOTS`.
    next: usize,
}

impl FreedRing {
    pub const EMPTY: FreedRing = FreedRing {
        slots: [Freed::EMPTY; FREED_SLOTS],
        next: 0,
    };

    /// Remembers a block freed for good.
    pub fn put(&mut self, f: Freed) {
        self.slots[self.next % FREED_SLOTS] = f;
        self.next = self.next.wrapping_add(1);
    }

    /// The last block freed at `user`, if still remembered.
    pub fn last_at(&self, user: usize) -> Option<Freed> {
        if user == 0 {
            return None;
        }
        let n = self.next.min(FREED_SLOTS);
        (1..=n)
            .map(|k| &self.slots[self.next.wrapping_sub(k) % FREED_SLOTS])
            .find(|f| f.user == user)
            .copied()
    }
}
