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
    let o: Output = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
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
    assert!(r.status.success(), "{args:?} failed: {}\n{}", r.stdout, r.stderr);
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c").join(name)
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
