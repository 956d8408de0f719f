//! The process: ids, clocks, random bytes, secure-execution mode, the initial environment
//! (read from the initial stack), CPU count, thread keys, futexes, abort and exit, and its
//! /proc files (maps, exe link, vm.max_map_count).

use super::errno::errno;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::AtomicI32;

unsafe extern "C" {
    /// Set by ld.so before any user code runs: points at `argc` on the initial stack.
    static __libc_stack_end: *mut c_void;
}

pub fn geteuid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Whether process `pid` exists (`kill(pid, 0)`: EPERM means it does).
pub fn process_exists(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 || errno() == libc::EPERM }
}

/// A clock in nanoseconds (CLOCK_REALTIME, CLOCK_BOOTTIME...).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// `sysconf(_SC_CLK_TCK)` (the unit of /proc/PID/stat's start time).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant; it does not allocate.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

pub fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

pub fn getppid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// A new pthread key whose destructor `dtor` runs at the exit of each thread that gave the
/// key a value; None if the process has none left.
pub fn thread_key_create(dtor: unsafe extern "C" fn(*mut libc::c_void)) -> Option<u32> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: key is a valid out-parameter; the destructor is a function for the process's life.
    let r = unsafe { libc::pthread_key_create(&mut key, Some(dtor)) };
    if r == 0 { Some(key as u32) } else { None }
}

/// Gives `key` a value in this thread, so that its destructor runs at the thread's exit.
/// Keys below 32 (the first ones a process creates) do not allocate.
pub fn thread_key_arm(key: u32) {
    // SAFETY: a key from `thread_key_create`; any non-NULL value makes the destructor run.
    unsafe {
        libc::pthread_setspecific(
            key as libc::pthread_key_t,
            core::ptr::dangling::<libc::c_void>(),
        )
    };
}

/// This thread's descriptor (`pthread_self`).
pub fn thread_self() -> usize {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() as usize }
}

pub fn gettid() -> u32 {
    // SAFETY: the gettid syscall has no arguments and no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO, no syscall on x86_64).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// 8 random bytes from the kernel (getrandom), or from AT_RANDOM if that fails.
pub fn random_u64() -> u64 {
    let mut v: u64 = 0;
    // SAFETY: v is 8 writable bytes; GRND_NONBLOCK never blocks.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getrandom,
            &mut v as *mut u64 as *mut c_void,
            8usize,
            libc::GRND_NONBLOCK,
        )
    };
    if n == 8 {
        return v;
    }
    // SAFETY: getauxval has no preconditions; AT_RANDOM points at 16 random bytes set by the kernel.
    unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u8;
        if !p.is_null() {
            return core::ptr::read_unaligned(p.add(8) as *const u64) ^ now_ns();
        }
    }
    now_ns().wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// True in secure-execution mode (setuid/setgid/capabilities), as glibc decides it.
pub fn secure_mode() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Looks `name` up in the initial environment, read from the initial stack through
/// `__libc_stack_end` (valid from the first instruction, unlike `environ`). Returns the value
/// bytes (borrowed from the initial stack, which lives as long as the process).
pub fn getenv_initial(name: &[u8]) -> Option<&'static [u8]> {
    // SAFETY: __libc_stack_end points at argc, followed by argv[argc], NULL, envp..., NULL,
    // all set up by the kernel and never freed; the strings are NUL terminated.
    unsafe {
        let base = __libc_stack_end as *const usize;
        if base.is_null() {
            return None;
        }
        let argc = *base;
        let mut envp = base.add(1 + argc + 1) as *const *const c_char;
        while !(*envp).is_null() {
            let s = *envp as *const u8;
            let mut i = 0;
            while i < name.len() && *s.add(i) == name[i] {
                i += 1;
            }
            if i == name.len() && *s.add(i) == b'=' {
                let v = s.add(i + 1);
                let mut n = 0;
                while *v.add(n) != 0 {
                    n += 1;
                }
                return Some(core::slice::from_raw_parts(v, n));
            }
            envp = envp.add(1);
        }
        None
    }
}

/// The program's path (argv[0]) from the initial stack.
pub fn argv0() -> &'static [u8] {
    // SAFETY: see getenv_initial.
    unsafe {
        let base = __libc_stack_end as *const usize;
        if base.is_null() || *base == 0 {
            return b"?";
        }
        let a = *(base.add(1) as *const *const u8);
        if a.is_null() {
            return b"?";
        }
        let mut n = 0;
        while *a.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(a, n)
    }
}

/// Number of CPUs we may run on (sched_getaffinity with a stack set; never reads /sys).
pub fn ncpus() -> usize {
    let mut set: libc::cpu_set_t = unsafe_zeroed_cpuset();
    // SAFETY: set is a valid cpu_set_t out-parameter of the size given.
    let r =
        unsafe { libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return 1;
    }
    // SAFETY: CPU_COUNT reads the set we own.
    let n = unsafe { libc::CPU_COUNT(&set) };
    if n <= 0 { 1 } else { n as usize }
}

fn unsafe_zeroed_cpuset() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
    unsafe { core::mem::zeroed() }
}

/// Futex wait on `addr` while it holds `val`.
pub fn futex_wait(addr: &AtomicI32, val: i32) {
    // SAFETY: addr is a live aligned i32; FUTEX_WAIT only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr as *const AtomicI32,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            core::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one waiter on `addr`.
pub fn futex_wake(addr: &AtomicI32) {
    // SAFETY: addr is a live aligned i32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr as *const AtomicI32,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

pub fn sched_yield() {
    // SAFETY: no preconditions.
    unsafe { libc::sched_yield() };
}

/// abort(3): raises SIGABRT (and dumps core if enabled).
pub fn abort() -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// _exit(2) with `code`, skipping atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// Opens the process's /proc/.../maps: `/proc/thread-self/maps`, else `/proc/self/maps`
/// (kernels before 3.17). Once the main thread has exited (`pthread_exit` in `main`),
/// /proc/self names that zombie, whose maps read empty and whose exe link is gone, while
/// thread-self names the calling thread of the same process.
pub fn open_maps() -> Result<c_int, c_int> {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC;
    super::fd::open(b"/proc/thread-self/maps\0", flags, 0)
        .or_else(|_| super::fd::open(b"/proc/self/maps\0", flags, 0))
}

/// The executable's path (`readlink` of /proc/thread-self/exe, else /proc/self/exe: see
/// `open_maps`).
pub fn readlink_exe(buf: &mut [u8]) -> Result<usize, c_int> {
    super::fd::readlink(b"/proc/thread-self/exe\0", buf)
        .or_else(|_| super::fd::readlink(b"/proc/self/exe\0", buf))
}

/// The process's kernel mappings (VMAs) now: the lines of /proc/self/maps (None without
/// /proc). Raw open/read on a stack buffer: dumps call this from signal handlers. Out of line,
/// so that the buffer is not in its caller's frame.
#[inline(never)]
pub fn count_mappings() -> Option<usize> {
    let fd = open_maps().ok()?;
    let mut buf = [0u8; 4096];
    let mut n = 0usize;
    let mut open_line = false;
    while let Ok(k) = super::fd::read(fd, &mut buf) {
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count();
        open_line = buf[k - 1] != b'\n';
    }
    super::fd::close(fd);
    Some(n + open_line as usize)
}

/// vm.max_map_count (None if unreadable or implausibly small).
pub fn read_max_map_count() -> Option<usize> {
    let mut buf = [0u8; 32];
    let n = super::fd::read_small_file(b"/proc/sys/vm/max_map_count\0", &mut buf).ok()?;
    let digits = buf[..n].iter().take_while(|b| b.is_ascii_digit());
    let mut v: usize = 0;
    let mut any = false;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as usize)?;
        any = true;
    }
    (any && v > 1000).then_some(v)
}
