//! Whole call stacks in the log (`stack=N`, alias `backtrace=N`) through code built without frame pointers and
//! across dlclose/dlopen, and what the unwinder must leave alone: C++ exceptions, the JVM, the
//! library's exported symbols.
mod common;

use common::{Run, compile, fresh_dir, require};
use std::path::{Path, PathBuf};
use std::process::Command;

fn compile_optimised(name: &str) -> PathBuf {
    common::compile_optimised(name, "", &[])
}

fn compile_with(name: &str, suffix: &str, flags: &[&str]) -> PathBuf {
    common::compile_optimised(name, suffix, flags)
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex {s:?}"))
}

/// `(out, frames)` of every `E` record of a log: its last field is the caller alone, or `@ID`
/// naming the stack an `S` record of the same file defines (before or after the event).
fn events(log: &Path) -> Vec<(u64, Vec<u64>)> {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap()).replace('\0', "");
    let stacks: std::collections::HashMap<&str, Vec<u64>> = text
        .lines()
        .filter_map(|l| l.strip_prefix("S "))
        .map(|s| {
            let (id, frames) = s
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad stack {s:?}"));
            (id, frames.split(',').map(hex).collect())
        })
        .collect();
    text.lines()
        .filter_map(|l| l.strip_prefix("E "))
        .map(|e| {
            let e = common::event::parse(e).unwrap_or_else(|| panic!("bad event {e:?}"));
            let frames = match e.stack_id() {
                Some(id) => stacks
                    .get(id)
                    .unwrap_or_else(|| panic!("no S record for stack {id}"))
                    .clone(),
                None => vec![hex(e.site)],
            };
            (e.out, frames)
        })
        .collect()
}

/// `[start, end)` of each named function, in the running program: its symbol's value and size
/// (`nm -S`) placed at the address the program printed for it.
fn ranges(exe: &Path, printed: &[(String, u64)]) -> Vec<(String, u64, u64)> {
    let o = Command::new("nm")
        .args(["-S", "--defined-only"])
        .arg(exe)
        .output()
        .expect("nm");
    let syms = String::from_utf8_lossy(&o.stdout).to_string();
    let sym = |name: &str| -> (u64, u64) {
        syms.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4 && f[3] == name).then(|| (hex(f[0]), hex(f[1])))
            })
            .next()
            .unwrap_or_else(|| panic!("no symbol {name} in nm -S"))
    };
    printed
        .iter()
        .map(|(name, at)| {
            let (_, size) = sym(name);
            (name.clone(), *at, *at + size)
        })
        .collect()
}

/// The name of the function holding `pc`, if it is one of `r`.
fn which(r: &[(String, u64, u64)], pc: u64) -> Option<&str> {
    r.iter()
        .find(|(_, lo, hi)| pc > *lo && pc <= *hi)
        .map(|(n, _, _)| n.as_str())
}

#[test]
fn whole_stack_through_libc_without_frame_pointers() {
    let exe = compile_optimised("unwind_through_strndup");
    let dir = fresh_dir("dir_unwind_strndup");
    let log = dir.join("strndup.log");
    let spec = format!("log={},backtrace=16", log.display());
    let o = Run::new(&exe).env("MALLOC_DEBUG", &spec).go();
    o.assert_ok_clean();
    let line = |tag: &str| -> Vec<(String, u64)> {
        o.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(|l| {
                let (name, at) = l.rsplit_once(' ').unwrap_or(("", l));
                (name.to_string(), hex(at))
            })
            .collect()
    };
    let p = line("P ")[0].1;
    let h = line("H ")[0].1;
    let funcs = ranges(&exe, &line("F "));
    let evs = events(&log);
    let stack = |out: u64| -> Vec<u64> {
        evs.iter()
            .rev()
            .find(|(o, _)| *o == out)
            .unwrap_or_else(|| panic!("no event for {out:#x}"))
            .1
            .clone()
    };
    // strndup's allocation: libc's frame, then the program's chain down to main.
    let s = stack(p);
    let named: Vec<Option<&str>> = s.iter().map(|&f| which(&funcs, f)).collect();
    assert_eq!(named[0], None, "the first frame is strndup in libc: {s:x?}");
    assert_eq!(
        &named[1..5],
        &[Some("level3"), Some("level2"), Some("level1"), Some("main")],
        "frames beyond libc's: {s:x?} {funcs:x?}"
    );
    assert!(s.len() > 5, "main's callers in libc follow: {s:x?}");
    // The handler's allocation: through the signal frame to the function that raised it.
    let s = stack(h);
    let named: Vec<Option<&str>> = s.iter().map(|&f| which(&funcs, f)).collect();
    let at = named
        .iter()
        .position(|n| *n == Some("raise_from"))
        .unwrap_or_else(|| panic!("raise_from not in the handler's stack: {s:x?} {funcs:x?}"));
    assert!(
        at >= 4,
        "libc, the handler, the signal frame, raise: {s:x?}"
    );
    assert_eq!(named[at + 1], Some("main"), "{s:x?}");
}

#[test]
fn dlclose_then_another_library_at_the_same_place() {
    let a = compile_with(
        "unwind_dlopen_lib",
        ".a.so",
        &["-shared", "-fPIC", "-DVARIANT=1"],
    );
    let b = compile_with(
        "unwind_dlopen_lib",
        ".b.so",
        &["-shared", "-fPIC", "-DVARIANT=2"],
    );
    let exe = compile_with("unwind_dlopen_dlclose", "", &["-ldl"]);
    let dir = fresh_dir("dir_unwind_dlopen");
    let log = dir.join("dlopen.log");
    let spec = format!("log={},backtrace=16", log.display());
    let o = Run::new(&exe)
        .arg(&a)
        .arg(&b)
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_ok_clean();
    let run_at = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("F run "))
        .map(hex)
        .unwrap();
    let run = ranges(&exe, &[("run".to_string(), run_at)]);
    let evs = events(&log);
    let mut seen = 0;
    for l in o.stdout.lines().filter(|l| l.starts_with("P ")) {
        let f: Vec<&str> = l.split(' ').collect();
        let (name, p, plugin) = (f[1], hex(f[2]), hex(f[3]));
        let lib = if name == "second" { &b } else { &a };
        let plugin = ranges(lib, &[("plugin_alloc".to_string(), plugin)]);
        // The last allocation at that address (dlopen's freed blocks may have been there).
        let s = &evs
            .iter()
            .rev()
            .find(|(o, _)| *o == p)
            .unwrap_or_else(|| panic!("no event for {name}"))
            .1;
        let at = s
            .iter()
            .position(|&x| which(&plugin, x).is_some())
            .unwrap_or_else(|| panic!("{name}: plugin_alloc not in {s:x?} {plugin:x?}"));
        assert_eq!(
            which(&run, s[at + 1]),
            Some("run"),
            "{name}: the library's caller follows: {s:x?}"
        );
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn cpp_exception_through_five_frames_with_stacks_on() {
    let dir = fresh_dir("dir_unwind_cpp");
    let spec = format!("log={}/cpp.log,backtrace=16", dir.display());
    let o = Run::new(compile("unwind_cpp_exception"))
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_ok_clean();
    assert!(o.stdout.starts_with("caught depth 5\n"), "{}", o.describe());
    let evs = events(&dir.join("cpp.log"));
    assert!(
        evs.iter().filter(|(_, f)| f.len() >= 6).count() >= 100,
        "the exception's allocations carry whole stacks"
    );
}

#[test]
fn library_exports_no_unwinder_symbols() {
    let o = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(common::lib())
        .output()
        .expect("nm");
    let syms = String::from_utf8_lossy(&o.stdout);
    let bad: Vec<&str> = syms
        .lines()
        .filter(|l| {
            l.contains("_Unwind_")
                || l.contains("__register_frame")
                || l.contains("__gcc_personality")
        })
        .collect();
    assert!(bad.is_empty(), "would replace libgcc_s's unwinder: {bad:?}");
    // Loads on a glibc older than 2.35: no version need beyond what the rest requires.
    let o = Command::new("readelf")
        .arg("-V")
        .arg(common::lib())
        .output()
        .expect("readelf");
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(
        !v.contains("GLIBC_2.35") && !v.contains("GLIBC_2.36"),
        "{v}"
    );
}

#[test]
fn java_runs_clean_with_stacks_on() {
    let Some(java) = require("java") else { return };
    let dir = fresh_dir("dir_unwind_java");
    let spec = format!("log={}/java.%p.log,backtrace=16", dir.display());
    let o = Run::new(java)
        .arg("-version")
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_success();
    assert!(o.stderr.contains("version"), "{}", o.describe());
    assert!(!o.stderr.contains("ft_malloc["), "{}", o.describe());
    let logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!logs.is_empty());
    let evs: Vec<_> = logs.iter().flat_map(|l| events(l)).collect();
    let deep = evs.iter().filter(|(_, f)| f.len() >= 8).count();
    assert!(
        deep * 2 > evs.len(),
        "most events carry deep stacks: {deep} of {}",
        evs.len()
    );
}
