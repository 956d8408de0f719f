//! Which modules are "runtime": the C and C++ runtimes, the loader and the Python interpreter
//! library, whose frames sit between the program and malloc (`strdup`, `operator new`,
//! `std::vector` growth, `PyMem_Malloc`). A stack's headline names the first frame outside
//! them, which is the program's own line that asked for memory.
//!
//! # Invariants
//! Pure functions of the path's last component; matching is exact on the stem (`libc.so.6`
//! and `libc-2.31.so` are libc, `libcrypto.so.3` is not).

/// The runtime a module belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runtime {
    Libc,
    Libstdcxx,
    LibgccS,
    Loader,
    Libm,
    Libpthread,
    Python,
}

/// The last component of a path.
fn base(path: &[u8]) -> &[u8] {
    path.rsplit(|&c| c == b'/').next().unwrap_or(path)
}

/// True when `name` is `stem` followed by `.so` or `-<digit>` (old glibc: `libc-2.31.so`;
/// `libc-client.so` is another library).
fn stem_is(name: &[u8], stem: &[u8]) -> bool {
    match name.strip_prefix(stem) {
        Some([b'.', b's', b'o', ..]) => true,
        Some([b'-', d, ..]) => d.is_ascii_digit(),
        _ => false,
    }
}

/// The runtime that `path` (a module path) is, or None for a module of the program.
pub fn runtime(path: &[u8]) -> Option<Runtime> {
    let b = base(path);
    if stem_is(b, b"libc") {
        Some(Runtime::Libc)
    } else if stem_is(b, b"libstdc++") {
        Some(Runtime::Libstdcxx)
    } else if stem_is(b, b"libgcc_s") {
        Some(Runtime::LibgccS)
    } else if b.starts_with(b"ld-linux") || stem_is(b, b"ld") {
        Some(Runtime::Loader)
    } else if stem_is(b, b"libm") {
        Some(Runtime::Libm)
    } else if stem_is(b, b"libpthread") {
        Some(Runtime::Libpthread)
    } else if b.starts_with(b"libpython") {
        Some(Runtime::Python)
    } else {
        None
    }
}

/// True when frames of `path` are runtime frames.
pub fn is_runtime(path: &[u8]) -> bool {
    runtime(path).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let table: &[(&[u8], Option<Runtime>)] = &[
            (b"/lib/x86_64-linux-gnu/libc.so.6", Some(Runtime::Libc)),
            (b"/lib/x86_64-linux-gnu/libc-2.31.so", Some(Runtime::Libc)),
            (b"libc.so.6", Some(Runtime::Libc)),
            (b"/usr/lib/libc.so", Some(Runtime::Libc)),
            (
                b"/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                Some(Runtime::Libstdcxx),
            ),
            (
                b"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
                Some(Runtime::Libstdcxx),
            ),
            (
                b"/lib/x86_64-linux-gnu/libgcc_s.so.1",
                Some(Runtime::LibgccS),
            ),
            (b"/lib64/ld-linux-x86-64.so.2", Some(Runtime::Loader)),
            (b"/lib/ld-linux-aarch64.so.1", Some(Runtime::Loader)),
            (b"/lib/x86_64-linux-gnu/ld-2.31.so", Some(Runtime::Loader)),
            (b"/lib/x86_64-linux-gnu/libm.so.6", Some(Runtime::Libm)),
            (
                b"/lib/x86_64-linux-gnu/libpthread.so.0",
                Some(Runtime::Libpthread),
            ),
            (
                b"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
                Some(Runtime::Python),
            ),
            (b"/usr/lib/libpython3.12d.so", Some(Runtime::Python)),
            // Not runtime: similar names, the program, our own library, the vDSO, nothing.
            (b"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", None),
            (b"/usr/lib/x86_64-linux-gnu/libcap.so.2", None),
            (b"/usr/lib/x86_64-linux-gnu/libmagic.so.1", None),
            (b"/usr/lib/x86_64-linux-gnu/libcurl.so.4", None),
            (b"/usr/lib/libc-client.so.2007e", None),
            (b"/usr/bin/ld-wrapper", None),
            (b"/usr/lib/libmount.so.1", None),
            (b"/usr/lib/x86_64-linux-gnu/libldap-2.5.so.0", None),
            (b"/usr/lib/libstdc++fs.a", None),
            (b"/home/u/libc/prog", None),
            (b"/home/u/ld", None),
            (b"/tmp/libft_malloc.so", None),
            (b"/usr/bin/python3.11", None),
            (b"linux-vdso.so.1", None),
            (b"", None),
        ];
        for (path, want) in table {
            assert_eq!(runtime(path), *want, "{}", String::from_utf8_lossy(path));
            assert_eq!(is_runtime(path), want.is_some());
        }
    }
}
