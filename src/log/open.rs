//! Opening the log: the destination named by `log=` (a descriptor, or a file claimed through
//! `outfile`), its header block (docs/LOGFORMAT.md) and the module records that follow it.

use super::dest::{MTRACE, SINK, SINK_FD, SINK_MAP};
use super::file::{FILE, FILE_SINK};
use super::sink::{self, SINK_FD_FILE, SINK_FD_NO, SINK_FD_PIPE};
use super::{clock, modules, text};
use crate::fmt::{Line, prefix};
use crate::outfile;
use crate::sys;
use core::sync::atomic::Ordering;

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

/// Opens the destination named by `spec` and writes the header. `ppid` 0: the original process.
pub(super) fn open_sink(spec: &[u8], ppid: u32) {
    // `-` in an `E` record names the main thread of the file's header block, which only a file
    // of this process's own has: a stream (stderr, fd:N) may carry the records of several
    // processes, each with its header block, so there every record gets its tid in full.
    text::MAIN.store(0, Ordering::Relaxed);
    let mut h: Line<1200> = Line::new();
    header_text(&mut h, ppid);
    let dest = crate::config::Dest::parse(spec);
    if dest == crate::config::Dest::Stderr {
        if sys::stderr_absent() {
            // Closed at start: fd 2 is whatever the program opens next, not a stream for us.
            return;
        }
        SINK_FD_NO.store(2, Ordering::Relaxed);
        SINK_FD_PIPE.store(sys::is_pipe(2), Ordering::Relaxed);
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
                SINK_FD_PIPE.store(sys::is_pipe(fd), Ordering::Relaxed);
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
        text::MAIN.store(outfile::me().pid, Ordering::Relaxed);
        FILE_SINK.store(true, Ordering::Release);
        SINK.store(SINK_MAP, Ordering::Release);
        modules::after_header(ppid);
        return;
    }
    sink::emit(h.as_bytes());
    modules::after_header(ppid);
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
    l.s(ft_format::log::MAGIC.as_bytes()).s(b"\n# program ");
    let mut exe = [0u8; 256];
    let n = sys::readlink_exe(&mut exe).unwrap_or(0);
    if n > 0 {
        l.s(&exe[..n]);
    } else {
        l.s(sys::argv0());
    }
    l.s(b"\n# pid ").u(me.pid as u64);
    let pp = if ppid != 0 { ppid } else { sys::getppid() };
    l.s(b"\n# ppid ").u(pp as u64);
    if me.start != 0 {
        l.s(b"\n# started ").u(me.start).c(b' ').s(me.boot());
    }
    if ppid != 0 {
        l.s(b"\n# forked_from ").u(ppid as u64);
    }
    l.s(b"\n# page_size ").u(sys::page_size() as u64);
    l.s(b"\n# start_ns ")
        .u(clock::START_NS.load(Ordering::Relaxed));
    let debug = sys::getenv_initial(b"MALLOC_DEBUG").unwrap_or(b"");
    // (Cut so that the block always ends with its newline.)
    l.s(b"\n# debug ")
        .s(&debug[..debug.len().min(600)])
        .c(b'\n');
}
