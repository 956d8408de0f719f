//! The dump functions a program or a debugger calls: show_alloc_mem (the classic format),
//! show_alloc_mem_ex and show_alloc_mem_ex_cmd (written by `dump` and `cmd`). Each runs on a
//! stack with room for its symbol lookups (`sys::room`), whatever the caller's thread has.

use crate::lifecycle;
use crate::sys::room::with_room;

/// The classic ft_malloc dump on standard output.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem() {
    lifecycle::ensure();
    with_room(|| crate::dump::show_alloc_mem());
}

/// Everything show_alloc_mem prints, plus every block's state, history, canary status and a
/// hexdump, heap statistics and the last events of the log.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem_ex() {
    lifecycle::ensure();
    with_room(|| crate::dump::show_alloc_mem_ex());
}

/// One command of the dump (see `help`).
/// # Safety
/// `cmd` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn show_alloc_mem_ex_cmd(cmd: *const libc::c_char) {
    lifecycle::ensure();
    // SAFETY: the caller's contract is the dump's.
    with_room(|| unsafe { crate::cmd::show_alloc_mem_ex_cmd(cmd) });
}
