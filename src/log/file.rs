//! The log file sink (`log=PATH`), claimed by `outfile` (PATH or PATH.PID, never a file
//! another process writes). It is written through shared mappings: a thread's first lines go
//! through the shared cursor (under the small `FILE` lock), then the thread reserves chunks of
//! its own (64 KiB doubling to `CHUNK`), maps each `MAP_SHARED` and formats its lines straight
//! into it with plain stores. The pages belong to the file, so every event is in it even if the
//! process dies by SIGKILL right after. A chunk is allocated by the file system before it is
//! mapped (`fallocate`, or newlines written where that is unsupported) and filled with newlines
//! through the mapping; a line never straddles two chunks; an unused chunk rest stays blank
//! lines. `log_format=mtrace` records go through the shared cursor only (under the
//! lock), so they keep the order in which the calls returned.
//!
//! # Invariants
//! - A thread's cursor (TLS `scratch`: write position, chunk end, chunk end's file offset with
//!   the chunk's generation and `BUSY` in its low bits) always describes a chunk it mapped (or
//!   took over from the shared cursor) that lies entirely below `FileState::off`, so the file
//!   never gets trimmed under it; without a chunk, the position counts the bytes the thread
//!   wrote through the shared cursor. The fork child and `close_at_exit` clear it.
//! - A cursor lets go of its chunk before the chunk is unmapped, and is replaced end-last
//!   (`set_cursor`), so a signal handler that logs meanwhile never writes into an unmapped
//!   chunk.

use super::dest::{MTRACE, SINK, SINK_MAP, SINK_NONE};
use super::ring::Event;
use super::text::{MAX_LINE, SLACK, text_raw};
use crate::fmt::{Line, prefix};
use crate::lock::Mutex;
use crate::outfile;
use crate::sys;
use crate::tls;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Chunks that end below this file offset are written with newlines before they are mapped
/// (`new_chunk`); later ones are reserved.
const FILL_BELOW: u64 = 256 << 20;

/// Flag in a thread cursor's end offset (`scratch[2]`, a multiple of the page size otherwise):
/// a record is being written in place in the chunk (`text_in_place`, `put`).
pub(super) const BUSY: u64 = 1;

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
pub(super) fn set_cursor(c: &mut [u64; 3], n: [u64; 3]) {
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

/// Largest chunk a cursor maps at a time.
const CHUNK: u64 = 1 << 20;
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
pub(super) struct FileState {
    pub(super) fd: i32,
    pub(super) id: sys::FileId,
    /// LOCK_SH on the base name when this process writes PATH.PID (-1 otherwise).
    pub(super) base: i32,
    pub(super) base_id: sys::FileId,
    pub(super) base_name: outfile::Name,
    /// The file's absolute name, to open it again if the program closes our descriptor.
    pub(super) name: outfile::Name,
    /// File offset where the next chunk or appended line starts.
    pub(super) off: u64,
    /// At exit: no new chunks; later lines are appended with pwrite.
    pub(super) closed: bool,
    /// Out of space, or the file is gone: nothing more is written (said once).
    pub(super) stopped: bool,
    /// The shared cursor: threads' first lines, mtrace records, a leftover chunk tail.
    pub(super) g: [u64; 3],
    /// TLS blocks of the live threads that write a chunk of their own (`close_at_exit` waits
    /// for the record each is writing); threads past the table's size are not waited for.
    pub(super) writers: [usize; WRITERS],
    pub(super) nwriters: usize,
}

const WRITERS: usize = 128;

pub(super) static FILE: Mutex<FileState> = Mutex::new(FileState {
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
pub(super) static FILE_SINK: AtomicBool = AtomicBool::new(false);
/// The pthread key whose destructor (`thread_exit`) gives back an exiting thread's chunk.
pub(super) static KEY: AtomicU64 = AtomicU64::new(u64::MAX);

/// The log file's identity (zero without a log file): `report=` must not claim it too.
pub fn file_id() -> sys::FileId {
    if !FILE_SINK.load(Ordering::Acquire) || FILE.held_by_me() {
        return sys::FileId::default();
    }
    FILE.lock().id
}

/// Our descriptor of the file, opened again by name if the program closed it (or reused its
/// number); None (after one warning, logging stopped) if the file cannot be had again.
pub(super) fn file_fd(f: &mut FileState) -> Option<i32> {
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
    // The gap before an aligned chunk becomes blank lines. The chunk is written with newlines
    // while the file is small (the page cache then holds it in large folios, mapped with a
    // fault each); further on it is reserved without being written and gets its newlines
    // through the mapping (writing it first, only to overwrite it through the mapping, cost
    // most of a busy log's time on ext4 once the file had grown past a few hundred MiB).
    let start = f.off.max(base);
    let reserved = if f.off < base {
        sys::fill_newlines(fd, f.off, base - f.off)
    } else {
        Ok(())
    }
    .and_then(|()| {
        if end_off <= FILL_BELOW {
            sys::fill_newlines(fd, start, end_off - start).map(|()| true)
        } else {
            sys::reserve(fd, start, end_off - start)
        }
    });
    let blank = match reserved {
        Ok(blank) => blank,
        Err(e) => {
            // Give back what was written: no chunk in use lies past `off`.
            let _ = sys::ftruncate(fd, f.off);
            stop_errno(f, e);
            return None;
        }
    };
    let Some(p) = sys::map_shared_aligned(fd, base, len as usize, len as usize) else {
        // The reserved range reads as NUL bytes: cut it off again.
        let _ = sys::ftruncate(fd, f.off);
        return None;
    };
    let p = p as u64;
    let pos = p + start - base;
    if !blank {
        // SAFETY: [pos, p + len) is the part of the chunk just mapped (shared, writable) that
        // lies at or past `off`: no record of any thread is there.
        unsafe { core::ptr::write_bytes(pos as *mut u8, b'\n', (p + len - pos) as usize) };
    }
    f.off = end_off;
    Some([pos, p + len, end_off | generation << GEN_SHIFT])
}

/// Gives back the unused tail of a cursor's chunk if it is the last one of the file (so the
/// file ends at its content), then unmaps it if asked. Caller holds `FILE`.
pub(super) fn release(f: &mut FileState, c: &[u64; 3], unmap: bool) {
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

/// Fork child: gives up the parent's chunk of this thread's cursor `c` (already cleared). If a
/// record was being written in it (BUSY: the fork came from a signal handler that interrupted
/// the writer), the interrupted code finishes the record when the handler returns: the chunk
/// becomes private anonymous memory, where those stores land, instead of being unmapped.
/// Caller holds `FILE`.
pub(super) fn release_in_child(f: &mut FileState, c: &[u64; 3]) {
    if c[1] != 0 && c[2] & BUSY != 0 {
        let len = chunk_len(gen_of(c[2]));
        // SAFETY: [end-len, end) was mapped by new_chunk for this cursor; in the child its
        // content is the parent's, which a private copy leaves alone.
        if unsafe { sys::replace_with_anon((c[1] - len) as *mut u8, len as usize) } {
            return;
        }
    }
    release(f, c, true);
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
        // Ask for a call at thread exit (our key is one of the first, which do not allocate).
        sys::thread_key_arm(KEY.load(Ordering::Relaxed) as u32);
    }
    if !put_at(c, line) {
        append(f, line);
    }
}

pub(super) fn tls_cursor() -> &'static mut [u64; 3] {
    // SAFETY: this thread's own TLS block; the scratch words belong to the log.
    unsafe { &mut (*tls::state()).scratch }
}

/// Writes one complete line (or several) to the file; `sink` is `SINK_MAP` or `SINK_LATE`.
pub(super) fn put(line: &[u8], sink: u8) {
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

/// Thread exit (pthread key destructor, registered when the thread maps a chunk): the chunk's
/// unused tail goes to the shared cursor if it is larger than the shared chunk's, so the file
/// holds records rather than reserved space; otherwise it is given back.
pub(super) extern "C" fn thread_exit(_v: *mut libc::c_void) {
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

/// Writes the `E` record of `e` straight into this thread's chunk of the log file when the
/// chunk has room for the longest one; false (nothing written) otherwise. The room is reserved
/// before formatting (a signal handler that logs an event meanwhile writes after it; the
/// reservation's unused rest then stays filler newlines), and the digits a number write leaves
/// past the record's end are overwritten with newlines again, so the chunk holds only complete
/// lines and blank lines.
#[inline(always)]
pub(super) fn text_in_place(e: &Event, stack: u32) -> bool {
    const RESERVE: u64 = (MAX_LINE + SLACK) as u64;
    let c = tls_cursor();
    // The chunk is in use until the record is complete: an event logged meanwhile by a signal
    // handler goes through the shared cursor (see `put`), and does not give the chunk back.
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
        let len = text_raw(dst, e, stack);
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

/// Set when the file was cut under our mappings (`bus_fault`): its end is no longer ours to trim.
pub(super) static CUT: AtomicBool = AtomicBool::new(false);

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
