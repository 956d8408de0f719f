//! scripts/ft-malloc, driven with a stand-in library (tests/c/fake_ftmalloc.c) that writes the
//! log of docs/LOGFORMAT.md (its reports and failures can be planted), and with the real
//! libft_malloc.so (`real_library_*`).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ft-malloc")
}

/// (fake library in a directory whose name has a space, leak program)
fn fixtures() -> &'static (PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let d = tmpdir("launcher fixtures");
        let lib = d.join("libfake ft.so");
        let st = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&lib)
            .arg(c_src("fake_ftmalloc.c"))
            .status()
            .unwrap();
        assert!(st.success());
        let exe = d.join("leak prog");
        cc(&c_src("leak.c"), &exe, &[]);
        (lib, exe)
    })
}

fn launch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let (lib, _) = fixtures();
    let mut c = Command::new(launcher());
    c.args(args)
        .current_dir(dir)
        .env("FT_MALLOC_LIB", lib)
        .env("FT_MALLOC_REPORT", BIN)
        .env_remove("MALLOC_DEBUG");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Run {
        status: o.status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn leak_reported_at_file_line_with_summary() {
    let (_, exe) = fixtures();
    let d = tmpdir("launch-leak");
    let r = launch(
        &d,
        &["--leaks", "--", exe.to_str().unwrap(), "5", "7"],
        &[("FAKE_REPORT", "1"), ("FAKE_REACHABLE", "4096/1")],
    );
    assert_eq!(r.status.code(), Some(7), "{}", r.stderr);
    let src = c_src("leak.c");
    let line = line_of(&src, "LEAK-LINE");
    // The program's stderr, untouched except for the symbolized report line.
    assert!(
        r.stderr
            .contains("stderr line one\nno newline at the end\n==== ft-malloc summary"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "allocated by malloc() at #1 from make_name ({}:{line})",
            src.display()
        )),
        "{}",
        r.stderr
    );
    // The library's count and LEAK verdict, from its exit announcement.
    assert!(
        r.stderr.contains("errors     1 (ft_malloc's count)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("status     exit 7"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "leaks      65 bytes in 5 blocks unreachable (4096 bytes in 1 block still reachable at exit)"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("log        none (--trace FILE writes one)"),
        "{}",
        r.stderr
    );
    // --error-exitcode: the errors decide the exit status.
    let r = launch(
        &d,
        &[
            "--error-exitcode",
            "99",
            "--",
            exe.to_str().unwrap(),
            "5",
            "7",
        ],
        &[("FAKE_REPORT", "1")],
    );
    assert_eq!(r.status.code(), Some(99), "{}", r.stderr);
    let r = launch(
        &d,
        &["--error-exitcode=99", "--", exe.to_str().unwrap(), "5", "7"],
        &[],
    );
    assert_eq!(r.status.code(), Some(7), "{}", r.stderr);
    for bad in ["0", "256", "x", ""] {
        let r = launch(&d, &["--error-exitcode", bad, "true"], &[]);
        assert_eq!(r.status.code(), Some(2), "{bad}: {}", r.stderr);
    }
}

#[test]
fn exit_status_signal_and_not_found() {
    let (_, exe) = fixtures();
    let d = tmpdir("launch-status");
    let r = launch(&d, &[exe.to_str().unwrap(), "1", "segv"], &[]);
    assert_eq!(r.status.code(), Some(128 + 11), "{}", r.stderr);
    assert!(
        r.stderr.contains("killed by signal 11 (SEGV)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Segmentation fault"), "{}", r.stderr);
    // A crash without a report is not a clean run.
    assert!(
        r.stderr.contains(
            "errors     none reported, but the program died of SIGSEGV: a crash ft_malloc did not explain, so this run is not clean"
        ) && r.stderr.contains("rerun with --guard"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("errors     0"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("leaks      not checked: the process did not run its exit handlers"),
        "{}",
        r.stderr
    );
    // Nor is a failure: no verdict on memory.
    let r = launch(&d, &[exe.to_str().unwrap(), "1", "3"], &[]);
    assert_eq!(r.status.code(), Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "errors     none reported, but the program failed (exit 3), which is no verdict on its memory"
        ) && r.stderr.contains("if it should have succeeded, rerun with --guard"),
        "{}",
        r.stderr
    );
    let r = launch(&d, &["--", "no-such-program-ft"], &[]);
    assert_eq!(r.status.code(), Some(127));
    assert!(
        r.stderr.contains("no-such-program-ft: command not found"),
        "{}",
        r.stderr
    );
    let r = launch(&d, &["./not here/x"], &[]);
    assert_eq!(r.status.code(), Some(127));
    let r = launch(&d, &["--bogus-option", "true"], &[]);
    assert_eq!(r.status.code(), Some(2));
    // A program from PATH, quiet.
    let r = launch(&d, &["-q", "sh", "-c", "exit 3"], &[]);
    assert_eq!(r.status.code(), Some(3));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn trace_with_pid_names_children_apart() {
    let (_, exe) = fixtures();
    let d = tmpdir("launch-trace");
    // A relative path: made absolute, so children that change directory write beside it.
    let script = format!("cd / && '{}' 2 && '{}' 1", exe.display(), exe.display());
    let r = launch(
        &d,
        &["--trace", "logs dir/run.%p.log", "--", "sh", "-c", &script],
        &[],
    );
    // The directory does not exist: refused before the program runs.
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "--trace {}: directory {} does not exist",
            d.join("logs dir/run.%p.log").display(),
            d.join("logs dir").display()
        )),
        "{}",
        r.stderr
    );
    std::fs::create_dir_all(d.join("logs dir")).unwrap();
    let r = launch(
        &d,
        &["--trace", "logs dir/run.%p.log", "--", "sh", "-c", &script],
        &[],
    );
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
    let logs: Vec<_> = std::fs::read_dir(d.join("logs dir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // sh and the two runs of the program (and whatever sh runs) each wrote a log.
    assert!(logs.len() >= 3, "{logs:?}");
    for l in &logs {
        assert!(
            r.stderr.contains(&format!("log        {}", l.display())),
            "{}\n{}",
            l.display(),
            r.stderr
        );
    }
    // The two runs of the program: one line each, with their LEAK verdict.
    assert!(
        r.stderr
            .contains(": leaks 26 bytes in 2 blocks unreachable"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(": leaks 13 bytes in 1 block unreachable"),
        "{}",
        r.stderr
    );
    // A third run in the same directory: its summary lists only its own logs.
    let r3 = launch(
        &d,
        &["--trace", "logs dir/run.%p.log", "--", "sh", "-c", &script],
        &[],
    );
    assert_eq!(r3.status.code(), Some(0), "{}", r3.stderr);
    let listed = r3
        .stderr
        .lines()
        .filter(|l| l.starts_with("log        "))
        .count();
    assert_eq!(listed, logs.len(), "{}", r3.stderr);
    for l in &logs {
        assert!(
            !r3.stderr.contains(&format!("log        {}", l.display())),
            "old log listed: {}",
            r3.stderr
        );
    }
    // The kept log is read by `report`.
    let one = &logs[0];
    let rep = Command::new(launcher())
        .env("FT_MALLOC_REPORT", BIN)
        .args(["report", "summary"])
        .arg(one)
        .output()
        .unwrap();
    assert!(rep.status.success());
    assert!(String::from_utf8_lossy(&rep.stdout).contains("program "));
}

#[test]
fn modes_set_malloc_debug() {
    let d = tmpdir("launch-modes");
    let show = |args: &[&str]| -> String {
        let mut a: Vec<&str> = args.to_vec();
        a.extend([
            "-q",
            "--no-symbolize",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$MALLOC_DEBUG\"",
        ]);
        let r = launch(&d, &a, &[]);
        assert!(r.status.success(), "{}", r.stderr);
        r.stdout
    };
    // No log without --trace: the run costs what MALLOC_DEBUG alone costs.
    assert_eq!(show(&[]), "1");
    assert_eq!(show(&["--guard"]), "full");
    assert_eq!(show(&["--sample", "100"]), "sample=100");
    let v = show(&[
        "--debug",
        "canary=1,quarantine=4m",
        "--leaks",
        "--fail",
        "10",
        "--no-children",
    ]);
    assert_eq!(v, "canary=1,quarantine=4m,leaks,fail=10,nochildren");
    let v = show(&["--trace", "/tmp/x.%p.log"]);
    assert_eq!(v, "1,log=/tmp/x.%p.log");
    let r = launch(&d, &["--trace", "/tmp/a,b.log", "true"], &[]);
    assert_eq!(r.status.code(), Some(2));
    // A suppression file, relative to the launcher's directory, goes in as an absolute path.
    std::fs::write(d.join("known.supp"), "leak:x\n").unwrap();
    let v = show(&["--suppressions", "known.supp"]);
    assert_eq!(v, format!("1,suppress={}", d.join("known.supp").display()));
    let r = launch(&d, &["--suppressions", "missing.supp", "true"], &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        r.stderr
            .contains("--suppressions: cannot read 'missing.supp'"),
        "{}",
        r.stderr
    );
}

#[test]
fn help_lists_every_option_with_an_example() {
    let r = launch(Path::new("/"), &["--help"], &[]);
    assert!(r.status.success());
    for opt in [
        "--check",
        "--guard",
        "--sample",
        "--trace",
        "--leaks",
        "--fail",
        "--suppressions",
        "--debug",
        "--no-children",
        "--error-exitcode",
        "--children=full",
        "FT_MALLOC_ANNOUNCE",
        "125",
        "report summary",
        "report leaks",
        "report top",
        "report history",
        "report heap",
        "report plot",
    ] {
        assert!(
            r.stdout.contains(opt),
            "{opt} missing from --help:\n{}",
            r.stdout
        );
    }
    for opt in [
        "--check",
        "--guard",
        "--sample",
        "--trace",
        "--leaks",
        "--fail",
        "--suppressions",
        "--debug",
        "--no-children",
        "--error-exitcode",
        "--children=full",
    ] {
        assert!(
            r.stdout.contains(&format!("ft-malloc {opt}")),
            "no example for {opt}:\n{}",
            r.stdout
        );
    }
}

/// Whether a process named `comm` runs in process group `pgid` (from /proc/PID/stat).
fn group_runs(pgid: i32, comm: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            return false;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        &stat[open + 1..close] == comm && rest.get(2).and_then(|g| g.parse().ok()) == Some(pgid)
    })
}

/// Ctrl-C (SIGINT to the foreground process group) ends the program, not the launcher: the
/// summary is printed and the status is 128+2.
#[test]
fn interrupt_reaches_the_program_and_the_summary_is_printed() {
    use std::os::unix::process::CommandExt;
    let (lib, _) = fixtures();
    let d = tmpdir("launch-int");
    let mut c = Command::new(launcher());
    c.args(["--", "sleep", "20"])
        .current_dir(&d)
        .env("FT_MALLOC_LIB", lib)
        .env("FT_MALLOC_REPORT", BIN)
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    // As from a terminal: SIGINT not ignored (tests started in the background by a shell
    // inherit it ignored, and so would the program).
    // SAFETY: signal(2) is async-signal-safe, and the closure touches nothing else.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        })
    };
    let child = c.spawn().unwrap();
    // Once the program runs (before, the launcher alone would see the signal, and ignore it).
    let pgid = child.id() as i32;
    let t0 = std::time::Instant::now();
    while !group_runs(pgid, "sleep") && t0.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("killed by signal 2 (INT)"), "{err}");
    assert!(
        err.contains(
            "errors     none found before the program was stopped by SIGINT (the run did not finish)"
        ),
        "{err}"
    );
}

/// The real library's reports, through the launcher: `module+0xOFF` callers become
/// `function (file:line)`, the abort is 128+6, the summary counts the error.
#[test]
fn real_library_reports_are_symbolized() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Built (and up to date) before the launcher looks for it by itself (FT_MALLOC_LIB unset).
    real_lib();
    let d = tmpdir("launch-real-df");
    let exe = d.join("double free");
    cc(&c_src("double_free.c"), &exe, &[]);
    let o = Command::new(launcher())
        .current_dir(&d)
        .env("FT_MALLOC_REPORT", BIN)
        .env_remove("FT_MALLOC_LIB")
        .env_remove("MALLOC_DEBUG")
        .arg(&exe)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        root.join("target/release/libft_malloc.so").exists()
            || std::env::var_os("CARGO_TARGET_DIR").is_some(),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(128 + 6), "{err}");
    assert!(err.contains("ERROR: double free"), "{err}");
    let src = c_src("double_free.c");
    let free_line = line_of(&src, "FREE-LINE");
    assert!(
        err.contains(&format!("release ({}:{free_line})", src.display())),
        "{err}"
    );
    assert!(
        err.contains("errors     1 (reported on stderr before the program ended)")
            && err.contains("ft_malloc aborted the program after the first report"),
        "{err}"
    );
    assert!(err.contains("killed by signal 6 (ABRT)"), "{err}");
}

/// End to end with the real library: the launcher runs the program with libft_malloc.so writing
/// its log (`--trace`), the library's LEAK report and the reader's summary (from the log) both
/// name the leak's file:line, and the kept log is read by `report leaks`.
#[test]
fn real_library_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let d = tmpdir("launch-real");
    let exe = d.join("leak");
    cc(&c_src("leak.c"), &exe, &[]);
    let log = d.join("real.%p.log");
    let o = Command::new(launcher())
        .current_dir(&root)
        .env("FT_MALLOC_REPORT", BIN)
        .env("FT_MALLOC_LIB", real_lib())
        .env_remove("MALLOC_DEBUG")
        .args(["--leaks", "--trace"])
        .arg(&log)
        .arg("--")
        .arg(&exe)
        .arg("3")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let src = c_src("leak.c");
    let line = line_of(&src, "LEAK-LINE");
    let at = format!("make_name ({}:{line})", src.display());
    // The program's own stderr, passed through.
    assert!(
        err.contains("stderr line one\nno newline at the end"),
        "{err}"
    );
    // The library's report at exit (MALLOC_DEBUG=1,log=...,leaks).
    assert!(
        err.contains(&format!(
            "LEAK: 39 bytes in 3 block(s) allocated by malloc() from {at}"
        )),
        "{err}"
    );
    // The summary: the library's verdict, and the log's figures.
    assert!(err.contains("errors     0\n"), "{err}");
    assert!(err.contains("status     exit 0"), "{err}");
    assert!(
        err.contains("4 allocations, 1039 bytes in all; 39 bytes in 3 blocks live at the end"),
        "{err}"
    );
    assert!(
        err.contains("leaks      39 bytes in 3 blocks unreachable\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "             39 bytes in 3 block(s) allocated by malloc() from {at}"
        )),
        "{err}"
    );
    let logs: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("real.")
        })
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        err.contains(&format!("log        {}", logs[0].display())),
        "{err}"
    );
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(text.starts_with("# ft_malloc log v2\n"), "{text}");
    assert!(
        text.contains(&format!("# debug 1,log={},leaks\n", log.display())),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("E ")).count(),
        5,
        "{text}"
    );
    // The kept log, through `ft-malloc report`.
    let rep = Command::new(launcher())
        .env("FT_MALLOC_REPORT", BIN)
        .args(["report", "leaks"])
        .arg(&logs[0])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&rep.stdout);
    assert!(rep.status.success(), "{out}");
    assert!(
        out.contains("39 bytes in 3 blocks (13 bytes each)"),
        "{out}"
    );
    assert!(out.contains(&format!("at {at}")), "{out}");
}

/// `cc -g -O0 tests/c/NAME.c` into `dir` (plus extra flags); None when the compiler refuses
/// the flags (a static link without a static libc).
fn program(dir: &Path, name: &str, out: &str, extra: &[&str]) -> Option<PathBuf> {
    let exe = dir.join(out);
    let st = Command::new("cc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg(c_src(&format!("{name}.c")))
        .arg("-o")
        .arg(&exe)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    st.success().then_some(exe)
}

/// The launcher with the real library.
fn launch_real(dir: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let o = Command::new(launcher())
        .args(args)
        .current_dir(dir)
        .env("FT_MALLOC_LIB", real_lib())
        .env("FT_MALLOC_REPORT", BIN)
        .env_remove("MALLOC_DEBUG")
        .output()
        .unwrap();
    Run {
        status: o.status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn os<'a>(v: &'a [&'a str]) -> Vec<&'a std::ffi::OsStr> {
    v.iter().map(std::ffi::OsStr::new).collect()
}

/// What the launcher printed after the program's own output.
fn summary_of(r: &Run) -> &str {
    let at = r
        .stderr
        .find("==== ft-malloc summary")
        .unwrap_or_else(|| panic!("no summary:\n{}", r.stderr));
    &r.stderr[at..]
}

/// A program that deletes list nodes while walking them dies of SIGSEGV under --check: the
/// pointer it follows is made of the free fill, and the library says so (an error); under
/// --guard the library stops the read of the freed node itself. A crash the library cannot
/// explain (a write through a null pointer) leaves the run not clean, with --guard suggested.
#[test]
fn real_library_crash_under_check_is_not_clean() {
    let d = tmpdir("launch-crash");
    let exe = program(&d, "list_delete", "list delete", &[]).unwrap();
    let r = launch_real(&d, &os(&["--check", "--", exe.to_str().unwrap()]));
    assert_eq!(r.status.code(), Some(128 + 11), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("ERROR: wild pointer: SIGSEGV (access) with r")
            && r.stderr
                .contains("made of the free fill (0xDE...): a pointer loaded from a freed block"),
        "{}",
        r.stderr
    );
    let s = summary_of(&r);
    assert!(
        s.contains("errors     1 (reported on stderr before the program ended)"),
        "{s}"
    );
    assert!(!s.contains("never freed"), "{s}");
    let null = program(&d, "null_write", "null write", &[]).unwrap();
    let r = launch_real(&d, &os(&["--check", "--", null.to_str().unwrap()]));
    assert_eq!(r.status.code(), Some(128 + 11), "{}", r.stderr);
    assert!(
        r.stderr.contains("is not in ft_malloc's memory"),
        "{}",
        r.stderr
    );
    let s = summary_of(&r);
    assert!(!s.contains("errors     0"), "{s}");
    assert!(
        s.contains("errors     none reported, but the program died of SIGSEGV: a crash ft_malloc did not explain, so this run is not clean\n           rerun with --guard"),
        "{s}"
    );
    let r = launch_real(&d, &os(&["--guard", "--", exe.to_str().unwrap()]));
    assert_eq!(r.status.code(), Some(128 + 11), "{}", r.stderr);
    let line = line_of(&c_src("list_delete.c"), "USE-AFTER-FREE");
    assert!(
        r.stderr.contains("ERROR: use after free (read)")
            && r.stderr.contains(&format!("list_delete.c:{line})")),
        "{}",
        r.stderr
    );
    assert!(
        summary_of(&r).contains("errors     1 (reported on stderr before the program ended)"),
        "{}",
        r.stderr
    );
}

/// One count, the library's: with on_error=continue the same double free three times is one
/// report and `ERROR SUMMARY: 3 error(s)`, and the summary says 3 (the ERROR SUMMARY line is not
/// an error of its own); --error-exitcode turns errors into the exit status.
#[test]
fn real_library_error_count_is_the_librarys() {
    let d = tmpdir("launch-count");
    let exe = program(&d, "double_frees", "double frees", &[]).unwrap();
    let e = exe.to_str().unwrap();
    for n in [3, 1] {
        let r = launch_real(
            &d,
            &os(&["--debug", "1,on_error=continue", "--", e, &n.to_string()]),
        );
        assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("ERROR SUMMARY: {n} error(s)")),
            "{}",
            r.stderr
        );
        assert!(
            summary_of(&r).contains(&format!("errors     {n} (ft_malloc's count)\n")),
            "{}",
            r.stderr
        );
    }
    let r = launch_real(
        &d,
        &os(&[
            "--debug",
            "1,on_error=continue",
            "--error-exitcode",
            "42",
            "--",
            e,
            "2",
        ]),
    );
    assert_eq!(r.status.code(), Some(42), "{}", r.stderr);
    let r = launch_real(&d, &os(&["--error-exitcode", "42", "--", e, "0"]));
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
    assert!(summary_of(&r).contains("errors     0\n"), "{}", r.stderr);
}

/// The leaks of the summary are the library's LEAK verdict (unreachable blocks), not every block
/// a log shows unfreed: stdio's buffer is still reachable, said apart. After a crash, no leak
/// list at all.
#[test]
fn real_library_leak_verdict_is_the_librarys() {
    let d = tmpdir("launch-leaks");
    let exe = program(&d, "leak_and_print", "leak and print", &[]).unwrap();
    let e = exe.to_str().unwrap();
    let line = line_of(&c_src("leak_and_print.c"), "LEAK-LINE");
    let log = d.join("trace.%p.log");
    for args in [
        vec!["--", e],
        vec!["--trace", log.to_str().unwrap(), "--", e],
    ] {
        let r = launch_real(&d, &os(&args));
        assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
        let s = summary_of(&r);
        assert!(
            s.contains("leaks      80 bytes in 2 blocks unreachable (4096 bytes in 1 block still reachable at exit)\n"),
            "{s}"
        );
        // Two calls of lose from main: two call stacks, one LEAK line each.
        assert_eq!(
            s.matches(&format!(
                "             40 bytes in 1 block(s) allocated by malloc() from lose ({}:{line})\n",
                c_src("leak_and_print.c").display()
            ))
            .count(),
            2,
            "{s}"
        );
        assert!(
            !s.contains("_IO_file_doallocate") && !s.contains("never freed"),
            "{s}"
        );
    }
    let r = launch_real(&d, &os(&["--", e, "segv"]));
    assert_eq!(r.status.code(), Some(128 + 11), "{}", r.stderr);
    let s = summary_of(&r);
    assert!(
        s.contains("leaks      not checked: the process did not run its exit handlers"),
        "{s}"
    );
    assert!(!s.contains("bytes in"), "{s}");
}

/// Without /proc the library cannot find the program's memory to scan: the leak check is
/// skipped, and the summary says why instead of calling the blocks leaked or the run clean.
/// (Needs a mount namespace of its own to unmount /proc in: skipped where that is refused.)
#[test]
fn real_library_without_proc_does_not_check_leaks() {
    let d = tmpdir("launch-noproc");
    let exe = program(&d, "leak_and_print", "leak and print", &[]).unwrap();
    let ok = Command::new("unshare")
        .args(["-m", "sh", "-c", "umount -l /proc"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: no mount namespace to unmount /proc in");
        return;
    }
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", "umount -l /proc && exec \"$0\" \"$@\""])
        .arg(launcher())
        .arg("--")
        .arg(&exe)
        .current_dir(&d)
        .env("FT_MALLOC_LIB", real_lib())
        .env("FT_MALLOC_REPORT", BIN)
        .env_remove("MALLOC_DEBUG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let s = &stderr[stderr.find("==== ft-malloc summary").expect(&stderr)..];
    assert!(
        s.contains("leaks      not checked: /proc/self/maps unreadable (is /proc mounted?)"),
        "{s}"
    );
    assert!(!s.contains("unreachable") && !s.contains("clean"), "{s}");
}

/// A program with a malloc of its own, ahead of the library's: no allocation came to the
/// library, so the summary says nothing was checked (not "errors 0") and the launcher exits
/// with 125, as for a program the library was not loaded into.
#[test]
fn real_library_bypassed_by_the_programs_own_malloc_is_no_verdict() {
    let d = tmpdir("launch-own-malloc");
    let exe = d.join("own malloc");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/c/own_malloc.c");
    cc(&src, &exe, &[]);
    let r = launch_real(&d, &os(&["--", exe.to_str().unwrap(), "own"]));
    assert_eq!(r.status.code(), Some(125), "{}", r.stderr);
    assert_eq!(
        r.stdout, "arena: strdup yes, reallocarray yes\n",
        "{}",
        r.stderr
    );
    let s = summary_of(&r);
    assert!(
        s.contains(&format!(
            "errors     not checked: malloc is {}'s own, ahead of ft_malloc, and no allocation \
             came to ft_malloc",
            exe.display()
        )),
        "{s}"
    );
    assert!(
        s.contains("leaks      not checked: no allocation came to ft_malloc"),
        "{s}"
    );
}

/// --sample N: a double free is an ERROR with its call site (debugging is on), not a WARNING.
#[test]
fn real_library_sample_mode_reports_a_double_free() {
    let d = tmpdir("launch-sample");
    let exe = program(&d, "double_free", "double free", &[]).unwrap();
    let r = launch_real(&d, &os(&["--sample", "10", "--", exe.to_str().unwrap()]));
    assert_eq!(r.status.code(), Some(128 + 6), "{}", r.stderr);
    let src = c_src("double_free.c");
    let line = line_of(&src, "FREE-LINE");
    assert!(
        r.stderr.contains("]: ERROR: double free of 0x")
            && r.stderr.contains(&format!(
                "free() called from release ({}:{line})",
                src.display()
            )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("WARNING"), "{}", r.stderr);
    assert!(summary_of(&r).contains("errors     1 "), "{}", r.stderr);
}

/// A statically linked program runs without the library: the launcher says so and why, and
/// exits with 125, also with -q.
#[test]
fn static_program_is_not_checked() {
    let d = tmpdir("launch-static");
    let Some(exe) = program(&d, "leak_and_print", "static prog", &["-static"]) else {
        eprintln!("skipped: cc -static does not link here (no static libc)");
        return;
    };
    let want = "ft-malloc: ft_malloc was not loaded into ./static prog: it is statically linked: no dynamic loader runs, so LD_PRELOAD is never read. Nothing was checked in it.\n";
    let r = launch_real(&d, &os(&["--", "./static prog"]));
    assert_eq!(r.status.code(), Some(125), "{}", r.stderr);
    assert!(r.stderr.contains(want), "{}", r.stderr);
    let s = summary_of(&r);
    assert!(
        s.contains("errors     not checked: ft_malloc was not loaded into the program"),
        "{s}"
    );
    assert!(!s.contains("errors     0"), "{s}");
    let r = launch_real(&d, &os(&["-q", "--", "./static prog"]));
    assert_eq!(r.status.code(), Some(125), "{}", r.stderr);
    assert!(r.stderr.ends_with(want), "{}", r.stderr);
    let _ = exe;
}

/// A set-user-ID program (owned by another user) runs in secure-execution mode, where the
/// loader ignores our LD_PRELOAD: 125 and why. Needs root to give the file away.
#[test]
fn setuid_program_is_not_checked() {
    let d = tmpdir("launch-setuid");
    let exe = program(&d, "leak_and_print", "suid prog", &[]).unwrap();
    let given = Command::new("chown")
        .args(["nobody"])
        .arg(&exe)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    use std::os::unix::fs::PermissionsExt;
    if !given || std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o4755)).is_err() {
        eprintln!("skipped: cannot make a set-user-ID program of another user (not root)");
        return;
    }
    let r = launch_real(&d, &os(&["--", "./suid prog"]));
    if r.stdout != "printed\n" {
        eprintln!("skipped: the set-user-ID program did not run (nosuid mount?)");
        return;
    }
    assert_eq!(r.status.code(), Some(125), "{}", r.stderr);
    assert!(
        r.stderr.contains("ft-malloc: ft_malloc was not loaded into ./suid prog: it is set-user-ID: it runs in secure-execution mode"),
        "{}",
        r.stderr
    );
}

/// A child the library was not loaded into (a static program between two dynamic ones) is
/// listed, and does not fail the run; the dynamic grandchild is checked as usual.
#[test]
fn child_without_the_library_is_listed() {
    let d = tmpdir("launch-without");
    let Some(stat) = program(&d, "run_child", "run child static", &["-static"]) else {
        eprintln!("skipped: cc -static does not link here (no static libc)");
        return;
    };
    let dynamic = program(&d, "run_child", "run child", &[]).unwrap();
    let leaky = program(&d, "leak_and_print", "leak and print", &[]).unwrap();
    let r = launch_real(
        &d,
        &[dynamic.as_os_str(), stat.as_os_str(), leaky.as_os_str()],
    );
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
    let s = summary_of(&r);
    assert!(
        s.contains(&format!(
            "{} (executed by {}): ft_malloc was not loaded into it",
            stat.display(),
            dynamic.display()
        )) && s.contains("\nwithout    pid "),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "{}: leaks 80 bytes in 2 blocks unreachable",
            leaky.display()
        )),
        "{s}"
    );
    assert!(s.contains("errors     0\n"), "{s}");
}

/// Children: one line each for those with something to say, the clean ones together by program;
/// --children=full lists every one.
#[test]
fn children_are_summarised() {
    let (_, exe) = fixtures();
    let d = tmpdir("launch-children");
    let script = format!("for i in 1 2 3; do '{0}' 0; done; '{0}' 2", exe.display());
    let r = launch(&d, &["--", "sh", "-c", &script], &[]);
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
    let s = summary_of(&r);
    assert!(
        s.contains("children   4 processes with ft_malloc, 1 with errors or leaks\n"),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "  clean: 3 processes (3 x {}; --children=full lists each)\n",
            exe.display()
        )),
        "{s}"
    );
    assert_eq!(s.matches("  pid ").count(), 1, "{s}");
    assert!(
        s.contains(&format!(
            "{}: leaks 26 bytes in 2 blocks unreachable",
            exe.display()
        )),
        "{s}"
    );
    assert!(!s.contains("process    "), "{s}");
    let r = launch(&d, &["--children=full", "--", "sh", "-c", &script], &[]);
    let s = summary_of(&r);
    assert_eq!(
        s.matches(&format!("{}: clean\n", exe.display())).count(),
        3,
        "{s}"
    );
    assert_eq!(s.matches("  pid ").count(), 4, "{s}");
}

/// --trace into a directory that does not exist is refused before the program runs.
#[test]
fn trace_into_a_missing_directory_is_refused_before_running() {
    let d = tmpdir("launch-trace-missing");
    let marker = d.join("ran");
    let r = launch(
        &d,
        &[
            "--trace",
            "/nonexistent dir/x.log",
            "--",
            "sh",
            "-c",
            &format!("touch '{}'", marker.display()),
        ],
        &[],
    );
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "ft-malloc: --trace /nonexistent dir/x.log: directory /nonexistent dir does not exist\n"
    );
    assert!(!marker.exists());
    let r = launch(&d, &["--trace", "/x/%p/y.log", "true"], &[]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
}
