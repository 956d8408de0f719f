//! Shared harness of the integration tests: finds the built `libft_malloc.so`, compiles the C
//! programs of `tests/c/` once per process, and runs programs (ours or real ones) with the library
//! preloaded, under a timeout, capturing status, signal, stdout and stderr.
//!
//! Every run gets `LD_PRELOAD` set to the library and `MALLOC_DEBUG` removed unless the test passes
//! it explicitly, so the environment of the developer running `cargo test` does not leak in.
#![allow(dead_code)] // each test file uses a different subset

pub mod dump;
pub mod event;
pub mod real;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default time limit of one run; a run that exceeds it is killed and the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The prefix of the one-line warning printed for a refused pointer with `MALLOC_DEBUG` unset.
pub const WARNING_PREFIX: &str = "ft_malloc[";

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code, `None` when killed by a signal.
    pub status: Option<i32>,
    /// Terminating signal, `None` on a normal exit.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// True when the program exited normally with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Panics with the whole output unless the program exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "program failed: {}", self.describe());
        self
    }

    /// Panics unless the program exited 0 and printed `OK` as its last stdout line.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_success();
        assert_eq!(
            self.stdout.lines().last(),
            Some("OK"),
            "no OK line: {}",
            self.describe()
        );
        self
    }

    /// `assert_ok`, and nothing written on stderr.
    #[track_caller]
    pub fn assert_ok_clean(&self) -> &Self {
        self.assert_ok();
        assert_eq!(self.stderr, "", "unexpected stderr: {}", self.describe());
        self
    }

    /// Lines of stderr of the form `ft_malloc[<pid>]: WARNING:...`.
    pub fn warning_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| is_warning_line(l)).collect()
    }

    /// Status, signal and both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status={:?} signal={:?}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}",
            self.status,
            self.signal,
            self.stdout.len(),
            tail(&self.stdout, 4000),
            self.stderr.len(),
            tail(&self.stderr, 4000)
        )
    }
}

/// True for a line of the form `ft_malloc[<digits>]: WARNING:...`.
pub fn is_warning_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix(WARNING_PREFIX) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest[digits..].starts_with("]: WARNING:")
}

/// The last `max` bytes of `s` (on a char boundary), to keep failure messages readable.
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Every `0x<hex>` of `line`, in order.
pub fn hex_numbers(line: &str) -> Vec<u64> {
    line.match_indices("0x")
        .filter_map(|(i, _)| {
            let r = &line[i + 2..];
            let n = r.bytes().take_while(u8::is_ascii_hexdigit).count();
            u64::from_str_radix(&r[..n], 16).ok()
        })
        .collect()
}

/// A report as a test compares it: `ft_malloc[<pid>]` becomes `ft_malloc[PID]` and every
/// `0x<hex digits>` (either case) becomes `ADDR`.
pub fn mask_report(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("ft_malloc[") {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n > 0 && r[n..].starts_with(']') {
                out.push_str("ft_malloc[PID]");
                rest = &r[n + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix("0x") {
            let n = r.bytes().take_while(u8::is_ascii_hexdigit).count();
            if n > 0 {
                out.push_str("ADDR");
                rest = &r[n..];
                continue;
            }
        }
        let ch = rest.chars().next().unwrap();
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// Replaces every `0x` followed by uppercase hex digits with `ADDR`.
pub fn mask_addresses(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0' && i + 1 < b.len() && b[i + 1] == b'x' {
            let n = b[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
                .count();
            if n > 0 {
                out.push_str("ADDR");
                i += 2 + n;
                continue;
            }
        }
        // Copy one whole UTF-8 char.
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Path of the library under test: `$FT_MALLOC_LIB` when set (to test another build). Else it
/// runs `cargo build --lib` for the test's profile once per process (a no-op when up to date; it
/// also covers `crate-type = ["cdylib"]` alone, where `cargo test` builds no .so, and a .so left
/// stale by an earlier build) and returns `target/<profile>/libft_malloc.so`, or
/// `target/<profile>/deps/libft_malloc.so` (where cargo leaves a cdylib built for tests alone),
/// the target directory being the test executable's.
pub fn lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(p) = std::env::var_os("FT_MALLOC_LIB") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "FT_MALLOC_LIB={} is not a file", p.display());
            return std::fs::canonicalize(&p).unwrap();
        }
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("test exe has a parent").to_path_buf(); // target/<profile>/deps
        let profile_dir = deps.parent().expect("deps has a parent").to_path_buf();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--lib", "-p", env!("CARGO_PKG_NAME")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("LD_PRELOAD");
        if let Some(target_dir) = profile_dir.parent() {
            cargo.arg("--target-dir").arg(target_dir);
        }
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let o = cargo.output().expect("running cargo build --lib");
        assert!(
            o.status.success(),
            "cargo build --lib failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        [
            profile_dir.join("libft_malloc.so"),
            deps.join("libft_malloc.so"),
        ]
        .into_iter()
        .find(|p| p.exists())
        .expect("libft_malloc.so not built")
    })
}

/// Directory of the C sources.
pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("c")
}

/// A scratch directory of the integration tests (created on first use).
pub fn tmp_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ft_malloc_tests");
    std::fs::create_dir_all(&d).expect("create tmp dir");
    d
}

/// Runs `cc -O0 -g -Wall -pthread ARGS -o OUT` without the library preloaded; panics with the
/// compiler's output when it fails (shared libraries and programs linked with them).
pub fn cc(args: &[&str], out: &Path) {
    let o = Command::new("cc")
        .args(["-O0", "-g", "-Wall", "-pthread"])
        .args(args)
        .arg("-o")
        .arg(out)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("running cc");
    assert!(
        o.status.success(),
        "cc {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh empty directory for one test, named `name` (removed first if left by an earlier run).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = tmp_dir().join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

/// Compiles `tests/c/<name>.c` (`cc`) or `tests/c/<name>.cc` (`c++`) with `-O0 -g -pthread -Wall`
/// into `CARGO_TARGET_TMPDIR`, once per process per name, and returns the executable's path.
/// Compilation runs without the library preloaded.
pub fn compile(name: &str) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut map = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    };
    cell.get_or_init(|| {
        // The pid in the name keeps concurrent test binaries from writing the same file.
        let out = tmp_dir().join(format!("{name}.{}", std::process::id()));
        build(name, &["-O0", "-g", "-pthread", "-Wall"], &out);
        out
    })
    .clone()
}

/// `tests/c/<name>.c` (`cc`) or `.cc` (`c++`), compiled with `flags` into `out`, without the
/// library preloaded; panics with the compiler's output when it fails.
fn build(name: &str, flags: &[&str], out: &Path) {
    let c = c_dir().join(format!("{name}.c"));
    let cc = c_dir().join(format!("{name}.cc"));
    let (src, compiler) = if c.exists() {
        (c, "cc")
    } else if cc.exists() {
        (cc, "c++")
    } else {
        panic!("no tests/c/{name}.c or .cc");
    };
    let o = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(&src)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(
        o.status.success(),
        "compiling {} failed:\n{}{}",
        src.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Compiles `tests/c/<name>.c` (`cc`) or `.cc` (`c++`) with `-O2 -fomit-frame-pointer -g
/// -pthread -Wall` and `flags`, into `<name><suffix>` (no cache: each call compiles), as
/// distribution code is built: no frame pointers to walk.
pub fn compile_optimised(name: &str, suffix: &str, flags: &[&str]) -> PathBuf {
    let out = tmp_dir().join(format!("{name}{suffix}.O2.{}", std::process::id()));
    let mut all = vec!["-O2", "-fomit-frame-pointer", "-g", "-pthread", "-Wall"];
    all.extend_from_slice(flags);
    build(name, &all, &out);
    out
}

/// Full path of `tool` found in `PATH`, if any.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `which(tool)`, printing `skipped: <tool> not installed` when it is missing. Use as
/// `let Some(bash) = require("bash") else { return };`.
pub fn require(tool: &str) -> Option<PathBuf> {
    let p = which(tool);
    if p.is_none() {
        println!("skipped: {tool} not installed");
    }
    p
}

/// A command to run, by default with the library preloaded and `MALLOC_DEBUG` removed.
pub struct Run {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
    preload: bool,
    timeout: Duration,
}

impl Run {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Run {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            cwd: None,
            preload: true,
            timeout: TIMEOUT,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, a: I) -> Self {
        self.args
            .extend(a.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Sets a variable (`MALLOC_DEBUG` included: the last setting wins).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }

    pub fn envs<'a>(mut self, kv: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Self {
        for (k, v) in kv {
            self = self.env(k, v);
        }
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.envs.push((k.as_ref().to_owned(), None));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn cwd(mut self, d: impl AsRef<Path>) -> Self {
        self.cwd = Some(d.as_ref().to_owned());
        self
    }

    /// Runs without the library (reference runs).
    pub fn no_preload(mut self) -> Self {
        self.preload = false;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Runs the command to completion, or kills its whole process group and panics on timeout.
    #[track_caller]
    pub fn go(self) -> Output {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_remove("MALLOC_DEBUG")
            .env_remove("LD_PRELOAD")
            // A panic backtrace of a Rust program under test must not symbolize inside malloc.
            .env_remove("RUST_BACKTRACE")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout kills grandchildren too.
            .process_group(0);
        if self.preload {
            cmd.env("LD_PRELOAD", lib());
        }
        for (k, v) in &self.envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let shown = format!("{:?} {:?}", self.program, self.args);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));
        let pgid = child.id() as i32;
        let writer = self.stdin.map(|data| {
            let mut w = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = w.write_all(&data);
            })
        });
        let reader = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                v
            })
        };
        let out_t = reader(Box::new(child.stdout.take().unwrap()));
        let err_t = reader(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().expect("try_wait") {
                Some(st) => break Some(st),
                None if Instant::now() >= deadline => break None,
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        // Leftover descendants would keep the pipes open: end the group (ESRCH if none is left).
        // SAFETY: kill(2) with a negative pid only sends a signal to our own child's group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let Some(status) = status else {
            let _ = child.wait();
            let out = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
            let err = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
            panic!(
                "timeout after {:?}: {shown}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.timeout,
                tail(&out, 4000),
                tail(&err, 4000)
            );
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        Output {
            status: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        }
    }
}

/// Compiles `tests/c/<prog>.c` and runs it with the library preloaded, the given arguments and
/// environment (`MALLOC_DEBUG` is removed unless listed in `envs`).
#[track_caller]
pub fn run(prog: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Run::new(compile(prog)).args(args).envs(envs).go()
}
