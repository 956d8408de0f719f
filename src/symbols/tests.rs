//! Host tests of the symbolizer inside this process (std available): names of this test
//! binary's functions (from `.symtab`, and `.dynsym` where exported), of libc's, of a C shared
//! object loaded here, the vDSO's; `module+0xOFF` against `addr2line`; the three module sources
//! against each other; the frame line. `file_tests` reads ELF files from disk. `bench_lookups`
//! (ignored) prints the cost of a lookup.

use super::elf::{self, Bytes};
use super::module::{self, Lookup};
use super::*;
use crate::fmt::Line;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A function of the test binary with a C name (in `.symtab`; in `.dynsym` only if the linker
/// exported it).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ft_symbols_probe_fn(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ std::hint::black_box(x >> 7)
}

fn probe_addr() -> usize {
    ft_symbols_probe_fn as *const () as usize
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for files of one test.
pub(super) fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft_malloc_symbols_{}_{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(super) fn cstr(p: &Path) -> Vec<u8> {
    let mut v = p.as_os_str().as_encoded_bytes().to_vec();
    v.push(0);
    v
}

pub(super) fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn test_binary_function_from_symtab() {
    // Started through ld.so, /proc/self/exe (current_exe) is ld.so; argv[0] is the program.
    let exe = match super::os::exe_is_loader() {
        true => PathBuf::from(std::env::args().next().unwrap()),
        false => std::env::current_exe().unwrap(),
    };
    let exe = std::fs::canonicalize(exe).unwrap();
    let mut s = Symbolizer::new(Lookup::SignalSafe);
    let f = s.frame(probe_addr() + 4, Pc::Exact);
    let m = f.module.as_ref().expect("module of the test binary");
    assert!(m.is_main);
    assert_eq!(text(m.path()), exe.to_str().unwrap());
    let n = f.function.as_ref().expect("a name");
    assert_eq!(text(n.as_bytes()), "ft_symbols_probe_fn");
    assert_eq!(n.offset, 4);
    assert_eq!(n.source, Source::Symtab);
    assert!(
        f.is_own(),
        "the test binary is the library's own module here"
    );
    assert!(!f.is_runtime());
}

/// Run by `program_started_through_the_loader` in a child started as `ld.so <test binary>`.
#[test]
#[ignore]
fn child_started_through_the_loader() {
    assert!(super::os::exe_is_loader(), "not started through ld.so");
    test_binary_function_from_symtab();
    println!("CHILD-OK");
}

#[test]
fn program_started_through_the_loader() {
    // /proc/self/exe is ld.so then: the program's path and symbols must still be its own.
    // SAFETY: getauxval only reads the auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_BASE) } as usize;
    let ld = module::by_maps(base).expect("the loader's mapping");
    let out = Command::new(text(ld.path()))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "symbols::tests::child_started_through_the_loader",
        ])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn return_address_names_the_call_site() {
    // One past the end of the function: as a return address it belongs to the probe.
    let m = module_of(probe_addr(), Lookup::SignalSafe).unwrap();
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let (_, size) = symbol(&exe, b"ft_symbols_probe_fn");
    let end = probe_addr() + size as usize;
    let mut s = Symbolizer::new(Lookup::SignalSafe);
    let f = s.frame(end, Pc::Return);
    let n = f.function.expect("named from the call instruction");
    assert_eq!(text(n.as_bytes()), "ft_symbols_probe_fn");
    assert_eq!(n.offset, size as usize);
    assert_eq!(
        f.module.unwrap().offset(end),
        m.offset(probe_addr()) + size as usize
    );
}

#[test]
fn test_binary_function_from_dynsym_when_exported() {
    let m = module_of(probe_addr(), Lookup::SignalSafe).unwrap();
    let t = dynsym::table(&m).expect("the test binary has a dynamic symbol table");
    let exported = (0..t.count).any(|i| {
        let e = t.syms.sub(i * 24, 24).unwrap();
        t.strings.cstr(e.u32(0).unwrap() as u64) == Some(b"ft_symbols_probe_fn")
            && e.u16(6) != Some(0)
    });
    if !exported {
        eprintln!("skipped: the linker did not export ft_symbols_probe_fn in .dynsym");
        return;
    }
    let n = dynsym_name(&m, probe_addr() + 2).expect("a name");
    assert_eq!(text(n.as_bytes()), "ft_symbols_probe_fn");
    assert_eq!((n.offset, n.source), (2, Source::Dynsym));
}

#[test]
fn libc_functions_from_dynsym() {
    for (addr, name) in [
        (libc::malloc as *const () as usize, "malloc"),
        (libc::strndup as *const () as usize, "strndup"),
    ] {
        let m = module_of(addr + 1, Lookup::SignalSafe).expect("libc is loaded");
        assert!(is_runtime(m.path()), "{}", text(m.path()));
        assert_eq!(runtime(m.path()), Some(Runtime::Libc));
        assert!(!is_own(addr));
        let n = dynsym_name(&m, addr + 1).expect("exported");
        // The public spelling wins over its aliases (__libc_malloc, __strndup).
        assert_eq!(text(n.as_bytes()), name);
        assert_eq!((n.offset, n.source), (1, Source::Dynsym));
        let f = Symbolizer::without_files(Lookup::SignalSafe).frame(addr + 1, Pc::Exact);
        assert_eq!(
            f.function.map(|n| text(n.as_bytes())).as_deref(),
            Some(name)
        );
        assert!(f.module.is_some_and(|m| runtime(m.path()).is_some()));
        // With files: the same name, from libc's debug file if one is installed.
        let f = Symbolizer::new(Lookup::MayTakeLoaderLock).frame(addr + 1, Pc::Exact);
        let n = f.function.expect("named");
        assert_eq!(text(n.as_bytes()), name);
        eprintln!("{name}: named from {:?}", n.source);
    }
}

#[test]
fn module_offset_is_what_addr2line_takes() {
    if !have("addr2line") {
        eprintln!("skipped: addr2line is not installed");
        return;
    }
    let addr = probe_addr() + 4;
    let f = Symbolizer::new(Lookup::SignalSafe).frame(addr, Pc::Exact);
    let m = f.module.as_ref().unwrap();
    let off = format!("{:#x}", m.offset(addr));
    // -i: the code at +4 may be inlined into the probe; the outermost function is the last.
    let out = Command::new("addr2line")
        .args(["-f", "-i", "-e"])
        .arg(std::str::from_utf8(m.path()).unwrap())
        .arg(&off)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let outer = out.lines().rev().nth(1);
    assert_eq!(outer, Some("ft_symbols_probe_fn"), "{off}: {out}");
    assert!(out.contains("tests.rs"), "{out}");
    // The line prints the same module and offset.
    let mut l: Line<512> = Line::new();
    write_frame(&mut l, 3, &f);
    let want = format!(
        "#3 {addr:#x} {}+{off} ft_symbols_probe_fn+0x4",
        text(m.path())
    );
    assert_eq!(text(l.as_bytes()), want);
}

#[test]
fn dl_find_object_is_found_by_name_and_version() {
    // SAFETY: dlsym of a name with a NUL-terminated literal; std is available in tests.
    let linked = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) } as usize;
    let ours = module::has_find_object(Lookup::SignalSafe);
    assert_eq!(
        ours,
        linked != 0,
        "found by name iff the loader resolves it"
    );
    if linked == 0 {
        eprintln!("skipped: glibc < 2.35 has no _dl_find_object");
        return;
    }
    let libc_mod = module::by_maps(libc::malloc as *const () as usize).unwrap();
    assert_eq!(
        dynsym::find(&libc_mod, b"_dl_find_object", b"GLIBC_2.35"),
        Some(linked)
    );
    assert_eq!(
        dynsym::find(&libc_mod, b"_dl_find_object", b"GLIBC_2.2.5"),
        None
    );
    let malloc = libc::malloc as *const () as usize;
    assert_eq!(
        dynsym::find(&libc_mod, b"malloc", b"GLIBC_2.2.5"),
        Some(malloc)
    );
    assert_eq!(
        dynsym::find(&libc_mod, b"no_such_function", b"GLIBC_2.2.5"),
        None
    );
}

#[test]
fn the_three_module_sources_agree() {
    let addrs = [
        probe_addr(),
        libc::malloc as *const () as usize,
        libc::strndup as *const () as usize,
    ];
    for addr in addrs {
        let a = module::by_phdr(addr).expect("dl_iterate_phdr");
        let b = module::by_maps(addr).expect("/proc/self/maps");
        let found = [Some(&a), Some(&b)];
        let c = module::by_find_object(addr);
        if c.is_none() {
            eprintln!("no _dl_find_object (glibc < 2.35): two sources compared");
        }
        // The loader keeps the path it opened, the kernel the resolved one (/lib -> usr/lib).
        let real = |m: &Module| std::fs::canonicalize(text(m.path())).unwrap();
        for m in found.into_iter().chain([c.as_ref()]).flatten() {
            assert_eq!(real(m), real(&a));
            assert_eq!(m.bias, a.bias, "{}", text(a.path()));
            assert_eq!(m.offset(addr), a.offset(addr));
            assert_eq!(m.dynamic, a.dynamic);
            assert_eq!(m.is_main, a.is_main);
            assert!(m.contains(addr));
            assert_eq!(m.build_id().map(|i| i.len), a.build_id().map(|i| i.len));
            let n = dynsym_name(m, addr).map(|n| text(n.as_bytes()));
            assert_eq!(n, dynsym_name(&a, addr).map(|n| text(n.as_bytes())));
        }
    }
}

#[test]
fn vdso_functions_from_its_unrelocated_dynsym() {
    // SAFETY: getauxval only reads the auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if base == 0 {
        eprintln!("skipped: no vDSO");
        return;
    }
    let Some(m) = module_of(base, Lookup::MayTakeLoaderLock) else {
        eprintln!("skipped: the loader does not list the vDSO");
        return;
    };
    let t = dynsym::table(&m).expect("the vDSO has .dynsym");
    let value = (0..t.count)
        .find_map(|i| {
            let e = t.syms.sub(i * 24, 24)?;
            let name = t.strings.cstr(e.u32(0)? as u64)?;
            (name == b"__vdso_clock_gettime").then(|| e.u64(8).unwrap())
        })
        .expect("__vdso_clock_gettime");
    let n = dynsym_name(&m, m.bias + value as usize + 3).expect("named");
    assert!(text(n.as_bytes()).ends_with("clock_gettime"));
    assert_eq!(n.offset, 3);
}

#[test]
fn no_module_prints_the_bare_address() {
    let p = crate::sys::map(4096).unwrap() as usize;
    let mut s = Symbolizer::new(Lookup::MayTakeLoaderLock);
    let f = s.frame(p + 16, Pc::Return);
    assert!(f.module.is_none() && f.function.is_none());
    assert!(!f.is_own() && !f.is_runtime());
    let mut l: Line<128> = Line::new();
    write_frame(&mut l, 0, &f);
    assert_eq!(
        text(l.as_bytes()),
        format!("#0 {:#x} {:#x}", p + 16, p + 16)
    );
    // SAFETY: mapped above, nobody else uses it.
    unsafe { crate::sys::unmap(p as *mut u8, 4096) };
}

pub(super) const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
/* A static function: only .symtab names it. */
static __attribute__((noinline)) const char *next_token(const char *s) {
    while (*s && *s != ' ') s++;
    while (*s == ' ') s++;
    return s;
}
int count_tokens(const char *s) { int n = 0; while (*s) { s = next_token(s); n++; } return n; }
int main(int argc, char **argv) { (void)argv; printf("%d\nOK\n", count_tokens(argc > 5 ? "" : "a b c")); return 0; }
"#;

/// Compiles `C_PROGRAM` with `flags` into `dir/name`; None without a C compiler.
pub(super) fn compile_c(dir: &Path, name: &str, flags: &[&str]) -> Option<PathBuf> {
    let src = dir.join("tokens.c");
    std::fs::write(&src, C_PROGRAM).unwrap();
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(flags)
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .ok()?;
    st.success().then_some(out)
}

/// `(value, size)` of `name` in the file's `.symtab`.
pub(super) fn symbol(file: &[u8], name: &[u8]) -> (u64, u64) {
    let b = Bytes(file);
    let h = elf::header(b).unwrap();
    let s = (0..h.shnum)
        .filter_map(|i| elf::shdr(b, &h, i))
        .find(|s| s.kind == elf::SHT_SYMTAB)
        .unwrap();
    let strs = elf::section(b, &elf::shdr(b, &h, s.link as u64).unwrap()).unwrap();
    let syms = elf::section(b, &s).unwrap();
    (0..syms.len() / 24)
        .find_map(|i| {
            let e = syms.sub(i * 24, 24)?;
            (strs.cstr(e.u32(0)? as u64)? == name).then(|| (e.u64(8).unwrap(), e.u64(16).unwrap()))
        })
        .unwrap()
}

const C_LIBRARY: &str = r#"
static __attribute__((noinline)) int next_token(const char *s) { int n = 0; while (s[n] > ' ') n++; return n; }
int tokens_exported(const char *s) { return next_token(s) + 1; }
void *tokens_static_address(void) { return (void *)next_token; }
"#;

#[test]
fn shared_object_functions_from_dynsym_and_symtab() {
    let dir = scratch("so");
    let src = dir.join("tokens.c");
    std::fs::write(&src, C_LIBRARY).unwrap();
    let so = dir.join("libtokens.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(&src)
        .status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no C compiler");
        return;
    }
    let c = std::ffi::CString::new(so.to_str().unwrap()).unwrap();
    // SAFETY: a library we just built, with no constructors; it stays loaded (no dlclose).
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW) };
    assert!(!h.is_null());
    // SAFETY: `h` is a live handle; both names are defined by the library.
    let (exported, get_static) = unsafe {
        (
            libc::dlsym(h, c"tokens_exported".as_ptr()) as usize,
            libc::dlsym(h, c"tokens_static_address".as_ptr()) as usize,
        )
    };
    // SAFETY: the symbol is `void *tokens_static_address(void)`.
    let statik = unsafe { std::mem::transmute::<usize, extern "C" fn() -> usize>(get_static)() };
    let m = module_of(exported, Lookup::SignalSafe).expect("the library is loaded");
    assert_eq!(std::fs::canonicalize(text(m.path())).unwrap(), so);
    assert!(!m.is_main && !is_runtime(m.path()) && !is_own(exported));
    assert_ne!(m.bias, 0, "a shared object is loaded away from 0");
    // Exported: in .dynsym, no file needed.
    let n = dynsym_name(&m, exported + 1).expect("exported");
    assert_eq!(
        (text(n.as_bytes()).as_str(), n.offset),
        ("tokens_exported", 1)
    );
    // Static: .dynsym has no name for it (not the previous function's), .symtab has.
    assert!(dynsym_name(&m, statik + 1).is_none_or(|n| text(n.as_bytes()) != "tokens_exported"));
    let mut s = Symbolizer::new(Lookup::MayTakeLoaderLock);
    let f = s.frame(statik + 1, Pc::Exact);
    let n = f.function.as_ref().expect("named from .symtab");
    assert_eq!(
        (text(n.as_bytes()).as_str(), n.offset, n.source),
        ("next_token", 1, Source::Symtab)
    );
    // module+0xOFF is what addr2line takes for a shared object, and the sources agree.
    if have("addr2line") {
        let off = format!("{:#x}", m.offset(statik));
        let out = Command::new("addr2line")
            .args(["-f", "-e"])
            .arg(&so)
            .arg(&off)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.lines().next(), Some("next_token"), "{off}: {out}");
    }
    for other in [module::by_phdr(statik), module::by_maps(statik)] {
        let o = other.expect("found");
        assert_eq!((o.bias, o.dynamic), (m.bias, m.dynamic));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Cost of one lookup, by hand: `cargo test --release --lib symbols::tests::bench -- --ignored
/// --nocapture`. Timings are printed, never asserted.
#[test]
#[ignore]
fn bench_lookups() {
    use std::time::Instant;
    let probe = probe_addr() + 4;
    let malloc = libc::malloc as *const () as usize + 4;
    let time = |what: &str, n: u32, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{what:<58} {:>10.0} ns", ns);
    };
    let mp = module_of(malloc, Lookup::SignalSafe).unwrap();
    let count = dynsym::table(&mp).unwrap().count;
    println!("libc .dynsym: {count} symbols");
    time("module_of (libc, _dl_find_object)", 100_000, &mut || {
        std::hint::black_box(module_of(malloc, Lookup::SignalSafe));
    });
    time(
        "module::by_phdr (libc, dl_iterate_phdr)",
        20_000,
        &mut || {
            std::hint::black_box(module::by_phdr(malloc));
        },
    );
    time(
        "module::by_maps (libc, /proc/self/maps)",
        2_000,
        &mut || {
            std::hint::black_box(module::by_maps(malloc));
        },
    );
    time("dynsym_name (libc malloc)", 20_000, &mut || {
        std::hint::black_box(dynsym_name(&mp, malloc));
    });
    time("frame without files (libc malloc)", 20_000, &mut || {
        std::hint::black_box(
            Symbolizer::without_files(Lookup::SignalSafe).frame(malloc, Pc::Exact),
        );
    });
    let mut s = Symbolizer::new(Lookup::SignalSafe);
    time(
        "frame, file mapped earlier (test binary .symtab)",
        2_000,
        &mut || {
            std::hint::black_box(s.frame(probe, Pc::Exact));
        },
    );
    time(
        "frame, new Symbolizer: map + parse + scan (test binary)",
        500,
        &mut || {
            std::hint::black_box(Symbolizer::new(Lookup::SignalSafe).frame(probe, Pc::Exact));
        },
    );
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let b = Bytes(&exe);
    let h = elf::header(b).unwrap();
    let st = (0..h.shnum)
        .filter_map(|i| elf::shdr(b, &h, i))
        .find(|s| s.kind == elf::SHT_SYMTAB);
    println!(
        "test binary .symtab: {} symbols",
        st.map_or(0, |s| s.size / 24)
    );
    let mut s = Symbolizer::new(Lookup::SignalSafe);
    time(
        "frame, file mapped earlier (libc debug file or .dynsym)",
        2_000,
        &mut || {
            std::hint::black_box(s.frame(malloc, Pc::Exact));
        },
    );
    time(
        "frame, new Symbolizer (libc: debug file or .dynsym)",
        500,
        &mut || {
            std::hint::black_box(Symbolizer::new(Lookup::SignalSafe).frame(malloc, Pc::Exact));
        },
    );
}
