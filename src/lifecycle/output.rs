//! The report destination (`report=stderr|fd:N|PATH`): set up at init, opened at the first
//! report (a file) or at once (a descriptor), opened again when the program closed ours, and
//! let go of in a fork child, which claims its own file.

use crate::config;
use crate::fmt::{Line, prefix};
use crate::sys;
use core::sync::atomic::Ordering;

/// The `report=` value, kept for the opener (first report, fork child, reopening).
static REPORT_SPEC: config::Once<config::Path> = config::Once::new(config::Path::NONE);
/// LOCK_SH on the base name when this process writes its reports to PATH.PID.
static REPORT_BASE: sys::OwnedFd = sys::OwnedFd::none();
/// In a fork child: the parent's report file, kept open (it holds the parent's lock).
static REPORT_PARENT: sys::OwnedFd = sys::OwnedFd::none();

/// Records the `report=` value and prepares its destination.
/// # Safety
/// Only during init, before other threads run (see `config::Once`).
pub(super) unsafe fn set_up(report: config::Path) {
    // SAFETY: the caller's contract.
    unsafe { REPORT_SPEC.set(report) };
    sys::set_report_opener(open_output);
    match config::Dest::parse(report.as_bytes()) {
        // Checked now (a closed descriptor gets its warning at start); a file is created
        // at the first report, so that runs without errors leave no empty report files.
        config::Dest::Fd(_) => open_output(),
        config::Dest::File(_) => {
            sys::REPORT_FD.store(sys::REPORT_PENDING, Ordering::Release);
        }
        config::Dest::Stderr => {}
    }
}

/// Opens the report destination (`sys::write_report` calls it with reports pending: at the
/// first report, and again if the program closed our descriptor). `stderr` is fd 2; `fd:N`
/// gets our own high close-on-exec duplicate of N (again only while N still names the same
/// file); a path is claimed like the log (`outfile`: PATH or PATH.PID, never a file another
/// process writes or one planted by somebody else) and appended to. Leaves `REPORT_FD` at
/// fd 2 after one warning when that fails.
pub fn open_output() {
    let spec = REPORT_SPEC.get().as_bytes();
    let stderr = || sys::REPORT_FD.store(sys::REPORT_STDERR, Ordering::Release);
    let dest = config::Dest::parse(spec);
    if dest == config::Dest::Stderr {
        stderr();
        return;
    }
    if let config::Dest::Fd(v) = dest {
        let before = sys::REPORT_FILE.id();
        let same = v.is_some_and(|v| {
            before == sys::FileId::default() || sys::fstat(v).map(|st| st.id) == Ok(before)
        });
        let dup = match v {
            Some(v) if same => sys::dup_high(v),
            _ => Err(libc::EBADF),
        };
        match dup {
            Ok(fd) if sys::REPORT_FILE.set(fd) => {
                sys::REPORT_FD.store(fd, Ordering::Release);
            }
            r => {
                stderr();
                let mut l: Line<300> = Line::new();
                prefix(&mut l)
                    .s(b"WARNING: report: cannot use ")
                    .s(spec)
                    .c(b' ');
                crate::outfile::errno_text(&mut l, r.err().unwrap_or(libc::EBADF));
                l.s(b"; reports go to stderr\n");
                l.report();
            }
        }
        return;
    }
    let mut path = [0u8; 512];
    let n = crate::log::expand(spec, &mut path);
    let log = crate::log::file_id();
    match crate::outfile::claim(&path[..n], crate::outfile::Kind::Report, b"", log) {
        Some(c) if sys::REPORT_FILE.set(c.fd) => {
            // (Opened again after the program closed ours: an earlier hold may still be open.)
            if c.base >= 0 && (REPORT_BASE.get().is_some() || !REPORT_BASE.set(c.base)) {
                sys::close(c.base);
            }
            sys::REPORT_FD.store(c.fd, Ordering::Release);
        }
        _ => stderr(),
    }
}

/// In a fork child: the report file is the parent's, so this process claims its own at its
/// first report. Its descriptors stay open as holds (their open files carry the parent's
/// locks), so that the parent's files count as in use even after the parent exits.
pub(super) fn after_fork_in_child() {
    if sys::REPORT_FD.load(Ordering::Acquire) != sys::REPORT_STDERR
        && !matches!(
            config::Dest::parse(REPORT_SPEC.get().as_bytes()),
            config::Dest::Fd(_)
        )
    {
        if let Some(fd) = sys::REPORT_FILE.get() {
            REPORT_PARENT.close();
            if !REPORT_PARENT.set(fd) {
                sys::close(fd);
            }
        }
        sys::REPORT_FILE.forget();
        sys::REPORT_FD.store(sys::REPORT_PENDING, Ordering::Release);
    }
}
