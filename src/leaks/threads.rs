//! Dead frames on the stacks of other threads: what they still hold must not count as
//! references, or a block a thread leaked looks reachable from its own stale frames. valgrind
//! reads a thread's stack from its stack pointer up, and no exited thread's stack.
//!
//! A stack glibc maps for a thread is one mapping right above its guard page, with the thread's
//! descriptor (`struct pthread`, whose first word and third word hold its own address) a few
//! KiB below its top. The kernel clears the descriptor's thread id when the thread exits, and
//! glibc sets it to -1 when it keeps the stack for a later thread (its stack cache). Of an
//! exited thread's stack the check reads the descriptor and what lies above it only (a
//! joinable thread's result waits there for its join); of a live thread's, what lies above its
//! stack pointer (and the red zone below it) while the thread waits in the kernel, which
//! /proc/thread-self/../TID/syscall tells (a running thread's is read whole). The main thread's
//! stack (`[stack]`), when another thread runs the check, likewise, and the arguments of the
//! system call a thread waits in count as references too. A waiting thread may wake up
//! meanwhile (a signal handler runs below its stack pointer, and may hold a block there): its
//! time on a CPU (`schedstat`) is read before its stack pointer and again once the part above
//! is read, and if it moved, the rest of the stack is read too. Its other registers are out of
//! reach (the kernel keeps them): a block it holds in one alone, with no copy above its stack
//! pointer, counts as a leak, where valgrind, which reads them, would not.
//!
//! Where the thread id lies in a descriptor is read off this thread's own: the first 32-bit
//! word of it that holds this thread's id. Nothing is skipped when that fails (another C
//! library, an unreadable descriptor) or when the mapping cannot be read.

use crate::sys;

/// Bytes of this thread's descriptor searched for its id.
const ID_SPAN: usize = 1024;
/// Bytes at the top of a stack searched for a descriptor.
const TOP: usize = 8 << 10;
/// Alignment of a descriptor (glibc's static TLS alignment is at least this).
const ALIGN: usize = 64;
/// Bytes below the stack pointer that a function may use without moving it (the x86-64 ABI's
/// red zone; aarch64 has none, and this costs nothing there).
const RED_ZONE: usize = 128;

/// Where the thread id lies in a thread descriptor (an offset from its start), read off this
/// thread's own; `buf` is scratch room of at least `ID_SPAN` bytes.
pub(super) fn id_offset(buf: &mut [u8]) -> Option<usize> {
    let me = sys::gettid() as i32;
    let n = sys::read_own(sys::thread_self(), ID_SPAN, buf).ok()?;
    (0..n / 4)
        .map(|k| k * 4)
        .find(|&o| i32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]) == me)
}

/// A thread seen waiting in the kernel: its id, its time on a CPU then, and the arguments of
/// the system call it waits in (a buffer it reads into may be a block, and held in no other
/// place but a register).
pub(super) struct Waiting {
    tid: i32,
    ran: u64,
    pub(super) args: [usize; 6],
}

/// Whether the thread has not run since it was seen waiting (its part of the stack below its
/// stack pointer was dead all along).
pub(super) fn still_waiting(w: &Waiting) -> bool {
    run_time(w.tid) == Some(w.ran)
}

/// For a mapping `[start, end)` that lies right above an inaccessible one, and is not this
/// thread's stack: where its live part starts if it is another thread's stack (the descriptor
/// of an exited thread, the red zone below a waiting thread's stack pointer, with the
/// `Waiting` to check once that part is read). None: read it whole (no descriptor found, a
/// running thread's, unreadable). `id` is `id_offset`; `buf` is scratch room of at least `TOP`
/// bytes.
pub(super) fn live_from(
    start: usize,
    end: usize,
    id: usize,
    buf: &mut [u8],
) -> Option<(usize, Option<Waiting>)> {
    let from = end.saturating_sub(TOP).max(start);
    let len = end - from;
    if sys::read_own(from, len, buf).ok()? < len {
        return None;
    }
    let word = |a: usize| usize::from_ne_bytes(core::array::from_fn(|k| buf[a - from + k]));
    let mut x = (end - ALIGN) & !(ALIGN - 1);
    while x >= from {
        if x + 24 <= end && word(x) == x && word(x + 16) == x {
            if x + id + 4 > end {
                return None;
            }
            let o = x + id - from;
            let tid = i32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
            if tid <= 0 {
                return Some((x, None));
            }
            return waiting_from(tid, start, x).map(|(low, w)| (low, Some(w)));
        }
        x = x.checked_sub(ALIGN)?;
    }
    None
}

/// Of the main thread's stack `[start, end)`, read by another thread: where its live part
/// starts while the main thread waits in the kernel. None: read it whole (running, or exited:
/// its stack pointer then reads 0).
pub(super) fn main_live_from(start: usize, end: usize) -> Option<(usize, Waiting)> {
    waiting_from(sys::getpid() as i32, start, end)
}

/// The red zone below the stack pointer of thread `tid` while it waits in the kernel, if it
/// lies in `[start, end)`, and the thread seen waiting. None without its time on a CPU.
fn waiting_from(tid: i32, start: usize, end: usize) -> Option<(usize, Waiting)> {
    let ran = run_time(tid)?;
    let (sp, args) = waiting_sp(tid)?;
    let low = sp.checked_sub(RED_ZONE)? & !7;
    (low >= start && low < end).then_some((low, Waiting { tid, ran, args }))
}

/// The time thread `tid` of this process has spent on a CPU (ns): the first number of
/// /proc/thread-self/../TID/schedstat. None: unreadable (a kernel without scheduler
/// statistics).
fn run_time(tid: i32) -> Option<u64> {
    let mut text = [0u8; 128];
    let len = read_task_file(tid, b"/schedstat\0", &mut text)?;
    crate::fmt::parse_num(text[..len].split(|&b| b == b' ').next()?)
}

/// Reads /proc/thread-self/../TID`file` (`file` starts with '/' and ends with a NUL) into
/// `text`; its length.
fn read_task_file(tid: i32, file: &[u8], text: &mut [u8]) -> Option<usize> {
    const DIR: &[u8] = b"/proc/thread-self/../";
    let mut path = [0u8; 64];
    let mut num = itoa::Buffer::new();
    let num = num.format(tid).as_bytes();
    let mut n = 0;
    for part in [DIR, num, file] {
        path[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    sys::read_small_file(&path[..n], text).ok()
}

/// The stack pointer of thread `tid` of this process while it waits in the kernel, and the
/// arguments of the system call it waits in (zero when it waits outside one): from
/// /proc/thread-self/../TID/syscall, `NR ARG1..ARG6 SP PC` (`-1 SP PC` outside a call,
/// `running` while it runs).
fn waiting_sp(tid: i32) -> Option<(usize, [usize; 6])> {
    let mut text = [0u8; 256];
    let len = read_task_file(tid, b"/syscall\0", &mut text)?;
    parse_syscall(&text[..len])
}

/// `waiting_sp` of the text of a `syscall` file.
fn parse_syscall(text: &[u8]) -> Option<(usize, [usize; 6])> {
    let mut words = text
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|w| !w.is_empty());
    // Outside a system call: two numbers follow (the stack and program pointers); in one,
    // eight (its six arguments first).
    let want = if words.next()? == b"-1" { 2 } else { 8 };
    let mut nums = [0usize; 8];
    let mut n = 0;
    for w in words {
        if n == want {
            return None;
        }
        nums[n] = hex(w.strip_prefix(b"0x")?)?;
        n += 1;
    }
    if n != want {
        return None;
    }
    let mut args = [0usize; 6];
    if want == 8 {
        args.copy_from_slice(&nums[..6]);
    }
    Some((nums[want - 2], args))
}

/// A hexadecimal number (None: empty, or anything but hex digits).
fn hex(w: &[u8]) -> Option<usize> {
    if w.is_empty() || w.len() > 16 {
        return None;
    }
    w.iter().try_fold(0usize, |v, &c| {
        let d = (c as char).to_digit(16)?;
        Some(v << 4 | d as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syscall_file_gives_the_stack_pointer_and_the_arguments() {
        let line = b"202 0x7f00a0 0x80 0x2 0x0 0x0 0xca 0x7ffd1000 0x7f1234\n";
        assert_eq!(
            parse_syscall(line),
            Some((0x7ffd1000, [0x7f00a0, 0x80, 0x2, 0, 0, 0xca]))
        );
        assert_eq!(
            parse_syscall(b"-1 0x7ffd2000 0x7f1234\n"),
            Some((0x7ffd2000, [0; 6]))
        );
        assert_eq!(parse_syscall(b"running\n"), None);
        assert_eq!(parse_syscall(b"202 0x1 0x2\n"), None);
        assert_eq!(parse_syscall(b"202 0xzz 0x1 0x2\n"), None);
    }
}
