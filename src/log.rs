//! The allocation log: every call of the malloc family becomes an event (docs/LOGFORMAT.md).
//!
//! Two destinations, both without allocation or stdio:
//! - the in-memory ring: `ring=N` fixed 64-byte binary records mapped once, slot `seq % N`,
//!   written lock-free (a seqlock stamp per record: a reader that races a writer drops it);
//!   reports and dumps read a block's history from it;
//! - the log file (`log=PATH|stderr|fd:N`). A file is written through shared mappings: each
//!   thread reserves a chunk of the file (`CHUNK` bytes, under the small `FILE` lock, which also
//!   `ftruncate`s the file to the new end), maps it `MAP_SHARED` and formats its lines straight
//!   into it with plain stores. The pages belong to the file, so every event is in it even if
//!   the process dies by SIGKILL right after. A line never straddles two chunks; an unused chunk
//!   tail stays NUL (readers skip NULs). `stderr`/`fd:N` get one `write(2)` per event.
//!   `log_format=mtrace` writes glibc's mtrace records through one global cursor (under the
//!   lock), so the records keep the order in which the calls returned.
//!
//! Modules: the header lists every loaded object with its base; a caller outside every known
//! module triggers a rescan of /proc/self/maps (rate-limited, never while a lock of the
//! allocator is held), which appends `M` records for objects loaded since (dlopen).
//!
//! # Invariants
//! - `ON` is set once during init (single-threaded) and never cleared in this process, except
//!   that the fork child may switch its file sink off; with it clear, `event` is one branch.
//! - A thread's cursor (TLS `scratch`: write position, chunk end, chunk end's file offset)
//!   always describes a chunk it mapped itself and that lies entirely below `FileState::off`,
//!   so the file never gets truncated under it; the fork child and `close_at_exit` clear it.
//! - The module table only grows; an entry is complete before `n` publishes it (Release).

use crate::block::Op;
use crate::config::{Config, LogFormat};
use crate::fmt::{Line, prefix};
use crate::lock::Mutex;
use crate::sys;
use crate::tls;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Debugging is on: events are counted, kept in the ring and (maybe) written.
static ON: AtomicBool = AtomicBool::new(false);
/// CLOCK_MONOTONIC at start (event times are relative to it).
static START_NS: AtomicU64 = AtomicU64::new(0);
/// Frames per event (`backtrace=N`, 1 = the caller only).
static FRAMES: AtomicUsize = AtomicUsize::new(1);
static MTRACE: AtomicBool = AtomicBool::new(false);

const SINK_NONE: u8 = 0;
const SINK_FD: u8 = 1;
const SINK_MAP: u8 = 2;
static SINK: AtomicU8 = AtomicU8::new(SINK_NONE);
static SINK_FD_NO: AtomicI32 = AtomicI32::new(-1);

/// Bytes of the file a thread reserves at a time (a multiple of every page size we run on).
pub const CHUNK: u64 = 1 << 20;
/// Flag in a thread cursor's end offset (`scratch[2]`, a multiple of the page size otherwise):
/// a record is being formatted in place in the chunk (`text_in_place`).
const BUSY: u64 = 1;

// ------------------------------------------------------------------ statistics

/// Calls per entry point and a power-of-two histogram of requested sizes, striped by thread
/// so that counting does not bounce one cache line between cores. The first `STRIPES - 1`
/// threads each own a stripe and count with plain load/store (no locked instruction); later
/// threads share the last stripe and count with atomic adds.
#[repr(C, align(128))]
struct Stripe {
    calls: [AtomicU64; 15],
    fails: AtomicU64,
    hist: [AtomicU64; HIST],
}
const HIST: usize = 48;
const STRIPES: usize = 32;
static NEXT_STRIPE: AtomicU32 = AtomicU32::new(0);
static STATS: [Stripe; STRIPES] = [const {
    Stripe {
        calls: [const { AtomicU64::new(0) }; 15],
        fails: AtomicU64::new(0),
        hist: [const { AtomicU64::new(0) }; HIST],
    }
}; STRIPES];

/// This thread's stripe, and whether it owns it alone.
#[inline]
fn stripe() -> (&'static Stripe, bool) {
    let st = tls::state();
    // SAFETY: our own TLS block.
    let mut k = unsafe { (*st).stripe };
    if k == 0 {
        k = (NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize).min(STRIPES - 1) as u32 + 1;
        // SAFETY: as above.
        unsafe { (*st).stripe = k };
    }
    let i = k as usize - 1;
    (&STATS[i], i < STRIPES - 1)
}

/// Adds one to a counter of a stripe: a plain read-modify-write on an owned stripe (only this
/// thread writes it; readers may see a count one behind), an atomic add on the shared one.
#[inline]
fn bump(c: &AtomicU64, owned: bool) {
    if owned {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Histogram bucket of a requested size: 0 for 0, k for [2^(k-1), 2^k).
fn bucket(size: usize) -> usize {
    ((usize::BITS - size.leading_zeros()) as usize).min(HIST - 1)
}

/// Calls of `op` counted since start (all threads).
pub fn calls(op: Op) -> u64 {
    STATS
        .iter()
        .map(|s| s.calls[op as usize].load(Ordering::Relaxed))
        .sum()
}

/// Failed allocations (NULL returned) since start.
pub fn failures() -> u64 {
    STATS.iter().map(|s| s.fails.load(Ordering::Relaxed)).sum()
}

/// Allocations whose requested size fell in bucket `k` (see `bucket`).
pub fn hist(k: usize) -> u64 {
    STATS
        .iter()
        .map(|s| {
            s.hist
                .get(k)
                .map(|h| h.load(Ordering::Relaxed))
                .unwrap_or(0)
        })
        .sum()
}

pub const HIST_BUCKETS: usize = HIST;

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

// ------------------------------------------------------------------ ring

/// One event in the ring. `stamp` is the event's seq when the record is complete, 0 while it
/// is being written (seqlock).
#[repr(C, align(64))]
struct Rec {
    stamp: AtomicU64,
    t: AtomicU64,
    /// tid | op << 32 | log2(align)+1 << 40
    tidop: AtomicU64,
    inp: AtomicU64,
    out: AtomicU64,
    size: AtomicU64,
    caller: AtomicU64,
    /// The caller's caller when a backtrace was taken (0 otherwise).
    caller2: AtomicU64,
}
const _: () = assert!(core::mem::size_of::<Rec>() == 64);

static RING: AtomicPtr<Rec> = AtomicPtr::new(core::ptr::null_mut());
static RING_MASK: AtomicU64 = AtomicU64::new(0);

/// A decoded ring record.
#[derive(Clone, Copy)]
pub struct Event {
    pub seq: u64,
    pub t: u64,
    pub tid: u32,
    pub op: Op,
    pub align: usize,
    pub inp: usize,
    pub out: usize,
    pub size: usize,
    pub caller: usize,
    pub caller2: usize,
}

fn ring_put(e: &Event) {
    let r = RING.load(Ordering::Relaxed);
    if r.is_null() {
        return;
    }
    let mask = RING_MASK.load(Ordering::Relaxed);
    // SAFETY: the ring has mask+1 records and is never unmapped.
    let rec = unsafe { &*r.add((e.seq & mask) as usize) };
    let alog = if e.align == 0 {
        0
    } else {
        e.align.trailing_zeros() as u64 + 1
    };
    rec.stamp.store(0, Ordering::Relaxed);
    fence(Ordering::Release);
    rec.t.store(e.t, Ordering::Relaxed);
    rec.tidop.store(
        e.tid as u64 | (e.op as u64) << 32 | alog << 40,
        Ordering::Relaxed,
    );
    rec.inp.store(e.inp as u64, Ordering::Relaxed);
    rec.out.store(e.out as u64, Ordering::Relaxed);
    rec.size.store(e.size as u64, Ordering::Relaxed);
    rec.caller.store(e.caller as u64, Ordering::Relaxed);
    rec.caller2.store(e.caller2 as u64, Ordering::Relaxed);
    rec.stamp.store(e.seq, Ordering::Release);
}

/// The record of event `seq`, if the ring still holds it intact.
fn ring_get(seq: u64) -> Option<Event> {
    let r = RING.load(Ordering::Relaxed);
    if r.is_null() || seq == 0 {
        return None;
    }
    let mask = RING_MASK.load(Ordering::Relaxed);
    // SAFETY: as in ring_put.
    let rec = unsafe { &*r.add((seq & mask) as usize) };
    if rec.stamp.load(Ordering::Acquire) != seq {
        return None;
    }
    let t = rec.t.load(Ordering::Relaxed);
    let tidop = rec.tidop.load(Ordering::Relaxed);
    let inp = rec.inp.load(Ordering::Relaxed) as usize;
    let out = rec.out.load(Ordering::Relaxed) as usize;
    let size = rec.size.load(Ordering::Relaxed) as usize;
    let caller = rec.caller.load(Ordering::Relaxed) as usize;
    let caller2 = rec.caller2.load(Ordering::Relaxed) as usize;
    fence(Ordering::Acquire);
    if rec.stamp.load(Ordering::Relaxed) != seq {
        return None;
    }
    let alog = (tidop >> 40) & 0xff;
    Some(Event {
        seq,
        t,
        tid: tidop as u32,
        op: Op::from_u8((tidop >> 32) as u8),
        align: if alog == 0 {
            0
        } else {
            1usize.checked_shl(alog as u32 - 1).unwrap_or(0)
        },
        inp,
        out,
        size,
        caller,
        caller2,
    })
}

/// Calls `f` for the events of the ring, oldest first, among the last `n` sequence numbers.
fn ring_each(n: u64, mut f: impl FnMut(&Event)) {
    let top = crate::heap::SEQ.load(Ordering::Relaxed);
    let cap = RING_MASK.load(Ordering::Relaxed) + 1;
    if RING.load(Ordering::Relaxed).is_null() {
        return;
    }
    let first = top.saturating_sub(n.min(cap)) + 1;
    for s in first..=top {
        if let Some(e) = ring_get(s) {
            f(&e);
        }
    }
}

// ------------------------------------------------------------------ backtrace

/// Bounds of this thread's own stack, looked up once per thread (without allocating: a raw
/// read of /proc/self/maps) and kept in its TLS block: the main thread's is the `[stack]`
/// mapping (it only grows down, so a frame below its start looks it up again, a few times at
/// most); another thread's is the mapping that holds its TLS block (glibc puts a thread's
/// stack, TLS and descriptor in one mapping, stack below), up to that block. (0, 0) when
/// unknown. Every address in the returned range is mapped and readable for the life of the
/// thread.
fn own_stack(fp: usize) -> (usize, usize) {
    let st = tls::state();
    // SAFETY: our own TLS block (here and below).
    let (lo, hi, looked) = unsafe { ((*st).stack_lo, (*st).stack_hi, (*st).stack_lookups) };
    let stale = looked == 0 || (fp < lo && fp + (256 << 20) > hi && looked < 8);
    if !stale {
        return (lo, hi);
    }
    let main = tls::tid() == sys::getpid();
    let tp = st as usize;
    let (mut lo, mut hi) = (0, 0);
    crate::maps::for_each(|m| {
        let mine = if main {
            m.path == b"[stack]"
        } else {
            m.start <= tp && tp < m.end
        };
        if mine && m.readable {
            lo = m.start;
            hi = if main { m.end } else { tp };
        }
        !mine
    });
    // SAFETY: our own TLS block.
    unsafe {
        (*st).stack_lo = lo;
        (*st).stack_hi = hi;
        (*st).stack_lookups = looked + 1;
    }
    (lo, hi)
}

/// Frame records read without trusting their address: through the kernel (`process_vm_readv`
/// on ourselves), which answers EFAULT for an unmapped or inaccessible address instead of
/// faulting. A read copies a window of up to `WINDOW` bytes from the record on (less where
/// the readable memory ends), so the next records, a few hundred bytes up the same stack,
/// come from the copy: about one system call per walk.
struct CheckedReader {
    pid: libc::pid_t,
    base: usize,
    len: usize,
    buf: [usize; CheckedReader::WORDS],
}

impl CheckedReader {
    const WORDS: usize = 64;
    const WINDOW: usize = Self::WORDS * core::mem::size_of::<usize>();

    fn new() -> CheckedReader {
        CheckedReader {
            pid: sys::getpid() as libc::pid_t,
            base: 0,
            len: 0,
            buf: [0; Self::WORDS],
        }
    }

    /// The record at `fp` (saved frame pointer, return address), `fp` word aligned; None if
    /// it cannot be read.
    fn frame(&mut self, fp: usize) -> Option<(usize, usize)> {
        let in_window = fp >= self.base && fp - self.base + 16 <= self.len;
        if !in_window {
            let local = libc::iovec {
                iov_base: self.buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: Self::WINDOW,
            };
            let remote = libc::iovec {
                iov_base: fp as *mut libc::c_void,
                iov_len: Self::WINDOW,
            };
            let _keep = sys::ErrnoGuard::new();
            // SAFETY: the kernel writes at most WINDOW bytes into `buf` and only reads the
            // remote range (a partial read stops where the readable memory ends).
            let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
            if n < 16 {
                self.len = 0;
                return None;
            }
            self.base = fp;
            self.len = n as usize;
        }
        let i = (fp - self.base) / core::mem::size_of::<usize>();
        Some((self.buf[i], self.buf[i + 1]))
    }
}

#[inline(always)]
fn frame_pointer() -> usize {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: copies a register; no memory access.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: copies a register; no memory access.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    fp
}

/// Frame-pointer walk (PITFALLS (g)): fills `out[1..]` with the callers of `caller`, returns the
/// number of frames in `out` (`out[0]` = caller). Our own frames are skipped by finding the
/// frame whose return address is `caller`. Stops at a frame pointer that does not go up, moves
/// more than 1 MiB, is misaligned or cannot be read, or at a return address < 4096.
///
/// It never faults, whatever the frame pointers hold (a program built without them, a
/// coroutine's first frame): on the thread's own stack (`own_stack`) a frame record is read
/// only if it lies between the current frame and the top of that stack; on any other stack (a
/// coroutine's, a signal stack) records are read through the kernel (`CheckedReader`).
#[inline(never)]
fn backtrace(caller: usize, out: &mut [usize; 16], want: usize) -> usize {
    out[0] = caller;
    let want = want.min(16);
    let mut fp = frame_pointer();
    let (lo, hi) = own_stack(fp);
    let own = lo <= fp && fp < hi;
    let mut checked = if own {
        None
    } else {
        Some(CheckedReader::new())
    };
    let mut n = 1;
    let mut found = false;
    let mut steps = 0;
    while n < want && steps < 64 {
        steps += 1;
        if fp == 0 || !fp.is_multiple_of(core::mem::size_of::<usize>()) {
            break;
        }
        let (next, ret) = match checked.as_mut() {
            None => {
                if fp.checked_add(16).is_none_or(|e| e > hi) {
                    break;
                }
                // SAFETY: [fp, fp+16) lies between the current frame and the top of this
                // thread's stack (checked above), which is mapped and readable.
                unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) }
            }
            Some(r) => match r.frame(fp) {
                Some(f) => f,
                None => break,
            },
        };
        if ret < 4096 {
            break;
        }
        if found {
            out[n] = ret;
            n += 1;
        } else if ret == caller {
            found = true;
        }
        if next <= fp || next - fp > (1 << 20) {
            break;
        }
        fp = next;
        if !found && steps > 12 {
            break;
        }
    }
    n
}

// ------------------------------------------------------------------ modules

const MAX_MODS: usize = 512;
const PATHS: usize = 48 << 10;

#[derive(Clone, Copy)]
struct Module {
    base: usize,
    end: usize,
    path_off: u32,
    path_len: u32,
}

#[repr(C)]
struct Mods {
    n: AtomicUsize,
    plen: usize,
    ent: [Module; MAX_MODS],
    paths: [u8; PATHS],
}

static MODS: AtomicPtr<Mods> = AtomicPtr::new(core::ptr::null_mut());
static HINT: AtomicUsize = AtomicUsize::new(0);
static SCANNING: AtomicBool = AtomicBool::new(false);
static LAST_SCAN: AtomicU64 = AtomicU64::new(0);
static MISS: [AtomicUsize; 16] = [const { AtomicUsize::new(0) }; 16];
static MISS_I: AtomicUsize = AtomicUsize::new(0);

fn mods() -> Option<&'static Mods> {
    let m = MODS.load(Ordering::Acquire);
    if m.is_null() {
        None
    } else {
        // SAFETY: the table is mapped once and never unmapped; entries below `n` are immutable.
        Some(unsafe { &*m })
    }
}

fn mod_path(m: &Mods, e: &Module) -> &'static [u8] {
    let a = e.path_off as usize;
    let b = (a + e.path_len as usize).min(PATHS);
    // SAFETY: published path bytes are never changed; the table lives forever.
    unsafe { core::slice::from_raw_parts(m.paths.as_ptr().add(a), b - a) }
}

/// Index of the module that holds `addr`.
fn module_of(addr: usize) -> Option<(usize, Module)> {
    let m = mods()?;
    let n = m.n.load(Ordering::Acquire).min(MAX_MODS);
    let h = HINT.load(Ordering::Relaxed);
    if h < n {
        let e = m.ent[h];
        if addr >= e.base && addr < e.end {
            return Some((h, e));
        }
    }
    for (i, e) in m.ent[..n].iter().enumerate() {
        if addr >= e.base && addr < e.end {
            HINT.store(i, Ordering::Relaxed);
            return Some((i, *e));
        }
    }
    None
}

/// Re-reads /proc/self/maps; appends (and logs as `M` records) the objects not known yet.
/// Returns false if another thread is scanning.
fn scan_modules(emit_records: bool) -> bool {
    if SCANNING.swap(true, Ordering::Acquire) {
        return false;
    }
    let mp = MODS.load(Ordering::Acquire);
    if mp.is_null() {
        SCANNING.store(false, Ordering::Release);
        return false;
    }
    // A candidate: the first mapping (offset 0) of a file, extended by the mappings of the same
    // path that follow; kept only if one of them is executable.
    let mut cand = Module {
        base: 0,
        end: 0,
        path_off: 0,
        path_len: 0,
    };
    let mut cpath = [0u8; 256];
    let mut cexec = false;
    let commit = |cand: &Module, path: &[u8], exec: bool| {
        if !exec || cand.base == 0 {
            return;
        }
        // SAFETY: only the scanning thread (SCANNING) writes the table; entries at index >= n
        // are not visible to readers yet.
        let m = unsafe { &mut *mp };
        let n = m.n.load(Ordering::Relaxed);
        for e in &m.ent[..n] {
            if e.base == cand.base && mod_path(m, e) == path {
                return;
            }
        }
        if n >= MAX_MODS || m.plen + path.len() > PATHS {
            return;
        }
        m.paths[m.plen..m.plen + path.len()].copy_from_slice(path);
        m.ent[n] = Module {
            base: cand.base,
            end: cand.end,
            path_off: m.plen as u32,
            path_len: path.len() as u32,
        };
        m.plen += path.len();
        m.n.store(n + 1, Ordering::Release);
        if emit_records && !MTRACE.load(Ordering::Relaxed) {
            let mut l: Line<320> = Line::new();
            l.s(b"M ").x(cand.base).c(b' ').s(path).c(b'\n');
            emit(l.as_bytes());
        }
    };
    crate::maps::for_each(|m| {
        let plen = m.path.len().min(256);
        let path = &m.path[..plen];
        let same = cand.base != 0 && path == &cpath[..cand.path_len as usize];
        if same && m.start >= cand.end && m.offset != 0 {
            cand.end = m.end;
            cexec |= m.executable;
            return true;
        }
        if cand.base != 0 {
            commit(&cand, &cpath[..cand.path_len as usize], cexec);
            cand.base = 0;
        }
        if m.offset == 0 && !m.shared && plen > 0 && path[0] == b'/' {
            cand = Module {
                base: m.start,
                end: m.end,
                path_off: 0,
                path_len: plen as u32,
            };
            cpath[..plen].copy_from_slice(path);
            cexec = m.executable;
        }
        true
    });
    if cand.base != 0 {
        commit(&cand, &cpath[..cand.path_len as usize], cexec);
    }
    LAST_SCAN.store(sys::now_ns(), Ordering::Relaxed);
    SCANNING.store(false, Ordering::Release);
    true
}

/// Makes sure the module of `caller` is known (and logged), rescanning when it is not.
#[inline]
fn check_caller(caller: usize) {
    if caller < 4096 || module_of(caller).is_some() {
        return;
    }
    let page = caller >> 12;
    if MISS.iter().any(|m| m.load(Ordering::Relaxed) == page) {
        return;
    }
    // At most one rescan per millisecond; an address still unknown after a rescan (JIT code,
    // anonymous memory) is remembered so it does not trigger another. The rescan reads
    // /proc/self/maps: the program's errno is kept.
    let _keep = sys::ErrnoGuard::new();
    let now = sys::now_ns();
    if now.wrapping_sub(LAST_SCAN.load(Ordering::Relaxed)) < 1_000_000 {
        return;
    }
    if scan_modules(true) && module_of(caller).is_none() {
        let i = MISS_I.fetch_add(1, Ordering::Relaxed) % MISS.len();
        MISS[i].store(page, Ordering::Relaxed);
    }
}

// ------------------------------------------------------------------ file sink

/// The log file: its descriptor, the end of the reserved part, and (mtrace) the global cursor.
struct FileState {
    fd: i32,
    /// File offset where the next chunk starts (= the file's size while open).
    off: u64,
    /// End of the content when the last chunk was given back (its page-rounded end is `off`);
    /// equal to `off` otherwise. The file is trimmed to it at exit.
    exact: u64,
    closed: bool,
    /// Global cursor for log_format=mtrace: write position, chunk end, chunk end offset.
    g_pos: usize,
    g_end: usize,
    g_end_off: u64,
}

static FILE: Mutex<FileState> = Mutex::new(FileState {
    fd: -1,
    off: 0,
    exact: 0,
    closed: false,
    g_pos: 0,
    g_end: 0,
    g_end_off: 0,
});
/// The log spec (path with %p, kept for the fork child).
static SPEC: crate::config::Once<crate::config::Path> =
    crate::config::Once::new(crate::config::Path::NONE);
static KEY: AtomicU64 = AtomicU64::new(u64::MAX);
/// CHUNK bytes of an anonymous mapping never written: the source of the zeros of a new chunk.
static ZERO: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// Expands `%p` to the pid into `out` (NUL terminated); returns the length. Used for the log
/// and for `report=PATH`.
pub fn expand(spec: &[u8], out: &mut [u8; 512]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < spec.len() && n < 480 {
        if spec[i] == b'%' && i + 1 < spec.len() && spec[i + 1] == b'p' {
            let mut b = itoa::Buffer::new();
            for &d in b.format(sys::getpid()).as_bytes() {
                out[n] = d;
                n += 1;
            }
            i += 2;
            continue;
        }
        out[n] = spec[i];
        n += 1;
        i += 1;
    }
    out[n] = 0;
    n
}

/// Opens the log file read-write (for a shared mapping): O_CREAT|O_TRUNC, O_NOFOLLOW (no
/// symlink planted in a shared directory), O_CLOEXEC, mode 0600. -1 after a warning.
fn open_log(spec: &[u8]) -> i32 {
    if sys::secure_mode() {
        return -1;
    }
    let mut path = [0u8; 512];
    let n = expand(spec, &mut path);
    // SAFETY: path is NUL terminated.
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600,
        )
    };
    if fd < 0 {
        let mut l: Line<700> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: cannot open log '")
            .s(&path[..n])
            .s(b"' (errno ")
            .u(sys::errno() as u64)
            .s(b"); no log file\n");
        l.report();
    }
    fd
}

fn is_regular(fd: i32) -> bool {
    // SAFETY: st is a valid out-parameter.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
    }
}

/// Reserves a new chunk for a cursor: extends the file, maps the chunk. Returns (pos, end,
/// end_off) or None (closed, disk full, no address space). Caller holds `FILE`.
fn new_chunk(f: &mut FileState) -> Option<(usize, usize, u64)> {
    if f.closed || f.fd < 0 {
        return None;
    }
    let start = f.off;
    let end = start.checked_add(CHUNK)?;
    // Create the chunk's pages in the page cache with one write of zeros (from an untouched
    // anonymous mapping): much cheaper than letting every first store fault a page of a hole
    // in (measured: 250 -> 185 ns of CPU per event). It also extends the file.
    let z = ZERO.load(Ordering::Relaxed);
    // SAFETY: z is CHUNK readable bytes (or null, then skipped); pwrite on our descriptor.
    let written = !z.is_null()
        && unsafe {
            libc::pwrite(
                f.fd,
                z as *const libc::c_void,
                CHUNK as usize,
                start as libc::off_t,
            )
        } == CHUNK as isize;
    // SAFETY: ftruncate on our own descriptor.
    if !written && unsafe { libc::ftruncate(f.fd, end as libc::off_t) } != 0 {
        return None;
    }
    let p = map_chunk(f.fd, start)?;
    f.off = end;
    f.exact = end;
    Some((p as usize, p as usize + CHUNK as usize, end))
}

/// Maps `CHUNK` bytes of the log file at `off` (a multiple of `CHUNK`) shared and writable, at
/// an address aligned to `CHUNK`. The alignment matters for speed: the zero-write of
/// `new_chunk` leaves large page-cache folios (up to the chunk) on kernels whose file system
/// has them (ext4 since Linux 6.16), and the kernel maps a whole folio on its first write fault
/// only when the folio lies inside the mapping and inside one page table; otherwise every page
/// faults and each fault dirties the whole folio again (measured on Linux 6.18, ext4, 1 MiB
/// chunks: ~65,000 faults and 8-11 us per page, against ~600 faults and 1.7-2 us per page
/// aligned). Falls back to an unaligned mapping when the reservation fails.
fn map_chunk(fd: i32, off: u64) -> Option<*mut u8> {
    let len = CHUNK as usize;
    // Reserve twice the chunk (no access, no memory), so an aligned chunk fits inside.
    // SAFETY: an anonymous mapping at an address the kernel chooses touches nothing of ours.
    let r = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            2 * len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return sys::map_shared_fd(len, fd, off as i64);
    }
    let r = r as usize;
    let a = r.next_multiple_of(len);
    // SAFETY: [a, a+len) lies inside the reservation just made, which nobody else uses;
    // MAP_FIXED replaces only that part of it.
    let p = unsafe {
        libc::mmap(
            a as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            off as libc::off_t,
        )
    };
    // SAFETY: the parts of our reservation around [a, a+len) (empty ones skipped); on failure
    // the whole reservation.
    unsafe {
        if p == libc::MAP_FAILED {
            libc::munmap(r as *mut libc::c_void, 2 * len);
            return sys::map_shared_fd(len, fd, off as i64);
        }
        if a > r {
            libc::munmap(r as *mut libc::c_void, a - r);
        }
        if r + 2 * len > a + len {
            libc::munmap((a + len) as *mut libc::c_void, r + 2 * len - (a + len));
        }
    }
    Some(p as *mut u8)
}

/// Gives back the unused tail of a chunk if it is the last one of the file (so the file ends
/// at its content), then unmaps it. Caller holds `FILE`.
fn release_chunk(f: &mut FileState, pos: usize, end: usize, end_off: u64, unmap: bool) {
    if end == 0 {
        return;
    }
    if end_off == f.off {
        let used_off = end_off - (end - pos) as u64;
        // Chunks start page aligned.
        let page = sys::page_size() as u64;
        f.off = used_off.next_multiple_of(page).min(end_off);
        f.exact = used_off;
    }
    if unmap {
        // SAFETY: the chunk [end-CHUNK, end) was mapped by new_chunk and nobody else uses it.
        unsafe { libc::munmap((end - CHUNK as usize) as *mut libc::c_void, CHUNK as usize) };
    }
}

/// Writes at the end of the file with pwrite (after close, or when mapping fails).
fn append_slow(f: &mut FileState, line: &[u8]) {
    if f.fd < 0 {
        return;
    }
    // SAFETY: line is a live slice; pwrite reads at most its length.
    let n = unsafe {
        libc::pwrite(
            f.fd,
            line.as_ptr() as *const libc::c_void,
            line.len(),
            f.off as libc::off_t,
        )
    };
    if n > 0 {
        f.off += n as u64;
        f.exact = f.off;
    }
}

/// Copies `line` at a cursor, taking a new chunk if it does not fit.
/// # Safety
/// `c` is a cursor of this thread (TLS) or the global one under `FILE`.
unsafe fn put(c: &mut [u64; 3], line: &[u8], f: Option<&mut FileState>) -> bool {
    let len = line.len();
    let (pos, end) = (c[0] as usize, c[1] as usize);
    if end == 0 || end - pos < len {
        let per_thread = f.is_none();
        let mut own;
        let f = match f {
            Some(f) => f,
            None => {
                if FILE.held_by_me() {
                    return false; // a signal handler interrupted this thread inside the lock
                }
                own = FILE.lock();
                &mut *own
            }
        };
        if c[2] & BUSY != 0 {
            // This thread was interrupted while formatting a record in place: its chunk stays.
            append_slow(f, line);
            return true;
        }
        if end != 0 {
            // Give the old chunk back first: if it is the last one, the new chunk follows its
            // content directly.
            release_chunk(f, pos, end, c[2] & !BUSY, true);
            c[0] = 0;
            c[1] = 0;
            c[2] = 0;
        }
        let Some((p, e, eo)) = new_chunk(f) else {
            append_slow(f, line);
            return true;
        };
        if per_thread && KEY.load(Ordering::Relaxed) != u64::MAX {
            // Ask for a call at thread exit (keys < 32 do not allocate, PITFALLS 4).
            // SAFETY: a key we created; any non-NULL value makes the destructor run.
            unsafe {
                libc::pthread_setspecific(
                    KEY.load(Ordering::Relaxed) as libc::pthread_key_t,
                    core::ptr::dangling::<libc::c_void>(),
                )
            };
        }
        c[0] = p as u64;
        c[1] = e as u64;
        c[2] = eo;
    }
    let pos = c[0] as usize;
    c[0] += len as u64;
    // SAFETY: [pos, pos+len) lies inside the chunk this cursor mapped (checked above).
    unsafe { core::ptr::copy_nonoverlapping(line.as_ptr(), pos as *mut u8, len) };
    true
}

fn tls_cursor() -> &'static mut [u64; 3] {
    // SAFETY: this thread's own TLS block; the scratch words belong to the log.
    unsafe { &mut (*tls::state()).scratch }
}

/// Writes one complete line (or several) to the log destination.
fn emit(line: &[u8]) {
    match SINK.load(Ordering::Relaxed) {
        SINK_FD => {
            sys::write_all(SINK_FD_NO.load(Ordering::Relaxed), line);
        }
        SINK_MAP => {
            if MTRACE.load(Ordering::Relaxed) {
                if FILE.held_by_me() {
                    return;
                }
                let mut g = FILE.lock();
                let f = &mut *g;
                let mut c = [f.g_pos as u64, f.g_end as u64, f.g_end_off];
                if f.closed {
                    append_slow(f, line);
                    return;
                }
                // SAFETY: the global cursor, under FILE.
                unsafe { put(&mut c, line, Some(f)) };
                f.g_pos = c[0] as usize;
                f.g_end = c[1] as usize;
                f.g_end_off = c[2];
            } else {
                let c = tls_cursor();
                // SAFETY: this thread's cursor.
                unsafe { put(c, line, None) };
            }
        }
        _ => {}
    }
}

extern "C" fn thread_exit(_v: *mut libc::c_void) {
    let c = tls_cursor();
    if c[1] == 0 {
        return;
    }
    let mut f = FILE.lock();
    release_chunk(&mut f, c[0] as usize, c[1] as usize, c[2] & !BUSY, true);
    *c = [0; 3];
}

// ------------------------------------------------------------------ formatting

/// The longest line we format: an `E` record with 16 frames is under 500 bytes, an mtrace
/// realloc pair with two 256-byte paths under 700.
const MAX_LINE: usize = 768;

/// Bytes a number write may touch past the current position: numbers are stored as one fixed
/// block (24 bytes) and the position then advances by their real length.
const SLACK: usize = 24;

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Number of decimal digits of `v`.
#[inline(always)]
fn dec_len(v: u64) -> usize {
    // log10 from log2 (1233/4096 ~ log10(2)), corrected by one comparison.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let t = (bits * 1233) >> 12;
    t + 1 - ((v | 1) < POW10[t]) as usize
}

/// Spreads the 8 nibbles of `x` into the 8 bytes of a u64 (nibble k in byte k), as ASCII hex.
#[inline(always)]
fn hex8(x: u32) -> u64 {
    let mut v = x as u64;
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    v + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64
}

/// A stack line for the hot path: no zeroing (unlike `Line`), numbers written as fixed-size
/// blocks without per-digit bounds checks.
///
/// # Invariants
/// `b[..n]` is initialised; `n <= MAX_LINE`; every write checks `n + len + SLACK <= b.len()`.
struct Fast {
    b: [core::mem::MaybeUninit<u8>; MAX_LINE + SLACK],
    n: usize,
}

impl Fast {
    #[inline(always)]
    fn new() -> Self {
        Fast {
            b: [const { core::mem::MaybeUninit::uninit() }; MAX_LINE + SLACK],
            n: 0,
        }
    }
    #[inline(always)]
    fn room(&self, k: usize) -> bool {
        self.n + k <= MAX_LINE
    }
    #[inline(always)]
    fn c(&mut self, ch: u8) -> &mut Self {
        if self.room(1) {
            self.b[self.n] = core::mem::MaybeUninit::new(ch);
            self.n += 1;
        }
        self
    }
    #[inline(always)]
    fn s(&mut self, t: &[u8]) -> &mut Self {
        if self.room(t.len()) {
            // SAFETY: n + len <= MAX_LINE < b.len(), and t does not overlap our buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    t.as_ptr(),
                    self.b.as_mut_ptr().add(self.n) as *mut u8,
                    t.len(),
                )
            };
            self.n += t.len();
        }
        self
    }
    /// `0x` + lowercase hex: all 16 digits of the value shifted to the top are stored (two
    /// 8-byte stores), then the position advances past the significant ones.
    #[inline(always)]
    fn x(&mut self, v: usize) -> &mut Self {
        let v = v as u64;
        let digits = if v == 0 {
            1
        } else {
            (67 - v.leading_zeros() as usize) / 4
        };
        if !self.room(2 + digits) {
            return self;
        }
        let top = v << (4 * (16 - digits));
        let base = self.b.as_mut_ptr() as *mut u8;
        // SAFETY: the stores cover [n, n+18), and n + 18 <= MAX_LINE + SLACK = b.len().
        unsafe {
            core::ptr::write_unaligned(base.add(self.n) as *mut [u8; 2], *b"0x");
            core::ptr::write_unaligned(
                base.add(self.n + 2) as *mut u64,
                hex8((top >> 32) as u32).to_be(),
            );
            core::ptr::write_unaligned(base.add(self.n + 10) as *mut u64, hex8(top as u32).to_be());
        }
        self.n += 2 + digits;
        self
    }
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: b[..n] is initialised (type invariant).
        unsafe { core::slice::from_raw_parts(self.b.as_ptr() as *const u8, self.n) }
    }
}

/// Op names padded to 32 bytes, indexed by `Op as usize`: copied as one fixed block (the
/// position then advances by `OP_LEN`), so no variable-length copy per event. A unit test checks
/// them against `Op::name`.
const OP_PAD: [[u8; 32]; 15] = {
    const NAMES: [&[u8]; 15] = [
        b"malloc",
        b"calloc",
        b"realloc",
        b"reallocarray",
        b"memalign",
        b"posix_memalign",
        b"aligned_alloc",
        b"valloc",
        b"pvalloc",
        b"new",
        b"new[]",
        b"free",
        b"delete",
        b"delete[]",
        b"malloc_usable_size",
    ];
    let mut t = [[0u8; 32]; 15];
    let mut i = 0;
    while i < 15 {
        let mut j = 0;
        while j < NAMES[i].len() {
            t[i][j] = NAMES[i][j];
            j += 1;
        }
        i += 1;
    }
    t
};
const OP_LEN: [u8; 15] = [6, 6, 7, 12, 8, 14, 13, 6, 7, 3, 5, 4, 6, 8, 18];

/// Longest `E` record: the fixed text, 5 decimals of at most 20 digits, 2 pointers and 16 frames
/// of at most 19 bytes (`0x`, 16 digits, separator), the op name block.
const MAX_E_LINE: usize = 2 + 5 * (20 + 1) + 2 * 19 + 32 + 16 * 19 + 1;
const _: () = assert!(MAX_E_LINE + SLACK <= MAX_LINE);

// Raw writers for the hot path: the position lives in a register (a pointer) and there is no
// bounds check per field; the whole record's bound is checked once (`MAX_E_LINE`).

/// Decimal, written from the last digit back, two at a time; returns the end.
/// # Safety
/// `[p, p+20)` is writable.
#[inline(always)]
unsafe fn put_u(p: *mut u8, mut v: u64) -> *mut u8 {
    let len = dec_len(v);
    // SAFETY: every store is in [p, p+len), len <= 20 (caller's room).
    unsafe {
        let mut i = p.add(len);
        while v >= 100 {
            let r = (v % 100) as usize * 2;
            v /= 100;
            i = i.sub(2);
            core::ptr::write_unaligned(i as *mut [u8; 2], [DIGITS2[r], DIGITS2[r + 1]]);
        }
        if v >= 10 {
            let r = v as usize * 2;
            core::ptr::write_unaligned(i.sub(2) as *mut [u8; 2], [DIGITS2[r], DIGITS2[r + 1]]);
        } else {
            *i.sub(1) = b'0' + v as u8;
        }
        p.add(len)
    }
}

/// `0x` + lowercase hex: 18 bytes are stored, the position advances past the significant ones.
/// # Safety
/// `[p, p+18)` is writable.
#[inline(always)]
unsafe fn put_x(p: *mut u8, v: usize) -> *mut u8 {
    let v = v as u64;
    let digits = if v == 0 {
        1
    } else {
        (67 - v.leading_zeros() as usize) / 4
    };
    let top = v << (4 * (16 - digits));
    // SAFETY: the stores cover [p, p+18) (caller's room).
    unsafe {
        core::ptr::write_unaligned(p as *mut [u8; 2], *b"0x");
        core::ptr::write_unaligned(p.add(2) as *mut u64, hex8((top >> 32) as u32).to_be());
        core::ptr::write_unaligned(p.add(10) as *mut u64, hex8(top as u32).to_be());
        p.add(2 + digits)
    }
}

/// One byte.
/// # Safety
/// `p` is writable.
#[inline(always)]
unsafe fn put_c(p: *mut u8, c: u8) -> *mut u8 {
    // SAFETY: caller's room.
    unsafe {
        *p = c;
        p.add(1)
    }
}

/// Formats the `E` record of `e` at `dst`; returns its length. Bytes after the record, up to
/// `SLACK` of them, may be overwritten with digits (the caller clears them where it matters).
/// # Safety
/// `[dst, dst + MAX_LINE)` is writable; `frames` is not empty.
#[inline(always)]
unsafe fn text_raw(dst: *mut u8, e: &Event, frames: &[usize]) -> usize {
    let frames = &frames[..frames.len().min(16)];
    let op = (e.op as usize).min(OP_PAD.len() - 1);
    // SAFETY: the record is at most MAX_E_LINE bytes and every write stores at most SLACK bytes
    // past its end; MAX_E_LINE + SLACK <= MAX_LINE (asserted above).
    unsafe {
        let mut p = dst;
        core::ptr::write_unaligned(p as *mut [u8; 2], *b"E ");
        p = p.add(2);
        p = put_c(put_u(p, e.seq), b' ');
        p = put_c(put_u(p, e.t), b' ');
        p = put_c(put_u(p, e.tid as u64), b' ');
        core::ptr::write_unaligned(p as *mut [u8; 32], OP_PAD[op]);
        p = put_c(p.add(OP_LEN[op] as usize), b' ');
        p = put_c(put_x(p, e.inp), b' ');
        p = put_c(put_x(p, e.out), b' ');
        p = put_c(put_u(p, e.size as u64), b' ');
        p = put_c(put_u(p, e.align as u64), b' ');
        p = put_x(p, frames[0]);
        for &f in &frames[1..] {
            p = put_x(put_c(p, b','), f);
        }
        p = put_c(p, b'\n');
        p.offset_from(dst) as usize
    }
}

/// The `E` record of `e` on a fresh line (`l` empty; nothing is written otherwise).
fn text_line(l: &mut Fast, e: &Event, frames: &[usize]) {
    if frames.is_empty() || l.n != 0 {
        return;
    }
    // SAFETY: n = 0 and the buffer has MAX_LINE + SLACK bytes; text_raw initialises the
    // `len <= MAX_E_LINE <= MAX_LINE` bytes it reports.
    l.n = unsafe { text_raw(l.b.as_mut_ptr() as *mut u8, e, frames) };
}

/// Writes the `E` record of `e` straight into this thread's chunk of the log file when the
/// chunk has room for the longest one; false (nothing written) otherwise. The room is reserved
/// before formatting (a signal handler that logs an event meanwhile writes after it; the
/// reservation's unused rest then stays NUL), and the digits a number write leaves past the
/// record's end are cleared, so the chunk holds only complete lines and NULs.
#[inline(always)]
fn text_in_place(e: &Event, frames: &[usize]) -> bool {
    const RESERVE: u64 = (MAX_LINE + SLACK) as u64;
    let c = tls_cursor();
    let pos = c[0];
    if c[1] < pos || c[1] - pos < RESERVE {
        return false;
    }
    c[0] = pos + RESERVE;
    // The chunk is in use until the record is complete: an event logged meanwhile by a signal
    // handler must not give it back (see `put`).
    let was = c[2];
    c[2] = was | BUSY;
    // SAFETY: [pos, pos + MAX_LINE + SLACK) lies in this thread's mapped chunk (checked above)
    // and was just reserved for this record; the record and its SLACK bytes of stray digits stay
    // inside it.
    let len = unsafe {
        let dst = pos as usize as *mut u8;
        let len = text_raw(dst, e, frames);
        core::ptr::write_bytes(dst.add(len), 0, SLACK);
        len
    };
    let c = tls_cursor();
    if c[0] == pos + RESERVE {
        c[0] = pos + len as u64;
    }
    c[2] = was;
    true
}

fn mtrace_where(l: &mut Fast, caller: usize) {
    if caller < 4096 {
        return;
    }
    l.s(b"@ ");
    match module_of(caller).and_then(|(_, e)| mods().map(|m| (mod_path(m, &e), e.base))) {
        Some((path, base)) => {
            l.s(path).s(b":[").x(caller - base).s(b"] ");
        }
        None => {
            l.s(b"[").x(caller).s(b"] ");
        }
    }
}

fn mtrace_ptr(l: &mut Fast, p: usize) {
    if p == 0 {
        l.s(b"(nil)");
    } else {
        l.x(p);
    }
}

/// glibc mtrace records (malloc/mtrace-impl.c).
fn mtrace_line(l: &mut Fast, e: &Event) {
    let free_like = matches!(e.op, Op::Free | Op::Delete | Op::DeleteArr);
    let re = matches!(e.op, Op::Realloc | Op::Reallocarray);
    if free_like {
        mtrace_where(l, e.caller);
        l.s(b"- ").x(e.inp).c(b'\n');
    } else if re && e.inp != 0 {
        if e.out == 0 {
            mtrace_where(l, e.caller);
            if e.size == 0 {
                l.s(b"- ").x(e.inp).c(b'\n');
            } else {
                l.s(b"! ").x(e.inp).c(b' ').x(e.size).c(b'\n');
            }
        } else {
            mtrace_where(l, e.caller);
            l.s(b"< ").x(e.inp).c(b'\n');
            mtrace_where(l, e.caller);
            l.s(b"> ").x(e.out).c(b' ').x(e.size).c(b'\n');
        }
    } else {
        mtrace_where(l, e.caller);
        l.s(b"+ ");
        mtrace_ptr(l, e.out);
        l.c(b' ').x(e.size).c(b'\n');
    }
}

// ------------------------------------------------------------------ hooks

/// TSC clock for event times (x86_64 with an invariant TSC): `rdtsc` costs ~11 ns where the
/// vDSO clock costs ~29 ns here. Calibrated lazily against CLOCK_MONOTONIC: events use the vDSO
/// clock until 10 ms have passed since init, then the TSC scaled by the rate measured over
/// that span (no start-up delay). 0 in `TSC_MULT`: not calibrated (yet).
static TSC0: AtomicU64 = AtomicU64::new(0);
static TSC_NS0: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, 32.32 fixed point.
static TSC_MULT: AtomicU64 = AtomicU64::new(0);
static TSC_OK: AtomicBool = AtomicBool::new(false);

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Records the calibration start if the CPU says its TSC is invariant.
#[cfg(target_arch = "x86_64")]
fn start_tsc() {
    // cpuid is available on every x86_64 CPU; leaf 0x80000007 is checked before it is read.
    let invariant = core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
        && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
    if invariant {
        TSC_NS0.store(sys::now_ns(), Ordering::Relaxed);
        TSC0.store(rdtsc(), Ordering::Relaxed);
        TSC_OK.store(true, Ordering::Release);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn start_tsc() {}

/// Monotonic nanoseconds for event records.
#[inline]
fn clock_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let m = TSC_MULT.load(Ordering::Relaxed);
        if m != 0 {
            let d = rdtsc().wrapping_sub(TSC0.load(Ordering::Relaxed));
            return TSC_NS0.load(Ordering::Relaxed) + ((d as u128 * m as u128) >> 32) as u64;
        }
        let now = sys::now_ns();
        if TSC_OK.load(Ordering::Acquire) {
            let ns0 = TSC_NS0.load(Ordering::Relaxed);
            let c0 = TSC0.load(Ordering::Relaxed);
            if now.wrapping_sub(ns0) >= 10_000_000 {
                let c = rdtsc();
                if c > c0 {
                    let mult = (((now - ns0) as u128) << 32) / (c - c0) as u128;
                    TSC_MULT.store(mult as u64, Ordering::Relaxed);
                }
            }
        }
        now
    }
    #[cfg(not(target_arch = "x86_64"))]
    sys::now_ns()
}

/// Called once during init (single-threaded) when MALLOC_DEBUG is set.
pub fn init(c: &Config) {
    start_tsc();
    START_NS.store(sys::now_ns(), Ordering::Relaxed);
    FRAMES.store((c.backtrace as usize).clamp(1, 16), Ordering::Relaxed);
    MTRACE.store(c.log_format == LogFormat::Mtrace, Ordering::Relaxed);
    let n = if c.ring == 0 {
        crate::config::DEFAULT_RING
    } else {
        c.ring.min(1 << 24)
    };
    let n = n.next_power_of_two();
    if let Some(p) = sys::map_internal(n as usize * core::mem::size_of::<Rec>()) {
        RING_MASK.store(n - 1, Ordering::Relaxed);
        RING.store(p as *mut Rec, Ordering::Release);
    }
    ON.store(true, Ordering::Release);
    if !c.log.is_set() {
        return;
    }
    if let Some(p) = sys::map_internal(core::mem::size_of::<Mods>()) {
        MODS.store(p as *mut Mods, Ordering::Release);
    }
    // SAFETY: single-threaded init.
    unsafe { SPEC.set(c.log) };
    if let Some(z) = sys::map_internal(CHUNK as usize) {
        ZERO.store(z, Ordering::Relaxed);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: key is a valid out-parameter; thread_exit is a valid destructor for the process's life.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } == 0 {
        KEY.store(key as u64, Ordering::Relaxed);
    }
    open_sink(c.log.as_bytes(), 0);
}

/// Opens the destination named by `spec` and writes the header. `ppid` 0: the original process.
fn open_sink(spec: &[u8], ppid: u32) {
    if spec == b"stderr" {
        SINK_FD_NO.store(2, Ordering::Relaxed);
        SINK.store(SINK_FD, Ordering::Release);
    } else if let Some(n) = spec.strip_prefix(b"fd:") {
        match crate::fmt::parse_num(n) {
            Some(v) if v <= i32::MAX as u64 => {
                SINK_FD_NO.store(v as i32, Ordering::Relaxed);
                SINK.store(SINK_FD, Ordering::Release);
            }
            _ => return,
        }
    } else {
        let fd = open_log(spec);
        if fd < 0 {
            return;
        }
        if is_regular(fd) {
            let mut f = FILE.lock();
            f.fd = fd;
            f.off = 0;
            f.exact = 0;
            f.closed = false;
            f.g_pos = 0;
            f.g_end = 0;
            f.g_end_off = 0;
            drop(f);
            SINK.store(SINK_MAP, Ordering::Release);
        } else {
            // A FIFO, a terminal, /dev/null: raw writes.
            SINK_FD_NO.store(fd, Ordering::Relaxed);
            SINK.store(SINK_FD, Ordering::Release);
        }
    }
    header(ppid);
}

fn header(ppid: u32) {
    if MTRACE.load(Ordering::Relaxed) {
        emit(b"= Start\n");
        scan_modules(false);
        return;
    }
    let mut l: Line<640> = Line::new();
    l.s(b"# ft_malloc log v1\n# program ");
    let mut exe = [0u8; 256];
    // SAFETY: exe is a writable buffer of the size given; readlink does not allocate.
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            exe.as_mut_ptr() as *mut libc::c_char,
            exe.len(),
        )
    };
    if n > 0 {
        l.s(&exe[..n as usize]);
    } else {
        l.s(sys::argv0());
    }
    l.s(b"\n# pid ").u(sys::getpid() as u64);
    let pp = if ppid != 0 {
        ppid
    } else {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() as u32 }
    };
    l.s(b"\n# ppid ").u(pp as u64);
    if ppid != 0 {
        l.s(b"\n# forked_from ").u(ppid as u64);
    }
    l.s(b"\n# page_size ").u(sys::page_size() as u64);
    l.s(b"\n# start_ns ").u(START_NS.load(Ordering::Relaxed));
    l.s(b"\n# debug ")
        .s(sys::getenv_initial(b"MALLOC_DEBUG").unwrap_or(b""))
        .c(b'\n');
    emit(l.as_bytes());
    if ppid != 0 {
        // The child knows the modules already: log them all again in its own file.
        if let Some(m) = mods() {
            let n = m.n.load(Ordering::Acquire).min(MAX_MODS);
            for e in &m.ent[..n] {
                l.clear();
                l.s(b"M ").x(e.base).c(b' ').s(mod_path(m, e)).c(b'\n');
                emit(l.as_bytes());
            }
        }
    }
    scan_modules(true);
}

/// One event: called by every entry point after the operation (failures have out = 0).
#[inline(always)]
pub fn event(op: Op, inp: usize, out: usize, size: usize, align: usize, caller: usize) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    event_slow(op, inp, out, size, align, caller);
}

#[inline(never)]
fn event_slow(op: Op, inp: usize, out: usize, size: usize, align: usize, caller: usize) {
    let seq = crate::heap::take_seq();
    let tid = tls::tid();
    let (st, owned) = stripe();
    bump(&st.calls[op as usize], owned);
    let alloc_like = !matches!(op, Op::Free | Op::Delete | Op::DeleteArr | Op::UsableSize);
    if alloc_like && size != usize::MAX {
        bump(&st.hist[bucket(size)], owned);
    }
    if alloc_like && out == 0 && size != 0 {
        bump(&st.fails, owned);
    }
    let mut frames = [0usize; 16];
    let want = FRAMES.load(Ordering::Relaxed);
    let nf = if want > 1 {
        backtrace(caller, &mut frames, want)
    } else {
        frames[0] = caller;
        1
    };
    let e = Event {
        seq,
        t: clock_ns().saturating_sub(START_NS.load(Ordering::Relaxed)),
        tid,
        op,
        align,
        inp,
        out,
        size,
        caller,
        caller2: if nf > 1 { frames[1] } else { 0 },
    };
    ring_put(&e);
    if SINK.load(Ordering::Relaxed) == SINK_NONE {
        return;
    }
    check_caller(caller);
    if matches!(op, Op::UsableSize) {
        return; // not a record of the file formats
    }
    let mtrace = MTRACE.load(Ordering::Relaxed);
    if !mtrace && SINK.load(Ordering::Relaxed) == SINK_MAP && text_in_place(&e, &frames[..nf]) {
        return;
    }
    // A new chunk, mtrace or an fd sink: system calls, which must not change the program's errno.
    let _keep = sys::ErrnoGuard::new();
    let mut l = Fast::new();
    if mtrace {
        mtrace_line(&mut l, &e);
    } else {
        text_line(&mut l, &e, &frames[..nf]);
    }
    emit(l.as_bytes());
}

/// One event as a human line: `#seq +t tid N malloc(24) = 0x... from 0x...`.
fn human<const N: usize>(l: &mut Line<N>, e: &Event) {
    l.s(b"#")
        .u(e.seq)
        .s(b" t=")
        .u(e.t / 1000)
        .s(b"us tid ")
        .u(e.tid as u64)
        .c(b' ');
    let name = e.op.call_name();
    match e.op {
        Op::Free | Op::Delete | Op::DeleteArr => {
            l.s(name).c(b'(').x(e.inp).s(b")");
            if e.size == 0 {
                l.s(b" refused");
            } else {
                l.s(b" [").u(e.size as u64).s(b" bytes]");
            }
        }
        Op::Realloc | Op::Reallocarray => {
            l.s(name)
                .c(b'(')
                .x(e.inp)
                .s(b", ")
                .u(e.size as u64)
                .s(b") = ")
                .x(e.out);
        }
        Op::Memalign | Op::PosixMemalign | Op::AlignedAlloc => {
            l.s(name)
                .c(b'(')
                .u(e.align as u64)
                .s(b", ")
                .u(e.size as u64)
                .s(b") = ")
                .x(e.out);
        }
        _ => {
            l.s(name).c(b'(');
            if e.size == usize::MAX {
                l.s(b"overflow");
            } else {
                l.u(e.size as u64);
            }
            if e.align != 0 && matches!(e.op, Op::New | Op::NewArr) {
                l.s(b", align ").u(e.align as u64);
            }
            l.s(b") = ").x(e.out);
        }
    }
    l.s(b" from ");
    crate::maps::describe(e.caller, l);
    if e.caller2 != 0 {
        l.s(b" <- ").x(e.caller2);
    }
    l.c(b'\n');
}

fn touches(e: &Event, p: usize) -> bool {
    (e.inp == p && p != 0) || e.out == p
}

/// Prints the events of the in-memory ring that touched the block at `p` (reports): on the
/// report fd, prefixed like the other report lines.
pub fn report_history(p: usize) {
    if RING.load(Ordering::Relaxed).is_null() || p == 0 {
        return;
    }
    let mut count = 0usize;
    let mut l: Line<320> = Line::new();
    ring_each(u64::MAX, |e| {
        if touches(e, p) {
            count += 1;
        }
    });
    if count == 0 {
        return;
    }
    prefix(&mut l)
        .s(b"  history of ")
        .x(p)
        .s(b" in the last ")
        .u(RING_MASK.load(Ordering::Relaxed) + 1)
        .s(b" events:\n");
    l.report();
    // The last 16 events on this address.
    let mut skip = count.saturating_sub(16);
    ring_each(u64::MAX, |e| {
        if touches(e, p) {
            if skip > 0 {
                skip -= 1;
                return;
            }
            l.clear();
            prefix(&mut l).s(b"    ");
            human(&mut l, e);
            l.report();
        }
    });
}

/// The events of the ring on block `p` (show_alloc_mem_ex_cmd `block`), on `fd`.
pub fn block_history(p: usize, fd: i32) {
    let mut l: Line<320> = Line::new();
    if RING.load(Ordering::Relaxed).is_null() {
        l.s(b"history: no event ring (MALLOC_DEBUG is not set)\n");
        l.write_fd(fd);
        return;
    }
    let mut any = false;
    ring_each(u64::MAX, |e| {
        if touches(e, p) {
            if !any {
                l.clear();
                l.s(b"history of ")
                    .x(p)
                    .s(b" (events still in the ring):\n");
                l.write_fd(fd);
                any = true;
            }
            l.clear();
            l.s(b"  ");
            human(&mut l, e);
            l.write_fd(fd);
        }
    });
    if !any {
        l.clear();
        l.s(b"history of ").x(p).s(b": no event in the ring\n");
        l.write_fd(fd);
    }
}

/// The last `n` events of the ring, oldest first, on `fd`.
pub fn dump_recent(fd: i32, n: usize) {
    let mut l: Line<320> = Line::new();
    if RING.load(Ordering::Relaxed).is_null() {
        l.s(b"log: no event ring (MALLOC_DEBUG is not set)\n");
        l.write_fd(fd);
        return;
    }
    let top = crate::heap::SEQ.load(Ordering::Relaxed);
    let cap = RING_MASK.load(Ordering::Relaxed) + 1;
    let n = (n as u64).min(cap);
    l.s(b"Last events (")
        .u(n.min(top))
        .s(b" of ")
        .u(top)
        .s(b"):\n");
    l.write_fd(fd);
    ring_each(n, |e| {
        l.clear();
        l.s(b"  ");
        human(&mut l, e);
        l.write_fd(fd);
    });
}

/// Fork prepare: no thread may be inside the file lock while the process is copied.
pub fn lock_for_fork() {
    if SINK.load(Ordering::Relaxed) == SINK_MAP {
        FILE.lock_forever();
    }
}

pub fn unlock_after_fork() {
    if SINK.load(Ordering::Relaxed) == SINK_MAP {
        // SAFETY: lock_for_fork took it on this thread.
        unsafe { FILE.force_unlock() };
    }
}

/// Fork child (atfork handler; only this thread exists): the parent's mapped chunks must not
/// receive the child's events. With `%p` in the path the child opens its own file; without it
/// the child stops writing the file (its events would clobber the parent's).
pub fn reset_in_child() {
    SCANNING.store(false, Ordering::Relaxed);
    if SINK.load(Ordering::Relaxed) != SINK_MAP {
        return;
    }
    // SAFETY: single thread of a new child: nobody else can hold or wait for the lock.
    unsafe { FILE.reset() };
    let c = tls_cursor();
    if c[1] != 0 {
        // SAFETY: the forking thread's own chunk, inherited by the child; unmapping it here does
        // not touch the parent's mapping.
        unsafe {
            libc::munmap(
                (c[1] as usize - CHUNK as usize) as *mut libc::c_void,
                CHUNK as usize,
            )
        };
    }
    *c = [0; 3];
    let mut f = FILE.lock();
    if f.g_end != 0 {
        // SAFETY: the global (mtrace) chunk inherited from the parent.
        unsafe {
            libc::munmap(
                (f.g_end - CHUNK as usize) as *mut libc::c_void,
                CHUNK as usize,
            )
        };
    }
    // SAFETY: the child's copy of the descriptor.
    unsafe { libc::close(f.fd) };
    f.fd = -1;
    f.g_pos = 0;
    f.g_end = 0;
    f.closed = true;
    drop(f);
    SINK.store(SINK_NONE, Ordering::Release);
    let spec = SPEC.get();
    let ppid = sys::getpid();
    let _ = ppid;
    if spec.as_bytes().windows(2).any(|w| w == b"%p") {
        START_NS.store(sys::now_ns(), Ordering::Relaxed);
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        open_sink(spec.as_bytes(), parent);
    }
}

/// Exit, before the leak report and dumps: nothing is buffered (mapped pages belong to the
/// file, fd sinks are written as events come).
pub fn flush_at_exit() {}

/// Exit: trims the file to its content (the calling thread's unused chunk tail is given back;
/// chunks of threads still running stay whole). Later events are appended with pwrite.
pub fn close_at_exit() {
    if SINK.load(Ordering::Relaxed) != SINK_MAP || FILE.held_by_me() {
        return;
    }
    if MTRACE.load(Ordering::Relaxed) {
        emit(b"= End\n");
    }
    let c = tls_cursor();
    let mut f = FILE.lock();
    f.closed = true;
    release_chunk(&mut f, c[0] as usize, c[1] as usize, c[2] & !BUSY, false);
    let (gp, ge, go) = (f.g_pos, f.g_end, f.g_end_off);
    release_chunk(&mut f, gp, ge, go, false);
    // This thread's chunk may now lie past the end of the file: forget it (no more stores).
    *c = [0; 3];
    f.g_end = 0;
    f.g_pos = 0;
    // Chunks still used by other threads end at or below `exact` (only the last chunk, given
    // back, lies between `exact` and `off`).
    f.off = f.exact;
    // SAFETY: our descriptor; no chunk in use extends past `off`.
    unsafe { libc::ftruncate(f.fd, f.off as libc::off_t) };
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(24), 5);
        assert_eq!(bucket(usize::MAX), HIST - 1);
    }
    #[test]
    fn op_table_matches_names() {
        for i in 0..15u8 {
            let op = Op::from_u8(i);
            assert_eq!(op as u8, i);
            let n = OP_LEN[i as usize] as usize;
            assert_eq!(&OP_PAD[i as usize][..n], op.name());
            assert!(OP_PAD[i as usize][n..].iter().all(|&b| b == 0));
        }
    }
    #[test]
    fn text_record() {
        let mut l = Fast::new();
        let e = Event {
            seq: 3,
            t: 2500,
            tid: 31337,
            op: Op::Free,
            align: 0,
            inp: 0x7f3a20000040,
            out: 0,
            size: 100,
            caller: 0x55d0c000118f,
            caller2: 0,
        };
        text_line(&mut l, &e, &[0x55d0c000118f, 0x55d0c0001200]);
        assert_eq!(
            l.as_bytes(),
            b"E 3 2500 31337 free 0x7f3a20000040 0x0 100 0 0x55d0c000118f,0x55d0c0001200\n"
        );
        for v in [0u64, 1, 9, 10, 99, 100, 12345678901234567890, u64::MAX] {
            let mut b = [0u8; 64];
            // SAFETY: 64 bytes hold a decimal (20), a space and a hex write (18).
            let n = unsafe {
                let p = put_x(put_c(put_u(b.as_mut_ptr(), v), b' '), v as usize);
                p.offset_from(b.as_ptr()) as usize
            };
            assert_eq!(&b[..n], format!("{v} {v:#x}").as_bytes());
        }
        let mut f = Fast::new();
        f.x(0xabcdef).x(0x10).x(0xffff_ffff_ffff_ffff);
        assert_eq!(f.as_bytes(), b"0xabcdef0x100xffffffffffffffff");
    }
}
