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

mod claim;
mod kind;
mod name;
#[cfg(test)]
mod tests;
mod writer;

pub use claim::{Claimed, claim, hold_again, reopen};
pub use kind::{Kind, errno_text};
pub use name::{NAME_MAX, Name};
pub use writer::{Ident, me};
