//! The address of a function of the loaded objects found at run time, without the loader's
//! lock and without a link-time reference: the link maps from `_r_debug.r_map` (ld.so, every
//! glibc), each object's `.dynamic`, its GNU hash table and dynamic symbols.
//!
//! Why: a link-time reference to `_dl_find_object` records a need for `GLIBC_2.35`, and lld
//! does not mark the need weak for a weak reference, so the library would refuse to load on an
//! older glibc. Looking the symbol up here keeps the version needs at what the rest requires.
//!
//! # Invariants
//! - Only objects already linked into the list are read (the list is appended to under the
//!   loader's lock after an object is mapped; objects loaded at start-up, libc among them, are
//!   never unloaded), at most `MAX_OBJECTS` of them, each lookup bounded by its hash chain.
//! - Addresses read from `.dynamic` are taken as relocated when they lie above the object's
//!   base and as offsets otherwise (glibc relocates writable dynamic sections in place, not the
//!   read-only ones such as the vDSO's).

const MAX_OBJECTS: usize = 256;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_GNU_HASH: u64 = 0x6fff_fef5;

/// `struct link_map` of `<link.h>` (the public head of glibc's).
#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const u8,
    l_ld: *const [u64; 2],
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

/// `struct r_debug` of `<link.h>`.
#[repr(C)]
struct RDebug {
    r_version: i32,
    r_map: *const LinkMap,
    r_brk: usize,
    /// `RT_CONSISTENT` (0), `RT_ADD` (1) or `RT_DELETE` (2).
    r_state: i32,
}

/// `r_state` while objects are being unloaded.
const RT_DELETE: i32 = 2;

unsafe extern "C" {
    /// ld.so's debugger interface: the head of the main namespace's link maps.
    static _r_debug: RDebug;
}

/// True while the loader is unloading objects of the main namespace (`dlclose` between its
/// two `_dl_debug_state` calls: the objects' mappings and link maps go away in that window).
#[inline]
pub fn unloading() -> bool {
    // SAFETY: as in `lookup`; the loader writes r_state, a plain int, under its lock.
    unsafe { core::ptr::addr_of!(_r_debug.r_state).read_volatile() == RT_DELETE }
}

/// The main program's link map (the list's head).
pub fn main_map() -> usize {
    // SAFETY: as in `lookup`.
    unsafe { core::ptr::addr_of!(_r_debug.r_map).read_volatile() as usize }
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// The address of the defined function or object `name` (without NUL) in the first loaded
/// object that exports it, or 0.
pub fn lookup(name: &[u8]) -> usize {
    // SAFETY: ld.so initialises _r_debug before any code of ours runs; r_map is the list head.
    let mut l = unsafe { core::ptr::addr_of!(_r_debug.r_map).read_volatile() };
    let h = gnu_hash(name);
    for _ in 0..MAX_OBJECTS {
        if l.is_null() {
            break;
        }
        // SAFETY: a link map of the list (module invariants).
        let lm = unsafe { &*l };
        // SAFETY: as above: a loaded object's dynamic section and tables.
        let v = unsafe { in_object(lm, name, h) };
        if v != 0 {
            return v;
        }
        l = lm.l_next;
    }
    0
}

/// Looks `name` up in one object's GNU hash table.
///
/// # Safety
/// `lm` is the link map of a loaded object.
unsafe fn in_object(lm: &LinkMap, name: &[u8], h: u32) -> usize {
    if lm.l_ld.is_null() {
        return 0;
    }
    let base = lm.l_addr;
    let fix = |p: u64| -> usize {
        let p = p as usize;
        if p >= base { p } else { base.wrapping_add(p) }
    };
    let (mut strtab, mut symtab, mut gnu) = (0usize, 0usize, 0usize);
    for i in 0..512 {
        // SAFETY: the dynamic section ends with DT_NULL (read up to it).
        let [tag, val] = unsafe { *lm.l_ld.add(i) };
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = fix(val),
            DT_SYMTAB => symtab = fix(val),
            DT_GNU_HASH => gnu = fix(val),
            _ => {}
        }
    }
    if strtab == 0 || symtab == 0 || gnu == 0 {
        return 0;
    }
    let word = |a: usize| -> u32 {
        // SAFETY: inside the object's GNU hash table (bounds from its own header).
        unsafe { (a as *const u32).read_unaligned() }
    };
    let (nbuckets, symoffset, bloom_size) = (word(gnu), word(gnu + 4), word(gnu + 8));
    if nbuckets == 0 {
        return 0;
    }
    let buckets = gnu + 16 + bloom_size as usize * 8;
    let chain = buckets + nbuckets as usize * 4;
    let first = word(buckets + (h % nbuckets) as usize * 4);
    if first < symoffset {
        return 0;
    }
    for i in (first..).take(4096) {
        let ch = word(chain + (i - symoffset) as usize * 4);
        if ch | 1 == h | 1 {
            let sym = symtab + i as usize * 24;
            let st_name = word(sym) as usize;
            // SAFETY: an Elf64_Sym of the object's dynamic symbol table.
            let (shndx, value) = unsafe {
                (
                    ((sym + 6) as *const u16).read_unaligned(),
                    ((sym + 8) as *const u64).read_unaligned(),
                )
            };
            if shndx != 0 && value != 0 && same_name(strtab + st_name, name) {
                return base.wrapping_add(value as usize);
            }
        }
        if ch & 1 != 0 {
            break;
        }
    }
    0
}

/// True when the NUL-terminated string at `s` is `name` (read no further than a mismatch).
fn same_name(s: usize, name: &[u8]) -> bool {
    for (i, &c) in name.iter().chain(&[0u8]).enumerate() {
        // SAFETY: bytes of a NUL-terminated string of a string table, up to its NUL or the
        // first byte that differs from `name`.
        if unsafe { *((s + i) as *const u8) } != c {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libc_functions_and_not_missing_ones() {
        let getpid = libc::getpid as unsafe extern "C" fn() -> i32 as usize;
        assert_eq!(lookup(b"getpid"), getpid);
        assert_ne!(lookup(b"_dl_find_object"), 0, "glibc 2.35+");
        assert_eq!(lookup(b"no_such_function_here"), 0);
    }
}
