//! Function names from `.dynsym`, the dynamic symbol table the loader keeps mapped: found
//! through the object's dynamic section (`DT_SYMTAB`, `DT_STRTAB`, `DT_STRSZ`, the symbol
//! count from `DT_GNU_HASH` or `DT_HASH`). No system call, no lock, no allocation: usable from
//! a signal handler. It names exported functions only (static ones need `.symtab`). A linear
//! scan of the table: cheap enough for a report, never for the malloc path.
//!
//! # Invariants
//! Every table is read through `Module::mem`, inside the object's span; counts come from the
//! hash tables the loader itself uses, and are capped; a name must end inside `DT_STRSZ`.

use super::elf::{self, Bytes};
use super::module::Module;
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
    })
}

/// The exported function of `m` that holds `addr` (as `name+0xOFF`), from `.dynsym`.
pub fn lookup(m: &Module, addr: usize) -> Option<Name> {
    let t = table(m)?;
    let f = elf::pick(t.syms, t.count, t.strings, m.offset(addr) as u64)?;
    let off = m.offset(addr).wrapping_sub(f.value as usize);
    Name::copy(t.strings, f.name, off, Source::Dynsym)
}
