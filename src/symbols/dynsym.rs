//! Function names from `.dynsym`, the dynamic symbol table the loader keeps mapped: found
//! through the object's dynamic section (`DT_SYMTAB`, `DT_STRTAB`, `DT_STRSZ`, the symbol
//! count from `DT_GNU_HASH` or `DT_HASH`). No system call, no lock, no allocation: usable from
//! a signal handler. It names exported functions only (static ones need `.symtab`). A linear
//! scan of the table: cheap enough for a report, never for the malloc path. `find` goes the
//! other way (a versioned name to its address), to find `_dl_find_object` in libc.
//!
//! # Invariants
//! Every table is read through `Module::mem`, inside the object's span; counts come from the
//! hash tables the loader itself uses, and are capped; a name must end inside `DT_STRSZ`.

use super::elf::{self, Bytes};
use super::image::Module;
use super::name::{Name, Source};

/// Most dynamic entries read before giving up on a missing `DT_NULL`.
const MAX_DYN: usize = 1024;
/// Most symbols believed (the largest libraries export a few hundred thousand).
const MAX_SYMS: u64 = 1 << 22;

/// The dynamic symbol table of a loaded object.
pub struct DynSyms<'a> {
    pub syms: Bytes<'a>,
    pub count: u64,
    pub strings: Bytes<'a>,
    /// Version index of each symbol (`DT_VERSYM`), and the version definitions (`DT_VERDEF`:
    /// run-time address, count), when the object has them.
    versym: Option<Bytes<'a>>,
    verdef: (usize, u64),
}

/// A dynamic-section pointer as a run-time address. glibc relocates these entries in place
/// on most architectures but not in a read-only dynamic section (the vDSO, RISC-V, MIPS): a
/// value inside the object is taken as is, one that lands inside once the bias is added is
/// relative.
fn to_addr(m: &Module, v: u64) -> Option<usize> {
    let v = v as usize;
    if m.contains(v) {
        return Some(v);
    }
    let r = v.wrapping_add(m.bias);
    if m.contains(r) { Some(r) } else { None }
}

fn u32_at(m: &Module, addr: usize) -> Option<u32> {
    m.mem(addr, 4)?.u32(0)
}

/// Symbol count from a `DT_HASH` table: its `nchain`.
fn count_hash(m: &Module, hash: usize) -> Option<u64> {
    Some(u32_at(m, hash.checked_add(4)?)? as u64)
}

/// Symbol count from a `DT_GNU_HASH` table: one past the last symbol of the longest-reaching
/// chain (the table holds no count; symbols below `symoffset` are not hashed).
fn count_gnu_hash(m: &Module, hash: usize) -> Option<u64> {
    let h = m.mem(hash, 16)?;
    let (nbuckets, symoffset, bloom) = (h.u32(0)? as usize, h.u32(4)? as usize, h.u32(8)?);
    let buckets = hash
        .checked_add(16)?
        .checked_add((bloom as usize).checked_mul(8)?)?;
    let b = m.mem(buckets, nbuckets.checked_mul(4)?)?;
    let mut last = 0usize;
    for i in 0..nbuckets {
        last = last.max(b.u32(i as u64 * 4)? as usize);
    }
    if last < symoffset {
        return Some(symoffset as u64);
    }
    let chain = buckets.checked_add(nbuckets * 4)?;
    // Walk the last chain to its end (low bit set), at most MAX_SYMS steps.
    let mut i = last;
    loop {
        let at = chain.checked_add((i - symoffset).checked_mul(4)?)?;
        if u32_at(m, at)? & 1 != 0 {
            return Some(i as u64 + 1);
        }
        i += 1;
        if i as u64 > MAX_SYMS {
            return None;
        }
    }
}

/// Finds the dynamic symbol table of `m`; None when it has no dynamic section or the
/// entries do not make sense.
pub fn table(m: &Module) -> Option<DynSyms<'_>> {
    if m.dynamic == 0 {
        return None;
    }
    let (mut symtab, mut strtab, mut strsz, mut hash, mut gnu_hash) = (0, 0, 0, 0, 0);
    let (mut versym, mut verdef, mut verdefnum) = (0, 0, 0);
    for i in 0..MAX_DYN {
        let e = m.mem(m.dynamic.checked_add(i * 16)?, 16)?;
        let (tag, val) = (e.u64(0)?, e.u64(8)?);
        match tag {
            elf::DT_NULL => break,
            elf::DT_SYMTAB => symtab = val,
            elf::DT_STRTAB => strtab = val,
            elf::DT_STRSZ => strsz = val,
            elf::DT_HASH => hash = val,
            elf::DT_GNU_HASH => gnu_hash = val,
            elf::DT_VERSYM => versym = val,
            elf::DT_VERDEF => verdef = val,
            elf::DT_VERDEFNUM => verdefnum = val,
            elf::DT_SYMENT if val != elf::SYM_SIZE => return None,
            _ => {}
        }
    }
    let count = if gnu_hash != 0 {
        count_gnu_hash(m, to_addr(m, gnu_hash)?)?
    } else if hash != 0 {
        count_hash(m, to_addr(m, hash)?)?
    } else {
        return None;
    };
    if count > MAX_SYMS || strsz == 0 {
        return None;
    }
    Some(DynSyms {
        syms: m.mem(to_addr(m, symtab)?, (count * elf::SYM_SIZE) as usize)?,
        count,
        strings: m.mem(to_addr(m, strtab)?, strsz as usize)?,
        versym: to_addr(m, versym).and_then(|a| m.mem(a, (count * 2) as usize)),
        verdef: (to_addr(m, verdef).unwrap_or(0), verdefnum),
    })
}

/// The name of the version symbol `i` is defined at (`GLIBC_2.35`), from `DT_VERSYM` and the
/// `DT_VERDEF` chain.
fn version_of<'a>(m: &'a Module, t: &DynSyms<'a>, i: u64) -> Option<&'a [u8]> {
    let ndx = t.versym?.u16(i * 2)? & 0x7fff;
    let mut at = t.verdef.0;
    for _ in 0..t.verdef.1.min(1024) {
        // Elf64_Verdef: vd_ndx at 4, vd_aux at 12, vd_next at 16; Elf64_Verdaux: vda_name at 0.
        let d = m.mem(at, 20)?;
        if d.u16(4)? == ndx {
            let aux = m.mem(at.checked_add(d.u32(12)? as usize)?, 8)?;
            return t.strings.cstr(aux.u32(0)? as u64);
        }
        match d.u32(16)? {
            0 => return None,
            next => at = at.checked_add(next as usize)?,
        }
    }
    None
}

/// The run-time address of the function `name` defined at version `version` in `m`.
pub fn find(m: &Module, name: &[u8], version: &[u8]) -> Option<usize> {
    let t = table(m)?;
    (0..t.count).find_map(|i| {
        let s = t.syms.sub(i * elf::SYM_SIZE, elf::SYM_SIZE)?;
        let defined = s.u16(6)? != 0 && s.u8(4)? & 0xf == elf::STT_FUNC;
        if !defined || t.strings.cstr(s.u32(0)? as u64)? != name {
            return None;
        }
        if version_of(m, &t, i)? != version {
            return None;
        }
        Some(m.bias.wrapping_add(s.u64(8)? as usize))
    })
}

/// The exported function of `m` that holds `addr` (as `name+0xOFF`), from `.dynsym`.
pub fn lookup(m: &Module, addr: usize) -> Option<Name> {
    let t = table(m)?;
    let f = elf::pick(t.syms, t.count, t.strings, m.offset(addr) as u64)?;
    let off = m.offset(addr).wrapping_sub(f.value as usize);
    Name::copy(t.strings, f.name, off, Source::Dynsym)
}
