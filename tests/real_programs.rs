//! Real programs under the library with debugging off: their output is checked, and the library
//! must print nothing. Missing tools are skipped. The checks live in `common::real` so other test
//! files can rerun them with `MALLOC_DEBUG` values (`common::real::run_real_suite(Some(..))`).

mod common;

use common::real::{self, Check, assert_no_library_output};

fn check(name: &str, f: Check) {
    if let Some(out) = f(&[]) {
        assert_no_library_output(name, &out);
    }
}

#[test]
fn bash_string_loop() {
    check("bash", real::bash_string_loop);
}

#[test]
fn python_dicts_lists() {
    check("python3", real::python_dicts_lists);
}

#[test]
fn python_threads() {
    check("python3 threads", real::python_threads);
}

#[test]
fn perl_hash_200k() {
    check("perl", real::perl_hash_200k);
}

#[test]
fn git_init_commit_log() {
    check("git", real::git_init_commit_log);
}

#[test]
fn gcc_compile_and_run() {
    check("gcc", real::gcc_compile_and_run);
}

#[test]
fn clang_cxx_compile_and_run() {
    check("clang++", real::clang_cxx_compile_and_run);
}

#[test]
fn rustc_compile_and_run() {
    check("rustc", real::rustc_compile_and_run);
}

#[test]
fn systemd_analyze_table() {
    check("systemd-analyze", real::systemd_analyze_table);
}

#[test]
fn sort_100k_lines() {
    check("sort", real::sort_100k_lines);
}

#[test]
fn sqlite3_10k_rows() {
    check("sqlite3", real::sqlite3_10k_rows);
}
