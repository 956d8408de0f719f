//! The module (executable, shared object, vDSO) that holds a code address: its path, mapped
//! range and load bias, so that `module+0xOFF` is exactly the address `addr2line -e module`
//! takes. Three sources, first that applies:
//! 1. `_dl_find_object` (glibc 2.35+): lock-free, async-signal-safe, no system call. It is
//!    looked up once by name and version in libc's (or the loader's) `.dynsym`, not linked: a
//!    weak link-time reference still gets a `GLIBC_2.35` version need from lld (not marked
//!    weak), and ld.so refuses a library whose version need is missing, so the library would
//!    no longer load on an older glibc;
//! 2. `dl_iterate_phdr`, only for `Lookup::MayTakeLoaderLock` (it takes the loader's lock);
//! 3. a raw read of `/proc/self/maps` (no stdio), plus the ELF headers mapped in memory.
//!
//! The offset is `addr - load bias`, the link-time virtual address: for a PIE or a shared object
//! the bias is where the object was loaded (its first segment is linked at 0), for a non-PIE
//! executable the bias is 0 and the offset is the address itself (`addr2line` wants
//! `0x401136`, not `0x1136`). It is not `addr - start of the mapping + file offset`.
//!
//! # Invariants
//! - A `Module`'s `[start, end)` is the span the loader (or the kernel's map) gives for the
//!   object; `mem` hands out only slices inside it, of parts the loader itself reads (ELF and
//!   program headers, notes, dynamic tables) and that lie in readable segments.
//! - A borrowed path is the loader's `l_name` (or the cached executable path), valid until the
//!   object is unloaded: symbolize addresses of objects that stay loaded during the call.

use super::dynsym;
use super::elf::{self, Bytes};
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

/// Bytes kept of a path read from `/proc/self/maps` (the other sources borrow the loader's).
const INLINE_PATH: usize = 256;

// A path copy lives in the module itself: a Box is no option inside an allocator.
#[allow(clippy::large_enum_variant)]
enum Path {
    /// `len` bytes followed by a NUL, owned by the loader (or the executable path cache).
    Borrowed(*const u8, usize),
    /// A copy, NUL-terminated unless `truncated`.
    Inline {
        buf: [u8; INLINE_PATH + 1],
        len: u16,
        truncated: bool,
    },
}

/// A loaded object.
pub struct Module {
    /// The span the object is mapped at.
    pub start: usize,
    pub end: usize,
    /// Load bias: link-time address + bias = run-time address.
    pub bias: usize,
    /// Run-time address of the dynamic section, 0 when unknown.
    pub dynamic: usize,
    /// The main program.
    pub is_main: bool,
    path: Path,
}

impl Module {
    /// The full path as the loader knows it (`linux-vdso.so.1` for the vDSO).
    pub fn path(&self) -> &[u8] {
        match &self.path {
            // SAFETY: a loader-owned string of `len` bytes, valid while the object is loaded
            // (invariant of the module).
            Path::Borrowed(p, len) => unsafe { core::slice::from_raw_parts(*p, *len) },
            Path::Inline { buf, len, .. } => &buf[..*len as usize],
        }
    }

    /// The path with its NUL, for `open`; None unless it is absolute and complete.
    pub fn path_cstr(&self) -> Option<&[u8]> {
        let (p, len) = match &self.path {
            Path::Borrowed(p, len) => (*p, *len),
            Path::Inline {
                truncated: true, ..
            } => return None,
            Path::Inline { buf, len, .. } => (buf.as_ptr(), *len as usize),
        };
        // SAFETY: both kinds hold `len` bytes followed by a NUL.
        let s = unsafe { core::slice::from_raw_parts(p, len + 1) };
        if s.first() == Some(&b'/') {
            Some(s)
        } else {
            None
        }
    }

    /// `addr` relative to the load bias: the `+0xOFF` after the module, and the address
    /// `addr2line -e module` and the symbol tables speak of.
    pub fn offset(&self, addr: usize) -> usize {
        addr.wrapping_sub(self.bias)
    }

    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr < self.end
    }

    /// `[addr, addr + len)` of this object's memory, None unless it lies inside the object's
    /// span. Callers read only headers, notes and dynamic tables, which the loader reads too.
    pub fn mem(&self, addr: usize, len: usize) -> Option<Bytes<'_>> {
        let end = addr.checked_add(len)?;
        if addr < self.start || end > self.end || addr == 0 {
            return None;
        }
        // SAFETY: inside the object's mapped span (checked above); the parts read are in its
        // readable segments (invariant of the module).
        Some(Bytes(unsafe {
            core::slice::from_raw_parts(addr as *const u8, len)
        }))
    }

    /// The program headers, read from the ELF header at the start of the object's mapping.
    fn phdrs(&self) -> Option<(Bytes<'_>, u64)> {
        let h = elf::header(self.mem(self.start, elf::EHDR_SIZE as usize)?)?;
        let len = h.phnum.checked_mul(elf::PHDR_SIZE)? as usize;
        let at = self.start.checked_add(h.phoff as usize)?;
        Some((self.mem(at, len)?, h.phnum))
    }

    /// The GNU build-id of the loaded image (from its `PT_NOTE` segments), to check that the
    /// file on disk is the one that was loaded.
    pub fn build_id(&self) -> Option<elf::BuildId> {
        let (ph, n) = self.phdrs()?;
        (0..n.min(64)).find_map(|i| {
            let p = elf::phdr(ph, i)?;
            if p.kind != elf::PT_NOTE {
                return None;
            }
            let at = self.bias.checked_add(p.vaddr as usize)?;
            elf::build_id_note(self.mem(at, p.memsz as usize)?)
        })
    }
}

fn borrowed(name: *const c_char) -> Path {
    if name.is_null() {
        return Path::Borrowed(c"".as_ptr() as *const u8, 0);
    }
    // SAFETY: the loader's NUL-terminated `l_name`/`dlpi_name`.
    let len = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes().len();
    Path::Borrowed(name as *const u8, len)
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

/// Where an object lies, from its program headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub bias: usize,
    pub end: usize,
    /// Run-time address of the dynamic section, 0 if none.
    pub dynamic: usize,
}

/// The layout of an object whose lowest `PT_LOAD` page is mapped at `base`: the bias is `base`
/// minus that page's link-time address (0 for a non-PIE executable, linked where it runs).
pub fn layout(ph: Bytes, n: u64, base: usize) -> Option<Layout> {
    let (mut lo, mut hi, mut dyn_vaddr) = (u64::MAX, 0u64, 0u64);
    let page = crate::sys::page_size() as u64;
    for i in 0..n {
        let Some(p) = elf::phdr(ph, i) else { break };
        match p.kind {
            elf::PT_LOAD => {
                lo = lo.min(p.vaddr & !(page - 1));
                hi = hi.max(p.vaddr.saturating_add(p.memsz));
            }
            elf::PT_DYNAMIC => dyn_vaddr = p.vaddr,
            _ => {}
        }
    }
    if lo == u64::MAX {
        return None;
    }
    let bias = base.wrapping_sub(lo as usize);
    Some(Layout {
        bias,
        end: bias.wrapping_add(hi as usize),
        dynamic: if dyn_vaddr == 0 {
            0
        } else {
            bias.wrapping_add(dyn_vaddr as usize)
        },
    })
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
