//! Replays the events of a log into the set of live blocks (docs/LOGFORMAT.md, "Semantics a
//! reader replays"). Memory is O(live blocks).

use crate::parse::Op;
use crate::reader::Event;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for block addresses: a splitmix64 finalizer, so that the aligned, clustered
/// addresses of a heap spread over the whole table.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub type AddrMap<V> = HashMap<u64, V, BuildHasherDefault<AddrHasher>>;

#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub size: u64,
    pub stack: u32,
    pub op: Op,
    pub seq: u64,
    pub t_ns: u64,
}

/// What one event did to the heap.
#[derive(Default, Debug)]
pub struct Change {
    /// The block that ended (freed, or moved by realloc), with its address.
    pub ended: Option<(u64, Block)>,
    /// A block was created at `ev.out` with `ev.size` bytes.
    pub created: bool,
    /// The allocation failed (NULL returned for a request that is not a free).
    pub failed: bool,
    /// A free/realloc of a pointer that is not a live block (refused, or unknown to the log).
    pub unknown_in: bool,
    /// A new block replaced one already live at the same address (events missing in the log).
    pub replaced: Option<Block>,
}

#[derive(Default)]
pub struct Heap {
    pub live: AddrMap<Block>,
    pub bytes: u64,
}

impl Heap {
    #[inline]
    fn end(&mut self, addr: u64, logged_size: u64, c: &mut Change) {
        match self.live.remove(&addr) {
            // A refused free is logged with size 0: it must not end a live block of another size.
            Some(b) if logged_size == 0 && b.size != 0 => {
                self.live.insert(addr, b);
                c.unknown_in = true;
            }
            Some(b) => {
                self.bytes -= b.size;
                c.ended = Some((addr, b));
            }
            None => c.unknown_in = true,
        }
    }

    fn create(&mut self, ev: &Event, c: &mut Change) {
        let b = Block { size: ev.size, stack: ev.stack, op: ev.op, seq: ev.seq, t_ns: ev.t_ns };
        if let Some(old) = self.live.insert(ev.out, b) {
            self.bytes -= old.size;
            c.replaced = Some(old);
        }
        self.bytes += ev.size;
        c.created = true;
    }

    #[inline]
    pub fn apply(&mut self, ev: &Event) -> Change {
        let mut c = Change::default();
        if ev.op.is_free() {
            if ev.inp != 0 {
                self.end(ev.inp, ev.size, &mut c);
            }
        } else if ev.op.is_realloc() {
            if ev.out != 0 {
                if ev.inp != 0 {
                    // The old block ends whatever its logged size was.
                    match self.live.remove(&ev.inp) {
                        Some(b) => {
                            self.bytes -= b.size;
                            c.ended = Some((ev.inp, b));
                        }
                        None => c.unknown_in = true,
                    }
                }
                self.create(ev, &mut c);
            } else if ev.size == 0 && ev.inp != 0 {
                // realloc(p, 0): frees p.
                match self.live.remove(&ev.inp) {
                    Some(b) => {
                        self.bytes -= b.size;
                        c.ended = Some((ev.inp, b));
                    }
                    None => c.unknown_in = true,
                }
            } else {
                c.failed = true;
            }
        } else if ev.out != 0 {
            self.create(ev, &mut c);
        } else {
            c.failed = true;
        }
        c
    }
}
