//! The process's mappings, read from `/proc/self/maps` with raw `open`/`read` into a stack
//! buffer (no stdio, no allocation, no loader lock: `dladdr` would take it and deadlock
//! against a thread in `dlopen`), and the one table of the loaded modules (objects with
//! executable code, their base and path) built from them.
//!
//! The raw reading names the module of an address for reports (module + offset, for
//! addr2line; always current, so a library loaded where an unloaded one was is named right)
//! and gives the leak scanner its roots. The table is what the log's module records and its
//! mtrace callers come from.
//!
//! # Invariants
//! The module table is mapped once (`init_modules`) and never unmapped; it only grows; an entry
//! is complete before `n` publishes it (Release); only the thread that holds `SCANNING` writes
//! it.

use crate::fmt::Line;
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// One line of /proc/self/maps.
pub struct Mapping<'a> {
    pub start: usize,
    pub end: usize,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    pub shared: bool,
    pub offset: usize,
    pub path: &'a [u8],
}

fn hex(s: &[u8]) -> usize {
    let mut v = 0usize;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        v = v.wrapping_mul(16).wrapping_add(d as usize);
    }
    v
}

fn parse(line: &[u8]) -> Option<Mapping<'_>> {
    let mut it = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = it.next()?;
    let perms = it.next()?;
    let off = it.next()?;
    let _dev = it.next()?;
    let _inode = it.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    // The path is the rest of the line after the inode column (it may contain spaces).
    let path = match line.iter().position(|&b| b == b'/' || b == b'[') {
        Some(i) if i > 20 => &line[i..],
        _ => &[][..],
    };
    if perms.len() < 4 {
        return None;
    }
    Some(Mapping {
        start: hex(&range[..dash]),
        end: hex(&range[dash + 1..]),
        readable: perms[0] == b'r',
        writable: perms[1] == b'w',
        executable: perms[2] == b'x',
        shared: perms[3] == b's',
        offset: hex(off),
        path,
    })
}

/// Bytes of /proc/self/maps read at once: a line is 70-odd bytes before its path, so only a
/// path of more than 900 bytes is cut (`for_each`).
const MAPS_BUF: usize = 1024;

/// Calls `f` for every mapping until it returns false. Returns false if /proc is unreadable.
/// A line longer than the buffer comes with its path cut to what fits. Out of line, with a
/// small buffer: the reports and the leak check at exit read the mappings on the stack of
/// whatever thread they run in, which may be as small as 16 KiB.
#[inline(never)]
pub fn for_each(mut f: impl FnMut(&Mapping) -> bool) -> bool {
    let Ok(fd) = sys::open_maps() else {
        return false;
    };
    let mut buf = [0u8; MAPS_BUF];
    let mut have = 0usize;
    // The rest of a line already given (cut) is being passed over.
    let mut skipping = false;
    let mut go = true;
    while go {
        let n = sys::read(fd, &mut buf[have..]).unwrap_or(0);
        if n == 0 {
            if have > 0
                && !skipping
                && let Some(m) = parse(&buf[..have])
            {
                f(&m);
            }
            break;
        }
        have += n;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            start += nl + 1;
            if core::mem::take(&mut skipping) {
                continue;
            }
            if let Some(m) = parse(line)
                && !f(&m)
            {
                go = false;
                break;
            }
        }
        if !go {
            break;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer: given with the path cut, the rest passed over.
            if !skipping
                && let Some(m) = parse(&buf[..have])
                && !f(&m)
            {
                break;
            }
            skipping = true;
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    sys::close(fd);
    true
}

/// Writes `module+0xoffset` for `addr` (or the bare address if no module maps it).
pub fn describe<const N: usize>(addr: usize, l: &mut Line<N>) {
    let mut base_path = [0u8; 256];
    let mut base_len = 0usize;
    let mut base = 0usize;
    let mut done = false;
    for_each(|m| {
        if !m.path.is_empty() && m.path[0] == b'/' && m.offset == 0 {
            let n = m.path.len().min(256);
            base_path[..n].copy_from_slice(&m.path[..n]);
            base_len = n;
            base = m.start;
        }
        if addr >= m.start && addr < m.end {
            if !m.path.is_empty() {
                let b = if base_len > 0 && &base_path[..base_len] == m.path {
                    base
                } else {
                    m.start - m.offset
                };
                l.s(m.path).s(b"+").x(addr - b);
                done = true;
            }
            return false;
        }
        true
    });
    if !done {
        l.x(addr);
    }
}

// ------------------------------------------------------------------ module table

const MAX_MODS: usize = 512;
const PATHS: usize = 48 << 10;

#[derive(Clone, Copy)]
struct Module {
    base: usize,
    end: usize,
    path_off: u32,
    path_len: u32,
}

#[repr(C)]
struct Mods {
    n: AtomicUsize,
    plen: usize,
    ent: [Module; MAX_MODS],
    paths: [u8; PATHS],
}

static MODS: AtomicPtr<Mods> = AtomicPtr::new(core::ptr::null_mut());
static HINT: AtomicUsize = AtomicUsize::new(0);
static SCANNING: AtomicBool = AtomicBool::new(false);
static LAST_SCAN: AtomicU64 = AtomicU64::new(0);

fn mods() -> Option<&'static Mods> {
    let m = MODS.load(Ordering::Acquire);
    if m.is_null() {
        None
    } else {
        // SAFETY: the table is mapped once and never unmapped; entries below `n` are immutable.
        Some(unsafe { &*m })
    }
}

fn mod_path(m: &Mods, e: &Module) -> &'static [u8] {
    let a = e.path_off as usize;
    let b = (a + e.path_len as usize).min(PATHS);
    // SAFETY: published path bytes are never changed; the table lives forever.
    unsafe { core::slice::from_raw_parts(m.paths.as_ptr().add(a), b - a) }
}

/// Index of the module that holds `addr`.
#[inline]
fn module_of(addr: usize) -> Option<(usize, Module)> {
    let m = mods()?;
    let n = m.n.load(Ordering::Acquire).min(MAX_MODS);
    let h = HINT.load(Ordering::Relaxed);
    if h < n {
        let e = m.ent[h];
        if addr >= e.base && addr < e.end {
            return Some((h, e));
        }
    }
    for (i, e) in m.ent[..n].iter().enumerate() {
        if addr >= e.base && addr < e.end {
            HINT.store(i, Ordering::Relaxed);
            return Some((i, *e));
        }
    }
    None
}

/// Re-reads /proc/self/maps; appends the objects not known yet, calling `on_new` with the base
/// and path of each (while the scan is in progress). Returns false if another thread is
/// scanning or there is no table.
pub fn scan_modules(mut on_new: impl FnMut(usize, &[u8])) -> bool {
    if SCANNING.swap(true, Ordering::Acquire) {
        return false;
    }
    let mp = MODS.load(Ordering::Acquire);
    if mp.is_null() {
        SCANNING.store(false, Ordering::Release);
        return false;
    }
    // A candidate: the first mapping (offset 0) of a file, extended by the mappings of the same
    // path that follow; kept only if one of them is executable.
    let mut cand = Module {
        base: 0,
        end: 0,
        path_off: 0,
        path_len: 0,
    };
    let mut cpath = [0u8; 256];
    let mut cexec = false;
    let mut commit = |cand: &Module, path: &[u8], exec: bool| {
        if !exec || cand.base == 0 {
            return;
        }
        // SAFETY: only the scanning thread (SCANNING) writes the table; entries at index >= n
        // are not visible to readers yet.
        let m = unsafe { &mut *mp };
        let n = m.n.load(Ordering::Relaxed);
        for e in &m.ent[..n] {
            if e.base == cand.base && mod_path(m, e) == path {
                return;
            }
        }
        if n >= MAX_MODS || m.plen + path.len() > PATHS {
            return;
        }
        m.paths[m.plen..m.plen + path.len()].copy_from_slice(path);
        m.ent[n] = Module {
            base: cand.base,
            end: cand.end,
            path_off: m.plen as u32,
            path_len: path.len() as u32,
        };
        m.plen += path.len();
        m.n.store(n + 1, Ordering::Release);
        on_new(cand.base, path);
    };
    for_each(|m| {
        let plen = m.path.len().min(256);
        let path = &m.path[..plen];
        let same = cand.base != 0 && path == &cpath[..cand.path_len as usize];
        if same && m.start >= cand.end && m.offset != 0 {
            cand.end = m.end;
            cexec |= m.executable;
            return true;
        }
        if cand.base != 0 {
            commit(&cand, &cpath[..cand.path_len as usize], cexec);
            cand.base = 0;
        }
        if m.offset == 0 && !m.shared && plen > 0 && path[0] == b'/' {
            cand = Module {
                base: m.start,
                end: m.end,
                path_off: 0,
                path_len: plen as u32,
            };
            cpath[..plen].copy_from_slice(path);
            cexec = m.executable;
        }
        true
    });
    if cand.base != 0 {
        commit(&cand, &cpath[..cand.path_len as usize], cexec);
    }
    LAST_SCAN.store(sys::now_ns(), Ordering::Relaxed);
    SCANNING.store(false, Ordering::Release);
    true
}

/// Maps the module table (empty until the first `scan_modules`). Called once during init
/// (single-threaded); without memory there is no table.
pub fn init_modules() {
    if let Some(p) = crate::pagemap::map_internal(core::mem::size_of::<Mods>()) {
        MODS.store(p as *mut Mods, Ordering::Release);
    }
}

/// The base and path of the known module that holds `addr`.
#[inline]
pub fn module_at(addr: usize) -> Option<(usize, &'static [u8])> {
    let (_, e) = module_of(addr)?;
    Some((e.base, mod_path(mods()?, &e)))
}

/// Calls `f` with the base and path of every known module, in the order they were found.
pub fn each_module(mut f: impl FnMut(usize, &[u8])) {
    if let Some(m) = mods() {
        let n = m.n.load(Ordering::Acquire).min(MAX_MODS);
        for e in &m.ent[..n] {
            f(e.base, mod_path(m, e));
        }
    }
}

/// CLOCK_MONOTONIC at the end of the last scan (0: none yet).
pub fn last_scan_ns() -> u64 {
    LAST_SCAN.load(Ordering::Relaxed)
}

/// Fork child: a scan that was running in another thread of the parent is not running here.
pub fn reset_in_child() {
    SCANNING.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_and_without_paths() {
        let m = parse(b"7f3a2000-7f3a4000 r-xp 00002000 08:01 1234     /usr/lib/a b.so").unwrap();
        assert_eq!((m.start, m.end, m.offset), (0x7f3a2000, 0x7f3a4000, 0x2000));
        assert!(m.readable && !m.writable && m.executable && !m.shared);
        assert_eq!(m.path, b"/usr/lib/a b.so");
        let m = parse(b"7ffd1000-7ffd2000 rw-p 00000000 00:00 0          [stack]").unwrap();
        assert!(m.writable && !m.executable);
        assert_eq!(m.path, b"[stack]");
        let m = parse(b"7f000000-7f001000 rw-s 00000000 00:00 0 ").unwrap();
        assert!(m.shared && m.path.is_empty());
        assert!(parse(b"garbage").is_none());
    }

    #[test]
    fn reads_our_own_mappings() {
        let mut n = 0;
        let mut exec_file = false;
        assert!(for_each(|m| {
            n += 1;
            exec_file |= m.executable && m.path.first() == Some(&b'/');
            true
        }));
        assert!(n > 3 && exec_file);
    }

    /// A file mapped under a path of 1500 bytes, between two anonymous pages: its line is given
    /// with the path cut to what the buffer holds, and the line after it is whole.
    #[test]
    fn a_line_longer_than_the_buffer_comes_cut() {
        use std::os::unix::ffi::OsStrExt;
        let mut dir = std::env::temp_dir().join(format!("ft-maps-{}", std::process::id()));
        let root = dir.clone();
        while dir.as_os_str().len() < 1500 {
            dir.push("d".repeat(100));
        }
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mapped");
        std::fs::write(&file, [7u8; 4096]).unwrap();
        let f = std::fs::File::open(&file).unwrap();
        let page = crate::sys::page_size();
        // SAFETY: new mappings of our own; the file's page read-only.
        let (a, m) = unsafe {
            use std::os::fd::AsRawFd;
            let a = libc::mmap(
                core::ptr::null_mut(),
                3 * page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as usize;
            // The file's page in the middle, so that the three lines are distinct.
            let m = libc::mmap(
                (a + page) as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                f.as_raw_fd(),
                0,
            ) as usize;
            (a, m)
        };
        assert_eq!(m, a + page);
        let (mut cut, mut next, mut total) = (None, None, 0);
        for_each(|x| {
            total += 1;
            if cut.is_some() && next.is_none() {
                next = Some(x.start);
            }
            if x.start == m {
                cut = Some((x.end, x.offset, x.path.to_vec()));
            }
            true
        });
        let (end, offset, path) = cut.expect("the long line is given");
        assert_eq!((end, offset), (m + page, 0));
        let full = file.as_os_str().as_bytes();
        assert!(
            path.len() > 800 && path.len() < full.len(),
            "{}",
            path.len()
        );
        assert_eq!(&full[..path.len()], &path[..]);
        // The line after it is the next mapping's, whole.
        assert_eq!(next, Some(a + 2 * page));
        assert!(total > 3);
        // SAFETY: the mappings made above.
        unsafe { libc::munmap(a as *mut libc::c_void, 3 * page) };
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn module_table_finds_our_code_once() {
        init_modules();
        let mut found = 0;
        assert!(scan_modules(|_, _| found += 1));
        assert!(found > 0);
        let here = module_table_finds_our_code_once as *const () as usize;
        let (base, path) = module_at(here).expect("the test binary is a module");
        assert!(base <= here && path.first() == Some(&b'/'));
        // A second scan finds nothing new; the table lists what the first one found.
        let mut again = 0;
        assert!(scan_modules(|_, _| again += 1));
        assert_eq!(again, 0);
        let mut listed = 0;
        each_module(|_, _| listed += 1);
        assert_eq!(listed, found);
    }
}
