#![allow(dead_code)]
//! Helpers for the reader's integration tests: run the binary, write logs, compile C.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_ft-malloc-report");

/// A fresh directory under the target's tmp dir; its name has a space in it on purpose.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report tests/{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    let o: Output = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Run {
        status: o.status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "ft-malloc-report panicked: {:?}\n{}",
        args,
        r.stderr
    );
    r
}

/// Run and expect success.
pub fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert!(
        r.status.success(),
        "{args:?} failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    r
}

/// `cc -g -O0 SRC -o OUT` (plus extra flags).
pub fn cc(src: &Path, out: &Path, extra: &[&str]) {
    let st = Command::new("cc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg(src)
        .arg("-o")
        .arg(out)
        .status()
        .expect("cc");
    assert!(st.success(), "cc {} failed", src.display());
}

/// The C sources shipped with the tests.
pub fn c_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// Line number (1-based) of the first line of `file` containing `marker`.
pub fn line_of(file: &Path, marker: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in {}", file.display()))
        + 1
}

/// The address of a symbol in an ELF file, from `nm`.
pub fn nm(file: &Path, sym: &str) -> u64 {
    let o = Command::new("nm").arg(file).output().expect("nm");
    let s = String::from_utf8_lossy(&o.stdout);
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 && f[2] == sym {
            return u64::from_str_radix(f[0], 16).unwrap();
        }
    }
    panic!("{sym} not found by nm in {}", file.display());
}

pub const HEADER: &str = "# ft_malloc log v1\n# program /tmp/a.out\n# pid 31337\n# ppid 1\n# page_size 4096\n# start_ns 5123456789\n";

/// The real libft_malloc.so: `$FT_MALLOC_LIB` when set, else `target/release/libft_malloc.so`
/// of the target directory these tests were built in (`$CARGO_TARGET_DIR` or the workspace's
/// `target/`), after `cargo build --release -p ft_malloc` (once per test process: a no-op when
/// it is up to date, and it builds the library when it is missing or stale; `cargo test`
/// alone does not build a cdylib).
pub fn real_lib() -> &'static Path {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(p) = std::env::var_os("FT_MALLOC_LIB") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "FT_MALLOC_LIB={} is not a file", p.display());
            return std::fs::canonicalize(&p).unwrap();
        }
        // target/<profile>/deps/<test exe>
        let exe = std::env::current_exe().unwrap();
        let target = exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let o = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "ft_malloc",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(&root)
            .env_remove("LD_PRELOAD")
            .env_remove("MALLOC_DEBUG")
            .output()
            .expect("cargo build --release -p ft_malloc");
        assert!(
            o.status.success(),
            "cargo build --release -p ft_malloc failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lib = target.join("release/libft_malloc.so");
        assert!(lib.is_file(), "{} not built", lib.display());
        lib
    })
}

/// Runs `exe args` with the real library preloaded and `MALLOC_DEBUG=debug`.
pub fn run_preloaded(exe: &Path, args: &[&str], debug: &str) -> Run {
    let o = Command::new(exe)
        .args(args)
        .env("LD_PRELOAD", real_lib())
        .env("MALLOC_DEBUG", debug)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        status: o.status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
