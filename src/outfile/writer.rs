//! Writer identity: which process wrote an existing output file (the log header's `# pid` and
//! `# started TICKS BOOT_ID`, or a report file's first line and modification time), whether it
//! is this process in an earlier image (an exec in place), and whether it lives on.

use super::kind::Kind;
use crate::sys::{self, Stat};

/// Slack when comparing a file's modification time with a process start time (the start time
/// has clock-tick resolution, file times a jiffy's).
pub(super) const TIME_SLACK_NS: u64 = 50_000_000;

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
    pub(super) fn same_boot(&self, o: &Ident) -> bool {
        self.boot_len == 0 || o.boot_len == 0 || self.boot() == o.boot()
    }
}

/// Start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub(super) fn proc_start(pid: u32) -> Result<u64, i32> {
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
pub(super) fn start_realtime(start: u64) -> u64 {
    let boot =
        sys::clock_ns(libc::CLOCK_REALTIME).saturating_sub(sys::clock_ns(libc::CLOCK_BOOTTIME));
    boot.saturating_add(start.saturating_mul(1_000_000_000) / sys::clock_ticks())
}

/// The writer named in the first 4 KiB of a file (pid 0: none found).
pub(super) fn read_writer(fd: i32) -> Ident {
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
pub(super) fn written_by_me(w: &Ident, st: &Stat, me: &Ident, kind: Kind) -> bool {
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
pub(super) fn writer_alive(w: &Ident, st: &Stat, me: &Ident) -> bool {
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
