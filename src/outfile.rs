//! The files the library writes into (the allocation log, `report=PATH`): which name a process
//! takes, which existing file it may use and how, so that it never truncates or writes into a
//! file another process is writing, nor a file somebody else planted. docs/LOGFORMAT.md ("Which
//! file a process writes") states the rule for users:
//!
//! - A process writes only a file it claimed, and holds `flock(LOCK_SH)` on it while it lives
//!   (the lock belongs to the open file: it ends when the process ends or execs).
//! - The name is PATH (`%p` expanded), unless another live process holds PATH: then PATH.PID
//!   (PATH.PID.2 ... PATH.PID.9 when even that is held, as with equal pids in two pid
//!   namespaces), and the process holds LOCK_SH on PATH too, so that PATH stays in use while any
//!   process of the run lives (a daemon's children must not take the exited parent's file).
//! - An existing file is used only if it is a regular file owned by our effective uid, not
//!   writable by group or others, with one link; otherwise it is refused with a warning.
//! - An existing file written by an earlier image of this process (same pid and start time: an
//!   exec in place) is appended to. One another process holds, or whose writer is alive, is in
//!   use. Any other (stale, from an earlier run) is truncated under LOCK_EX, after checking that
//!   the path still names it.
//! - A new file is made unnamed (O_TMPFILE), locked, given its header, and only then linked
//!   under its name (the link fails if the name appeared meanwhile). Where O_TMPFILE is not
//!   supported: O_CREAT|O_EXCL, and a file without a writer's identity modified in the last
//!   2 s counts as in use (it is being created).
//!
//! Writer identity: the log header's `# pid` and `# started TICKS BOOT_ID` (process start time
//! from /proc/PID/stat and the boot id: unchanged by exec, different for a reused pid), or for a
//! report file the pid of its first line (`ft_malloc[PID]:`) and its modification time.
//!
//! # Invariants
//! Every descriptor returned is close-on-exec, placed high (`sys::move_high`) and holds
//! LOCK_SH on its file. Nothing here allocates; buffers are on the stack.

use crate::fmt::{Line, prefix};
use crate::sys::{self, Stat};

/// Longest path handled (the expanded spec made absolute, plus a `.PID.N` suffix).
pub const NAME_MAX: usize = 1024;
/// A file modified this recently without a writer identity may be being created.
const CREATING_NS: u64 = 2_000_000_000;
/// Slack when comparing a file's modification time with a process start time (the start time
/// has clock-tick resolution, file times a jiffy's).
const TIME_SLACK_NS: u64 = 50_000_000;

/// A NUL-terminated path.
#[derive(Clone, Copy)]
pub struct Name {
    buf: [u8; NAME_MAX + 1],
    len: usize,
}

impl Name {
    pub const EMPTY: Name = Name {
        buf: [0; NAME_MAX + 1],
        len: 0,
    };

    /// `path` made absolute (the program may change directory before we reopen it; a relative
    /// path stays relative if the current directory cannot be had); None if it does not fit.
    pub fn absolute(path: &[u8]) -> Option<Name> {
        let mut n = Name::EMPTY;
        if path.first() != Some(&b'/')
            && let Some(cwd) = sys::getcwd(&mut n.buf[..NAME_MAX])
        {
            n.len = cwd;
            if n.len > 1 || n.buf[0] != b'/' {
                n.push(b"/")?;
            }
        }
        n.push(path)?;
        Some(n)
    }

    fn push(&mut self, s: &[u8]) -> Option<()> {
        if self.len + s.len() > NAME_MAX - 24 || s.contains(&0) {
            return None;
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        self.buf[self.len] = 0;
        Some(())
    }

    /// This name + `.PID`, + `.K` when `k >= 2`.
    fn suffixed(&self, pid: u32, k: u32) -> Name {
        let mut n = *self;
        let mut b = itoa::Buffer::new();
        let _ = n.push(b".");
        let _ = n.push(b.format(pid).as_bytes());
        if k >= 2 {
            let _ = n.push(b".");
            let _ = n.push(b.format(k).as_bytes());
        }
        n
    }

    /// The path without its NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The path with its NUL (for system calls).
    pub fn c(&self) -> &[u8] {
        &self.buf[..self.len + 1]
    }

    /// The directory part, NUL terminated (`/` for a file at the root, `.` for a bare name).
    fn dir(&self) -> Name {
        let mut d = *self;
        match self.as_bytes().iter().rposition(|&b| b == b'/') {
            Some(cut) => d.len = cut.max(1),
            None => {
                d.buf[0] = b'.';
                d.len = 1;
            }
        }
        d.buf[d.len] = 0;
        d
    }
}

/// `(ENOENT: No such file or directory)`: an errno by name and text, never translated.
pub fn errno_text<const N: usize>(l: &mut Line<N>, e: i32) -> &mut Line<N> {
    l.s(b"(")
        .s(sys::errno_name(e))
        .s(b": ")
        .s(sys::errno_desc(e))
        .s(b")")
}

/// A process: pid, start time (clock ticks since boot, 0 if unknown) and boot id.
#[derive(Clone, Copy)]
pub struct Ident {
    pub pid: u32,
    pub start: u64,
    pub boot: [u8; 40],
    pub boot_len: usize,
    /// Read from a report file (its first line), not from a log header.
    pub report: bool,
}

impl Ident {
    pub fn boot(&self) -> &[u8] {
        &self.boot[..self.boot_len]
    }
    fn same_boot(&self, o: &Ident) -> bool {
        self.boot_len == 0 || o.boot_len == 0 || self.boot() == o.boot()
    }
}

/// Start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
fn proc_start(pid: u32) -> Result<u64, i32> {
    let mut path = [0u8; 32];
    let mut n = 0;
    for part in [
        b"/proc/".as_slice(),
        itoa::Buffer::new().format(pid).as_bytes(),
        b"/stat",
    ] {
        path[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    let mut buf = [0u8; 1024];
    let len = sys::read_small_file(&path[..n + 1], &mut buf)?;
    let text = &buf[..len];
    // The command name (field 2) is in parentheses and may hold anything: start after the last ')'.
    let close = text.iter().rposition(|&b| b == b')').ok_or(libc::EINVAL)?;
    text[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(19)
        .and_then(crate::fmt::parse_num)
        .ok_or(libc::EINVAL)
}

/// This process (read now: the pid changes in a fork child).
pub fn me() -> Ident {
    let pid = sys::getpid();
    let mut id = Ident {
        pid,
        start: proc_start(pid).unwrap_or(0),
        boot: [0; 40],
        boot_len: 0,
        report: false,
    };
    let mut b = [0u8; 64];
    if let Ok(n) = sys::read_small_file(b"/proc/sys/kernel/random/boot_id\0", &mut b) {
        let t = &b[..n];
        let t = t.strip_suffix(b"\n").unwrap_or(t);
        if t.len() <= id.boot.len() && !t.contains(&b' ') {
            id.boot[..t.len()].copy_from_slice(t);
            id.boot_len = t.len();
        }
    }
    id
}

/// CLOCK_REALTIME nanoseconds at which a process started `start` ticks after boot.
fn start_realtime(start: u64) -> u64 {
    let boot =
        sys::clock_ns(libc::CLOCK_REALTIME).saturating_sub(sys::clock_ns(libc::CLOCK_BOOTTIME));
    boot.saturating_add(start.saturating_mul(1_000_000_000) / sys::clock_ticks())
}

/// The writer named in the first 4 KiB of a file (pid 0: none found).
fn read_writer(fd: i32) -> Ident {
    let mut w = Ident {
        pid: 0,
        start: 0,
        boot: [0; 40],
        boot_len: 0,
        report: false,
    };
    let mut buf = [0u8; 4096];
    let n = sys::pread(fd, &mut buf, 0).unwrap_or(0);
    let mut first = true;
    for line in buf[..n].split(|&b| b == b'\n') {
        if first && let Some(r) = line.strip_prefix(b"ft_malloc[") {
            // A report file: its first line names the reporting process.
            let end = r.iter().position(|&b| b == b']').unwrap_or(0);
            w.pid = crate::fmt::parse_num(&r[..end]).unwrap_or(0) as u32;
            w.report = true;
            break;
        }
        first = false;
        if let Some(v) = line.strip_prefix(b"# pid ") {
            if w.pid == 0 {
                w.pid = crate::fmt::parse_num(v).unwrap_or(0) as u32;
            }
        } else if let Some(v) = line.strip_prefix(b"# started ") {
            started(&mut w, v);
        } else if let Some(v) = line.strip_prefix(b"= ft_malloc pid ") {
            // mtrace format: `= ft_malloc pid N started TICKS BOOT_ID`
            let mut it = v.splitn(3, |&b| b == b' ');
            if let Some(p) = it.next() {
                w.pid = crate::fmt::parse_num(p).unwrap_or(0) as u32;
            }
            if it.next() == Some(b"started") {
                started(&mut w, it.next().unwrap_or(b""));
            }
        }
        if w.pid != 0 && w.start != 0 {
            break;
        }
    }
    w
}

/// Parses `TICKS [BOOT_ID]` into `w` (first occurrence only).
fn started(w: &mut Ident, v: &[u8]) {
    if w.start != 0 {
        return;
    }
    let mut it = v.splitn(2, |&b| b == b' ');
    w.start = it.next().and_then(crate::fmt::parse_num).unwrap_or(0);
    if let Some(b) = it.next()
        && b.len() <= w.boot.len()
    {
        w.boot[..b.len()].copy_from_slice(b);
        w.boot_len = b.len();
    }
}

/// Whether the file (writer `w`, status `st`) was written by this very process as a file of
/// this kind, maybe by an earlier image of it (exec keeps the pid and the start time).
fn written_by_me(w: &Ident, st: &Stat, me: &Ident, kind: Kind) -> bool {
    if w.pid == 0 || w.pid != me.pid || w.report != (kind == Kind::Report) {
        return false;
    }
    if w.start != 0 && me.start != 0 {
        return w.start == me.start && w.same_boot(me);
    }
    // No start time recorded (a report file): modified since this process started?
    me.start == 0 || st.mtime_ns.saturating_add(TIME_SLACK_NS) >= start_realtime(me.start)
}

/// Whether the writer of a file still lives (then the file is in use even if it holds no lock
/// at this instant, as during its exec).
fn writer_alive(w: &Ident, st: &Stat, me: &Ident) -> bool {
    if w.pid == 0 {
        return false;
    }
    match proc_start(w.pid) {
        Ok(t) if w.start != 0 => t == w.start && w.same_boot(me),
        // A process with that pid that started after the file's last change did not write it.
        Ok(t) => start_realtime(t) <= st.mtime_ns.saturating_add(TIME_SLACK_NS),
        // No /proc entry, while ours exists: no such process.
        Err(libc::ENOENT) | Err(libc::ESRCH) if me.start != 0 => false,
        Err(_) => sys::process_exists(w.pid),
    }
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

fn octal(m: u32) -> [u8; 4] {
    let d = |s: u32| b'0' + ((m >> s) & 7) as u8;
    [d(9), d(6), d(3), d(0)]
}

/// What the caller writes: the allocation log (header, filler, append after the content) or
/// the report file (appended lines only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    Report,
}

impl Kind {
    fn word(self) -> &'static [u8] {
        match self {
            Kind::Log => b"log",
            Kind::Report => b"report",
        }
    }
    fn flags(self) -> i32 {
        let base = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        match self {
            Kind::Log => base,
            Kind::Report => base | libc::O_APPEND,
        }
    }
}

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

/// One WARNING line: `ft_malloc[PID]: WARNING: log: <what> '<name>' <why>; <consequence>`.
fn warn(kind: Kind, head: &[u8], name: &[u8], why: impl FnOnce(&mut Line<1400>)) {
    let mut l: Line<1400> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: ")
        .s(kind.word())
        .s(b": ")
        .s(head)
        .s(b" '")
        .s(name)
        .s(b"' ");
    why(&mut l);
    l.s(match kind {
        Kind::Log => b"; no log\n".as_slice(),
        Kind::Report => b"; reports go to stderr\n".as_slice(),
    });
    l.report();
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
/// not exist (or vanished); Err(()) after a warning.
fn open_existing(name: &Name, kind: Kind, warn_unsafe: bool) -> Result<Option<(i32, Stat)>, ()> {
    let st = match sys::lstat(name.c()) {
        Ok(st) => st,
        Err(libc::ENOENT) => return Ok(None),
        Err(e) => {
            if warn_unsafe {
                warn(kind, b"cannot open", name.as_bytes(), |l| {
                    errno_text(l, e);
                });
            }
            return Err(());
        }
    };
    let mut l: Line<200> = Line::new();
    if refusal(&st, &mut l) {
        if warn_unsafe {
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
            if warn_unsafe {
                warn(kind, b"cannot open", name.as_bytes(), |l| {
                    errno_text(l, e);
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        let n = Name::absolute(b"/tmp/x.log").unwrap();
        assert_eq!(n.as_bytes(), b"/tmp/x.log");
        assert_eq!(n.c(), b"/tmp/x.log\0");
        assert_eq!(n.suffixed(42, 0).as_bytes(), b"/tmp/x.log.42");
        assert_eq!(n.suffixed(42, 3).as_bytes(), b"/tmp/x.log.42.3");
        assert_eq!(n.dir().c(), b"/tmp\0");
        assert_eq!(Name::absolute(b"/x").unwrap().dir().c(), b"/\0");
        let mut bare = Name::EMPTY;
        bare.push(b"x.log").unwrap();
        assert_eq!(bare.dir().c(), b".\0");
        let rel = Name::absolute(b"a.log").unwrap();
        assert!(rel.as_bytes().starts_with(b"/") && rel.as_bytes().ends_with(b"/a.log"));
        assert_eq!(octal(0o666), *b"0666");
    }
    #[test]
    fn own_start_time() {
        let me = me();
        assert!(me.start > 0);
        assert_eq!(proc_start(me.pid), Ok(me.start));
        assert_eq!(me.boot_len, 36);
    }
}
