//! Which loaded object holds a code address (a `Module`: path, span, load bias), so that
//! `module+0xOFF` is exactly the address `addr2line -e module` takes. Three sources, first
//! that applies:
//! 1. `_dl_find_object` (glibc 2.35+): lock-free, async-signal-safe, no system call. It is
//!    looked up once by name and version in libc's (or the loader's) `.dynsym`, not linked: a
//!    weak link-time reference still gets a `GLIBC_2.35` version need from lld (not marked
//!    weak), and ld.so refuses a library whose version need is missing, so the library would
//!    no longer load on an older glibc;
//! 2. `dl_iterate_phdr`, only for `Lookup::MayTakeLoaderLock` (it takes the loader's lock);
//! 3. a raw read of `/proc/self/maps` (no stdio), plus the ELF headers mapped in memory.
//!
//! Also `is_own`: whether an address is inside ft_malloc itself.
//!
//! # Invariants
//! `DL_FIND_OBJECT` and our own span are written once (racing writers store the same values);
//! a lookup that may not take the loader's lock never calls `dl_iterate_phdr`.

use super::dynsym;
use super::elf::{self, Bytes};
use super::image::{INLINE_PATH, Module, Path, borrowed, layout};
use super::os;
use core::ffi::c_char;
use core::sync::atomic::{AtomicUsize, Ordering};

/// What a module lookup may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lookup {
    /// Never take the loader's lock: `_dl_find_object`, else `/proc/self/maps`. For signal
    /// handlers and for callers that hold an allocator lock.
    SignalSafe,
    /// May fall back to `dl_iterate_phdr`, which takes the loader's lock. Never while holding
    /// an allocator lock: a thread inside `dlopen` holds the loader's lock and calls malloc.
    MayTakeLoaderLock,
}

/// The path of an object the loader names `name` ("" is the main program).
/// `addr` is an address of that object.
fn loader_path(name: *const c_char, addr: usize) -> (Path, bool) {
    // SAFETY: as in `borrowed`: a NUL-terminated loader string; reading its first byte.
    if name.is_null() || unsafe { *name } == 0 {
        if os::exe_is_loader() {
            // Started as `ld.so ./prog`: /proc/self/exe is ld.so; the kernel's map knows the
            // program's file.
            if let Some(m) = by_maps(addr) {
                return (m.path, true);
            }
        }
        let exe = os::exe_path();
        // `exe_path` keeps a NUL after its bytes.
        return (Path::Borrowed(exe.as_ptr(), exe.len()), true);
    }
    (borrowed(name), false)
}

/// `_dl_find_object`'s address: 0 not looked up yet, 1 absent (glibc < 2.35), else the
/// function. Written once; racing threads find the same value.
static DL_FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// `_dl_find_object@GLIBC_2.35`, looked up on first use in libc's `.dynsym` (where glibc 2.36
/// defines it), then in the loader's. Libc's module is found with the sources below, as
/// `lookup` allows; when that fails (no /proc in a signal handler), the next call tries again.
fn dl_find_object(lookup: Lookup) -> Option<usize> {
    // `os::DlFindObject` has the layout of these two (others add `dlfo_eh_dbase`/`_count`).
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return None;
    }
    match DL_FIND_OBJECT.load(Ordering::Acquire) {
        0 => {}
        1 => return None,
        f => return Some(f),
    }
    let probe = os::libc_probe();
    let libc = match lookup {
        Lookup::MayTakeLoaderLock => by_phdr(probe),
        Lookup::SignalSafe => by_maps(probe),
    }?;
    let want = (b"_dl_find_object".as_slice(), b"GLIBC_2.35".as_slice());
    let f = dynsym::find(&libc, want.0, want.1).or_else(|| {
        let ld = at_base(os::loader_base())?;
        dynsym::find(&ld, want.0, want.1)
    });
    DL_FIND_OBJECT.store(f.unwrap_or(1), Ordering::Release);
    f
}

/// The object whose ELF header is mapped at `base` (the loader, from `AT_BASE`).
fn at_base(base: usize) -> Option<Module> {
    let mut m = Module {
        start: base,
        end: base.checked_add(crate::sys::page_size())?,
        bias: base,
        dynamic: 0,
        is_main: false,
        path: borrowed(core::ptr::null()),
    };
    if base == 0 {
        return None;
    }
    let l = m.phdrs().and_then(|(ph, n)| layout(ph, n, base))?;
    (m.bias, m.end, m.dynamic) = (l.bias, l.end, l.dynamic);
    Some(m)
}

/// True when this glibc has `_dl_find_object` (looked up as `lookup` allows).
pub fn has_find_object(lookup: Lookup) -> bool {
    dl_find_object(lookup).is_some()
}

/// The module that holds `addr`, or None (anonymous memory, JIT code, a gap).
pub fn find(addr: usize, lookup: Lookup) -> Option<Module> {
    if let Some(f) = dl_find_object(lookup) {
        return by_find_object_at(f, addr);
    }
    if lookup == Lookup::MayTakeLoaderLock {
        return by_phdr(addr);
    }
    by_maps(addr)
}

/// Through `_dl_find_object`, None if this glibc lacks it.
#[cfg(test)]
pub fn by_find_object(addr: usize) -> Option<Module> {
    by_find_object_at(dl_find_object(Lookup::SignalSafe)?, addr)
}

fn by_find_object_at(f: usize, addr: usize) -> Option<Module> {
    // SAFETY: `f` was found as `_dl_find_object@GLIBC_2.35` in glibc's dynamic symbols.
    let o = unsafe { os::find_object(f, addr) }?;
    let (path, is_main) = loader_path(o.name, addr);
    // Started as `ld.so ./prog`, the program has a name: it is the object of the entry point.
    let is_main = is_main || (o.map_start..o.map_end).contains(&os::entry_point());
    Some(Module {
        start: o.map_start,
        end: o.map_end,
        bias: o.bias,
        dynamic: o.dynamic,
        is_main,
        path,
    })
}

/// Through `dl_iterate_phdr` (takes the loader's lock).
pub fn by_phdr(addr: usize) -> Option<Module> {
    let mut found = None;
    let mut first = true;
    os::for_each_object(&mut |bias, name, phdr, phnum| {
        let is_first = core::mem::replace(&mut first, false);
        if phdr.is_null() {
            return false;
        }
        // SAFETY: the loader's program headers of this object, `phnum` entries.
        let ph =
            Bytes(unsafe { core::slice::from_raw_parts(phdr, phnum * elf::PHDR_SIZE as usize) });
        let (mut lo, mut hi, mut dynamic, mut hit) = (usize::MAX, 0usize, 0usize, false);
        for i in 0..phnum as u64 {
            let Some(p) = elf::phdr(ph, i) else { break };
            let a = bias.wrapping_add(p.vaddr as usize);
            match p.kind {
                elf::PT_LOAD => {
                    let b = a.saturating_add(p.memsz as usize);
                    hit |= addr >= a && addr < b;
                    lo = lo.min(a & !(crate::sys::page_size() - 1));
                    hi = hi.max(b);
                }
                elf::PT_DYNAMIC => dynamic = a,
                _ => {}
            }
        }
        if !hit {
            return false;
        }
        // The first object reported is the main program (its name is "" unless it was
        // started as `ld.so ./prog`).
        let (path, is_main) = loader_path(name, addr);
        let is_main = is_main || is_first;
        found = Some(Module {
            start: lo,
            end: hi,
            bias,
            dynamic,
            is_main,
            path,
        });
        true
    });
    found
}

/// Through `/proc/self/maps`: the object is the file mapped at offset 0 just before the
/// mapping that holds `addr`; bias, span and dynamic section come from its ELF headers in
/// memory when that first mapping is readable.
pub fn by_maps(addr: usize) -> Option<Module> {
    let mut buf = [0u8; INLINE_PATH + 1];
    let (mut len, mut truncated) = (0usize, false);
    let (mut base, mut base_end, mut base_readable) = (0usize, 0usize, false);
    let mut hit: Option<(usize, usize, usize)> = None; // start, end, offset of addr's mapping
    let mut same = false;
    crate::maps::for_each(|m| {
        let path = m.path;
        let named = path.first() == Some(&b'/');
        if named && m.offset == 0 && !m.shared {
            let n = path.len().min(INLINE_PATH);
            buf[..n].copy_from_slice(&path[..n]);
            buf[n] = 0;
            (len, truncated) = (n, path.len() > INLINE_PATH);
            (base, base_end, base_readable) = (m.start, m.end, m.readable);
        }
        if addr >= m.start && addr < m.end {
            if named {
                same = base != 0 && !truncated && &buf[..len] == path;
                if !same {
                    let n = path.len().min(INLINE_PATH);
                    buf[..n].copy_from_slice(&path[..n]);
                    buf[n] = 0;
                    (len, truncated) = (n, path.len() > INLINE_PATH);
                }
                hit = Some((m.start, m.end, m.offset));
            }
            return false;
        }
        true
    });
    let (mstart, mend, moff) = hit?;
    let path = Path::Inline {
        buf,
        len: len as u16,
        truncated,
    };
    let is_main = (mstart..mend).contains(&os::entry_point())
        || (!truncated && !os::exe_is_loader() && &buf[..len] == os::exe_path());
    // Without the headers: the mapping alone, bias as if the file were linked at 0.
    let mut m = Module {
        start: mstart,
        end: mend,
        bias: mstart.wrapping_sub(moff),
        dynamic: 0,
        is_main,
        path,
    };
    if !same || !base_readable {
        return Some(m);
    }
    // The first mapping is readable: read the headers there (and only there).
    m.start = base;
    m.end = base_end;
    let Some(l) = m.phdrs().and_then(|(ph, n)| layout(ph, n, base)) else {
        m.start = mstart;
        m.end = mend;
        return Some(m);
    };
    (m.bias, m.end, m.dynamic) = (l.bias, l.end.max(mend), l.dynamic);
    m.is_main |= m.contains(os::entry_point());
    Some(m)
}

/// Our own object's span, found once from the address of a function of ours.
static OWN_START: AtomicUsize = AtomicUsize::new(0);
static OWN_END: AtomicUsize = AtomicUsize::new(0);

/// True when `addr` is code or data of ft_malloc itself (frames there are never shown).
/// Never takes the loader's lock; the first call looks the span up, later calls compare.
pub fn is_own(addr: usize) -> bool {
    let mut end = OWN_END.load(Ordering::Acquire);
    if end == 0 {
        let _keep = crate::sys::ErrnoGuard::new();
        let Some(m) = find(is_own as *const () as usize, Lookup::SignalSafe) else {
            return false;
        };
        OWN_START.store(m.start, Ordering::Relaxed);
        OWN_END.store(m.end, Ordering::Release);
        end = m.end;
    }
    addr >= OWN_START.load(Ordering::Relaxed) && addr < end
}
