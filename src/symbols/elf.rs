//! ELF64 layout and bounds-checked reading: the one place that knows field offsets of the ELF
//! header, program and section headers, symbols, dynamic entries and notes, and the rule that
//! picks the function symbol naming an address (shared by `.dynsym` and `.symtab`).
//!
//! # Invariants
//! - Every read goes through `Bytes`, whose accessors return `None` for any range that does not
//!   lie inside its slice (offsets are `u64` from the file, added with `checked_add`): a
//!   truncated or hostile file yields "no name", never an out-of-bounds access.
//! - Only 64-bit ELF of the machine's own byte order is understood (x86_64, aarch64); anything
//!   else is "not ELF".

/// Sizes of the ELF64 records.
pub const EHDR_SIZE: u64 = 64;
pub const PHDR_SIZE: u64 = 56;
pub const SHDR_SIZE: u64 = 64;
pub const SYM_SIZE: u64 = 24;

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_NOTE: u32 = 4;

pub const SHT_SYMTAB: u32 = 2;
pub const SHT_NOTE: u32 = 7;
pub const SHT_NOBITS: u32 = 8;

pub const DT_NULL: u64 = 0;
pub const DT_HASH: u64 = 4;
pub const DT_STRTAB: u64 = 5;
pub const DT_SYMTAB: u64 = 6;
pub const DT_STRSZ: u64 = 10;
pub const DT_SYMENT: u64 = 11;
pub const DT_GNU_HASH: u64 = 0x6fff_fef5;
pub const DT_VERSYM: u64 = 0x6fff_fff0;
pub const DT_VERDEF: u64 = 0x6fff_fffc;
pub const DT_VERDEFNUM: u64 = 0x6fff_fffd;

pub const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const NT_GNU_BUILD_ID: u32 = 3;

/// Longest build-id we keep (SHA-1 ids are 20 bytes; some linkers make 16 or 32).
pub const BUILD_ID_MAX: usize = 32;

/// A byte range that can only be read inside its bounds.
#[derive(Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub fn len(self) -> u64 {
        self.0.len() as u64
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// `[off, off + len)`, or None when it is not inside.
    pub fn sub(self, off: u64, len: u64) -> Option<Bytes<'a>> {
        let end = off.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        Some(Bytes(&self.0[off as usize..end as usize]))
    }

    fn array<const K: usize>(self, off: u64) -> Option<[u8; K]> {
        let b = self.sub(off, K as u64)?;
        let mut a = [0u8; K];
        a.copy_from_slice(b.0);
        Some(a)
    }

    pub fn u8(self, off: u64) -> Option<u8> {
        Some(self.array::<1>(off)?[0])
    }

    pub fn u16(self, off: u64) -> Option<u16> {
        Some(u16::from_ne_bytes(self.array(off)?))
    }

    pub fn u32(self, off: u64) -> Option<u32> {
        Some(u32::from_ne_bytes(self.array(off)?))
    }

    pub fn u64(self, off: u64) -> Option<u64> {
        Some(u64::from_ne_bytes(self.array(off)?))
    }

    /// The NUL-terminated string at `off` (without the NUL; to the end if there is none).
    pub fn cstr(self, off: u64) -> Option<&'a [u8]> {
        let rest = self.sub(off, self.len().checked_sub(off)?)?.0;
        let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        Some(&rest[..n])
    }
}

/// The parts of an ELF header we use.
pub struct Header {
    pub phoff: u64,
    pub phnum: u64,
    pub shoff: u64,
    pub shnum: u64,
    pub shstrndx: u64,
}

/// Checks the identification (magic, 64-bit, our byte order) and reads the header fields.
pub fn header(b: Bytes) -> Option<Header> {
    let id = b.sub(0, 16)?.0;
    let data = if cfg!(target_endian = "little") { 1 } else { 2 };
    if id[..4] != *b"\x7fELF" || id[4] != 2 || id[5] != data {
        return None;
    }
    let phentsize = b.u16(54)? as u64;
    let shentsize = b.u16(58)? as u64;
    let mut h = Header {
        phoff: b.u64(32)?,
        phnum: b.u16(56)? as u64,
        shoff: b.u64(40)?,
        shnum: b.u16(60)? as u64,
        shstrndx: b.u16(62)? as u64,
    };
    if h.phnum != 0 && phentsize != PHDR_SIZE {
        h.phnum = 0;
    }
    if h.shoff != 0 && shentsize != SHDR_SIZE {
        return None;
    }
    // Many sections: the real count and string-table index live in section header 0.
    if h.shoff != 0 && h.shnum == 0 {
        h.shnum = b.u64(h.shoff.checked_add(32)?)?;
    }
    if h.shstrndx == 0xffff {
        h.shstrndx = b.u32(h.shoff.checked_add(40)?)? as u64;
    }
    Some(h)
}

/// One program header.
#[derive(Clone, Copy)]
pub struct Phdr {
    pub kind: u32,
    pub vaddr: u64,
    pub memsz: u64,
}

/// Program header `i` of a table `phdrs` (the bytes of the whole table).
pub fn phdr(phdrs: Bytes, i: u64) -> Option<Phdr> {
    let p = phdrs.sub(i.checked_mul(PHDR_SIZE)?, PHDR_SIZE)?;
    Some(Phdr {
        kind: p.u32(0)?,
        vaddr: p.u64(16)?,
        memsz: p.u64(40)?,
    })
}

/// One section header.
#[derive(Clone, Copy)]
pub struct Shdr {
    pub name: u32,
    pub kind: u32,
    /// Link-time address of the section in memory (0 if not loaded).
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
}

/// Section header `i` of the file `b`.
pub fn shdr(b: Bytes, h: &Header, i: u64) -> Option<Shdr> {
    if i >= h.shnum {
        return None;
    }
    let s = b.sub(h.shoff.checked_add(i.checked_mul(SHDR_SIZE)?)?, SHDR_SIZE)?;
    Some(Shdr {
        name: s.u32(0)?,
        kind: s.u32(4)?,
        addr: s.u64(16)?,
        offset: s.u64(24)?,
        size: s.u64(32)?,
        link: s.u32(40)?,
    })
}

/// The file bytes of a section (None for NOBITS or a section outside the file).
pub fn section<'a>(b: Bytes<'a>, s: &Shdr) -> Option<Bytes<'a>> {
    if s.kind == SHT_NOBITS {
        return None;
    }
    b.sub(s.offset, s.size)
}

/// A GNU build-id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BuildId {
    pub len: u8,
    pub bytes: [u8; BUILD_ID_MAX],
}

impl BuildId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The `NT_GNU_BUILD_ID` note among the notes in `notes`, if any.
pub fn build_id_note(notes: Bytes) -> Option<BuildId> {
    let mut off = 0u64;
    while off.checked_add(12)? <= notes.len() {
        let namesz = notes.u32(off)? as u64;
        let descsz = notes.u32(off + 4)? as u64;
        let kind = notes.u32(off + 8)?;
        let name_off = off + 12;
        let desc_off = name_off.checked_add(namesz.checked_add(3)? & !3)?;
        let next = desc_off.checked_add(descsz.checked_add(3)? & !3)?;
        let name = notes.sub(name_off, namesz)?.0;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            let d = notes.sub(desc_off, descsz)?.0;
            if d.is_empty() || d.len() > BUILD_ID_MAX {
                return None;
            }
            let mut id = BuildId {
                len: d.len() as u8,
                bytes: [0; BUILD_ID_MAX],
            };
            id.bytes[..d.len()].copy_from_slice(d);
            return Some(id);
        }
        off = next;
    }
    None
}

/// The function symbol picked for an address: its value, the offset of its name, and for a
/// symbol without a size its section (the caller may check that the address is inside it).
#[derive(Clone, Copy)]
pub struct Found {
    pub value: u64,
    pub name: u32,
    /// None when the symbol's size covers the address.
    pub sizeless_in: Option<u16>,
}

/// A candidate symbol.
#[derive(Clone, Copy)]
struct Cand {
    value: u64,
    name: u32,
    info: u8,
    shndx: u16,
}

/// Between aliases at one address, higher is preferred: the public spelling (fewer leading
/// underscores: `malloc` over `__libc_malloc`, `strndup` over `__strndup`), then global over
/// weak over local.
fn rank(strings: Bytes, c: &Cand) -> u32 {
    let underscores = strings
        .cstr(c.name as u64)
        .map(|s| s.iter().take(8).take_while(|&&ch| ch == b'_').count())
        .unwrap_or(8) as u32;
    let bind = match c.info >> 4 {
        STB_GLOBAL => 2,
        STB_WEAK => 1,
        _ => 0,
    };
    (8 - underscores) * 4 + bind
}

/// `a` beats the current choice `b` (names are only read for aliases at one address).
fn better(strings: Bytes, a: &Cand, b: &Option<Cand>) -> bool {
    match b {
        None => true,
        Some(b) => a.value > b.value || (a.value == b.value && rank(strings, a) > rank(strings, b)),
    }
}

/// Picks the function symbol (STT_FUNC or STT_GNU_IFUNC, defined) of the table `syms`
/// (`count` entries of 24 bytes) that names `off` (an address relative to the load bias, as
/// symbol values are): the one whose `[value, value + size)` covers it, else the nearest
/// preceding one without a size (hand-written assembly) when no sized function starts at or
/// after it. An address past the end of a sized symbol gets no name: the function it is in is
/// not in the table, and the previous function's name would be a wrong answer. For a sizeless
/// symbol the caller that has section headers checks the address is in its section (else
/// `_init` would name the PLT stubs that follow `.init`).
pub fn pick(syms: Bytes, count: u64, strings: Bytes, off: u64) -> Option<Found> {
    let mut covering: Option<Cand> = None;
    let mut sizeless: Option<Cand> = None;
    // Highest start of a sized function at or before `off`.
    let mut sized_start = 0u64;
    let count = count.min(syms.len() / SYM_SIZE) as usize;
    for s in syms.0.chunks_exact(SYM_SIZE as usize).take(count) {
        let s = Bytes(s);
        let (Some(name), Some(info), Some(shndx), Some(value), Some(size)) =
            (s.u32(0), s.u8(4), s.u16(6), s.u64(8), s.u64(16))
        else {
            break;
        };
        let kind = info & 0xf;
        if (kind != STT_FUNC && kind != STT_GNU_IFUNC) || shndx == 0 || value == 0 || value > off {
            continue;
        }
        let c = Cand {
            value,
            name,
            info,
            shndx,
        };
        if size == 0 {
            if better(strings, &c, &sizeless) {
                sizeless = Some(c);
            }
            continue;
        }
        sized_start = sized_start.max(value);
        if off - value < size && better(strings, &c, &covering) {
            covering = Some(c);
        }
    }
    let (c, sizeless_in) = match (covering, sizeless) {
        (Some(c), _) => (c, None),
        (None, Some(u)) if u.value > sized_start => (u, Some(u.shndx)),
        _ => return None,
    };
    Some(Found {
        value: c.value,
        name: c.name,
        sizeless_in,
    })
}
