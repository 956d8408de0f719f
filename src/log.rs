//! The allocation log: every call of the malloc family becomes an event (docs/LOGFORMAT.md).
//!
//! Two destinations, both without allocation or stdio:
//! - the in-memory ring: `ring=N` fixed 64-byte binary records mapped once, slot `seq % N`,
//!   written lock-free (a seqlock stamp per record: a reader that races a writer drops it);
//!   reports and dumps read a block's history from it;
//! - the log file (`log=PATH|stderr|fd:N`), claimed by `outfile` (PATH or PATH.PID, never a file
//!   another process writes). It is written through shared mappings: a thread's first lines go
//!   through the shared cursor (under the small `FILE` lock), then the thread reserves chunks
//!   of its own (64 KiB doubling to `CHUNK`), maps each `MAP_SHARED` and formats its lines
//!   straight into it with plain stores. The pages belong to the file, so every event is in it
//!   even if the process dies by SIGKILL right after. A chunk is filled with newlines (and so
//!   allocated by the file system) before it is mapped; a line never straddles two chunks; an
//!   unused chunk rest stays blank lines. `stderr`/`fd:N` get one `write(2)` per event.
//!   `log_format=mtrace` writes glibc's mtrace records through the shared cursor only (under
//!   the lock), so the records keep the order in which the calls returned.
//!
//! Modules: the header lists every loaded object with its base; a caller outside every known
//! module triggers a rescan of /proc/self/maps (rate-limited, never while a lock of the
//! allocator is held), which appends `M` records for objects loaded since (dlopen).
//!
//! # Invariants
//! - `ON` is set once during init (single-threaded) and never cleared in this process, except
//!   that the fork child may switch its file sink off; with it clear, `event` is one branch.
//! - A thread's cursor (TLS `scratch`: write position, chunk end, chunk end's file offset with
//!   the chunk's generation and `BUSY` in its low bits) always describes a chunk it mapped (or
//!   took over from the shared cursor) that lies entirely below `FileState::off`, so the file
//!   never gets trimmed under it; without a chunk, the position counts the bytes the thread
//!   wrote through the shared cursor. The fork child and `close_at_exit` clear it.
//! - The module table only grows; an entry is complete before `n` publishes it (Release).

use crate::block::Op;
use crate::config::{Config, LogFormat};
use crate::fmt::{Line, prefix};
use crate::lock::Mutex;
use crate::outfile;
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
/// The file after exit (`close_at_exit`): every line is appended whole with pwrite under the
/// lock, none is formatted in place, so the exit cannot cut one.
const SINK_LATE: u8 = 3;
static SINK: AtomicU8 = AtomicU8::new(SINK_NONE);
static SINK_FD_NO: AtomicI32 = AtomicI32::new(-1);

/// Flag in a thread cursor's end offset (`scratch[2]`, a multiple of the page size otherwise):
/// a record is being written in place in the chunk (`text_in_place`, `emit`).
const BUSY: u64 = 1;

/// Stores a thread's cursor word `c[2]` (BUSY and the chunk end) as one relaxed atomic store:
/// `close_at_exit` reads it from another thread. The compiler fences keep the record's stores
/// between the setting and the clearing of BUSY.
#[inline(always)]
fn set_flags(c: &mut [u64; 3], v: u64) {
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    // SAFETY: c[2] is an aligned u64 of this thread's TLS block; other threads only load it
    // atomically (`close_at_exit`).
    unsafe { AtomicU64::from_ptr(&mut c[2]) }.store(v, Ordering::Relaxed);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// Replaces a thread's cursor with `n` so that a signal handler interrupting the change never
/// sees a chunk end paired with a position it does not belong to: the end is cleared first
/// (a cursor without an end takes no record in place) and set last.
#[inline(always)]
fn set_cursor(c: &mut [u64; 3], n: [u64; 3]) {
    let word = |w: &mut u64| {
        // SAFETY: an aligned u64 of this thread's TLS block (or of the file state we hold).
        unsafe { AtomicU64::from_ptr(w) }
    };
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    word(&mut c[1]).store(0, Ordering::Relaxed);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    word(&mut c[0]).store(n[0], Ordering::Relaxed);
    word(&mut c[2]).store(n[2], Ordering::Relaxed);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    word(&mut c[1]).store(n[1], Ordering::Relaxed);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

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
/// Not called: event stacks come from `unwind::capture` (CFI, through code without frame
/// pointers); kept until the log's restructuring decides its fate.
#[allow(dead_code)]
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

/// Largest chunk a cursor maps at a time.
pub const CHUNK: u64 = 1 << 20;
/// The shared cursor's first chunk; each next one is twice as large, up to `CHUNK`, so a
/// process that logs little reserves little (one that ends with `_exit`, as shells do, leaves
/// its last chunk's unused rest as blank lines).
const CHUNK_MIN: u64 = 16 << 10;
/// Generation of a thread's first own chunk (64 KiB).
const GEN_OWN: u64 = 2;
/// A thread writes its first bytes through the shared cursor (under the lock), so that
/// short-lived threads do not each reserve a chunk; it maps a chunk of its own once it has
/// written this many.
const SHARED_BYTES: u64 = 16 << 10;
/// A thread cursor's position after the thread's exit destructor ran (no chunk again).
const EXITED: u64 = u64::MAX;
/// Low bits of a cursor's end offset, which is page aligned: BUSY (bit 0) and the chunk's
/// generation (bits 1-3; its length is `chunk_len(generation)`).
const LOW: u64 = 0xfff;
const GEN_SHIFT: u32 = 1;
const GEN_MAX: u64 = 6;

fn gen_of(c2: u64) -> u64 {
    (c2 >> GEN_SHIFT) & 7
}

/// Bytes of a chunk of that generation (a multiple of the page size, at least 4 pages).
fn chunk_len(generation: u64) -> u64 {
    let page = sys::page_size() as u64;
    (CHUNK_MIN << generation.min(GEN_MAX)).clamp(4 * page, CHUNK.max(4 * page))
}

/// The log file: its descriptor, the end of the reserved part, and the shared cursor.
///
/// # Invariants
/// Every chunk mapped by a cursor in use lies entirely below `off`, so trimming the file to
/// `off` never cuts a mapped page. Bytes below `off` are records, header lines, or filler
/// newlines (never NUL): a chunk is filled with newlines (and so backed by the file system)
/// before it is mapped. `fd` is checked against `id` before every use.
struct FileState {
    fd: i32,
    id: sys::FileId,
    /// LOCK_SH on the base name when this process writes PATH.PID (-1 otherwise).
    base: i32,
    base_id: sys::FileId,
    base_name: outfile::Name,
    /// The file's absolute name, to open it again if the program closes our descriptor.
    name: outfile::Name,
    /// File offset where the next chunk or appended line starts.
    off: u64,
    /// At exit: no new chunks; later lines are appended with pwrite.
    closed: bool,
    /// Out of space, or the file is gone: nothing more is written (said once).
    stopped: bool,
    /// The shared cursor: threads' first lines, mtrace records, a leftover chunk tail.
    g: [u64; 3],
    /// TLS blocks of the live threads that write a chunk of their own (`close_at_exit` waits
    /// for the record each is writing); threads past the table's size are not waited for.
    writers: [usize; WRITERS],
    nwriters: usize,
}

const WRITERS: usize = 128;

static FILE: Mutex<FileState> = Mutex::new(FileState {
    fd: -1,
    id: sys::FileId { dev: 0, ino: 0 },
    base: -1,
    base_id: sys::FileId { dev: 0, ino: 0 },
    base_name: outfile::Name::EMPTY,
    name: outfile::Name::EMPTY,
    off: 0,
    closed: false,
    stopped: false,
    g: [0; 3],
    writers: [0; WRITERS],
    nwriters: 0,
});
/// A log file was claimed by this process (set once at open, cleared only in a fork child).
static FILE_SINK: AtomicBool = AtomicBool::new(false);
/// The log spec (path with %p, kept for the fork child).
static SPEC: crate::config::Once<crate::config::Path> =
    crate::config::Once::new(crate::config::Path::NONE);
static KEY: AtomicU64 = AtomicU64::new(u64::MAX);
/// `log=fd:N`: our duplicate of N, checked before every write.
static SINK_FD_FILE: sys::OwnedFd = sys::OwnedFd::none();

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

/// Our descriptor of the file, opened again by name if the program closed it (or reused its
/// number); None (after one warning, logging stopped) if the file cannot be had again.
fn file_fd(f: &mut FileState) -> Option<i32> {
    if f.base >= 0 && !sys::fd_names(f.base, f.base_id) {
        // The hold on PATH went with the program's close loop (a daemon): take it again, so
        // that PATH stays in use while this process lives.
        f.base = outfile::hold_again(&f.base_name, f.base_id);
    }
    if f.fd >= 0 && sys::fd_names(f.fd, f.id) {
        return Some(f.fd);
    }
    // Never close the old number: it may be the program's now.
    f.fd = -1;
    if f.stopped {
        return None;
    }
    match outfile::reopen(&f.name, f.id, outfile::Kind::Log) {
        Some(fd) => {
            f.fd = fd;
            Some(fd)
        }
        None => {
            stop(f, |l| {
                l.s(b"was closed by the program and cannot be opened again");
            });
            None
        }
    }
}

/// Stops writing the file, with one WARNING line: `log: 'PATH' <why>; logging stops`.
fn stop(f: &mut FileState, why: impl FnOnce(&mut Line<1300>)) {
    if f.stopped {
        return;
    }
    f.stopped = true;
    SINK.store(SINK_NONE, Ordering::Release);
    let mut l: Line<1300> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: log: '")
        .s(f.name.as_bytes())
        .s(b"' ");
    why(&mut l);
    l.s(b"; logging stops, the program goes on\n");
    l.report();
}

fn stop_errno(f: &mut FileState, e: i32) {
    stop(f, |l| {
        l.s(b"cannot grow ");
        outfile::errno_text(l, e);
    });
}

/// Reserves a new chunk of that generation (or smaller, see below) at the end of the file:
/// writes its filler (so the file system allocates it: a full disk or RLIMIT_FSIZE fails here,
/// never as a SIGBUS on a later store), then maps it. Returns the cursor, or None (closed,
/// stopped, or no address space: the caller appends). Caller holds `FILE`.
///
/// A chunk of L bytes starts at a file offset that is a multiple of L, and is mapped at an
/// address aligned to L: the kernel then maps the large page-cache folios the filler write
/// made with one fault each, where an unaligned chunk takes one fault per piece (measured with
/// 1 MiB chunks: 1 fault per chunk aligned, 9-13 at a 4 KiB offset; a single-threaded run had
/// 3.5 times as many faults). So the chunk starts at the page holding `off` if that is aligned
/// (the first chunk, after the header), else at the next page (the end of the chunk just
/// filled, whose last bytes stay filler), and is halved until its start is aligned.
fn new_chunk(f: &mut FileState, generation: u64) -> Option<[u64; 3]> {
    if f.closed || f.stopped {
        return None;
    }
    let fd = file_fd(f)?;
    let page = sys::page_size() as u64;
    let mut len = chunk_len(generation);
    let floor = f.off & !(page - 1);
    let base = if floor.is_multiple_of(len) {
        floor
    } else {
        f.off.checked_next_multiple_of(page)?
    };
    while len > chunk_len(0) && !base.is_multiple_of(len) {
        len /= 2;
    }
    let generation = (0..=GEN_MAX).find(|&g| chunk_len(g) == len).unwrap_or(0);
    let end_off = base.checked_add(len)?;
    // The chunk in one write of its own, so that the page cache makes it few large folios
    // (a write that starts before it would end unaligned).
    let filled = if f.off < base {
        sys::fill_newlines(fd, f.off, base - f.off).and_then(|()| sys::fill_newlines(fd, base, len))
    } else {
        sys::fill_newlines(fd, f.off, end_off - f.off)
    };
    if let Err(e) = filled {
        // Give back what was written: no chunk in use lies past `off`.
        let _ = sys::ftruncate(fd, f.off);
        stop_errno(f, e);
        return None;
    }
    let p = sys::map_shared_aligned(fd, base, len as usize, len as usize)? as u64;
    let pos = p + f.off.max(base) - base;
    f.off = end_off;
    Some([pos, p + len, end_off | generation << GEN_SHIFT])
}

/// Gives back the unused tail of a cursor's chunk if it is the last one of the file (so the
/// file ends at its content), then unmaps it if asked. Caller holds `FILE`.
fn release(f: &mut FileState, c: &[u64; 3], unmap: bool) {
    let (pos, end) = (c[0], c[1]);
    if end == 0 {
        return;
    }
    let end_off = c[2] & !LOW;
    if end_off == f.off {
        f.off = end_off - (end - pos);
    }
    if unmap {
        let len = chunk_len(gen_of(c[2]));
        // SAFETY: [end-len, end) was mapped by new_chunk for this cursor, which gives it up.
        unsafe { sys::unmap_shared((end - len) as *mut u8, len as usize) };
    }
}

/// Writes `line` at the end of the file with pwrite (after exit, or when mapping fails).
/// Caller holds `FILE`.
fn append(f: &mut FileState, line: &[u8]) {
    if f.stopped {
        return;
    }
    let Some(fd) = file_fd(f) else {
        return;
    };
    match sys::pwrite_all(fd, line, f.off) {
        Ok(()) => f.off += line.len() as u64,
        Err(e) => {
            let _ = sys::ftruncate(fd, f.off);
            stop_errno(f, e);
        }
    }
}

/// Copies `line` at cursor `c` if its chunk has room.
#[inline]
fn put_at(c: &mut [u64; 3], line: &[u8]) -> bool {
    let (pos, end) = (c[0], c[1]);
    if end == 0 || end < pos || end - pos < line.len() as u64 {
        return false;
    }
    c[0] += line.len() as u64;
    // SAFETY: [pos, pos+len) lies inside the chunk this cursor mapped (checked above).
    unsafe { core::ptr::copy_nonoverlapping(line.as_ptr(), pos as *mut u8, line.len()) };
    true
}

/// Writes `line` through the shared cursor. Caller holds `FILE`.
fn shared_put(f: &mut FileState, line: &[u8]) {
    if put_at(&mut f.g, line) {
        return;
    }
    let old = f.g;
    let generation = if old[1] != 0 {
        (gen_of(old[2]) + 1).min(GEN_MAX)
    } else {
        0
    };
    release(f, &old, true);
    f.g = [0; 3];
    match new_chunk(f, generation) {
        Some(c) => {
            f.g = c;
            if !put_at(&mut f.g, line) {
                append(f, line);
            }
        }
        None => append(f, line),
    }
}

/// Gives this thread (cursor `c`, out of room) a chunk of its own and writes `line` there.
/// Its first chunk is the shared cursor's when that has some room but not much more than a
/// first chunk (in a single-threaded program the records then follow each other without a gap;
/// a thread that soon stops logging leaves little unused); later ones are new, each twice as
/// large. Caller holds `FILE`.
fn own_put(f: &mut FileState, c: &mut [u64; 3], line: &[u8]) {
    let room = f.g[1].saturating_sub(f.g[0]);
    if c[1] == 0 && room >= 4 * (MAX_LINE + SLACK) as u64 && room <= 2 * chunk_len(GEN_OWN) {
        set_cursor(c, f.g);
        f.g = [0; 3];
    } else {
        let generation = if c[1] != 0 {
            (gen_of(c[2]) + 1).clamp(GEN_OWN, GEN_MAX)
        } else {
            GEN_OWN
        };
        // The cursor lets go of its chunk before the chunk is unmapped: a signal handler that
        // logs meanwhile must not write into it.
        let old = *c;
        set_cursor(c, [0; 3]);
        release(f, &old, true);
        let Some(n) = new_chunk(f, generation) else {
            append(f, line);
            return;
        };
        set_cursor(c, n);
    }
    // A writer in place from now on: `close_at_exit` waits for its records, and its exit
    // unregisters it (the key's destructor runs only once the key has a value).
    let me = tls::state() as usize;
    let known = f.writers[..f.nwriters].contains(&me);
    if !known && f.nwriters < WRITERS && KEY.load(Ordering::Relaxed) != u64::MAX {
        f.writers[f.nwriters] = me;
        f.nwriters += 1;
    }
    if KEY.load(Ordering::Relaxed) != u64::MAX {
        // Ask for a call at thread exit (keys < 32 do not allocate, PITFALLS 4).
        // SAFETY: a key we created; any non-NULL value makes the destructor run.
        unsafe {
            libc::pthread_setspecific(
                KEY.load(Ordering::Relaxed) as libc::pthread_key_t,
                core::ptr::dangling::<libc::c_void>(),
            )
        };
    }
    if !put_at(c, line) {
        append(f, line);
    }
}

fn tls_cursor() -> &'static mut [u64; 3] {
    // SAFETY: this thread's own TLS block; the scratch words belong to the log.
    unsafe { &mut (*tls::state()).scratch }
}

/// Writes `line` to `log=stderr|fd:N`; a failed write (or our descriptor closed by the
/// program) stops the log with one warning.
fn fd_put(line: &[u8]) {
    let fd = SINK_FD_NO.load(Ordering::Relaxed);
    let ours = fd != 2;
    if ours && SINK_FD_FILE.get().is_none() {
        SINK.store(SINK_NONE, Ordering::Release);
        fd_warn(b"was closed by the program", 0);
        return;
    }
    if !sys::write_all(fd, line) {
        let e = sys::errno();
        SINK.store(SINK_NONE, Ordering::Release);
        if ours {
            fd_warn(b"cannot be written", e);
        }
    }
}

fn fd_warn(what: &[u8], e: i32) {
    let mut l: Line<300> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: log: ")
        .s(SPEC.get().as_bytes())
        .c(b' ')
        .s(what);
    if e != 0 {
        l.c(b' ');
        outfile::errno_text(&mut l, e);
    }
    l.s(b"; logging stops, the program goes on\n");
    l.report();
}

/// Writes one complete line (or several) to the log destination.
fn emit(line: &[u8]) {
    match SINK.load(Ordering::Relaxed) {
        SINK_FD => fd_put(line),
        sink @ (SINK_MAP | SINK_LATE) => {
            let mtrace = MTRACE.load(Ordering::Relaxed);
            // In place unless this thread was interrupted while writing a record in place
            // (BUSY): its cursor may be between a read and an update.
            if !mtrace && sink == SINK_MAP && tls_cursor()[2] & BUSY == 0 {
                let c = tls_cursor();
                let was = c[2];
                set_flags(c, was | BUSY);
                let done = put_at(c, line);
                set_flags(c, was);
                if done {
                    return;
                }
            }
            if FILE.held_by_me() {
                return; // a signal handler interrupted this thread inside the lock
            }
            let mut g = FILE.lock();
            let f = &mut *g;
            if f.stopped {
                return;
            }
            let c = tls_cursor();
            if mtrace || f.closed || c[2] & BUSY != 0 {
                // (BUSY: this thread was interrupted while formatting a record in place: its
                // chunk stays.)
                shared_put(f, line);
            } else if c[1] == 0 && c[0] == EXITED {
                // Events after this thread's exit destructor (other destructors that free):
                // no chunk again, nobody would give it back.
                shared_put(f, line);
            } else if c[1] == 0 && c[0] < SHARED_BYTES {
                // Without a chunk, c[0] counts the bytes this thread wrote through the shared
                // cursor.
                c[0] += line.len() as u64;
                shared_put(f, line);
            } else {
                own_put(f, c, line);
            }
        }
        _ => {}
    }
}

/// Thread exit (pthread key destructor, registered when the thread maps a chunk): the chunk's
/// unused tail goes to the shared cursor if it is larger than the shared chunk's, so the file
/// holds records rather than reserved space; otherwise it is given back.
extern "C" fn thread_exit(_v: *mut libc::c_void) {
    let c = tls_cursor();
    if FILE.held_by_me() {
        return;
    }
    let mut g = FILE.lock();
    let f = &mut *g;
    // Unregistered even if the thread lost its chunk since (`close_at_exit` must not look at
    // a TLS block that is about to go away).
    let me = tls::state() as usize;
    if let Some(i) = f.writers[..f.nwriters].iter().position(|&t| t == me) {
        f.nwriters -= 1;
        f.writers[i] = f.writers[f.nwriters];
    }
    if c[1] == 0 {
        set_cursor(c, [EXITED, 0, 0]);
        return;
    }
    let mine = *c;
    set_cursor(c, [EXITED, 0, 0]);
    let room = |x: &[u64; 3]| x[1].saturating_sub(x[0]);
    if !f.closed && room(&mine) > room(&f.g) {
        let old = f.g;
        release(f, &old, true);
        f.g = [mine[0], mine[1], mine[2] & !BUSY];
    } else {
        release(f, &mine, true);
    }
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
    // Padded with newlines: a record cut right after the block (a thread killed at exit)
    // leaves no NUL byte.
    let mut t = [[b'\n'; 32]; 15];
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
/// reservation's unused rest then stays filler newlines), and the digits a number write leaves
/// past the record's end are overwritten with newlines again, so the chunk holds only complete
/// lines and blank lines.
#[inline(always)]
fn text_in_place(e: &Event, frames: &[usize]) -> bool {
    const RESERVE: u64 = (MAX_LINE + SLACK) as u64;
    let c = tls_cursor();
    // The chunk is in use until the record is complete: an event logged meanwhile by a signal
    // handler goes through the shared cursor (see `emit`), and does not give the chunk back.
    let was = c[2];
    if was & BUSY != 0 {
        return false;
    }
    set_flags(c, was | BUSY);
    let pos = c[0];
    if c[1] < pos || c[1] - pos < RESERVE {
        set_flags(c, was);
        return false;
    }
    c[0] = pos + RESERVE;
    // SAFETY: [pos, pos + MAX_LINE + SLACK) lies in this thread's mapped chunk (checked above)
    // and was just reserved for this record; the record and its SLACK bytes of stray digits stay
    // inside it.
    let len = unsafe {
        let dst = pos as usize as *mut u8;
        let len = text_raw(dst, e, frames);
        core::ptr::write_bytes(dst.add(len), b'\n', SLACK);
        len
    };
    let c = tls_cursor();
    if c[0] == pos + RESERVE {
        c[0] = pos + len as u64;
    }
    set_flags(c, was);
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
    if let Some(p) = crate::pagemap::map_internal(n as usize * core::mem::size_of::<Rec>()) {
        RING_MASK.store(n - 1, Ordering::Relaxed);
        RING.store(p as *mut Rec, Ordering::Release);
    }
    ON.store(true, Ordering::Release);
    if !c.log.is_set() {
        return;
    }
    if let Some(p) = crate::pagemap::map_internal(core::mem::size_of::<Mods>()) {
        MODS.store(p as *mut Mods, Ordering::Release);
    }
    // SAFETY: single-threaded init.
    unsafe { SPEC.set(c.log) };
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: key is a valid out-parameter; thread_exit is a valid destructor for the process's life.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } == 0 {
        KEY.store(key as u64, Ordering::Relaxed);
    }
    open_sink(c.log.as_bytes(), 0);
}

/// Opens the destination named by `spec` and writes the header. `ppid` 0: the original process.
fn open_sink(spec: &[u8], ppid: u32) {
    let mut h: Line<1200> = Line::new();
    header_text(&mut h, ppid);
    let dest = crate::config::Dest::parse(spec);
    if dest == crate::config::Dest::Stderr {
        SINK_FD_NO.store(2, Ordering::Relaxed);
        SINK.store(SINK_FD, Ordering::Release);
    } else if let crate::config::Dest::Fd(v) = dest {
        // Our own duplicate (high, close-on-exec): it survives the program closing N.
        let dup = match v {
            Some(v) => sys::dup_high(v),
            None => Err(libc::EBADF),
        };
        match dup {
            Ok(fd) if SINK_FD_FILE.set(fd) => {
                SINK_FD_NO.store(fd, Ordering::Relaxed);
                SINK.store(SINK_FD, Ordering::Release);
            }
            r => {
                let mut l: Line<300> = Line::new();
                prefix(&mut l)
                    .s(b"WARNING: log: cannot use ")
                    .s(spec)
                    .c(b' ');
                outfile::errno_text(&mut l, r.err().unwrap_or(libc::EBADF));
                l.s(b"; no log\n");
                l.report();
                return;
            }
        }
    } else {
        if sys::secure_mode() {
            return;
        }
        let mut path = [0u8; 512];
        let n = expand(spec, &mut path);
        let none = sys::FileId::default();
        let Some(c) = outfile::claim(&path[..n], outfile::Kind::Log, h.as_bytes(), none) else {
            return;
        };
        let mut f = FILE.lock();
        f.fd = c.fd;
        f.id = sys::fstat(c.fd).map(|st| st.id).unwrap_or_default();
        f.base = c.base;
        f.base_id = sys::fstat(c.base).map(|st| st.id).unwrap_or_default();
        f.base_name = c.base_name;
        f.name = c.name;
        f.off = c.end;
        f.closed = false;
        f.stopped = false;
        f.g = [0; 3];
        drop(f);
        FILE_SINK.store(true, Ordering::Release);
        SINK.store(SINK_MAP, Ordering::Release);
        modules(ppid);
        return;
    }
    emit(h.as_bytes());
    modules(ppid);
}

/// The header block (docs/LOGFORMAT.md), without module records.
fn header_text<const N: usize>(l: &mut Line<N>, ppid: u32) {
    let me = outfile::me();
    if MTRACE.load(Ordering::Relaxed) {
        // mtrace(1) skips `=` lines: the second one identifies the writer for the next image.
        l.s(b"= Start\n= ft_malloc pid ").u(me.pid as u64);
        if me.start != 0 {
            l.s(b" started ").u(me.start).c(b' ').s(me.boot());
        }
        l.c(b'\n');
        return;
    }
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
    l.s(b"\n# pid ").u(me.pid as u64);
    let pp = if ppid != 0 {
        ppid
    } else {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() as u32 }
    };
    l.s(b"\n# ppid ").u(pp as u64);
    if me.start != 0 {
        l.s(b"\n# started ").u(me.start).c(b' ').s(me.boot());
    }
    if ppid != 0 {
        l.s(b"\n# forked_from ").u(ppid as u64);
    }
    l.s(b"\n# page_size ").u(sys::page_size() as u64);
    l.s(b"\n# start_ns ").u(START_NS.load(Ordering::Relaxed));
    let debug = sys::getenv_initial(b"MALLOC_DEBUG").unwrap_or(b"");
    // (Cut so that the block always ends with its newline.)
    l.s(b"\n# debug ")
        .s(&debug[..debug.len().min(600)])
        .c(b'\n');
}

/// The module records after the header: a fork child logs the modules it knows again (in its
/// own file), then every process adds the ones not known yet.
fn modules(ppid: u32) {
    if MTRACE.load(Ordering::Relaxed) {
        scan_modules(false);
        return;
    }
    if ppid != 0
        && let Some(m) = mods()
    {
        let mut l: Line<320> = Line::new();
        let n = m.n.load(Ordering::Acquire).min(MAX_MODS);
        for e in &m.ent[..n] {
            l.clear();
            l.s(b"M ").x(e.base).c(b' ').s(mod_path(m, e)).c(b'\n');
            emit(l.as_bytes());
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
        crate::unwind::capture(&mut frames[..want.min(16)], caller)
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

/// The log file's identity (zero without a log file): `report=` must not claim it too.
pub fn file_id() -> sys::FileId {
    if !FILE_SINK.load(Ordering::Acquire) || FILE.held_by_me() {
        return sys::FileId::default();
    }
    FILE.lock().id
}

/// The forking process's pid (set in the fork prepare handler): the child's `forked_from`, even
/// if the parent is gone by the time the child writes its header.
static FORK_PARENT: AtomicU32 = AtomicU32::new(0);

/// Fork prepare: no thread may be inside the file lock while the process is copied.
pub fn lock_for_fork() {
    FORK_PARENT.store(sys::getpid(), Ordering::Relaxed);
    if FILE_SINK.load(Ordering::Relaxed) {
        FILE.lock_forever();
    }
}

pub fn unlock_after_fork() {
    if FILE_SINK.load(Ordering::Relaxed) {
        // SAFETY: lock_for_fork took it on this thread.
        unsafe { FILE.force_unlock() };
    }
}

/// Fork child (atfork handler; only this thread exists): the parent's mapped chunks must not
/// receive the child's events, and its descriptors are the parent's (with the parent's lock):
/// the child drops them and claims a file of its own (PATH with `%p`, else PATH.PID, since the
/// parent holds PATH).
pub fn reset_in_child() {
    SCANNING.store(false, Ordering::Relaxed);
    if !FILE_SINK.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: single thread of a new child: nobody else can hold or wait for the lock.
    unsafe { FILE.reset() };
    let c = tls_cursor();
    let mut f = FILE.lock();
    // The parent's mappings in this child: unmapping them does not touch the parent's.
    let own = *c;
    set_cursor(c, [0; 3]);
    release(&mut f, &own, true);
    let shared = f.g;
    release(&mut f, &shared, true);
    f.g = [0; 3];
    // The parent's descriptors (their open files hold the parent's locks) stay open until this
    // process has claimed its own file: the parent may exit meanwhile (a daemon's fork), and its
    // file must still count as in use.
    let inherited = [(f.fd, f.id), (f.base, f.base_id)];
    f.fd = -1;
    f.base = -1;
    f.base_name = outfile::Name::EMPTY;
    f.off = 0;
    f.closed = false;
    f.stopped = false;
    f.name = outfile::Name::EMPTY;
    // Only this thread survives the fork.
    f.nwriters = 0;
    drop(f);
    FILE_SINK.store(false, Ordering::Release);
    SINK.store(SINK_NONE, Ordering::Release);
    START_NS.store(sys::now_ns(), Ordering::Relaxed);
    open_sink(SPEC.get().as_bytes(), FORK_PARENT.load(Ordering::Relaxed));
    for (fd, id) in inherited {
        // Our copy: closing it leaves the parent's lock in place while the parent lives.
        if fd >= 0 && sys::fd_names(fd, id) {
            sys::close(fd);
        }
    }
}

/// Set when the file was cut under our mappings (`bus_fault`): its end is no longer ours to trim.
static CUT: AtomicBool = AtomicBool::new(false);

/// SIGBUS hook (called by the fault handler before anything else, with the faulting address):
/// a fault inside a chunk of the log that the faulting thread was writing means the file was
/// truncated by somebody else (the library never cuts a file a live process maps). The chunk is
/// replaced with anonymous memory, so the store, run again, succeeds (its record is lost),
/// logging stops with one warning, and the program goes on. False if `addr` is not in a chunk of
/// ours. Async-signal-safe: no lock is taken (the shared cursor is looked at only when this thread
/// holds the lock, i.e. when the fault is in it).
pub fn bus_fault(addr: usize) -> bool {
    if !FILE_SINK.load(Ordering::Relaxed) {
        return false;
    }
    let a = addr as u64;
    let within = |c: &[u64; 3]| {
        let len = chunk_len(gen_of(c[2]));
        c[1] != 0 && a < c[1] && a >= c[1] - len
    };
    let own = *tls_cursor();
    let chunk = if within(&own) {
        own
    } else if FILE.held_by_me() {
        // SAFETY: this thread holds the lock (the fault interrupted it inside): nobody else
        // touches the state, and the interrupted code is suspended.
        let g = unsafe { FILE.get_unlocked() }.g;
        if !within(&g) {
            return false;
        }
        g
    } else {
        return false;
    };
    let len = chunk_len(gen_of(chunk[2]));
    // SAFETY: the chunk [end-len, end) was mapped by new_chunk for this cursor; its content is
    // lost already (the file under it is gone).
    if !unsafe { sys::replace_with_anon((chunk[1] - len) as *mut u8, len as usize) } {
        return false;
    }
    SINK.store(SINK_NONE, Ordering::Release);
    if !CUT.swap(true, Ordering::AcqRel) {
        let mut l: Line<300> = Line::new();
        prefix(&mut l).s(
            b"WARNING: log: the log file was truncated by another program while in use; \
              logging stops, the program goes on\n",
        );
        l.report();
    }
    true
}

/// Exit, before the leak report and dumps: nothing is buffered (mapped pages belong to the
/// file, fd sinks are written as events come).
pub fn flush_at_exit() {}

/// Exit: trims the file to its content (the calling thread's and the shared cursor's unused
/// tails are given back; chunks of threads still running stay whole, their unused rest blank
/// lines). Later events are appended with pwrite.
pub fn close_at_exit() {
    if !FILE_SINK.load(Ordering::Relaxed) || FILE.held_by_me() {
        return;
    }
    if MTRACE.load(Ordering::Relaxed) {
        emit(b"= End\n");
    }
    // Threads still running log on, but from now on with whole-line pwrites under the lock:
    // wait for the records they are writing in place, so that the exit does not cut one.
    let _ = SINK.compare_exchange(SINK_MAP, SINK_LATE, Ordering::AcqRel, Ordering::Relaxed);
    let c = tls_cursor();
    let mut g = FILE.lock();
    let f = &mut *g;
    f.closed = true;
    let me = tls::state() as usize;
    let deadline = sys::now_ns() + 50_000_000;
    for &t in &f.writers[..f.nwriters] {
        if t == me {
            continue;
        }
        // SAFETY: a registered thread is alive (it unregisters under the lock we hold, before
        // its TLS block goes away); its flags word is only stored atomically.
        let flags = unsafe { AtomicU64::from_ptr(&mut (*(t as *mut tls::ThreadState)).scratch[2]) };
        while flags.load(Ordering::Relaxed) & BUSY != 0 && sys::now_ns() < deadline {
            sys::sched_yield();
        }
    }
    // This thread's chunk may now lie past the end of the file: forget it (no more stores).
    let own = [c[0], c[1], c[2] & !BUSY];
    set_cursor(c, [0; 3]);
    release(f, &own, false);
    let shared = f.g;
    release(f, &shared, false);
    f.g = [0; 3];
    let off = f.off;
    if !CUT.load(Ordering::Acquire)
        && let Some(fd) = file_fd(f)
    {
        let _ = sys::ftruncate(fd, off);
    }
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
            assert!(OP_PAD[i as usize][n..].iter().all(|&b| b == b'\n'));
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
