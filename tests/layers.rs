//! The layering rule: no dependency cycle between the library's modules, checked by
//! `scripts/check-layers` (which has its own test on fixtures with known cycles), and every
//! source file short, with a header naming what it owns.

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

#[test]
fn the_library_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (code, out) = check(&src);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no cycle"), "{out}");
}

/// Every source file of the library owns one concept, named in its `//!` header, in at most
/// 600 lines.
#[test]
fn every_library_file_is_short_and_says_what_it_owns() {
    fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, found);
            } else if p.extension().is_some_and(|x| x == "rs") {
                found.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 50, "{files:?}");
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines = text.lines().count();
        if lines > 600 {
            bad.push(format!("{}: {lines} lines", f.display()));
        }
        if !text.starts_with("//!") {
            bad.push(format!("{}: no //! header", f.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
