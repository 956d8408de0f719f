//! What the guard layer keeps under the `LARGE` lock, as plain data: the slot pools' free
//! lists and bump ranges, and the page bank's ranges. The guard layer (`guard::pool`,
//! `guard::bank`) gives them their meaning; they sit here so that the lock that protects the
//! descriptors protects them too, with no second lock and no shared cell.

use super::desc::Large;

/// Guarded blocks of at most this many data pages take a pool slot (larger ones get a
/// mapping of their own).
pub const POOL_MAX_PAGES: usize = 64;
/// Banked ranges, at most (a freed block gives one per kernel mapping of its data).
pub const BANK_SLOTS: usize = 16;

/// One pool: free slots (their descriptors, linked through `next`) and the never used rest of
/// the newest chunk, `[next, end)`.
#[derive(Clone, Copy)]
pub struct PoolClass {
    pub free: *mut Large,
    pub next: usize,
    pub end: usize,
}

impl PoolClass {
    pub const EMPTY: PoolClass = PoolClass {
        free: core::ptr::null_mut(),
        next: 0,
        end: 0,
    };
}

/// Banked pages: `[addr, addr + len)`, one kernel mapping, part of the data of the freed
/// guarded block `desc` (`addr == 0`: an empty entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Banked {
    pub addr: usize,
    pub len: usize,
    pub desc: *mut Large,
}

impl Banked {
    pub const EMPTY: Banked = Banked {
        addr: 0,
        len: 0,
        desc: core::ptr::null_mut(),
    };
}

/// The page bank: its ranges, their total, and whether the kernel can move pages at all.
pub struct Bank {
    pub slots: [Banked; BANK_SLOTS],
    pub bytes: usize,
    /// The kernel cannot move pages that way: nothing is banked.
    pub off: bool,
}

impl Bank {
    pub const EMPTY: Bank = Bank {
        slots: [Banked::EMPTY; BANK_SLOTS],
        bytes: 0,
        off: false,
    };
}

pub struct GuardedStore {
    /// Pools by guard size (0: one page, 1: the wide region of big blocks) and data pages - 1.
    pub pools: [[PoolClass; POOL_MAX_PAGES]; 2],
    pub bank: Bank,
}

impl GuardedStore {
    pub const EMPTY: GuardedStore = GuardedStore {
        pools: [[PoolClass::EMPTY; POOL_MAX_PAGES]; 2],
        bank: Bank::EMPTY,
    };
}
