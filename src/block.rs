//! Per-block metadata, kept out of band (in the zone's metadata area or the LARGE descriptor),
//! so an overflow of user data cannot corrupt it: the requested size, where the user pointer
//! sits in its slot, the state and the function that allocated it. With debugging on, a
//! `DebugMeta` per block adds sequence numbers, callers and threads.

/// Which entry point made or ended a block. Stored as the block's origin and in log events.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Op {
    Malloc = 0,
    Calloc,
    Realloc,
    Reallocarray,
    Memalign,
    PosixMemalign,
    AlignedAlloc,
    Valloc,
    Pvalloc,
    New,
    NewArr,
    Free,
    Delete,
    DeleteArr,
    UsableSize,
}

/// How a block must be released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Malloc,
    New,
    NewArr,
}

impl Op {
    pub fn name(self) -> &'static [u8] {
        match self {
            Op::Malloc => b"malloc",
            Op::Calloc => b"calloc",
            Op::Realloc => b"realloc",
            Op::Reallocarray => b"reallocarray",
            Op::Memalign => b"memalign",
            Op::PosixMemalign => b"posix_memalign",
            Op::AlignedAlloc => b"aligned_alloc",
            Op::Valloc => b"valloc",
            Op::Pvalloc => b"pvalloc",
            Op::New => b"new",
            Op::NewArr => b"new[]",
            Op::Free => b"free",
            Op::Delete => b"delete",
            Op::DeleteArr => b"delete[]",
            Op::UsableSize => b"malloc_usable_size",
        }
    }

    /// Name as a C++ programmer reads it in a report ("operator new").
    pub fn call_name(self) -> &'static [u8] {
        match self {
            Op::New => b"operator new",
            Op::NewArr => b"operator new[]",
            Op::Delete => b"operator delete",
            Op::DeleteArr => b"operator delete[]",
            _ => self.name(),
        }
    }

    pub fn from_u8(v: u8) -> Op {
        match v {
            1 => Op::Calloc,
            2 => Op::Realloc,
            3 => Op::Reallocarray,
            4 => Op::Memalign,
            5 => Op::PosixMemalign,
            6 => Op::AlignedAlloc,
            7 => Op::Valloc,
            8 => Op::Pvalloc,
            9 => Op::New,
            10 => Op::NewArr,
            11 => Op::Free,
            12 => Op::Delete,
            13 => Op::DeleteArr,
            14 => Op::UsableSize,
            _ => Op::Malloc,
        }
    }

    pub fn family(self) -> Family {
        match self {
            Op::New | Op::Delete => Family::New,
            Op::NewArr | Op::DeleteArr => Family::NewArr,
            _ => Family::Malloc,
        }
    }
}

pub const FREE: u8 = 0;
pub const USED: u8 = 1;
pub const QUARANTINED: u8 = 2;
/// Transitional states, with debugging on: the block is taken (or resized) under its lock
/// but its canaries, fill and history are written after the lock is dropped; `USED` is
/// published (a release store) once they are. Inspectors (check_every, dumps, the leak scan)
/// skip such a block; a free of it is a double free.
pub const ALLOCATING: u8 = 3;
/// The block is being freed into the quarantine: its free fill and history are written after
/// the lock is dropped, then `QUARANTINED` is published.
pub const FREEING: u8 = 4;

/// Reads a block's state byte, which a thread that dresses the block outside its lock may be
/// publishing: an acquire load, so a reader that sees `USED` or `QUARANTINED` sees the
/// dressing too.
/// # Safety
/// `state` points at the state byte of live block metadata (a zone's `BlockMeta` or a LARGE
/// descriptor), which is never unmapped while read.
#[inline]
pub unsafe fn load_state(state: *const u8) -> u8 {
    // SAFETY: per the caller; every concurrent write of this byte is atomic (`publish_state`)
    // or made under the lock the reader holds.
    unsafe { core::sync::atomic::AtomicU8::from_ptr(state as *mut u8) }
        .load(core::sync::atomic::Ordering::Acquire)
}

/// Publishes a block's final state once its dressing is written (see `ALLOCATING`).
/// # Safety
/// `state` is the state byte of a block in transition that only the caller may change.
#[inline]
pub unsafe fn publish_state(state: *mut u8, v: u8) {
    // SAFETY: per the caller.
    unsafe { core::sync::atomic::AtomicU8::from_ptr(state) }
        .store(v, core::sync::atomic::Ordering::Release);
}

/// Out-of-band metadata of one slot. 8 bytes, so a zone's array stays small.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockMeta {
    /// Requested size (zones hold at most 32 KiB, so 16 bits suffice).
    pub size: u16,
    /// Offset of the user pointer in its slot (front canary or alignment).
    pub front: u16,
    pub state: u8,
    /// `Op` that allocated it.
    pub origin: u8,
    /// Next slot on the zone's free list (`NO_LINK` ends it); kept here so a zone's
    /// metadata is one array and the first page holds the header and the first slots.
    pub link: u16,
}

pub const NO_LINK: u16 = u16::MAX;
const _: () = assert!(core::mem::size_of::<BlockMeta>() == 8);

impl BlockMeta {
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

/// Alloc fill of LARGE (and guarded) blocks covers at most this many bytes: touching every
/// page of a big block on each call would cost more than it finds.
pub const LARGE_FILL_MAX: usize = 64 << 10;
