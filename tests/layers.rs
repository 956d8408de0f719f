//! The layering rule: no dependency cycle between the library's modules, checked by
//! `scripts/check-layers` (which has its own test on fixtures with known cycles).

use std::path::Path;
use std::process::Command;

fn check(dir: &Path) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/check-layers"))
        .arg(dir)
        .output()
        .expect("python3 runs scripts/check-layers");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layers")
        .join(name)
}

#[test]
fn checker_finds_cycles_through_inline_paths_macros_and_super() {
    let (code, out) = check(&fixture("cyclic"));
    assert_eq!(code, 1, "{out}");
    // a -> b::inner is an inline path and b::inner -> a a macro body: a checker that reads only
    // use lines would see b::inner <-> b::other alone.
    assert!(
        out.contains("cycle between files: a b::inner b::other "),
        "{out}"
    );
    assert!(
        out.contains("cycle between top-level modules: a b "),
        "{out}"
    );
}

#[test]
fn checker_passes_an_acyclic_tree_and_ignores_prose_and_strings() {
    let (code, out) = check(&fixture("acyclic"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no cycle: 5 modules, 3 top-level"), "{out}");
}
