//! The announce file (src/announce.rs, format in the format crate `ft_format::announce`): with
//! `FT_MALLOC_ANNOUNCE=PATH`, every process the library is loaded into appends `start`, `fork`
//! and `exit` lines that the launcher reads to know where the library ran and its verdict. And
//! a bad free with any debugging on is an ERROR with its call site, in every mode.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A fresh announce file as the launcher creates it.
fn announce_file(name: &str) -> PathBuf {
    let d = fresh_dir(name);
    let f = d.join("announce");
    std::fs::write(&f, "# ft_malloc announce v1\n").unwrap();
    f
}

/// The lines after the first, as (tag, key=value pairs).
fn records(f: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(f).unwrap();
    assert!(text.starts_with("# ft_malloc announce v1\n"), "{text}");
    text.lines()
        .skip(1)
        .map(|l| {
            let mut it = l.split(' ');
            let tag = it.next().unwrap().to_string();
            let kv = it
                .map(|t| {
                    let (k, v) = t.split_once('=').unwrap_or_else(|| panic!("{l}"));
                    (k.to_string(), v.to_string())
                })
                .collect();
            (tag, kv)
        })
        .collect()
}

fn get<'a>(kv: &'a [(String, String)], k: &str) -> &'a str {
    kv.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {k} in {kv:?}"))
}

/// start, fork and exit lines of a process and its forked child; each counts its own errors.
#[test]
fn a_process_and_its_forked_child_announce_themselves() {
    let f = announce_file("announce-fork");
    let exe = compile("announce_modes");
    let out = Run::new(&exe)
        .arg("fork")
        .env("MALLOC_DEBUG", "1,on_error=continue")
        .env("FT_MALLOC_ANNOUNCE", &f)
        .go();
    out.assert_success();
    let r = records(&f);
    let tags: Vec<&str> = r.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["start", "fork", "exit", "exit"], "{r:?}");
    let parent = get(&r[0].1, "pid");
    assert_eq!(get(&r[0].1, "ppid"), std::process::id().to_string());
    assert_eq!(get(&r[0].1, "debug"), "1");
    assert_eq!(Path::new(get(&r[0].1, "exe")), exe.as_path());
    assert!(!get(&r[0].1, "parent").is_empty(), "{r:?}");
    let child = get(&r[1].1, "pid");
    assert_eq!(get(&r[1].1, "ppid"), parent);
    // The child's count starts at the fork: 2, not 3.
    assert_eq!(get(&r[2].1, "pid"), child);
    assert_eq!(get(&r[2].1, "errors"), "2");
    assert_eq!(get(&r[2].1, "leak_check"), "on");
    assert_eq!(get(&r[3].1, "pid"), parent);
    assert_eq!(get(&r[3].1, "errors"), "1");
    assert!(
        out.stderr.contains("ERROR SUMMARY: 1 error(s)"),
        "{}",
        out.describe()
    );
}

/// No descriptor stays open on the announce file, and a program that closes every descriptor
/// still gets its exit line written.
#[test]
fn a_close_loop_does_not_lose_the_exit_line() {
    let f = announce_file("announce-close");
    let out = Run::new(compile("announce_modes"))
        .arg("closefds")
        .env("MALLOC_DEBUG", "1")
        .env("FT_MALLOC_ANNOUNCE", &f)
        .go();
    out.assert_success();
    assert_eq!(out.stdout, "OK\n", "{}", out.describe());
    let r = records(&f);
    let tags: Vec<&str> = r.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["start", "exit"], "{r:?}");
    assert_eq!(get(&r[1].1, "errors"), "0");
}

/// exec: the same pid starts again with its new executable; _exit: no exit line.
#[test]
fn exec_starts_again_and_underscore_exit_writes_no_verdict() {
    let f = announce_file("announce-exec");
    let t = common::which("true").expect("true");
    let out = Run::new(compile("announce_modes"))
        .args([std::ffi::OsStr::new("exec"), t.as_os_str()])
        .env("MALLOC_DEBUG", "1")
        .env("FT_MALLOC_ANNOUNCE", &f)
        .go();
    out.assert_success();
    let r = records(&f);
    let tags: Vec<&str> = r.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["start", "start", "exit"], "{r:?}");
    assert_eq!(get(&r[0].1, "pid"), get(&r[1].1, "pid"));
    assert_eq!(
        std::fs::canonicalize(get(&r[1].1, "exe")).unwrap(),
        std::fs::canonicalize(&t).unwrap()
    );
    let f = announce_file("announce-_exit");
    Run::new(compile("announce_modes"))
        .arg("_exit")
        .env("MALLOC_DEBUG", "1")
        .env("FT_MALLOC_ANNOUNCE", &f)
        .go()
        .assert_success();
    let tags: Vec<String> = records(&f).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, ["start"]);
}

/// With MALLOC_DEBUG unset the library still says it is there (debug=0) and exits clean with
/// the leak check off; a path that does not exist is never created, a relative one is ignored.
#[test]
fn announce_without_debugging_and_bad_paths() {
    let f = announce_file("announce-plain");
    Run::new(compile("leak_free_program"))
        .env("FT_MALLOC_ANNOUNCE", &f)
        .go()
        .assert_ok_clean();
    let r = records(&f);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(get(&r[0].1, "debug"), "0");
    assert_eq!(r[1].0, "exit");
    assert_eq!(get(&r[1].1, "errors"), "0");
    assert_eq!(get(&r[1].1, "leak_check"), "off");
    let d = fresh_dir("announce-missing");
    let missing = d.join("not created");
    Run::new(compile("leak_free_program"))
        .env("MALLOC_DEBUG", "1")
        .env("FT_MALLOC_ANNOUNCE", &missing)
        .go()
        .assert_ok_clean();
    assert!(!missing.exists());
    std::fs::write(d.join("relative"), "").unwrap();
    Run::new(compile("leak_free_program"))
        .env("MALLOC_DEBUG", "1")
        .env("FT_MALLOC_ANNOUNCE", "relative")
        .cwd(&d)
        .go()
        .assert_ok_clean();
    assert_eq!(std::fs::read_to_string(d.join("relative")).unwrap(), "");
}

/// Any debugging on (sample, guard, canary, fill... without `check`): a double free is an
/// ERROR with its call site and the on_error policy (abort), not a WARNING. Only with
/// MALLOC_DEBUG unset is it refused with one WARNING line.
#[test]
fn a_double_free_is_an_error_in_every_debugging_mode() {
    for debug in [
        "sample=10",
        "guard",
        "canary",
        "fill",
        "quarantine=1m",
        "leaks",
    ] {
        let out = run("double_free_tiny", &[], &[("MALLOC_DEBUG", debug)]);
        let err = &out.stderr;
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("ft_malloc[")
                && first.contains("]: ERROR: double free of 0x")
                && first.ends_with(" bytes) in free()"),
            "{debug}: {}",
            out.describe()
        );
        assert!(
            err.contains("free() called from ") && err.contains("double_free_tiny"),
            "{debug}: {}",
            out.describe()
        );
        assert!(!err.contains("WARNING"), "{debug}: {}", out.describe());
        assert_eq!(
            out.signal,
            Some(libc::SIGABRT),
            "{debug}: {}",
            out.describe()
        );
    }
    let out = run(
        "double_free_tiny",
        &[],
        &[("MALLOC_DEBUG", "sample=10,on_error=continue")],
    );
    out.assert_success();
    assert_eq!(out.stdout, "continued\n");
    assert!(
        out.stderr.contains("ERROR SUMMARY: 1 error(s)"),
        "{}",
        out.describe()
    );
}
