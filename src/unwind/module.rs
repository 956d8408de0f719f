//! Which loaded object holds a code address, where its unwind tables are, and which of its
//! bytes may be read.
//!
//! `_dl_find_object` (glibc 2.35+) answers without locks and is async-signal-safe; it is
//! looked up at run time (`symbol`, no link-time reference, so no version need), and the
//! library still loads on an older glibc, where `dl_iterate_phdr` (which takes the loader's
//! lock) answers instead, and only outside signal handlers. Both see objects loaded and
//! unloaded later (`dlopen`/`dlclose`) at every call.
//!
//! # Invariants
//! - A `Module` describes an object that was loaded when it was found; its `stamp` (a hash of
//!   its range, tables, link map and the unload epoch) changes when another object takes the
//!   same addresses, so rules cached under the old stamp are not used for the new object. The
//!   range, tables and even the link map's address may be the same for another library (a
//!   rebuilt plugin; our allocator hands the freed link map's block out again), so the epoch
//!   moves on whenever a walk sees the loader unloading (`forget_all`): `dlclose` frees its
//!   link maps after unmapping them, and with stacks on every free walks its stack.
//! - `Segments` lists only the readable `PT_LOAD` ranges of the object's program headers: the
//!   table readers build their slices inside one of them and never read the gaps between.
//!   The headers are found through the auxiliary vector for the main program (whose
//!   `dlfo_map_start` may be its text segment, not its ELF header) and through the ELF header
//!   at the start of the first mapping for the others (glibc maps every object from offset 0).

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

/// One loaded object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// `[start, end)`: the object's whole mapping (may contain unreadable gaps).
    pub start: usize,
    pub end: usize,
    /// Its `.eh_frame_hdr` (0 when it has none).
    pub eh_hdr: usize,
    /// Load bias (`l_addr`): virtual addresses of its headers plus this.
    pub bias: usize,
    /// Its `struct link_map` (0 when unknown).
    pub link_map: usize,
    /// Identity of this load of this object (see the invariants).
    pub stamp: u16,
}

/// `struct dl_find_object` of glibc 2.35 (`<dlfcn.h>`).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: usize,
    map_end: usize,
    link_map: *const usize,
    eh_frame: usize,
    reserved: [u64; 7],
}

type FindObject = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> c_int;

/// `_dl_find_object`'s address: 0 not looked up yet, 1 absent.
static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// `_dl_find_object` when the running glibc has it (looked up once).
#[inline(always)]
fn find_object_fn() -> Option<FindObject> {
    let mut p = FIND_OBJECT.load(Ordering::Relaxed);
    if p == 0 {
        p = super::symbol::lookup(b"_dl_find_object").max(1);
        FIND_OBJECT.store(p, Ordering::Relaxed);
    }
    if p == 1 {
        return None;
    }
    // SAFETY: the address of the function of that name, whose C signature this is.
    Some(unsafe { core::mem::transmute::<usize, FindObject>(p) })
}

/// Moves on when objects may have been unloaded (see the module invariants).
static EPOCH: AtomicUsize = AtomicUsize::new(0);

/// Makes every rule cached so far unusable: an object may have been unloaded and another
/// loaded at its addresses. Cheap (one atomic add); call it from an interposed `dlclose` too.
pub fn forget_all() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// The unload epoch (see `forget_all`).
#[inline(always)]
pub fn epoch() -> usize {
    EPOCH.load(Ordering::Relaxed)
}

fn stamp(a: usize, b: usize, c: usize, d: usize) -> u16 {
    let mut h = (a as u64) ^ 0x9e37_79b9_7f4a_7c15;
    for x in [b, c, d, EPOCH.load(Ordering::Relaxed)] {
        h = (h ^ x as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    ((h >> 32) as u16).max(1)
}

/// The object holding `pc`. `may_lock`: the caller is not a signal handler, so the
/// `dl_iterate_phdr` fallback (loader lock) may run on a glibc without `_dl_find_object`.
pub fn find(pc: usize, may_lock: bool) -> Option<Module> {
    if let Some(f) = find_object_fn() {
        // SAFETY: zeroed is a valid value of this plain C struct.
        let mut r: DlFindObject = unsafe { core::mem::zeroed() };
        // SAFETY: r is a valid out-parameter; the function only reads pc as an address.
        if unsafe { f(pc as *mut c_void, &mut r) } != 0 || r.link_map.is_null() {
            return None;
        }
        // SAFETY: a live link map (the object holding pc is loaded); l_addr is its first field
        // in the public `struct link_map` of <link.h>.
        let bias = unsafe { *r.link_map };
        return Some(Module {
            start: r.map_start,
            end: r.map_end,
            eh_hdr: r.eh_frame,
            bias,
            link_map: r.link_map as usize,
            stamp: stamp(r.map_start, r.map_end, r.eh_frame, r.link_map as usize),
        });
    }
    if may_lock { iterate(pc) } else { None }
}

/// Recently found objects, so a walk that crosses from one object to another (the program,
/// libc, the program again) does not ask the loader each time. An entry is a seqlock: its
/// `seq` is odd while a writer fills it, and a reader keeps what it read only when `seq` was
/// the same even value before and after. An entry found under an older `EPOCH` is ignored.
/// Used for rule-cache lookups only: a walk that must read an object's tables asks the loader
/// again (`find`), so a stale entry can never send a reader into unmapped tables.
struct Slot {
    seq: AtomicUsize,
    start: AtomicUsize,
    end: AtomicUsize,
    eh_hdr: AtomicUsize,
    bias: AtomicUsize,
    link_map: AtomicUsize,
    /// `stamp | epoch << 16`.
    tag: AtomicUsize,
}

const SLOTS: usize = 8;
static RECENT: [Slot; SLOTS] = [const {
    Slot {
        seq: AtomicUsize::new(0),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        eh_hdr: AtomicUsize::new(0),
        bias: AtomicUsize::new(0),
        link_map: AtomicUsize::new(0),
        tag: AtomicUsize::new(0),
    }
}; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

fn recent(pc: usize) -> Option<Module> {
    let epoch = EPOCH.load(Ordering::Relaxed);
    for e in RECENT.iter() {
        let s0 = e.seq.load(Ordering::Acquire);
        if s0 & 1 != 0 {
            continue;
        }
        let start = e.start.load(Ordering::Relaxed);
        let end = e.end.load(Ordering::Relaxed);
        if pc < start || pc >= end {
            continue;
        }
        let m = Module {
            start,
            end,
            eh_hdr: e.eh_hdr.load(Ordering::Relaxed),
            bias: e.bias.load(Ordering::Relaxed),
            link_map: e.link_map.load(Ordering::Relaxed),
            stamp: e.tag.load(Ordering::Relaxed) as u16,
        };
        let tag = e.tag.load(Ordering::Relaxed);
        core::sync::atomic::fence(Ordering::Acquire);
        if e.seq.load(Ordering::Relaxed) != s0 || tag >> 16 != epoch {
            continue;
        }
        return Some(m);
    }
    None
}

fn remember(m: &Module) {
    let e = &RECENT[NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS];
    let Some(s0) = super::seqlock::claim(&e.seq) else {
        return;
    };
    e.start.store(m.start, Ordering::Relaxed);
    e.end.store(m.end, Ordering::Relaxed);
    e.eh_hdr.store(m.eh_hdr, Ordering::Relaxed);
    e.bias.store(m.bias, Ordering::Relaxed);
    e.link_map.store(m.link_map, Ordering::Relaxed);
    e.tag.store(
        m.stamp as usize | EPOCH.load(Ordering::Relaxed) << 16,
        Ordering::Relaxed,
    );
    super::seqlock::publish(&e.seq, s0);
}

/// `find`, answered from the recently found objects when one holds `pc` (see `RECENT`).
#[inline]
pub fn find_recent(pc: usize, may_lock: bool) -> Option<Module> {
    if let Some(m) = recent(pc) {
        return Some(m);
    }
    let m = find(pc, may_lock)?;
    remember(&m);
    Some(m)
}

/// The `dl_iterate_phdr` answer (loader lock; not for signal handlers).
pub fn iterate(pc: usize) -> Option<Module> {
    struct Search {
        pc: usize,
        found: Option<Module>,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: data is the Search passed below; info is valid during the callback.
        let (s, info) = unsafe { (&mut *(data as *mut Search), &*info) };
        let bias = info.dlpi_addr as usize;
        let (mut lo, mut hi, mut eh, mut hit) = (usize::MAX, 0usize, 0usize, false);
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr has dlpi_phnum entries.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            let va = bias.wrapping_add(ph.p_vaddr as usize);
            if ph.p_type == libc::PT_LOAD {
                lo = lo.min(va & !4095);
                hi = hi.max(va + ph.p_memsz as usize);
                hit |= s.pc >= va && s.pc < va + ph.p_memsz as usize;
            } else if ph.p_type == libc::PT_GNU_EH_FRAME {
                eh = va;
            }
        }
        if !hit {
            return 0;
        }
        s.found = Some(Module {
            start: lo,
            end: hi,
            eh_hdr: eh,
            bias,
            link_map: 0,
            stamp: stamp(lo, hi, eh, info.dlpi_name as usize),
        });
        1
    }
    let mut s = Search { pc, found: None };
    // SAFETY: the callback matches the prototype and only touches `s` during the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut s as *mut Search as *mut c_void) };
    s.found
}

/// The main program's program headers and their count (`AT_PHDR`, `AT_PHNUM`), read once.
fn main_phdrs() -> (usize, usize) {
    static PHDRS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let n = PHDRS[1].load(Ordering::Acquire);
    if n != 0 {
        return (PHDRS[0].load(Ordering::Relaxed), n);
    }
    // SAFETY: getauxval reads the auxiliary vector, set before any code runs.
    let (at, n) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR),
            libc::getauxval(libc::AT_PHNUM),
        )
    };
    PHDRS[0].store(at as usize, Ordering::Relaxed);
    PHDRS[1].store(n as usize, Ordering::Release);
    (at as usize, n as usize)
}

/// The readable `PT_LOAD` ranges of a module.
pub struct Segments {
    ranges: [(usize, usize); 12],
    n: usize,
}

impl Segments {
    /// Reads the module's program headers (see the module invariants); an object whose headers
    /// cannot be found gets no segments.
    pub fn of(m: &Module) -> Segments {
        let s = Segments {
            ranges: [(0, 0); 12],
            n: 0,
        };
        if m.link_map != 0 && m.link_map == super::symbol::main_map() {
            let (at, n) = main_phdrs();
            if at == 0 || n == 0 || n > 64 {
                return s;
            }
            // SAFETY: the kernel put AT_PHDR at the main program's program headers, which are
            // mapped (in its first segment) for the life of the process.
            let phdrs = unsafe { core::slice::from_raw_parts(at as *const u8, n * 56) };
            return s.with(m.bias, phdrs, 56);
        }
        if m.start == 0 || m.start & 4095 != 0 {
            return s;
        }
        // SAFETY: the first page of a loaded object other than the main program is mapped and
        // readable (its first PT_LOAD starts there, at file offset 0); 4096 is the least page.
        let page = unsafe { core::slice::from_raw_parts(m.start as *const u8, 4096) };
        if page[..4] != *b"\x7fELF" || page[4] != 2 {
            return s;
        }
        let phoff = u64::from_le_bytes(page[32..40].try_into().unwrap_or([0; 8])) as usize;
        let phentsize = u16::from_le_bytes([page[54], page[55]]) as usize;
        let phnum = u16::from_le_bytes([page[56], page[57]]) as usize;
        match phoff.checked_add(phnum * phentsize) {
            Some(e) if e <= 4096 && phentsize >= 56 => s.with(m.bias, &page[phoff..e], phentsize),
            _ => s,
        }
    }

    /// Adds the readable PT_LOAD segments of program headers `phdrs` (entries of `size` bytes).
    fn with(mut self, bias: usize, phdrs: &[u8], size: usize) -> Segments {
        for ph in phdrs.chunks_exact(size) {
            let word = |o: usize| u64::from_le_bytes(ph[o..o + 8].try_into().unwrap_or([0; 8]));
            let ptype = u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]);
            let flags = u32::from_le_bytes([ph[4], ph[5], ph[6], ph[7]]);
            if ptype != libc::PT_LOAD || flags & libc::PF_R == 0 || self.n == self.ranges.len() {
                continue;
            }
            let lo = bias.wrapping_add(word(16) as usize);
            let Some(hi) = lo.checked_add(word(40) as usize) else {
                continue;
            };
            if lo < hi {
                self.ranges[self.n] = (lo, hi);
                self.n += 1;
            }
        }
        self
    }

    /// The bytes from `addr` to the end of the readable segment holding it.
    pub fn from(&self, addr: usize) -> Option<&'static [u8]> {
        let &(_, hi) = self.ranges[..self.n]
            .iter()
            .find(|&&(lo, hi)| addr >= lo && addr < hi)?;
        // SAFETY: [addr, hi) lies in a readable PT_LOAD segment of a loaded object (type
        // invariant); the object's tables are not written after loading.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, hi - addr) })
    }

    /// True when `[addr, addr + len)` lies in one readable segment.
    #[cfg(test)]
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        self.from(addr).is_some_and(|b| b.len() >= len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn here() -> usize {
        here as fn() -> usize as usize
    }

    #[test]
    fn finds_the_test_binary_and_libc() {
        let pc = here();
        let m = find(pc, false).expect("_dl_find_object knows the test binary");
        assert!(m.start <= pc && pc < m.end);
        // (For a main program whose segments are not contiguous, glibc reports the segment
        // holding pc, so the tables may lie below `start`.)
        assert!(
            m.eh_hdr != 0 && m.link_map == super::super::symbol::main_map(),
            "{m:x?}"
        );
        let segs = Segments::of(&m);
        assert!(
            segs.contains(m.eh_hdr, 4),
            "eh_frame_hdr is in a readable segment"
        );
        assert!(segs.contains(pc, 1));
        // The dl_iterate_phdr fallback agrees on the tables, and its module's first page holds
        // the ELF header, which gives the same segments.
        let it = iterate(pc).expect("dl_iterate_phdr");
        assert!(it.start <= m.start && m.end <= it.end);
        assert_eq!((it.eh_hdr, it.bias), (m.eh_hdr, m.bias));
        assert_eq!(Segments::of(&it).ranges, segs.ranges);
        // A main program reported by segment (start not at its ELF header) gets the same.
        let by_segment = Module {
            start: m.start | 0x10,
            ..m
        };
        assert_eq!(Segments::of(&by_segment).ranges, segs.ranges);
        let libc_pc = libc::getpid as unsafe extern "C" fn() -> i32 as usize;
        let l = find(libc_pc, false).unwrap();
        assert_ne!(l.stamp, m.stamp);
        assert!(find(0x10, false).is_none());
        // After a possible unload, the same object gets another stamp (its cached rules are
        // not trusted any more).
        forget_all();
        assert_ne!(find(pc, false).unwrap().stamp, m.stamp);
        let stack = 0usize;
        assert!(find(&stack as *const usize as usize, false).is_none());
    }
}
