//! Host tests of `.symtab` read from files: static functions of PIE and non-PIE C programs
//! (against `addr2line`), the bias derived from program headers, stripped files, build-id
//! checks, libc's separate debug file, and truncated or corrupted ELF files, which must give no
//! name and never a fault.

use super::elf::{self, Bytes};
use super::image;
use super::symtab::SymFile;
use super::tests::{compile_c, cstr, have, scratch, symbol, text};
use super::*;
use std::process::Command;

#[test]
fn static_functions_of_pie_and_non_pie_programs() {
    let dir = scratch("static");
    for (name, flags) in [
        ("pie", &["-fPIE", "-pie"][..]),
        ("nopie", &["-fno-PIE", "-no-pie"][..]),
    ] {
        let Some(exe) = compile_c(&dir, name, flags) else {
            eprintln!("skipped: no C compiler");
            return;
        };
        let bytes = std::fs::read(&exe).unwrap();
        let (value, size) = symbol(&bytes, b"next_token");
        if name == "nopie" {
            assert!(
                value >= 0x400000,
                "a non-PIE program is linked at its load address"
            );
        }
        // The bias the /proc/self/maps source derives from the headers, for a load at `base`.
        let h = elf::header(Bytes(&bytes)).unwrap();
        let ph = Bytes(&bytes)
            .sub(h.phoff, h.phnum * elf::PHDR_SIZE)
            .unwrap();
        let base = if name == "nopie" {
            0x400000
        } else {
            0x5555_5555_4000
        };
        let l = image::layout(ph, h.phnum, base).unwrap();
        assert_eq!(l.bias, if name == "nopie" { 0 } else { base }, "{name}");
        assert!(l.dynamic > base && l.end > l.dynamic);
        let f = SymFile::open(&cstr(&exe), &cstr(&exe), None).expect(".symtab");
        for off in [0, 1, size - 1] {
            let n = f.lookup(value as usize + off as usize).expect("next_token");
            assert_eq!(text(n.as_bytes()), "next_token");
            assert_eq!((n.offset, n.source), (off as usize, Source::Symtab));
        }
        if have("addr2line") {
            let out = Command::new("addr2line")
                .args(["-f", "-e"])
                .arg(&exe)
                .arg(format!("{:#x}", value + 1))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().next(),
                Some("next_token")
            );
        }
        // Symbols without a size name addresses of their own section only: crtbegin's
        // `register_tm_clones` is named, the PLT stubs after `.init` are not `_init`'s.
        let (rtc, rtc_size) = symbol(&bytes, b"register_tm_clones");
        assert_eq!(rtc_size, 0);
        let n = f.lookup(rtc as usize + 2).map(|n| text(n.as_bytes()));
        assert_eq!(n.as_deref(), Some("register_tm_clones"));
        let b = Bytes(&bytes);
        let plt = (0..h.shnum)
            .filter_map(|i| elf::shdr(b, &h, i))
            .find(|s| section_name(&bytes, s.name) == Some(".plt"))
            .expect(".plt");
        for at in [plt.addr, plt.addr + 16, plt.addr + plt.size - 1] {
            let n = f.lookup(at as usize).map(|n| text(n.as_bytes()));
            assert_eq!(n, None, "{name}: PLT {at:#x} named");
        }
        // Stripped: no .symtab, no debug file: nothing (the caller then uses .dynsym).
        let stripped = dir.join(format!("{name}.stripped"));
        if Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&exe)
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(SymFile::open(&cstr(&stripped), &cstr(&stripped), None).is_none());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The name of a section, from the section-name string table.
fn section_name(file: &[u8], name: u32) -> Option<&str> {
    let b = Bytes(file);
    let h = elf::header(b)?;
    let names = elf::section(b, &elf::shdr(b, &h, h.shstrndx)?)?;
    std::str::from_utf8(names.cstr(name as u64)?).ok()
}

#[test]
fn a_file_with_another_build_id_is_not_used() {
    let dir = scratch("buildid");
    let Some(exe) = compile_c(&dir, "prog", &["-Wl,--build-id=sha1"]) else {
        eprintln!("skipped: no C compiler");
        return;
    };
    let id = |b: &[u8]| {
        let b = Bytes(b);
        let h = elf::header(b).unwrap();
        (0..h.shnum)
            .filter_map(|i| elf::shdr(b, &h, i))
            .filter(|s| s.kind == elf::SHT_NOTE)
            .find_map(|s| elf::build_id_note(elf::section(b, &s)?))
    };
    let mut other = id(&std::fs::read(&exe).unwrap()).expect("a build-id");
    assert!(SymFile::open(&cstr(&exe), &cstr(&exe), Some(&other)).is_some());
    other.bytes[0] ^= 1;
    assert!(SymFile::open(&cstr(&exe), &cstr(&exe), Some(&other)).is_none());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_and_corrupt_files_give_no_name_and_no_fault() {
    let dir = scratch("corrupt");
    let Some(exe) = compile_c(&dir, "prog", &[]) else {
        eprintln!("skipped: no C compiler");
        return;
    };
    let good = std::fs::read(&exe).unwrap();
    let (value, _) = symbol(&good, b"next_token");
    let path = dir.join("bad");
    let try_file = |bytes: &[u8]| -> Option<String> {
        std::fs::write(&path, bytes).unwrap();
        let f = SymFile::open(&cstr(&path), &cstr(&path), None)?;
        f.lookup(value as usize).map(|n| text(n.as_bytes()))
    };
    assert_eq!(try_file(&good).as_deref(), Some("next_token"));
    // Every truncation: nothing, or (when only the tail was cut) the right name.
    for len in (0..good.len()).step_by(61).chain([0, 1, 4, 16, 63, 64, 65]) {
        let r = try_file(&good[..len]);
        assert!(
            r.is_none() || r.as_deref() == Some("next_token"),
            "{len}: {r:?}"
        );
    }
    // Header fields set to hostile values.
    let h = elf::header(Bytes(&good)).unwrap();
    let fields: &[(usize, usize)] = &[(32, 8), (40, 8), (54, 2), (58, 2), (60, 2), (62, 2)];
    for &(at, width) in fields {
        for v in [
            0u64,
            1,
            0xffff,
            0x7fff_ffff,
            u64::MAX,
            good.len() as u64 - 8,
        ] {
            let mut b = good.clone();
            b[at..at + width].copy_from_slice(&v.to_ne_bytes()[..width]);
            try_file(&b);
        }
    }
    // Every field of every section header, to hostile values.
    for i in 0..h.shnum as usize {
        let sh = h.shoff as usize + i * 64;
        for at in [4usize, 24, 32, 40, 56] {
            for v in [0u64, 0xffff_ffff, u64::MAX, u64::MAX - 8, good.len() as u64] {
                let mut b = good.clone();
                let w = if at == 4 || at == 40 { 4 } else { 8 };
                b[sh + at..sh + at + w].copy_from_slice(&v.to_ne_bytes()[..w]);
                try_file(&b);
            }
        }
    }
    // Random bytes over the section headers and the symbol table.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..400 {
        let mut b = good.clone();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % b.len();
            b[at] = (x >> 32) as u8;
        }
        try_file(&b);
    }
    // Not ELF at all, and not a regular file.
    assert!(try_file(b"#!/bin/sh\necho hi\n").is_none());
    assert!(SymFile::open(b"/dev/null\0", b"/dev/null\0", None).is_none());
    assert!(SymFile::open(b"/proc/self\0", b"/proc/self\0", None).is_none());
    assert!(SymFile::open(b"/nonexistent/x\0", b"/nonexistent/x\0", None).is_none());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn debug_file_by_build_id() {
    // libc's own file is stripped; with libc6-dbg installed its .symtab names static functions.
    let addr = libc::malloc as *const () as usize;
    let m = module_of(addr, Lookup::SignalSafe).unwrap();
    let Some(f) = SymFile::open(
        m.path_cstr().unwrap(),
        m.path_cstr().unwrap(),
        m.build_id().as_ref(),
    ) else {
        eprintln!("skipped: libc has no .symtab and no debug file is installed");
        return;
    };
    let n = f.lookup(m.offset(addr)).expect("malloc");
    assert_eq!(text(n.as_bytes()), "malloc");
    eprintln!("libc symbols from {:?}", f.source);
}
