//! Claiming an output file: the name a process takes (PATH, else PATH.PID[.K]), whether an
//! existing file may be used and how (appended to, truncated under LOCK_EX, or in use), and
//! making a new one (O_TMPFILE, linked once locked and headed). The rules are in the header
//! of `outfile`.

use super::kind::{Kind, errno_text, warn};
use super::name::Name;
use super::writer::{Ident, TIME_SLACK_NS, me, read_writer, start_realtime};
use super::writer::{writer_alive, written_by_me};
use crate::fmt::Line;
use crate::sys::{self, Stat};

/// A file modified this recently without a writer identity may be being created.
const CREATING_NS: u64 = 2_000_000_000;

/// A file claimed for writing.
pub struct Claimed {
    /// High, close-on-exec, holding LOCK_SH.
    pub fd: i32,
    /// LOCK_SH on the base name when the file is PATH.PID (-1 otherwise).
    pub base: i32,
    /// The base name (PATH).
    pub base_name: Name,
    pub name: Name,
    /// Where writing goes on: after the header this call wrote (log), or the size (report).
    pub end: u64,
    /// True when the file was an earlier image's and is appended to (exec in place).
    pub appended: bool,
}

#[allow(clippy::large_enum_variant)] // a stack value returned once per claim
enum Outcome {
    Taken(Claimed),
    InUse,
    Failed,
}

/// Whether an existing file must not be used; if so, why (in `l`).
fn refusal<const N: usize>(st: &Stat, l: &mut Line<N>) -> bool {
    if !st.is_regular() {
        l.s(st.kind()).s(b", not a regular file");
    } else if st.uid != sys::geteuid() {
        l.s(b"owned by uid ")
            .u(st.uid as u64)
            .s(b", not by this process's uid ")
            .u(sys::geteuid() as u64);
    } else if st.mode & 0o022 != 0 {
        l.s(b"writable by group or others (mode ")
            .s(&octal(st.mode & 0o7777))
            .s(b")");
    } else if st.nlink != 1 {
        l.s(b"it has ").u(st.nlink).s(b" hard links");
    } else {
        return false;
    }
    true
}

pub(super) fn octal(m: u32) -> [u8; 4] {
    let d = |s: u32| b'0' + ((m >> s) & 7) as u8;
    [d(9), d(6), d(3), d(0)]
}

/// Claims the file for `path` (`%p` already expanded), writing `header` at the start of a new
/// file or after the content of an earlier image's. `avoid`: a file this process writes
/// already (the log, when reports are claimed), taken as in use. None after a warning.
pub fn claim(path: &[u8], kind: Kind, header: &[u8], avoid: sys::FileId) -> Option<Claimed> {
    let Some(base) = Name::absolute(path) else {
        warn(kind, b"cannot use", path, |l| {
            l.s(b"(the path is too long)");
        });
        return None;
    };
    let me = me();
    // An earlier image of this process may have written PATH.PID (PATH was in use then).
    if let Some(mut c) = take_mine(&base.suffixed(me.pid, 0), kind, header, &me, avoid) {
        c.base = hold(&base);
        c.base_name = base;
        return Some(c);
    }
    for k in 0..=9 {
        let name = if k == 0 {
            base
        } else {
            base.suffixed(me.pid, k)
        };
        match take(&name, kind, header, &me, avoid) {
            Outcome::Taken(mut c) => {
                if k > 0 {
                    c.base = hold(&base);
                    c.base_name = base;
                }
                return Some(c);
            }
            Outcome::InUse => {}
            Outcome::Failed => return None,
        }
    }
    warn(kind, b"cannot use", base.as_bytes(), |l| {
        l.s(b"(it and its .PID names are in use by other processes)");
    });
    None
}

/// Opens `name` again for writing (after the program closed our descriptor) if it is still the
/// file `id` and nobody else holds it exclusively; a high close-on-exec descriptor with LOCK_SH.
pub fn reopen(name: &Name, id: sys::FileId, kind: Kind) -> Option<i32> {
    if name.len == 0 {
        return None;
    }
    let fd = sys::open(name.c(), kind.flags(), 0).ok()?;
    let ok = sys::fstat(fd).is_ok_and(|st| st.id == id)
        && sys::flock(fd, libc::LOCK_SH | libc::LOCK_NB).is_ok();
    if !ok {
        sys::close(fd);
        return None;
    }
    Some(sys::move_high(fd))
}

/// LOCK_SH on the base name (the run's file) again, after the program closed our descriptor
/// (daemons close every descriptor): only if the name still is the file `id`. -1 if not.
pub fn hold_again(base: &Name, id: sys::FileId) -> i32 {
    let fd = hold(base);
    if fd >= 0 && sys::fstat(fd).map(|st| st.id) != Ok(id) {
        sys::close(fd);
        return -1;
    }
    fd
}

/// LOCK_SH on the base name (the run's file), as a high close-on-exec descriptor; -1 if that
/// cannot be had (the file is then only protected by its writers' own locks).
fn hold(base: &Name) -> i32 {
    let Ok(fd) = sys::open(
        base.c(),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        0,
    ) else {
        return -1;
    };
    let ok = sys::fstat(fd).is_ok_and(|st| st.is_regular())
        && sys::flock(fd, libc::LOCK_SH | libc::LOCK_NB).is_ok();
    if !ok {
        sys::close(fd);
        return -1;
    }
    sys::move_high(fd)
}

/// LOCK_SH, waiting a little for a process that holds LOCK_EX while it examines the file.
fn lock_shared(fd: i32) -> bool {
    for _ in 0..2000 {
        match sys::flock(fd, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(()) => return true,
            Err(libc::EWOULDBLOCK) => sys::sched_yield(),
            Err(_) => return false,
        }
    }
    false
}

/// Opens an existing `name` that passes the safety checks; with its status. None if it does
/// not exist (or vanished); Err(()) after a warning (when `loud`).
fn open_existing(name: &Name, kind: Kind, loud: bool) -> Result<Option<(i32, Stat)>, ()> {
    let cannot_open = |e: i32| {
        if loud {
            warn(kind, b"cannot open", name.as_bytes(), |l| {
                errno_text(l, e);
            });
        }
    };
    let st = match sys::lstat(name.c()) {
        Ok(st) => st,
        Err(libc::ENOENT) => return Ok(None),
        Err(e) => {
            cannot_open(e);
            return Err(());
        }
    };
    let mut l: Line<200> = Line::new();
    if refusal(&st, &mut l) {
        if loud {
            warn(kind, b"not using", name.as_bytes(), |w| {
                w.s(b"(").s(l.as_bytes()).s(b")");
            });
        }
        return Err(());
    }
    let fd = match sys::open(name.c(), kind.flags(), 0) {
        Ok(fd) => fd,
        Err(libc::ENOENT) => return Ok(None),
        Err(e) => {
            cannot_open(e);
            return Err(());
        }
    };
    match sys::fstat(fd) {
        // Replaced between lstat and open: look again.
        Ok(fst) if fst.id == st.id => Ok(Some((fd, fst))),
        _ => {
            sys::close(fd);
            Ok(None)
        }
    }
}

/// `name` if an earlier image of this process wrote it: appended to.
fn take_mine(
    name: &Name,
    kind: Kind,
    header: &[u8],
    me: &Ident,
    avoid: sys::FileId,
) -> Option<Claimed> {
    let (fd, st) = open_existing(name, kind, false).ok()??;
    if st.id == avoid || !written_by_me(&read_writer(fd), &st, me, kind) || !lock_shared(fd) {
        sys::close(fd);
        return None;
    }
    append(fd, &st, kind, header, *name)
}

/// Continues an earlier image's file: the log's trailing filler (blank lines, NULs) is cut,
/// a cut record ended, and the new image's header block written after the content.
fn append(fd: i32, st: &Stat, kind: Kind, header: &[u8], name: Name) -> Option<Claimed> {
    let mut end = st.size;
    if kind == Kind::Log {
        let (content, ends_line) = content_end(fd, st.size);
        end = content;
        let written = sys::ftruncate(fd, end)
            .and_then(|()| {
                if ends_line {
                    return Ok(());
                }
                end += 1;
                sys::pwrite_all(fd, b"\n", end - 1)
            })
            .and_then(|()| sys::pwrite_all(fd, header, end));
        if let Err(e) = written {
            warn(kind, b"cannot append to", name.as_bytes(), |l| {
                errno_text(l, e);
            });
            sys::close(fd);
            return None;
        }
        end += header.len() as u64;
    }
    Some(Claimed {
        fd: sys::move_high(fd),
        base: -1,
        base_name: Name::EMPTY,
        name,
        end,
        appended: true,
    })
}

/// End of the content of a log file of `size` bytes: after the last byte that is neither a
/// newline nor NUL (and its newline); and whether the content ends with a newline.
fn content_end(fd: i32, size: u64) -> (u64, bool) {
    let mut buf = [0u8; 4096];
    let mut pos = size;
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let want = (pos - start) as usize;
        let Ok(n) = sys::pread(fd, &mut buf[..want], start) else {
            return (size, true);
        };
        if n < want {
            return (size, true);
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b != b'\n' && b != 0) {
            let last = start + i as u64;
            let mut next = [0u8; 1];
            let nl = sys::pread(fd, &mut next, last + 1) == Ok(1) && next[0] == b'\n';
            return if nl {
                (last + 2, true)
            } else {
                (last + 1, false)
            };
        }
        pos = start;
    }
    (0, true)
}

/// Takes `name`: creates it, replaces a stale file, appends to an earlier image's; InUse when
/// another process holds it or its writer lives.
fn take(name: &Name, kind: Kind, header: &[u8], me: &Ident, avoid: sys::FileId) -> Outcome {
    for _ in 0..8 {
        let (fd, st) = match open_existing(name, kind, true) {
            Err(()) => return Outcome::Failed,
            Ok(Some(x)) => x,
            Ok(None) => match create(name, kind, header) {
                Ok(c) => return Outcome::Taken(c),
                Err(libc::EEXIST) => continue,
                Err(e) => {
                    warn(kind, b"cannot create", name.as_bytes(), |l| {
                        errno_text(l, e);
                    });
                    return Outcome::Failed;
                }
            },
        };
        if st.id == avoid {
            sys::close(fd);
            return Outcome::InUse;
        }
        let exclusive = sys::flock(fd, libc::LOCK_EX | libc::LOCK_NB).is_ok();
        // Under LOCK_EX, the path must still name this file (nobody replaced it meanwhile).
        if exclusive && sys::lstat(name.c()).map(|s| s.id) != Ok(st.id) {
            sys::close(fd);
            continue;
        }
        let w = read_writer(fd);
        if written_by_me(&w, &st, me, kind) {
            if (exclusive && sys::flock(fd, libc::LOCK_SH).is_ok()) || lock_shared(fd) {
                return match append(fd, &st, kind, header, *name) {
                    Some(c) => Outcome::Taken(c),
                    None => Outcome::Failed,
                };
            }
            sys::close(fd);
            return Outcome::InUse;
        }
        // Stale only if nobody holds it, nobody is creating it, its writer is gone, it was not
        // changed since this process started (a writer that lived on after that, as a parent
        // that spawned us and exited, was of this run), and no process of its run lives on.
        let busy = !exclusive
            || (w.pid == 0 && sys::clock_ns(libc::CLOCK_REALTIME) < st.mtime_ns + CREATING_NS)
            || writer_alive(&w, &st, me)
            || (me.start != 0
                && st.mtime_ns.saturating_add(TIME_SLACK_NS) >= start_realtime(me.start))
            || (kind == Kind::Log && run_alive(name, me));
        if busy {
            sys::close(fd);
            return Outcome::InUse;
        }
        // Stale: an earlier run's. We hold LOCK_EX and the path names it: start it afresh.
        if let Err(e) = sys::ftruncate(fd, 0).and_then(|()| sys::pwrite_all(fd, header, 0)) {
            warn(kind, b"cannot rewrite", name.as_bytes(), |l| {
                errno_text(l, e);
            });
            sys::close(fd);
            return Outcome::Failed;
        }
        sys::fchmod(fd, 0o600);
        let _ = sys::flock(fd, libc::LOCK_SH);
        return Outcome::Taken(Claimed {
            fd: sys::move_high(fd),
            base: -1,
            base_name: Name::EMPTY,
            name: *name,
            end: header.len() as u64,
            appended: false,
        });
    }
    Outcome::InUse
}

/// A new file at `name`, locked and holding `header` before anyone can open it. Err(errno):
/// EEXIST if the name appeared meanwhile.
fn create(name: &Name, kind: Kind, header: &[u8]) -> Result<Claimed, i32> {
    let done = |fd: i32| Claimed {
        fd: sys::move_high(fd),
        base: -1,
        base_name: Name::EMPTY,
        name: *name,
        end: header.len() as u64,
        appended: false,
    };
    if !header.is_empty()
        && let Ok(fd) = sys::open(
            name.dir().c(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    {
        let linked = sys::flock(fd, libc::LOCK_SH)
            .and_then(|()| sys::pwrite_all(fd, header, 0))
            .and_then(|()| sys::link_fd(fd, name.c()));
        match linked {
            Ok(()) => return Ok(done(fd)),
            Err(libc::EEXIST) => {
                sys::close(fd);
                return Err(libc::EEXIST);
            }
            // Linking an unnamed file needs /proc or CAP_DAC_READ_SEARCH: create it by name.
            Err(_) => sys::close(fd),
        }
    }
    let fd = sys::open(name.c(), kind.flags() | libc::O_CREAT | libc::O_EXCL, 0o600)?;
    let _ = sys::flock(fd, libc::LOCK_SH);
    if let Err(e) = sys::pwrite_all(fd, header, 0) {
        sys::close(fd);
        return Err(e);
    }
    Ok(done(fd))
}

/// Whether a process of the run that wrote `base` lives on: a `base.PID[.K]` file beside it
/// whose writer is alive (a daemon whose hold on `base` went with its close loop, while the
/// process that wrote `base` has ended). Looks at 4096 names at most.
fn run_alive(base: &Name, me: &Ident) -> bool {
    let Ok(dir) = sys::open(
        base.dir().c(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    ) else {
        return false;
    };
    let file = {
        let b = base.as_bytes();
        let cut = b.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
        &b[cut..]
    };
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    let mut alive = false;
    'scan: while seen < 4096 {
        let Ok(n) = sys::getdents(dir, &mut buf) else {
            break;
        };
        if n == 0 {
            break;
        }
        // linux_dirent64: u64 inode, i64 offset, u16 record length, u8 type, name.
        let mut at = 0;
        while at + 19 < n {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 || at + reclen > n {
                break 'scan;
            }
            let name = &buf[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            at += reclen;
            seen += 1;
            let Some(rest) = name.strip_prefix(file).and_then(|r| r.strip_prefix(b".")) else {
                continue;
            };
            if rest.is_empty() || !rest.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
                continue;
            }
            let mut other = *base;
            other.len = base.len - file.len();
            if other.push(name).is_none() {
                continue;
            }
            let Ok(Some((fd, st))) = open_existing(&other, Kind::Log, false) else {
                continue;
            };
            let w = read_writer(fd);
            sys::close(fd);
            if w.pid != me.pid && !w.report && writer_alive(&w, &st, me) {
                alive = true;
                break 'scan;
            }
        }
    }
    sys::close(dir);
    alive
}
