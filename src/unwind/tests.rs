//! Unit tests of the unwinder on the test binary itself: a known call chain, a chain through a
//! signal handler (both APIs, on the thread's stack and on a sigaltstack), threads' first
//! frames, corrupt contexts, code without CFI.

use super::*;
use std::hint::black_box;
use std::sync::Mutex;

/// Signal tests share process-wide handlers.
static SIGNALS: Mutex<()> = Mutex::new(());

/// True when `ra` is a return address inside the function starting at `f` (its range from
/// its FDE, whose parsing `cfi`'s own tests check against the header's table).
fn inside(ra: usize, f: usize) -> bool {
    let m = module::find(f, false).unwrap();
    let segs = module::Segments::of(&m);
    let fde = fde::find_fde(&segs, m.eh_hdr, f).unwrap();
    let (_, begin, end, _) = fde::parse_fde(&segs, fde, Some(f)).unwrap();
    assert_eq!(begin, f);
    ra > begin && ra <= end
}

fn addr_of(f: fn(&mut [usize], usize) -> usize) -> usize {
    f as usize
}

#[inline(never)]
fn chain_c(out: &mut [usize], skip: usize) -> usize {
    let n = capture(black_box(out), black_box(skip));
    black_box(n) + black_box(0)
}

#[inline(never)]
fn chain_b(out: &mut [usize], skip: usize) -> usize {
    let n = chain_c(black_box(out), skip);
    black_box(n) + black_box(0)
}

#[inline(never)]
fn chain_a(out: &mut [usize], skip: usize) -> usize {
    let n = chain_b(black_box(out), skip);
    black_box(n) + black_box(0)
}

#[test]
fn known_call_chain() {
    let mut out = [0usize; 64];
    for round in 0..3 {
        // Round 0 parses the tables, later rounds use the cached rules.
        let n = chain_a(&mut out, 0);
        assert!(n >= 4, "round {round}: {:x?}", &out[..n]);
        assert!(inside(out[0], addr_of(chain_c)), "{:x?}", &out[..n]);
        assert!(inside(out[1], addr_of(chain_b)), "{:x?}", &out[..n]);
        assert!(inside(out[2], addr_of(chain_a)), "{:x?}", &out[..n]);
        assert!(
            inside(out[3], known_call_chain as fn() as usize),
            "{:x?}",
            &out[..n]
        );
        assert!(n < out.len(), "the walk ends at the thread's first frame");
    }
    assert!(stats().cached_rules > 0);
}

#[test]
fn skip_until_return_address() {
    let mut all = [0usize; 64];
    let n = chain_a(&mut all, 0);
    let mut out = [0usize; 64];
    let m = chain_a(&mut out, all[1]);
    // From chain_b's return address on; only the call site in this function differs.
    assert_eq!(m, n - 1);
    assert_eq!(&out[..2], &all[1..3]);
    assert_eq!(&out[3..m], &all[4..n]);
    // An address that is not on the stack: the caller alone.
    assert_eq!(chain_a(&mut out, 0x1234), 1);
    assert_eq!(out[0], 0x1234);
    // A short buffer.
    let mut two = [0usize; 2];
    assert_eq!(chain_a(&mut two, 0), 2);
    assert_eq!(two, [all[0], all[1]]);
}

/// The last frame of a thread's walk is in libc (`clone3`'s child path marks the return
/// address undefined).
fn ends_in_libc(frames: &[usize]) {
    let libc_pc = libc::getpid as unsafe extern "C" fn() -> i32 as usize;
    let libc_mod = module::find(libc_pc, false).unwrap();
    let last = *frames.last().unwrap();
    assert!(
        last >= libc_mod.start && last < libc_mod.end,
        "last frame {last:#x} not in libc: {frames:x?}"
    );
}

#[test]
fn thread_first_frame_ends_the_walk() {
    let frames = std::thread::spawn(|| {
        let mut out = [0usize; 128];
        let n = chain_a(&mut out, 0);
        out[..n].to_vec()
    })
    .join()
    .unwrap();
    assert!(frames.len() > 4 && frames.len() < 128, "{frames:x?}");
    ends_in_libc(&frames);

    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        let out = arg as *mut [usize; 65];
        // SAFETY: the creator passes a live array and waits for this thread.
        let out = unsafe { &mut *out };
        let n = chain_a(&mut out[1..], 0);
        out[0] = n;
        core::ptr::null_mut()
    }
    let mut out = [0usize; 65];
    let mut t: libc::pthread_t = 0;
    // SAFETY: out outlives the thread (joined below).
    unsafe {
        assert_eq!(
            libc::pthread_create(&mut t, core::ptr::null(), start, out.as_mut_ptr() as *mut _),
            0
        );
        assert_eq!(libc::pthread_join(t, core::ptr::null_mut()), 0);
    }
    let n = out[0];
    assert!((5..64).contains(&n), "{:x?}", &out[..n + 1]);
    assert!(inside(
        out[4],
        start as extern "C" fn(*mut libc::c_void) -> *mut libc::c_void as usize
    ));
    ends_in_libc(&out[1..n + 1]);
}

static SIG_FRAMES: Mutex<(Vec<usize>, Vec<usize>)> = Mutex::new((Vec::new(), Vec::new()));

extern "C" fn on_signal(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // Allocating here is fine in a test: the signal is raised synchronously.
    let mut a = [0usize; 64];
    let n = capture(&mut a, 0);
    let mut b = [0usize; 64];
    // SAFETY: uc is the handler's ucontext.
    let m = unsafe { capture_from_ucontext(uc, &mut b) };
    *SIG_FRAMES.lock().unwrap() = (a[..n].to_vec(), b[..m].to_vec());
}

#[inline(never)]
fn raise_it(sig: i32) -> usize {
    // SAFETY: the handler is installed by the caller.
    let r = unsafe { libc::raise(black_box(sig)) };
    black_box(r as usize) + black_box(0)
}

#[inline(never)]
fn raise_outer(sig: i32) -> usize {
    let r = raise_it(black_box(sig));
    black_box(r) + black_box(0)
}

fn through_signal(on_altstack: bool) {
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let sig = libc::SIGUSR1;
    let alt_size = 64 << 10;
    // SAFETY: a handler and (maybe) an alternate stack for this thread, restored below.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction =
            on_signal as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        sa.sa_flags = libc::SA_SIGINFO | if on_altstack { libc::SA_ONSTACK } else { 0 };
        assert_eq!(libc::sigaction(sig, &sa, core::ptr::null_mut()), 0);
        if on_altstack {
            let p = crate::sys::map(alt_size).unwrap();
            let ss = libc::stack_t {
                ss_sp: p as *mut libc::c_void,
                ss_flags: 0,
                ss_size: alt_size,
            };
            assert_eq!(libc::sigaltstack(&ss, core::ptr::null_mut()), 0);
        }
    }
    raise_outer(sig);
    // SAFETY: back to the default action; the alternate stack is switched off, then unmapped.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        if on_altstack {
            let off = libc::stack_t {
                ss_sp: core::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            let mut old: libc::stack_t = core::mem::zeroed();
            assert_eq!(libc::sigaltstack(&off, &mut old), 0);
            crate::sys::unmap(old.ss_sp as *mut u8, alt_size);
        }
    }
    let (a, b) = SIG_FRAMES.lock().unwrap().clone();
    let raise_it_fn = raise_it as fn(i32) -> usize as usize;
    let outer_fn = raise_outer as fn(i32) -> usize as usize;
    let libc_mod = module::find(
        libc::getpid as unsafe extern "C" fn() -> i32 as usize,
        false,
    )
    .unwrap();
    let in_libc = |x: usize| x >= libc_mod.start && x < libc_mod.end;
    // capture(): the handler's caller (the kernel's return to __restore_rt), then the
    // interrupted code in libc, raise, raise_it, raise_outer.
    let pos = a.iter().position(|&x| inside(x, raise_it_fn));
    assert!(pos.is_some(), "capture through the signal frame: {a:x?}");
    assert!(inside(a[pos.unwrap() + 1], outer_fn), "{a:x?}");
    assert!(a[..pos.unwrap()].iter().any(|&x| in_libc(x)), "{a:x?}");
    // capture_from_ucontext: the interrupted pc (in libc) first, then the same callers.
    assert!(in_libc(b[0]), "{b:x?}");
    let pos = b.iter().position(|&x| inside(x, raise_it_fn));
    assert!(pos.is_some(), "ucontext walk: {b:x?}");
    assert!(inside(b[pos.unwrap() + 1], outer_fn), "{b:x?}");
    // Both reach the same outermost frames.
    assert_eq!(a.last(), b.last());
}

#[test]
fn through_a_signal_frame() {
    through_signal(false);
}

#[test]
fn through_a_signal_frame_on_a_sigaltstack() {
    through_signal(true);
}

fn fake_context(rip: usize, rsp: usize, rbp: usize) -> libc::ucontext_t {
    // SAFETY: zeroed is a valid ucontext_t.
    let mut uc: libc::ucontext_t = unsafe { core::mem::zeroed() };
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] = rip as i64;
    uc.uc_mcontext.gregs[libc::REG_RSP as usize] = rsp as i64;
    uc.uc_mcontext.gregs[libc::REG_RBP as usize] = rbp as i64;
    uc
}

#[test]
fn corrupt_contexts_stop_without_a_fault() {
    let code = addr_of(chain_b) + 8;
    let none = crate::sys::map_anon(4096, libc::PROT_NONE, 0).unwrap() as usize;
    let mut garbage = vec![0usize; 512];
    for (i, w) in garbage.iter_mut().enumerate() {
        *w = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1 << 40;
    }
    let g = garbage.as_ptr() as usize + 2048;
    let cases = [
        (0xdead_beef, 0x10, 0),
        (code, 0, 0),
        (code, 0x10, 0x10),
        (code, none + 64, none + 128),
        (code, 0xffff_ffff_ffff_fff0, 0),
        (code, 0x0000_7fff_ffff_f000, 0x1000),
        (code, g, g + 64),
        (code, g + 3, g + 5),
        (0, g, g),
    ];
    for (rip, rsp, rbp) in cases {
        let uc = fake_context(rip, rsp, rbp);
        let mut out = [0usize; 32];
        // SAFETY: a readable ucontext_t.
        let n = unsafe { capture_from_ucontext(&uc as *const _ as *const libc::c_void, &mut out) };
        assert!((1..=32).contains(&n), "{rip:#x} {rsp:#x}: {n}");
        assert_eq!(out[0], rip);
    }
    // A stack whose words point at each other in a loop: the stack pointer must move up.
    let ring = [0usize; 8];
    let base = ring.as_ptr() as usize;
    let uc = fake_context(code, base, base);
    let mut out = [0usize; 32];
    // SAFETY: as above.
    let n = unsafe { capture_from_ucontext(&uc as *const _ as *const libc::c_void, &mut out) };
    assert!(n <= 2, "{:x?}", &out[..n]);
    // SAFETY: mapped above, unused.
    unsafe { crate::sys::unmap(none as *mut u8, 4096) };
    let mut out = [0usize; 4];
    // SAFETY: null is allowed.
    let n = unsafe { capture_from_ucontext(core::ptr::null(), &mut out) };
    assert_eq!(n, 0);
}

#[inline(never)]
extern "C" fn from_jit(out: *mut usize, len: usize) -> usize {
    // SAFETY: the test passes a live buffer of len words.
    let out = unsafe { core::slice::from_raw_parts_mut(out, len) };
    let n = capture(out, 0);
    black_box(n) + black_box(0)
}

#[test]
fn code_without_cfi_ends_the_walk() {
    // sub rsp, 8; movabs rax, from_jit; call rax; add rsp, 8; ret
    let mut code = vec![0x48, 0x83, 0xec, 0x08, 0x48, 0xb8];
    code.extend_from_slice(
        &(from_jit as extern "C" fn(*mut usize, usize) -> usize as usize).to_le_bytes(),
    );
    code.extend_from_slice(&[0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3]);
    // SAFETY: a fresh anonymous mapping, filled then made executable.
    let jit = unsafe {
        let p = libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        core::ptr::copy_nonoverlapping(code.as_ptr(), p, code.len());
        assert_eq!(
            libc::mprotect(p as *mut _, 4096, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        p as usize
    };
    let f: extern "C" fn(*mut usize, usize) -> usize =
        // SAFETY: the code above follows the C calling convention.
        unsafe { core::mem::transmute(jit) };
    let mut out = [0usize; 32];
    let n = f(out.as_mut_ptr(), out.len());
    assert_eq!(n, 2, "{:x?}", &out[..n]);
    assert!(inside(
        out[0],
        from_jit as extern "C" fn(*mut usize, usize) -> usize as usize
    ));
    assert_eq!(
        out[1],
        jit + 16,
        "the JIT frame is reported, then the walk stops"
    );
    // SAFETY: no longer used.
    unsafe { libc::munmap(jit as *mut _, 4096) };
}

// A signal restorer without CFI (as a program issuing rt_sigaction itself may have): the
// walker must recognise `mov rax, 15; syscall` and read the registers from the ucontext.
core::arch::global_asm!(
    ".pushsection .text.ft_malloc_test_restorer,\"ax\",@progbits",
    "nop",
    "ft_malloc_test_restorer:",
    "mov rax, 15",
    "syscall",
    ".popsection"
);

unsafe extern "C" {
    fn ft_malloc_test_restorer();
}

static BARE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

extern "C" fn on_signal_bare(_sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let mut a = [0usize; 64];
    let n = capture(&mut a, 0);
    *BARE.lock().unwrap() = a[..n].to_vec();
}

#[test]
fn through_a_signal_frame_whose_restorer_has_no_cfi() {
    let _g = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
    let sig = libc::SIGUSR2;
    /// The kernel's `struct sigaction` for rt_sigaction.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    const SA_RESTORER: u64 = 0x0400_0000;
    let sa = KernelSigaction {
        handler: on_signal_bare as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void)
            as usize,
        flags: libc::SA_SIGINFO as u64 | SA_RESTORER,
        restorer: ft_malloc_test_restorer as unsafe extern "C" fn() as usize,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction for SIGUSR2; glibc's sigaction would put its own
    // restorer (with CFI) in place of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &sa as *const KernelSigaction,
            0usize,
            8usize,
        )
    };
    assert_eq!(r, 0);
    raise_outer(sig);
    // SAFETY: back to the default action.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    let a = BARE.lock().unwrap().clone();
    let restorer = ft_malloc_test_restorer as unsafe extern "C" fn() as usize;
    let at = a.iter().position(|&x| x == restorer);
    assert!(
        at.is_some(),
        "the handler returns to the bare restorer: {a:x?}"
    );
    let pos = a
        .iter()
        .position(|&x| inside(x, raise_it as fn(i32) -> usize as usize));
    assert!(
        pos.is_some_and(|p| p > at.unwrap()),
        "through the signal frame: {a:x?}"
    );
    assert!(inside(
        a[pos.unwrap() + 1],
        raise_outer as fn(i32) -> usize as usize
    ));
}

static CORO: Mutex<Vec<usize>> = Mutex::new(Vec::new());

extern "C" fn coroutine_body() {
    let mut out = [0usize; 64];
    let n = chain_a(&mut out, 0);
    *CORO.lock().unwrap() = out[..n].to_vec();
}

#[test]
fn on_a_makecontext_stack() {
    // A coroutine on a mapped stack that is not the thread's: its words are read after a
    // probe, and the walk ends at the coroutine's first frame or on the unwritten words above.
    let size = 256 << 10;
    let stack = crate::sys::map(size).unwrap();
    // SAFETY: contexts for getcontext/makecontext/swapcontext; the stack outlives the switch.
    unsafe {
        let mut main_ctx: libc::ucontext_t = core::mem::zeroed();
        let mut co: libc::ucontext_t = core::mem::zeroed();
        assert_eq!(libc::getcontext(&mut co), 0);
        co.uc_stack.ss_sp = stack as *mut libc::c_void;
        co.uc_stack.ss_size = size;
        co.uc_link = &mut main_ctx;
        libc::makecontext(&mut co, coroutine_body, 0);
        assert_eq!(libc::swapcontext(&mut main_ctx, &co), 0);
        crate::sys::unmap(stack, size);
    }
    let a = CORO.lock().unwrap().clone();
    assert!(a.len() >= 4 && a.len() < 64, "{a:x?}");
    assert!(inside(a[0], addr_of(chain_c)), "{a:x?}");
    assert!(inside(a[2], addr_of(chain_a)), "{a:x?}");
    assert!(
        inside(a[3], coroutine_body as extern "C" fn() as usize),
        "{a:x?}"
    );
    ends_in_libc(&a); // __start_context
}

/// Captures the stack of its caller from the caller's own frame as the entry trampolines do,
/// keeps it under `id` (`memo`), and says what `recall` answers while the frames are still
/// there: from the same frame, at another depth, from another stack pointer, and after
/// `forget_all` (when `forget`).
#[inline(never)]
fn keep_and_recall(out: &mut [usize], id: u32, forget: bool) -> (bool, [Option<u32>; 4]) {
    let [pc, sp, fp] = regs::current();
    let mut rec = Recording::new();
    let n = capture_at_recorded(black_box(&mut *out), pc, sp, fp, &mut rec);
    keep(&rec, sp, fp, out.len(), &out[..n], id);
    let same = recall(pc, sp, fp, out.len());
    let depth = recall(pc, sp, fp, out.len() - 1);
    let other = recall(pc, sp + 16, fp, out.len());
    if forget {
        module::forget_all();
    }
    let after = recall(pc, sp, fp, out.len());
    (
        black_box(rec.clean && n == out.len()),
        [same, depth, other, after],
    )
}

#[inline(never)]
fn keep_chain(out: &mut [usize], id: u32, forget: bool) -> (bool, [Option<u32>; 4]) {
    let r = keep_and_recall(black_box(out), id, forget);
    black_box(r)
}

#[test]
fn kept_stacks_are_recalled_from_the_same_frame_only() {
    let mut out = [0usize; 3];
    // The first walk parses tables (nothing is kept); the next finds every rule cached.
    keep_chain(&mut out, 75, false);
    let (clean, got) = keep_chain(&mut out, 76, false);
    assert!(clean, "{out:x?}");
    assert_eq!(got, [Some(76), None, None, Some(76)]);
    let (clean, got) = keep_chain(&mut out, 77, true);
    assert!(clean, "{out:x?}");
    assert_eq!(got, [Some(77), None, None, None]);
}
