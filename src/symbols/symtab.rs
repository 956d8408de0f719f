//! Function names from `.symtab`, which the loader does not map: the object's file is mapped
//! read-only while a report is written (`open` + `fstat` + `mmap`, unmapped on drop), its
//! section headers parsed, and `.symtab`/`.strtab` scanned. This names static functions too
//! (`next_token` in a C program) where `.dynsym` only has exported ones. A stripped file is
//! replaced by its separate debug file when one is installed: first
//! `/usr/lib/debug/.build-id/xx/yyyy.debug` from the file's build-id, then the
//! `.gnu_debuglink` name next to the file, in its `.debug/` and under `/usr/lib/debug/<dir>/`
//! (the CRC of a debuglink is not computed; a build-id, when both files have one, must match).
//! MiniDebugInfo (`.gnu_debugdata`, xz) is not read. No allocation; never on the malloc path.
//!
//! # Invariants
//! - All reads of the mapping go through `elf::Bytes` bounded by the file size `fstat` gave: a
//!   truncated or hostile file yields no name, never a fault. (A file truncated by someone
//!   else *while* it is mapped would raise SIGBUS; reports accept that window.)
//! - A file whose build-id differs from the loaded image's is not used (a library replaced on
//!   disk since it was loaded would give wrong names).

use super::elf::{self, BuildId, Bytes};
use super::name::{Name, Source};
use super::os::{self, FileMap};

/// Room for a debug-file path built on the stack.
const PATH_CAP: usize = 1024;

/// A mapped object file with a symbol table.
pub struct SymFile {
    map: FileMap,
    /// `.symtab` and its string table, as (offset, size) in the file.
    syms: (u64, u64),
    strings: (u64, u64),
    pub source: Source,
}

/// What the section headers of a file say.
struct Sections {
    syms: Option<((u64, u64), (u64, u64))>,
    build_id: Option<BuildId>,
    /// Offset and size of the `.gnu_debuglink` section.
    debuglink: Option<(u64, u64)>,
}

fn sections(b: Bytes) -> Option<Sections> {
    let h = elf::header(b)?;
    let names = elf::shdr(b, &h, h.shstrndx).and_then(|s| elf::section(b, &s));
    let mut out = Sections {
        syms: None,
        build_id: None,
        debuglink: None,
    };
    for i in 0..h.shnum.min(1 << 16) {
        let Some(s) = elf::shdr(b, &h, i) else { break };
        match s.kind {
            elf::SHT_SYMTAB if out.syms.is_none() => {
                let Some(st) = elf::shdr(b, &h, s.link as u64) else {
                    continue;
                };
                if elf::section(b, &s).is_some() && elf::section(b, &st).is_some() {
                    out.syms = Some(((s.offset, s.size), (st.offset, st.size)));
                }
            }
            elf::SHT_NOTE if out.build_id.is_none() => {
                out.build_id = elf::section(b, &s).and_then(elf::build_id_note);
            }
            _ => {
                let name = names.and_then(|n| n.cstr(s.name as u64));
                if name == Some(b".gnu_debuglink") && elf::section(b, &s).is_some() {
                    out.debuglink = Some((s.offset, s.size));
                }
            }
        }
    }
    Some(out)
}

impl SymFile {
    /// Maps `path` (NUL-terminated) and finds its `.symtab`, or that of its debug file.
    /// `name` (NUL-terminated) is the object's path, where a debuglink is looked for (it differs
    /// from `path` for `/proc/self/exe`). `expect` is the loaded image's build-id, when known.
    /// None when no symbol table is found.
    pub fn open(path: &[u8], name: &[u8], expect: Option<&BuildId>) -> Option<SymFile> {
        let map = os::map_file(path)?;
        let b = Bytes(map.bytes());
        let s = sections(b)?;
        if let (Some(want), Some(have)) = (expect, &s.build_id)
            && want != have
        {
            return None;
        }
        let id = s.build_id.as_ref().or(expect).copied();
        if let Some((syms, strings)) = s.syms {
            return Some(SymFile {
                map,
                syms,
                strings,
                source: Source::Symtab,
            });
        }
        if let Some(f) = id.as_ref().and_then(by_build_id) {
            return Some(f);
        }
        let (off, size) = s.debuglink?;
        let link = b.sub(off, size)?.cstr(0)?;
        let mut link_buf = [0u8; 256];
        if link.is_empty() || link.len() >= link_buf.len() || link.contains(&b'/') {
            return None;
        }
        link_buf[..link.len()].copy_from_slice(link);
        let link = &link_buf[..link.len()];
        drop(map);
        by_debuglink(name.strip_suffix(b"\0")?, link, id.as_ref())
    }

    /// The function that holds `off` (an address relative to the load bias).
    pub fn lookup(&self, off: usize) -> Option<Name> {
        let b = Bytes(self.map.bytes());
        let syms = b.sub(self.syms.0, self.syms.1)?;
        let strings = b.sub(self.strings.0, self.strings.1)?;
        let f = elf::pick(syms, syms.len() / elf::SYM_SIZE, strings, off as u64)?;
        if let Some(shndx) = f.sizeless_in {
            // A symbol without a size names only addresses of its own section.
            let h = elf::header(b)?;
            let s = elf::shdr(b, &h, shndx as u64)?;
            if (off as u64).wrapping_sub(s.addr) >= s.size {
                return None;
            }
        }
        Name::copy(
            strings,
            f.name,
            off.wrapping_sub(f.value as usize),
            self.source,
        )
    }
}

/// A stack-built path.
struct PathBuf {
    buf: [u8; PATH_CAP],
    len: usize,
    overflow: bool,
}

impl PathBuf {
    fn new() -> Self {
        PathBuf {
            buf: [0; PATH_CAP],
            len: 0,
            overflow: false,
        }
    }

    fn s(&mut self, t: &[u8]) -> &mut Self {
        if self.len + t.len() >= PATH_CAP {
            self.overflow = true;
        } else {
            self.buf[self.len..self.len + t.len()].copy_from_slice(t);
            self.len += t.len();
        }
        self
    }

    fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        for &x in bytes {
            let d = b"0123456789abcdef";
            self.s(&[d[(x >> 4) as usize], d[(x & 15) as usize]]);
        }
        self
    }

    /// The path with its NUL, None if it did not fit.
    fn cstr(&mut self) -> Option<&[u8]> {
        if self.overflow {
            return None;
        }
        self.buf[self.len] = 0;
        Some(&self.buf[..self.len + 1])
    }
}

/// A debug file with a `.symtab` (its build-id, when it has one, must be `expect`).
fn debug_file(path: &[u8], expect: Option<&BuildId>) -> Option<SymFile> {
    let map = os::map_file(path)?;
    let s = sections(Bytes(map.bytes()))?;
    if let (Some(want), Some(have)) = (expect, &s.build_id)
        && want != have
    {
        return None;
    }
    let (syms, strings) = s.syms?;
    Some(SymFile {
        map,
        syms,
        strings,
        source: Source::DebugFile,
    })
}

/// `/usr/lib/debug/.build-id/xx/yyyy.debug`.
fn by_build_id(id: &BuildId) -> Option<SymFile> {
    let b = id.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let mut p = PathBuf::new();
    p.s(b"/usr/lib/debug/.build-id/")
        .hex(&b[..1])
        .s(b"/")
        .hex(&b[1..])
        .s(b".debug");
    debug_file(p.cstr()?, Some(id))
}

/// The debuglink `link` of the file `path`: `dir/link`, `dir/.debug/link`,
/// `/usr/lib/debug/dir/link`.
fn by_debuglink(path: &[u8], link: &[u8], id: Option<&BuildId>) -> Option<SymFile> {
    let dir = &path[..path.iter().rposition(|&c| c == b'/')?];
    let own = path.rsplit(|&c| c == b'/').next();
    let places: [&[&[u8]]; 3] = [
        &[dir, b"/", link],
        &[dir, b"/.debug/", link],
        &[b"/usr/lib/debug", dir, b"/", link],
    ];
    for (i, parts) in places.into_iter().enumerate() {
        // The file itself is not its own debug file.
        if i == 0 && own == Some(link) {
            continue;
        }
        let mut p = PathBuf::new();
        for part in parts {
            p.s(part);
        }
        if let Some(f) = p.cstr().and_then(|c| debug_file(c, id)) {
            return Some(f);
        }
    }
    None
}
