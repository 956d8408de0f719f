//! Symbolization: module+offset -> `function (file:line)`.
//!
//! One addr2line context per module path, loaded on first use and cached (`None` when the file
//! cannot be read or parsed). Offsets are relative to the module's load base, which is what
//! `addr2line -e MODULE OFFSET` expects for PIE executables and shared objects. An offset below the
//! first PT_LOAD segment's address (a non-PIE executable whose base was taken as the start of its
//! first mapping) is moved up by that address.
//!
//! Caller addresses are return addresses: the line is looked up at `offset - 1` (the call
//! instruction), which is what debuggers do.

use rustc_hash::FxHashMap;
use std::path::Path;

struct Module {
    loader: Option<addr2line::Loader>,
    /// p_vaddr of the first PT_LOAD segment (0 for PIE and most shared objects).
    first_vaddr: u64,
    /// End of the last PT_LOAD segment (p_vaddr + p_memsz); 0 if unknown.
    end_vaddr: u64,
}

#[derive(Default)]
pub struct Symbolizer {
    modules: FxHashMap<String, Module>,
    cache: FxHashMap<(String, u64), Option<String>>,
    /// Disable lookups (print module+offset only).
    pub disabled: bool,
}

/// (p_vaddr of the first PT_LOAD, end of the last PT_LOAD) of a 64-bit little-endian ELF file;
/// (0, 0) if it is not one.
fn load_range(path: &Path) -> (u64, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (0, 0);
    };
    let mut h = [0u8; 64];
    if f.read_exact(&mut h).is_err() || &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return (0, 0);
    }
    let u16at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64at(&h, 32);
    let phentsize = u16at(&h, 54);
    let phnum = u16at(&h, 56).min(256);
    if phentsize < 56 {
        return (0, 0);
    }
    let (mut first, mut end) = (None, 0u64);
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        if f.seek(SeekFrom::Start(phoff + i * phentsize)).is_err() || f.read_exact(&mut ph).is_err()
        {
            return (0, 0);
        }
        if u32::from_le_bytes(ph[..4].try_into().unwrap()) == 1 {
            let (vaddr, memsz) = (u64at(&ph, 16), u64at(&ph, 40));
            first.get_or_insert(vaddr);
            end = end.max(vaddr.saturating_add(memsz));
        }
    }
    (first.unwrap_or(0), end)
}

impl Symbolizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn module(&mut self, path: &str) -> &Module {
        self.modules.entry(path.to_string()).or_insert_with(|| {
            let p = Path::new(path);
            let (first_vaddr, end_vaddr) = load_range(p);
            Module {
                loader: addr2line::Loader::new(p).ok(),
                first_vaddr,
                end_vaddr,
            }
        })
    }

    /// False when `offset` is past the end of the module's loaded segments (the address belongs
    /// to a module the log does not name). True when unknown.
    pub fn in_module(&mut self, module: &str, offset: u64) -> bool {
        let m = self.module(module);
        let probe = if m.first_vaddr != 0 && offset < m.first_vaddr {
            offset + m.first_vaddr
        } else {
            offset
        };
        m.end_vaddr == 0 || probe < m.end_vaddr
    }

    /// `function (file:line)` for the code at `offset` in `module`, `function (module+0xoff)`
    /// when only the symbol table knows it, None when nothing is known.
    /// `ret`: `offset` is a return address (look up the call instruction before it).
    pub fn lookup(&mut self, module: &str, offset: u64, ret: bool) -> Option<String> {
        if self.disabled {
            return None;
        }
        let key = (module.to_string(), offset);
        if let Some(v) = self.cache.get(&key) {
            return v.clone();
        }
        let m = self.module(module);
        let mut probe = offset;
        if m.first_vaddr != 0 && probe < m.first_vaddr {
            probe += m.first_vaddr;
        }
        let line_probe = if ret && probe > 0 { probe - 1 } else { probe };
        let res = m.loader.as_ref().and_then(|l| {
            let mut func: Option<String> = None;
            let mut loc: Option<String> = None;
            if let Ok(mut frames) = l.find_frames(line_probe) {
                // Innermost frame first: its function and line are where the call is.
                if let Ok(Some(fr)) = frames.next() {
                    if let Some(f) = fr.function.as_ref()
                        && let Ok(n) = f.demangle()
                    {
                        func = Some(n.into_owned());
                    }
                    if let Some(l) = fr.location.as_ref()
                        && let (Some(file), Some(line)) = (l.file, l.line)
                    {
                        loc = Some(format!("{file}:{line}"));
                    }
                }
            }
            if loc.is_none()
                && let Ok(Some(l)) = l.find_location(line_probe)
                && let (Some(file), Some(line)) = (l.file, l.line)
            {
                loc = Some(format!("{file}:{line}"));
            }
            if func.is_none() {
                func = l
                    .find_symbol(line_probe)
                    .map(|s| addr2line::demangle_auto(s.into(), None).into_owned());
            }
            match (func, loc) {
                (Some(f), Some(l)) => Some(format!("{f} ({l})")),
                (None, Some(l)) => Some(format!("?? ({l})")),
                (Some(f), None) => Some(format!("{f} ({module}+0x{offset:x})")),
                (None, None) => None,
            }
        });
        self.cache.insert(key, res.clone());
        res
    }
}

/// Address -> module lookup from a log's module records.
#[derive(Default, Clone)]
pub struct ModuleMap {
    /// Sorted by base.
    bases: Vec<(u64, String)>,
}

impl ModuleMap {
    pub fn new(mods: &[(u64, String)]) -> Self {
        let mut bases: Vec<(u64, String)> = Vec::with_capacity(mods.len());
        for (b, p) in mods {
            // A later record for the same base (dlclose + dlopen) replaces the earlier one.
            if let Some(e) = bases.iter_mut().find(|(eb, _)| eb == b) {
                e.1 = p.clone();
            } else {
                bases.push((*b, p.clone()));
            }
        }
        bases.sort_by_key(|(b, _)| *b);
        ModuleMap { bases }
    }

    /// The module with the greatest base <= addr, and the offset in it.
    pub fn find(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.bases.partition_point(|(b, _)| *b <= addr);
        if i == 0 {
            return None;
        }
        let (b, p) = &self.bases[i - 1];
        Some((p.as_str(), addr - b))
    }
}

/// Symbolizes absolute addresses of one log.
pub struct AddrNamer {
    pub map: ModuleMap,
    pub sym: Symbolizer,
    cache: FxHashMap<u64, String>,
}

impl AddrNamer {
    pub fn new(mods: &[(u64, String)], symbols: bool) -> Self {
        let mut sym = Symbolizer::new();
        sym.disabled = !symbols;
        AddrNamer {
            map: ModuleMap::new(mods),
            sym,
            cache: FxHashMap::default(),
        }
    }

    /// `function (file:line)`, `function (module+0xoff)`, `module+0xoff` or `0xaddr`.
    pub fn name(&mut self, addr: u64) -> String {
        if let Some(s) = self.cache.get(&addr) {
            return s.clone();
        }
        let s = match self.map.find(addr) {
            Some((m, off)) if !self.sym.disabled && !self.sym.in_module(&m.to_string(), off) => {
                format!("0x{addr:x}")
            }
            Some((m, off)) => {
                let m = m.to_string();
                self.sym
                    .lookup(&m, off, true)
                    .unwrap_or_else(|| format!("{m}+0x{off:x}"))
            }
            None => format!("0x{addr:x}"),
        };
        self.cache.insert(addr, s.clone());
        s
    }
}
