//! `Module`: the image of one loaded object (executable, shared object, vDSO) in memory — its
//! path, span and load bias — and bounded reads of it: ELF and program headers, the build-id
//! note, the dynamic tables (`dynsym`). `module` finds which object holds an address.
//!
//! `offset(addr)` is `addr - load bias`, the link-time virtual address: for a PIE or a shared
//! object the bias is where the object was loaded (its first segment is linked at 0), for a
//! non-PIE executable the bias is 0 and the offset is the address itself (`addr2line` wants
//! `0x401136`, not `0x1136`). It is not `addr - start of the mapping + file offset`.
//!
//! # Invariants
//! - `[start, end)` is the span the loader (or the kernel's map) gives for the object; `mem`
//!   hands out only slices inside it, of parts the loader itself reads (ELF and program
//!   headers, notes, dynamic tables) and that lie in readable segments.
//! - A borrowed path is the loader's `l_name` (or the cached executable path), valid until the
//!   object is unloaded: symbolize addresses of objects that stay loaded during the call.

use super::elf::{self, Bytes};
use core::ffi::c_char;

/// Bytes kept of a path read from `/proc/self/maps` (the other sources borrow the loader's).
pub(super) const INLINE_PATH: usize = 256;

// A path copy lives in the module itself: a Box is no option inside an allocator.
#[allow(clippy::large_enum_variant)]
pub(super) enum Path {
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
    pub(super) path: Path,
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
    pub(super) fn phdrs(&self) -> Option<(Bytes<'_>, u64)> {
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

/// A loader-owned path.
pub(super) fn borrowed(name: *const c_char) -> Path {
    if name.is_null() {
        return Path::Borrowed(c"".as_ptr() as *const u8, 0);
    }
    // SAFETY: the loader's NUL-terminated `l_name`/`dlpi_name`.
    let len = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes().len();
    Path::Borrowed(name as *const u8, len)
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
