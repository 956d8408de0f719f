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
    cache: FxHashMap<(String, u64, bool), Option<Chain>>,
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

    /// The source-level frames of the code at `offset` in `module`, innermost first: the
    /// functions inlined there (each with its line), then the function that holds the code,
    /// outermost last (what `addr2line -i -f` prints). One frame from the symbol table alone
    /// (no line) when the file has no line information for it; None when nothing is known.
    /// `ret`: `offset` is a return address (look up the call instruction before it).
    pub fn lookup_chain(&mut self, module: &str, offset: u64, ret: bool) -> Option<Chain> {
        if self.disabled {
            return None;
        }
        let key = (module.to_string(), offset, ret);
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
            let mut chain: Vec<SymFrame> = Vec::new();
            if let Ok(mut frames) = l.find_frames(line_probe) {
                while let Ok(Some(fr)) = frames.next() {
                    let function = fr
                        .function
                        .as_ref()
                        .and_then(|f| f.demangle().ok().map(|n| n.into_owned()));
                    let location = fr.location.as_ref().and_then(|l| match (l.file, l.line) {
                        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
                        _ => None,
                    });
                    chain.push(SymFrame { function, location });
                    if chain.len() >= MAX_INLINED {
                        break;
                    }
                }
            }
            if chain.is_empty() {
                chain.push(SymFrame::default());
            }
            if chain[0].location.is_none()
                && let Ok(Some(loc)) = l.find_location(line_probe)
                && let (Some(file), Some(line)) = (loc.file, loc.line)
            {
                chain[0].location = Some(format!("{file}:{line}"));
            }
            let last = chain.len() - 1;
            if chain[last].function.is_none() {
                chain[last].function = l
                    .find_symbol(line_probe)
                    .map(|s| addr2line::demangle_auto(s.into(), None).into_owned());
            }
            if chain.len() == 1 && chain[0].function.is_none() && chain[0].location.is_none() {
                return None;
            }
            Some(Chain {
                frames: chain.into(),
                module: module.to_string(),
                offset,
            })
        });
        self.cache.insert(key, res.clone());
        res
    }
}

/// Inlined frames listed per address at most (a bound against a damaged DWARF tree).
const MAX_INLINED: usize = 64;

/// One source-level frame: a function, and where in it (`file:line`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymFrame {
    pub function: Option<String>,
    pub location: Option<String>,
}

/// The source-level frames of one code address, innermost first (see
/// [`Symbolizer::lookup_chain`]): the first ones are inlined into the next, the last one is
/// the function the code belongs to.
#[derive(Clone, Debug)]
pub struct Chain {
    pub frames: std::rc::Rc<[SymFrame]>,
    module: String,
    offset: u64,
}

impl Chain {
    /// Frame `i` as `function (file:line)`; `?? (file:line)` without a function name,
    /// `function (module+0xoff)` without a line.
    pub fn text(&self, i: usize) -> String {
        let f = &self.frames[i];
        match (&f.function, &f.location) {
            (Some(func), Some(l)) => format!("{func} ({l})"),
            (None, Some(l)) => format!("?? ({l})"),
            (Some(func), None) => format!("{func} ({}+0x{:x})", self.module, self.offset),
            (None, None) => format!("?? ({}+0x{:x})", self.module, self.offset),
        }
    }

    /// Whether the innermost frame has a line (and not only a symbol).
    pub fn has_line(&self) -> bool {
        self.frames[0].location.is_some()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
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

/// What one code address of a log stands for.
#[derive(Debug)]
pub struct Resolved {
    /// `function (file:line)` per source-level frame, innermost first (the inlined ones
    /// first, the function holding the code last); a single `function (module+0xoff)`,
    /// `module+0xoff` or `0xaddr` when that is all that is known.
    pub lines: Vec<String>,
    /// The function names of the same frames, for flame graphs (`file+0xoff` with the
    /// module's file name, or `0xaddr`, when unknown).
    pub functions: Vec<String>,
    /// The address lies in a module of the C/C++ runtime (`ft_format::runtime`).
    pub runtime: bool,
}

/// Symbolizes absolute addresses of one log.
pub struct AddrNamer {
    pub map: ModuleMap,
    pub sym: Symbolizer,
    cache: FxHashMap<u64, std::rc::Rc<Resolved>>,
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

    /// The source-level frames of return address `addr` (cached).
    pub fn resolve(&mut self, addr: u64) -> std::rc::Rc<Resolved> {
        if let Some(r) = self.cache.get(&addr) {
            return r.clone();
        }
        let raw = || format!("0x{addr:x}");
        let r = match self.map.find(addr) {
            Some((m, off)) if !self.sym.disabled && !self.sym.in_module(m, off) => Resolved {
                lines: vec![raw()],
                functions: vec![raw()],
                runtime: false,
            },
            Some((m, off)) => {
                let m = m.to_string();
                let runtime = ft_format::runtime::is_runtime(m.as_bytes());
                let file = m.rsplit('/').next().unwrap_or(&m);
                let short = format!("{file}+0x{off:x}");
                match self.sym.lookup_chain(&m, off, true) {
                    Some(c) => Resolved {
                        lines: (0..c.len()).map(|i| c.text(i)).collect(),
                        functions: c
                            .frames
                            .iter()
                            .map(|f| f.function.clone().unwrap_or_else(|| short.clone()))
                            .collect(),
                        runtime,
                    },
                    None => Resolved {
                        lines: vec![format!("{m}+0x{off:x}")],
                        functions: vec![short],
                        runtime,
                    },
                }
            }
            None => Resolved {
                lines: vec![raw()],
                functions: vec![raw()],
                runtime: false,
            },
        };
        let r = std::rc::Rc::new(r);
        self.cache.insert(addr, r.clone());
        r
    }

    /// `function (file:line)` (the innermost source-level frame), `function (module+0xoff)`,
    /// `module+0xoff` or `0xaddr`.
    pub fn name(&mut self, addr: u64) -> String {
        self.resolve(addr).lines[0].clone()
    }

    /// The index of a stack's site: its first frame outside the C/C++ runtime (the
    /// program's code that asked for memory); frame 0 when every frame is runtime.
    pub fn site_index(&mut self, frames: &[u64]) -> usize {
        frames
            .iter()
            .position(|&a| !self.resolve(a).runtime)
            .unwrap_or(0)
    }
}
