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
        &[("FAKE_REPORT", "1")],
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
    assert!(r.stderr.contains("errors     1 reported"), "{}", r.stderr);
    assert!(r.stderr.contains("status     exit 7"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("65 bytes in 5 blocks never freed, from 1 site"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "65 bytes in 5 blocks at make_name ({}:{line})",
            src.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("peak 1065 bytes in use"), "{}", r.stderr);
    assert!(
        r.stderr.contains("log        temporary, removed"),
        "{}",
        r.stderr
    );
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
    // (the directory does not exist: the library cannot open the log; nothing breaks)
    assert_eq!(r.status.code(), Some(0), "{}", r.stderr);
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
    assert!(
        r.stderr.contains("26 bytes in 2 blocks never freed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("13 bytes in 1 block"), "{}", r.stderr);
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
    let tmp_log = |s: &str| s.contains(",log=") && s.contains("/log.%p");
    let v = show(&[]);
    assert!(v.starts_with("1,log=") && tmp_log(&v), "{v}");
    assert!(show(&["--guard"]).starts_with("full,log="));
    assert!(show(&["--sample", "100"]).starts_with("sample=100,log="));
    let v = show(&[
        "--debug",
        "canary=1,quarantine=4m",
        "--leaks",
        "--fail",
        "10",
        "--no-children",
    ]);
    assert!(
        v.starts_with("canary=1,quarantine=4m,log=") && v.ends_with(",leaks,fail=10,nochildren"),
        "{v}"
    );
    let v = show(&["--trace", "/tmp/x.%p.log"]);
    assert_eq!(v, "1,log=/tmp/x.%p.log");
    let r = launch(&d, &["--trace", "/tmp/a,b.log", "true"], &[]);
    assert_eq!(r.status.code(), Some(2));
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
        "--debug",
        "--no-children",
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
        "--debug",
        "--no-children",
    ] {
        assert!(
            r.stdout.contains(&format!("ft-malloc {opt}")),
            "no example for {opt}:\n{}",
            r.stdout
        );
    }
}

/// Ctrl-C (SIGINT to the foreground process group) ends the program, not the launcher: the
/// summary is printed and the status is 128+2.
#[test]
fn interrupt_reaches_the_program_and_the_summary_is_printed() {
    use std::os::unix::process::CommandExt;
    let (lib, _) = fixtures();
    let d = tmpdir("launch-int");
    let child = Command::new(launcher())
        .args(["--", "sleep", "20"])
        .current_dir(&d)
        .env("FT_MALLOC_LIB", lib)
        .env("FT_MALLOC_REPORT", BIN)
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
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
        err.contains("process    /usr/bin/sleep") || err.contains("process    /bin/sleep"),
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
    assert!(err.contains("errors     1 reported"), "{err}");
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
    // The summary, from the log.
    assert!(err.contains("errors     0 reported"), "{err}");
    assert!(err.contains("status     exit 0"), "{err}");
    assert!(
        err.contains("4 allocations, 1039 bytes in all; 39 bytes in 3 blocks live at the end"),
        "{err}"
    );
    assert!(
        err.contains("leaks      39 bytes in 3 blocks never freed, from 1 site"),
        "{err}"
    );
    assert!(
        err.contains(&format!("39 bytes in 3 blocks at {at}")),
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
    assert!(text.starts_with("# ft_malloc log v1\n"), "{text}");
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
