//! Fork handlers: ours must be the first registered, so that our prepare handler (which locks
//! every arena) runs after every other library's — those may allocate — and our parent/child
//! handlers before theirs. A constructor cannot promise that: the loader runs the constructors of
//! the program's own libraries before a preloaded library's (priorities order constructors only
//! within one object). So registration happens at whichever comes first, our constructor or the
//! first registration by anyone, which goes through our `__register_atfork` (entry/glibc.rs) and
//! registers ours before forwarding to glibc's.
//!
//! # Invariants
//! Our fork handlers are registered once (`FORK` 0 → 1 → 2), before any other registration is
//! forwarded to glibc.

use crate::fmt::{Line, prefix};
use crate::heap;
use crate::sys;
use crate::tls;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const FORK_NONE: u8 = 0;
const FORK_REGISTERING: u8 = 1;
const FORK_DONE: u8 = 2;

static FORK: AtomicU8 = AtomicU8::new(FORK_NONE);
/// `pthread_self()` of the thread registering (while `FORK` is FORK_REGISTERING).
static FORK_BY: AtomicUsize = AtomicUsize::new(0);
/// glibc's `__register_atfork` once found (0: not looked up yet or not found).
static GLIBC_REGISTER: AtomicUsize = AtomicUsize::new(0);

type Handler = Option<extern "C" fn()>;
type RegisterAtfork = unsafe extern "C" fn(Handler, Handler, Handler, *mut c_void) -> c_int;

unsafe extern "C" {
    /// Our own object's handle (crtbeginS.o): glibc drops our handlers if we are unloaded.
    static __dso_handle: u8;
}

/// Registers our fork handlers with glibc, once; returns when they are registered (or found
/// impossible to register, said once). Allocates nothing itself; glibc may allocate through us
/// to store them, which does not come back here.
#[unsafe(link_section = "ft_hot")]
pub fn register_fork_handlers() {
    if FORK.load(Ordering::Acquire) == FORK_DONE {
        return;
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    match FORK.compare_exchange(
        FORK_NONE,
        FORK_REGISTERING,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            FORK_BY.store(me, Ordering::Relaxed);
            match glibc_register_atfork() {
                // SAFETY: glibc's registration function; the handlers live as long as this
                // object, whose handle is passed.
                Some(f) => unsafe {
                    f(
                        Some(fork_prepare),
                        Some(fork_parent),
                        Some(fork_child),
                        &raw const __dso_handle as *mut c_void,
                    );
                },
                None => cannot_register(),
            }
            FORK.store(FORK_DONE, Ordering::Release);
        }
        Err(_) => {
            if FORK_BY.load(Ordering::Relaxed) == me {
                return; // re-entered while registering
            }
            while FORK.load(Ordering::Acquire) != FORK_DONE {
                sys::sched_yield();
            }
        }
    }
}

/// The program's (or a library's) fork handlers, registered after ours. Behind the exported
/// `__register_atfork`.
/// # Safety
/// The contract of `__register_atfork`: the handlers stay callable while `dso` (the registering
/// object's handle, or NULL) is loaded.
pub unsafe fn register_atfork(
    prepare: Handler,
    parent: Handler,
    child: Handler,
    dso: *mut c_void,
) -> c_int {
    register_fork_handlers();
    match glibc_register_atfork() {
        // SAFETY: forwarded unchanged to glibc's function of the same contract.
        Some(f) => unsafe { f(prepare, parent, child, dso) },
        None => libc::ENOMEM,
    }
}

fn cannot_register() {
    let mut l: Line<200> = Line::new();
    prefix(&mut l).s(
        b"WARNING: glibc's __register_atfork not found: fork handlers cannot be registered; \
          a fork from a threaded program may hang in the child\n",
    );
    l.report();
}

/// The first definition of the function `name`, in the loaded objects' dynamic symbol tables,
/// that is not ours nor another copy of ours (what `dlsym(RTLD_NEXT)` would answer, without
/// dlsym, which may allocate); 0 if none. Read with `dl_iterate_phdr`, which allocates nothing.
pub(super) fn first_other(name: &'static [u8]) -> usize {
    let mut q = SymbolQuery {
        name,
        ours: register_fork_handlers as fn() as usize,
        found: 0,
    };
    // SAFETY: the callback only reads the loaded objects' program headers and dynamic
    // sections, and writes `q`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(find_symbol), &mut q as *mut SymbolQuery as *mut c_void) };
    q.found
}

/// glibc's `__register_atfork` (`first_other`).
fn glibc_register_atfork() -> Option<RegisterAtfork> {
    let mut f = GLIBC_REGISTER.load(Ordering::Acquire);
    if f == 0 {
        f = first_other(b"__register_atfork");
        GLIBC_REGISTER.store(f, Ordering::Release);
    }
    // SAFETY: `f` is the address of glibc's __register_atfork, whose type is RegisterAtfork.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, RegisterAtfork>(f) })
}

struct SymbolQuery {
    name: &'static [u8],
    /// An address in our own object, which is skipped.
    ours: usize,
    found: usize,
}

/// The object a `dl_iterate_phdr` entry describes: its load base, its dynamic section, and
/// whether its segments hold the address `ours`; None when it has no dynamic section.
#[unsafe(link_section = "ft_hot")]
pub(super) fn object(
    info: &libc::dl_phdr_info,
    ours: usize,
) -> Option<(usize, *const [usize; 2], bool)> {
    let base = info.dlpi_addr as usize;
    let (mut dynamic, mut holds) = (0usize, false);
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let start = base.wrapping_add(ph.p_vaddr as usize);
        if ph.p_type == libc::PT_DYNAMIC {
            dynamic = start;
        } else if ph.p_type == libc::PT_LOAD {
            holds |= (start..start.wrapping_add(ph.p_memsz as usize)).contains(&ours);
        }
    }
    (dynamic != 0).then_some((base, dynamic as *const [usize; 2], holds))
}

/// `dl_iterate_phdr` callback: looks `q.name` up in this object unless it is ours; stops at the
/// first definition.
#[unsafe(link_section = "ft_hot")]
unsafe extern "C" fn find_symbol(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    q: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our query pointer.
    let (info, q) = unsafe { (&*info, &mut *(q as *mut SymbolQuery)) };
    let Some((base, dynamic, false)) = object(info, q.ours) else {
        return 0;
    };
    // Another copy of this library (two builds loaded at once) defines the name too, and
    // forwards to the next definition: skipping every object that exports our own
    // `show_alloc_mem_ex` keeps the two from calling each other for ever.
    // SAFETY: the dynamic section of a loaded object, mapped and terminated by DT_NULL.
    if unsafe { lookup(base, dynamic, b"show_alloc_mem_ex") }.is_some() {
        return 0;
    }
    // SAFETY: as above.
    let v = unsafe { lookup(base, dynamic, q.name) };
    match v {
        Some(a) => {
            q.found = a;
            1
        }
        None => 0,
    }
}

const DT_HASH: usize = 4;
const DT_STRTAB: usize = 5;
const DT_SYMTAB: usize = 6;
const DT_GNU_HASH: usize = 0x6fff_fef5;
const DT_VERSYM: usize = 0x6fff_fff0;

/// Address of the defined function `name` in the object at `base` with dynamic section `dynamic`
/// (GNU hash table, else SysV hash); a hidden (non-default) version does not count.
/// # Safety
/// `dynamic` is the DT_NULL-terminated dynamic section of the object loaded at `base`.
#[unsafe(link_section = "ft_hot")]
pub(super) unsafe fn lookup(base: usize, dynamic: *const [usize; 2], name: &[u8]) -> Option<usize> {
    let (mut strtab, mut symtab, mut gnu, mut sysv, mut versym) = (0, 0, 0, 0, 0);
    // The loader relocates these addresses in place for most objects, not for all (the vDSO).
    let at = |p: usize| if p < base { p.wrapping_add(base) } else { p };
    let mut d = dynamic;
    loop {
        // SAFETY: within the section, up to its DT_NULL entry (caller's duty).
        let [tag, val] = unsafe { *d };
        match tag {
            0 => break,
            DT_STRTAB => strtab = at(val),
            DT_SYMTAB => symtab = at(val),
            DT_GNU_HASH => gnu = at(val),
            DT_HASH => sysv = at(val),
            DT_VERSYM => versym = at(val),
            _ => {}
        }
        // SAFETY: not past DT_NULL.
        d = unsafe { d.add(1) };
    }
    if strtab == 0 || symtab == 0 {
        return None;
    }
    let sym = |i: usize| -> Option<usize> {
        // SAFETY: `i` comes from the object's own hash table, so it indexes its symbol table;
        // st_name indexes its string table, whose strings are NUL-terminated.
        unsafe {
            let s = &*(symtab as *const libc::Elf64_Sym).add(i);
            let hidden = versym != 0 && *(versym as *const u16).add(i) & 0x8000 != 0;
            if s.st_shndx == 0 || s.st_info & 0xf != 2 || s.st_value == 0 || hidden {
                return None; // undefined, not a function, or not the default version
            }
            let n = (strtab + s.st_name as usize) as *const u8;
            for (k, &c) in name.iter().enumerate() {
                if *n.add(k) != c {
                    return None;
                }
            }
            (*n.add(name.len()) == 0).then(|| base.wrapping_add(s.st_value as usize))
        }
    };
    if gnu != 0 {
        let h = name
            .iter()
            .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32));
        // SAFETY: the GNU hash table's layout: nbuckets, symoffset, bloom size, bloom shift,
        // the bloom words, the buckets, then one chain word per symbol from symoffset on, the
        // last of each chain with bit 0 set.
        unsafe {
            let t = gnu as *const u32;
            let (nbuckets, symoffset, bloom) = (*t, *t.add(1), *t.add(2));
            if nbuckets == 0 {
                return None;
            }
            let buckets = (gnu + 16 + bloom as usize * 8) as *const u32;
            let chain = buckets.add(nbuckets as usize);
            let mut i = *buckets.add((h % nbuckets) as usize);
            if i < symoffset {
                return None;
            }
            loop {
                let ch = *chain.add((i - symoffset) as usize);
                if ch | 1 == h | 1
                    && let Some(a) = sym(i as usize)
                {
                    return Some(a);
                }
                if ch & 1 != 0 {
                    return None;
                }
                i += 1;
            }
        }
    }
    if sysv != 0 {
        let h = name.iter().fold(0u32, |h, &c| {
            let h = (h << 4).wrapping_add(c as u32);
            (h ^ ((h & 0xf000_0000) >> 24)) & 0x0fff_ffff
        });
        // SAFETY: the SysV hash table's layout: nbucket, nchain, the buckets, the chains.
        unsafe {
            let t = sysv as *const u32;
            let (nbucket, nchain) = (*t, *t.add(1));
            if nbucket == 0 {
                return None;
            }
            let mut i = *t.add(2 + (h % nbucket) as usize);
            let mut steps = 0;
            while i != 0 && i < nchain && steps < nchain {
                if let Some(a) = sym(i as usize) {
                    return Some(a);
                }
                i = *t.add(2 + nbucket as usize + i as usize);
                steps += 1;
            }
        }
    }
    None
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn fork_prepare() {
    crate::leaks::before_fork();
    heap::lock_all();
    // The log's lock last: a signal handler that interrupted a thread holding an allocator
    // lock waits for it (to write its record), so taking it first and then waiting for that
    // thread's lock would wait for ever.
    crate::log::lock_for_fork();
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn fork_parent() {
    heap::unlock_all();
    crate::log::unlock_after_fork();
    heap::settle();
}

#[unsafe(link_section = "ft_hot")]
extern "C" fn fork_child() {
    // fork() returned 0 in the child: the files opened here must not change its errno.
    let _e = sys::ErrnoGuard::new();
    tls::reset_after_fork();
    heap::reset_all();
    crate::leaks::after_fork_child();
    crate::log::reset_in_child();
    super::output::after_fork_in_child();
    heap::settle();
}
