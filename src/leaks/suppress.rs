//! Leak suppressions (`suppress=FILE`), in LeakSanitizer's format: one `leak:PATTERN` per
//! line, `#` comments, other kinds of line ignored (a file shared with AddressSanitizer may
//! hold them). A leak whose allocation stack has a frame whose function name (as reports name
//! it) or module path matches a pattern is not reported, direct or indirect; the summary counts
//! it apart, and a line per pattern used says how much it took.
//!
//! A pattern matches anywhere in a name unless it starts with `^` (at the start) or ends with
//! `$` (at the end); `*` stands for any run of bytes.
//!
//! The file is read at exit, into a mapping of its own (`CAP` bytes at most) that also holds
//! the patterns' places and counts: the report may run on a small thread stack.

use crate::fmt::{Line, prefix};
use crate::symbols::{Lookup, Pc, Symbolizer};
use crate::sys;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of a suppression file read at most.
const CAP: usize = 64 << 10;
/// Patterns kept at most.
pub(super) const MAX: usize = 256;

/// Room of a NUL-terminated path.
const PATH_ROOM: usize = 1025;

/// The mapping of a loaded file (all zero is a valid start).
#[repr(C)]
struct Store {
    text: [u8; CAP],
    path: [u8; PATH_ROOM],
    /// (offset, length) of each pattern in `text`.
    pat: [(u32, u32); MAX],
    /// (bytes, blocks) each pattern suppressed.
    took: [(usize, usize); MAX],
}

/// The patterns of a suppression file, with what each one took.
pub(super) struct Suppressions {
    store: *mut Store,
    pub n: usize,
}

/// The option's value as a NUL-terminated path.
fn c_path(path: &[u8], buf: &mut [u8; PATH_ROOM]) -> Option<usize> {
    if path.len() >= buf.len() {
        return None;
    }
    buf[..path.len()].copy_from_slice(path);
    buf[path.len()] = 0;
    Some(path.len() + 1)
}

/// The file could not be read at start-up, which a warning said already.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Writes the warning that `path` cannot be read (`err`), so no leak is suppressed; once.
fn warn(path: &[u8], err: i32) {
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    let mut l: Line<600> = Line::new();
    prefix(&mut l)
        .s(b"WARNING: suppress=")
        .s(path)
        .s(b": cannot read it (")
        .s(sys::errno_name(err))
        .s(b": ")
        .s(sys::errno_desc(err))
        .s(b"); no leak is suppressed\n");
    l.report();
}

/// Start-up: warns at once when the suppression file cannot be opened.
pub fn check(path: &[u8]) {
    let mut buf = [0u8; PATH_ROOM];
    let Some(n) = c_path(path, &mut buf) else {
        return warn(path, libc::ENAMETOOLONG);
    };
    match sys::open(&buf[..n], libc::O_RDONLY | libc::O_CLOEXEC, 0) {
        Ok(fd) => sys::close(fd),
        Err(e) => warn(path, e),
    }
}

impl Suppressions {
    /// Reads and parses the file at `path`; None (with a warning) when it cannot be read.
    pub(super) fn load(path: &[u8]) -> Option<Suppressions> {
        let Some(map) = crate::pagemap::map_internal(core::mem::size_of::<Store>()) else {
            warn(path, libc::ENOMEM);
            return None;
        };
        // Dropped (and unmapped) on every way out.
        let mut s = Suppressions {
            store: map as *mut Store,
            n: 0,
        };
        // SAFETY: a fresh zeroed mapping of a Store, ours alone while `s` lives.
        let st = unsafe { &mut *s.store };
        let Some(n) = c_path(path, &mut st.path) else {
            warn(path, libc::ENAMETOOLONG);
            return None;
        };
        let len = match sys::read_small_file(&st.path[..n], &mut st.text) {
            Ok(len) => len,
            Err(e) => {
                warn(path, e);
                return None;
            }
        };
        let text = &st.text;
        let mut at = 0;
        for line in text[..len].split(|&b| b == b'\n') {
            let start = at;
            at += line.len() + 1;
            let line = line.trim_ascii();
            let Some(p) = line.strip_prefix(b"leak:") else {
                continue;
            };
            let p = p.trim_ascii();
            if p.is_empty() || s.n == MAX {
                continue;
            }
            let off = start + (p.as_ptr() as usize - text[start..].as_ptr() as usize);
            st.pat[s.n] = (off as u32, p.len() as u32);
            s.n += 1;
        }
        Some(s)
    }

    /// Pattern `i`.
    pub(super) fn pattern(&self, i: usize) -> &[u8] {
        // SAFETY: the mapping lives as `self` does; only `took` is written through it.
        let st = unsafe { &*self.store };
        let (off, len) = st.pat[i];
        &st.text[off as usize..][..len as usize]
    }

    /// What pattern `i` took: (bytes, blocks).
    pub(super) fn took(&self, i: usize) -> (usize, usize) {
        // SAFETY: as in `pattern`.
        unsafe { (*self.store).took[i] }
    }

    /// Counts `bytes` in `blocks` taken by pattern `i`.
    pub(super) fn take(&mut self, i: usize, bytes: usize, blocks: usize) {
        // SAFETY: as in `pattern`; `&mut self` excludes any other reference to it.
        let t = unsafe { &mut (*self.store).took[i] };
        t.0 += bytes;
        t.1 += blocks;
    }

    /// The first pattern that a frame of `frames` (return addresses) matches, by its function
    /// name or its module's path. The allocator's own frames are passed over.
    pub(super) fn find(&self, frames: &[usize]) -> Option<usize> {
        if self.n == 0 {
            return None;
        }
        let mut sym = Symbolizer::new(Lookup::SignalSafe);
        for &pc in frames {
            let f = sym.frame(pc, Pc::Return);
            if f.is_own() {
                continue;
            }
            let name = f.function.as_ref().map(|n| n.as_bytes());
            let module = f.module.as_ref().map(|m| m.path());
            for i in 0..self.n {
                let p = self.pattern(i);
                if name.is_some_and(|t| matches(p, t)) || module.is_some_and(|t| matches(p, t)) {
                    return Some(i);
                }
            }
        }
        None
    }
}

impl Drop for Suppressions {
    fn drop(&mut self) {
        // SAFETY: mapped by `load`, no longer used (the patterns borrow `self`).
        unsafe {
            crate::pagemap::unmap_internal(self.store as *mut u8, core::mem::size_of::<Store>())
        };
    }
}

/// Whether `pat` matches `text`: anywhere, unless anchored by a leading `^` or a trailing `$`;
/// `*` matches any run of bytes.
pub(super) fn matches(pat: &[u8], text: &[u8]) -> bool {
    let (start, pat) = match pat.strip_prefix(b"^") {
        Some(p) => (true, p),
        None => (false, pat),
    };
    let (end, pat) = match pat.strip_suffix(b"$") {
        Some(p) => (true, p),
        None => (false, pat),
    };
    glob(pat, text, !start, !end)
}

/// Glob match of `pat` (`*` only) against `text`, with an implicit `*` in front when `open_start`
/// and behind when `open_end`. Iterative, backtracking to the last `*` only.
fn glob(pat: &[u8], text: &[u8], open_start: bool, open_end: bool) -> bool {
    // Positions: (in pattern, in text) just after the last star, or the virtual leading one.
    let mut star: Option<(usize, usize)> = open_start.then_some((0, 0));
    let (mut p, mut t) = (0, 0);
    loop {
        if p < pat.len() && pat[p] == b'*' {
            p += 1;
            star = Some((p, t));
            continue;
        }
        if p == pat.len() && (t == text.len() || open_end) {
            return true;
        }
        if p < pat.len() && t < text.len() && pat[p] == text[t] {
            p += 1;
            t += 1;
            continue;
        }
        // Mismatch: the last star takes one more byte.
        match star {
            Some((sp, st)) if st < text.len() => {
                star = Some((sp, st + 1));
                p = sp;
                t = st + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_leak_sanitizer_does() {
        let yes: &[(&str, &str)] = &[
            ("fontconfig", "/usr/lib/x86_64-linux-gnu/libfontconfig.so.1"),
            ("^/usr/lib", "/usr/lib/libz.so"),
            ("so.1$", "/usr/lib/libfontconfig.so.1"),
            ("*Leaking*", "LSanTestLeakingFunc"),
            ("Test*Func", "LSanTestLeakingFunc"),
            ("^LSan*Func$", "LSanTestLeakingFunc"),
            ("a*b*c", "xxaxxbxxcxx"),
            ("^main$", "main"),
            ("*", ""),
        ];
        for (p, t) in yes {
            assert!(matches(p.as_bytes(), t.as_bytes()), "{p} ~ {t}");
        }
        let no: &[(&str, &str)] = &[
            ("^usr", "/usr/lib/libz.so"),
            ("so$", "/usr/lib/libz.so.1"),
            ("^main$", "main2"),
            ("a*b*c", "xxaxxcxxbxx"),
            ("copy", "cop"),
            ("^Test*Func", "LSanTestLeakingFunc"),
        ];
        for (p, t) in no {
            assert!(!matches(p.as_bytes(), t.as_bytes()), "{p} !~ {t}");
        }
    }
}
