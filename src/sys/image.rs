//! The library's own loaded image, read from its ELF program headers (which the linker's
//! `__ehdr_start` locates in memory): where its loaded segments lie, `.bss` included, whose
//! tail is an anonymous mapping that `/proc/self/maps` names no file for.

unsafe extern "C" {
    /// The ELF header of this object, placed by the linker at the start of its first segment.
    static __ehdr_start: libc::Elf64_Ehdr;
}

/// Calls `f(start, end, writable)` for every loaded segment (`PT_LOAD`) of the library, with
/// addresses in memory (not page-rounded).
pub fn each_segment(mut f: impl FnMut(usize, usize, bool)) {
    // SAFETY: the linker defines `__ehdr_start` at the first byte of this object's image, an
    // ELF header that the loader mapped read-only for as long as the library is loaded.
    let eh = unsafe { &*core::ptr::addr_of!(__ehdr_start) };
    let base = eh as *const libc::Elf64_Ehdr as usize;
    if eh.e_phentsize as usize != core::mem::size_of::<libc::Elf64_Phdr>() {
        return;
    }
    let phdrs = (base + eh.e_phoff as usize) as *const libc::Elf64_Phdr;
    for i in 0..eh.e_phnum as usize {
        // SAFETY: the program headers follow the header at `e_phoff` in the first loaded
        // segment (the loader read them there), `e_phnum` entries of the size checked above.
        let ph = unsafe { &*phdrs.add(i) };
        if ph.p_type == libc::PT_LOAD {
            let start = base + ph.p_vaddr as usize;
            f(
                start,
                start + ph.p_memsz as usize,
                ph.p_flags & libc::PF_W != 0,
            );
        }
    }
}

/// `[start, end)` covering every writable loaded segment of the library (`.data`, `.bss` and
/// the rest), page-rounded outwards; None if there is none.
pub fn writable_range() -> Option<(usize, usize)> {
    let page = super::mem::page_size().max(1);
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    each_segment(|start, end, writable| {
        if writable {
            lo = lo.min(start & !(page - 1));
            hi = hi.max(end.next_multiple_of(page));
        }
    });
    (lo < hi).then_some((lo, hi))
}
