//! Reads `/proc/self/maps` with raw `open`/`read` into a stack buffer (no stdio, no allocation,
//! no loader lock — `dladdr` would take it and deadlock against a thread in `dlopen`).
//! Used to name the module of a caller address (module + offset, for addr2line) and by the leak
//! scanner to find the roots.

use crate::fmt::Line;

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

/// Calls `f` for every mapping until it returns false. Returns false if /proc is unreadable.
pub fn for_each(mut f: impl FnMut(&Mapping) -> bool) -> bool {
    // SAFETY: a constant NUL-terminated path; O_CLOEXEC so a fork+exec does not inherit it.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 4096];
    let mut have = 0usize;
    let mut go = true;
    while go {
        // SAFETY: reading into the unused tail of buf.
        let n = unsafe {
            libc::read(
                fd,
                buf[have..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - have,
            )
        };
        if n < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            if have > 0 {
                if let Some(m) = parse(&buf[..have]) {
                    f(&m);
                }
            }
            break;
        }
        have += n as usize;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            if let Some(m) = parse(&buf[start..start + nl]) {
                if !f(&m) {
                    go = false;
                    break;
                }
            }
            start += nl + 1;
        }
        if !go {
            break;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer: drop it.
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
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
