//! How the library is linked when it is built the way the README builds it: with the whole
//! workspace, where the reader's dependencies turn on the `libc` crate's `std` feature. That
//! feature makes the crate link nothing itself, so the library must name libc.so.6 on its own:
//! without the entry its references carry no symbol versions, and on x86-64 ld.so binds `memcpy`
//! to glibc's compatibility copy (GLIBC_2.2.5, a plain SSE2 loop) instead of the CPU's best one.

use std::path::PathBuf;
use std::process::Command;

/// `readelf` with `args` on `lib`; its output.
fn readelf(args: &[&str], lib: &PathBuf) -> String {
    let o = Command::new("readelf")
        .args(args)
        .arg(lib)
        .output()
        .expect("running readelf");
    assert!(o.status.success(), "readelf {args:?} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_workspace_build_names_libc_and_versions_its_symbols() {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/linkage (a target directory of its own, so the
    // library the other tests load is never rewritten under them).
    let target = exe
        .ancestors()
        .nth(3)
        .expect("a target directory")
        .join("linkage");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--workspace", "--lib", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LD_PRELOAD");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        cargo.arg("--release");
        "release"
    };
    let o = cargo.output().expect("running cargo build");
    assert!(
        o.status.success(),
        "cargo build --workspace --lib failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lib = target.join(profile).join("libft_malloc.so");
    let dynamic = readelf(&["-d", "-W"], &lib);
    assert!(
        dynamic.contains("Shared library: [libc.so.6]"),
        "no NEEDED libc.so.6 in the workspace build:\n{dynamic}"
    );
    let relocs = readelf(&["-r", "-W"], &lib);
    assert!(
        relocs.contains("memcpy@GLIBC_"),
        "memcpy carries no symbol version:\n{relocs}"
    );
}
