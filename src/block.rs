//! Per-block metadata, kept out of band (in the zone's metadata area or the LARGE descriptor),
//! so an overflow of user data cannot corrupt it: the requested size, where the user pointer
//! sits in its slot, the state and the function that allocated it. With debugging on, a
//! `DebugMeta` per block adds sequence numbers, callers and threads.

/// Which entry point made or ended a block: stored as the block's origin and in log events.
/// The list, its numbering and its names are the format crate's, shared with the log reader.
pub use ft_format::Op;

/// How a block must be released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Malloc,
    New,
    NewArr,
}

/// The release family of an operation (`op.family()`).
pub trait OpFamily {
    fn family(self) -> Family;
}

impl OpFamily for Op {
    fn family(self) -> Family {
        match self {
            Op::New | Op::Delete => Family::New,
            Op::NewArr | Op::DeleteArr => Family::NewArr,
            _ => Family::Malloc,
        }
    }
}

/// Where a block is in its life. Stored as one byte in its metadata (`BlockMeta::state`,
/// `Large::state`, the values below), read and published atomically (`load_state`,
/// `publish_state`); the byte is a `u8` because the leak scanner marks it (its high bit) while
/// it holds every lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum State {
    Free = 0,
    Used = 1,
    Quarantined = 2,
    /// Transitional, with debugging on: the block is taken (or resized) under its lock but
    /// its canaries, fill and history are written after the lock is dropped; `Used` is
    /// published (a release store) once they are. Inspectors (check_every, dumps, the leak
    /// scan) skip such a block; a free of it is a double free.
    Allocating = 3,
    /// The block is being freed into a quarantine: its free fill and history are written after
    /// the lock is dropped, then `Quarantined` is published.
    Freeing = 4,
}

impl State {
    /// The state a state byte holds (any other byte, such as one the leak scanner marked while
    /// it holds every lock, reads as `Free`: neither used nor quarantined).
    #[inline]
    pub fn from_u8(v: u8) -> State {
        match v {
            1 => State::Used,
            2 => State::Quarantined,
            3 => State::Allocating,
            4 => State::Freeing,
            _ => State::Free,
        }
    }
}

/// The state bytes, as stored.
pub const FREE: u8 = State::Free as u8;
pub const USED: u8 = State::Used as u8;
pub const QUARANTINED: u8 = State::Quarantined as u8;
pub const ALLOCATING: u8 = State::Allocating as u8;
pub const FREEING: u8 = State::Freeing as u8;
/// A zone slot held in a thread's cache of free slots (`heap::tcache`, debugging off or
/// `cached`): free to everybody (walkers, dumps and the leak scan skip it; `State::from_u8`
/// reads it as `Free`, so a second free of it is refused as a double free), but still counted
/// in its zone's `nused`. Set and cleared without the arena lock: from `USED` by the freeing thread
/// (a store, or a compare-exchange for another arena's block) and by one atomic store of the
/// whole `BlockMeta` (the thread that takes it from its cache); under the lock when a cache is
/// filled or emptied.
pub const CACHED: u8 = 5;

/// True for a state byte that holds no block: FREE, or CACHED in a thread's cache.
#[inline]
pub fn holds_no_block(byte: u8) -> bool {
    byte == FREE || byte == CACHED
}

/// Reads a block's state byte, which a thread that dresses the block outside its lock may be
/// publishing: an acquire load, so a reader that sees `Used` or `Quarantined` sees the
/// dressing too.
/// # Safety
/// `state` points at the state byte of live block metadata (a zone's `BlockMeta` or a LARGE
/// descriptor), which is never unmapped while read.
#[inline]
pub unsafe fn load_state(state: *const u8) -> State {
    // SAFETY: per the caller; every concurrent write of this byte is atomic (`publish_state`)
    // or made under the lock the reader holds.
    let v = unsafe { core::sync::atomic::AtomicU8::from_ptr(state as *mut u8) }
        .load(core::sync::atomic::Ordering::Acquire);
    State::from_u8(v)
}

/// Publishes a block's final state once its dressing is written (see `State::Allocating`).
/// # Safety
/// `state` is the state byte of a block in transition that only the caller may change.
#[inline]
pub unsafe fn publish_state(state: *mut u8, v: State) {
    // SAFETY: per the caller.
    unsafe { core::sync::atomic::AtomicU8::from_ptr(state) }
        .store(v as u8, core::sync::atomic::Ordering::Release);
}

/// What holds a block: a TINY or SMALL zone slot, or a LARGE mapping (guarded blocks are
/// LARGE blocks, see `GuardAt`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Kind {
    Tiny = 0,
    Small = 1,
    Large = 2,
}

impl Kind {
    pub fn name(self) -> &'static [u8] {
        match self {
            Kind::Tiny => b"TINY",
            Kind::Small => b"SMALL",
            Kind::Large => b"LARGE",
        }
    }
}

/// Where the guard page of a guarded block is (`Large::guarded`; `No` for every other block).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum GuardAt {
    /// Not a guarded block.
    No = 0,
    /// Guard page after the block, which ends at the guard rounded to its natural alignment.
    After = 1,
    /// Guard page before the block (`guard=below`).
    Below = 2,
    /// Guard page after the block, which ends exactly at it (`guard=exact`).
    Exact = 3,
}

impl GuardAt {
    /// A block on its own guarded pages.
    #[inline]
    pub fn is_guarded(self) -> bool {
        self != GuardAt::No
    }
    /// The guard page follows the block (`After` or `Exact`).
    #[inline]
    pub fn after(self) -> bool {
        matches!(self, GuardAt::After | GuardAt::Exact)
    }
}

/// Where a valid block lives, and a copy of what we know about it (the heap's lookups make
/// it; reports, checks and inspectors read it).
#[derive(Clone, Copy)]
pub struct Info {
    pub user: usize,
    pub size: usize,
    /// Start and end of the accessible slot (front canary to the end of the tail).
    pub slot: usize,
    pub slot_end: usize,
    /// End of the canary region checked after the block: the slot's end plus the next slot's
    /// front canary when there is a next slot in the zone (catches overflows that run into it).
    pub check_end: usize,
    pub state: State,
    pub origin: Op,
    pub kind: Kind,
    pub zone_base: usize,
    pub dbg: DebugMeta,
    pub guarded: GuardAt,
}

/// Out-of-band metadata of one slot. 8 bytes, so a zone's array stays small; 8-aligned, so
/// the thread caches can write an entry with one atomic store (`as_word`).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
pub struct BlockMeta {
    /// Requested size (a zone block is at most `SMALL_MAX`, 16 KiB, so 16 bits suffice).
    pub size: u16,
    /// Offset of the user pointer in its slot (front canary or alignment).
    pub front: u16,
    /// A `State` byte.
    pub state: u8,
    /// `Op` that allocated it.
    pub origin: u8,
    /// Next slot on the zone's free list (`NO_LINK` ends it); kept here so a zone's
    /// per-slot metadata is one array, whose first slots' entries fill whole pages.
    pub link: u16,
}

pub const NO_LINK: u16 = u16::MAX;
const _: () = assert!(core::mem::size_of::<BlockMeta>() == 8);

impl BlockMeta {
    /// The entry as one word (the layout of `repr(C)`, native byte order).
    #[inline]
    pub fn as_word(self) -> u64 {
        // SAFETY: 8 bytes of plain integers, no padding (size asserted above).
        unsafe { core::mem::transmute::<BlockMeta, u64>(self) }
    }
    /// The entry a word holds (`as_word` reversed).
    #[inline]
    pub fn from_word(w: u64) -> BlockMeta {
        // SAFETY: every bit pattern is a valid `BlockMeta` (integers only).
        unsafe { core::mem::transmute::<u64, BlockMeta>(w) }
    }
    pub const EMPTY: BlockMeta = BlockMeta {
        size: 0,
        front: 0,
        state: FREE,
        origin: 0,
        link: NO_LINK,
    };
}

/// Debugging history of a block (only when MALLOC_DEBUG is set).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct DebugMeta {
    pub alloc_seq: u64,
    pub free_seq: u64,
    pub alloc_caller: usize,
    pub free_caller: usize,
    pub alloc_tid: u32,
    pub free_tid: u32,
}
const _: () = assert!(core::mem::size_of::<DebugMeta>() == 40);

/// `DebugMeta` as zones store it, one per slot: 32 bytes (two per cache line, none across
/// two), sequence numbers and thread ids packed together — a sequence number keeps its low
/// 40 bits (10^12 events), a thread id 24 bits (`pid_max` is at most 2^22).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct PackedDebug {
    alloc: u64,
    free: u64,
    alloc_caller: usize,
    free_caller: usize,
}
const _: () = assert!(core::mem::size_of::<PackedDebug>() == 32);

const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

#[inline]
fn pack(seq: u64, tid: u32) -> u64 {
    (seq & SEQ_MASK) | (tid as u64) << SEQ_BITS
}

impl PackedDebug {
    #[inline]
    pub fn get(&self) -> DebugMeta {
        DebugMeta {
            alloc_seq: self.alloc & SEQ_MASK,
            free_seq: self.free & SEQ_MASK,
            alloc_caller: self.alloc_caller,
            free_caller: self.free_caller,
            alloc_tid: (self.alloc >> SEQ_BITS) as u32,
            free_tid: (self.free >> SEQ_BITS) as u32,
        }
    }
    /// A new allocation: its stamp, and no free yet.
    #[inline]
    pub fn set_alloc(&mut self, seq: u64, caller: usize, tid: u32) {
        self.alloc = pack(seq, tid);
        self.alloc_caller = caller;
        self.free = 0;
        self.free_caller = 0;
    }
    /// The block's last stamp: its free's sequence number, else its allocation's (0: none).
    #[inline]
    pub fn last_stamp(&self) -> u64 {
        (self.alloc & SEQ_MASK).max(self.free & SEQ_MASK)
    }
    #[inline]
    pub fn set_free(&mut self, seq: u64, caller: usize, tid: u32) {
        self.free = pack(seq, tid);
        self.free_caller = caller;
    }
}

impl DebugMeta {
    pub const EMPTY: DebugMeta = DebugMeta {
        alloc_seq: 0,
        free_seq: 0,
        alloc_caller: 0,
        free_caller: 0,
        alloc_tid: 0,
        free_tid: 0,
    };
}
