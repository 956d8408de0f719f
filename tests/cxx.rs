//! C++ operators under every mode: a failed `operator new` throws `std::bad_alloc` that the
//! program catches (our frames are never between the throw and the catch), the nothrow forms
//! return NULL, and the new_handler protocol (retry while a handler returns, a handler's
//! exception propagates through new or ends a nothrow new with NULL) is libstdc++'s.

mod common;

use common::{Output, Run, c_dir, cc, compile, fresh_dir, require};
use std::time::Duration;

/// `MALLOC_DEBUG` values (None = unset); `LOG` is replaced by a file in the test's directory.
const MODES: &[Option<&str>] = &[
    None,
    Some("1"),
    Some("full"),
    Some("guard"),
    Some("sample=1"),
    Some("log=LOG"),
];

/// What libstdc++'s own operators print for `new_bad_alloc limit` (checked by running it without
/// the library too).
const LIMIT_EXPECTED: &str = "\
new: thrown
new[]: thrown
new char[]: thrown
aligned new: thrown
aligned new[]: thrown
nothrow new: NULL
nothrow new[]: NULL
nothrow char[]: NULL
nothrow aligned new: NULL
nothrow aligned new[]: NULL
new, returning handler: thrown
handler calls 3
nothrow new, returning handler: NULL
handler calls 3
new, throwing handler: thrown
new[], throwing handler: thrown
aligned new, throwing handler: thrown
nothrow new, throwing handler: NULL
nothrow aligned new[], throwing handler: NULL
handler calls 5
OK
";

const ABSURD_EXPECTED: &str = "absurd new: thrown\nabsurd nothrow new: NULL\nOK\n";

fn new_bad_alloc(arg: &str, mode: Option<&str>, name: &str) -> Output {
    let mut r = Run::new(compile("new_bad_alloc"))
        .arg(arg)
        .timeout(Duration::from_secs(60));
    let dir = fresh_dir(name);
    if let Some(m) = mode {
        let log = dir.join("new.log");
        r = r.env("MALLOC_DEBUG", m.replace("LOG", log.to_str().unwrap()));
    }
    let o = r.go();
    let _ = std::fs::remove_dir_all(&dir);
    o
}

/// Exit 0, the expected stdout, and nothing on stderr but our warnings (guard modes may say
/// that a 1 TiB request is beyond the guard budget): no `terminate called`.
#[track_caller]
fn assert_caught(o: &Output, expected: &str, mode: Option<&str>) {
    assert!(o.success(), "mode {mode:?}: {}", o.describe());
    assert_eq!(o.stdout, expected, "mode {mode:?}: {}", o.describe());
    assert!(
        o.stderr.lines().all(common::is_warning_line),
        "mode {mode:?}: {}",
        o.describe()
    );
}

#[test]
fn new_beyond_rlimit_as_throws_bad_alloc_in_every_mode() {
    if require("c++").is_none() {
        return;
    }
    let native = Run::new(compile("new_bad_alloc"))
        .arg("limit")
        .no_preload()
        .go();
    assert_caught(&native, LIMIT_EXPECTED, None);
    for &mode in MODES {
        let o = new_bad_alloc("limit", mode, "cxx_limit");
        assert_caught(&o, LIMIT_EXPECTED, mode);
    }
}

/// Above PTRDIFF_MAX: NULL inside, bad_alloc outside. With `check` on (presets 1 and full) the
/// size is also an ERROR report, so those run with on_error=continue.
#[test]
fn new_above_ptrdiff_max_throws_bad_alloc() {
    if require("c++").is_none() {
        return;
    }
    for mode in [None, Some("guard"), Some("sample=1"), Some("log=LOG")] {
        let o = new_bad_alloc("absurd", mode, "cxx_absurd");
        assert_caught(&o, ABSURD_EXPECTED, mode);
    }
    for mode in ["1,on_error=continue", "full,on_error=continue"] {
        let o = new_bad_alloc("absurd", Some(mode), "cxx_absurd");
        assert!(o.success(), "{mode}: {}", o.describe());
        assert_eq!(o.stdout, ABSURD_EXPECTED, "{mode}: {}", o.describe());
        let errors: Vec<&str> = o
            .stderr
            .lines()
            .filter(|l| l.contains("]: ERROR: absurd size 9223372036854779903"))
            .collect();
        assert_eq!(errors.len(), 2, "{mode}: {}", o.describe());
        assert!(!o.stderr.contains("terminate"), "{mode}: {}", o.describe());
    }
}

/// A library that exports its own `rust_eh_personality` (a Rust dylib does: rustc's driver)
/// keeps it: ours is hidden. Exported, it took the library's calls, and every panic of rustc
/// (a compile error) aborted with "failed to initiate panic".
#[test]
fn a_library_keeps_its_own_rust_eh_personality() {
    let dir = fresh_dir("personality");
    let lib = c_dir().join("personality_lib.c");
    cc(
        &["-shared", "-fPIC", lib.to_str().unwrap()],
        &dir.join("libpersonality_lib.so"),
    );
    let exe = dir.join("personality_main");
    let main = c_dir().join("personality_main.c");
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    let libdir = dir.to_str().unwrap();
    cc(
        &[
            main.to_str().unwrap(),
            "-L",
            libdir,
            "-lpersonality_lib",
            &rpath,
        ],
        &exe,
    );
    let plain = Run::new(&exe).no_preload().go();
    assert_eq!(plain.stdout, "42\nOK\n", "{}", plain.describe());
    for mode in [None, Some("1")] {
        let mut r = Run::new(&exe);
        if let Some(m) = mode {
            r = r.env("MALLOC_DEBUG", m);
        }
        let o = r.go();
        o.assert_ok_clean();
        assert_eq!(o.stdout, "42\nOK\n", "mode {mode:?}: {}", o.describe());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The library defines no unwinder symbol: the program's C++ runtime keeps its own.
#[test]
fn no_unwind_symbol_exported() {
    let Some(nm) = require("nm") else { return };
    let o = std::process::Command::new(nm)
        .args(["-D", "--defined-only"])
        .arg(common::lib())
        .output()
        .expect("running nm");
    assert!(o.status.success());
    let syms = String::from_utf8_lossy(&o.stdout);
    assert!(syms.contains(" _Znwm\n"), "nm output:\n{syms}");
    let unwind: Vec<&str> = syms.lines().filter(|l| l.contains("_Unwind_")).collect();
    assert!(unwind.is_empty(), "{unwind:?}");
}
