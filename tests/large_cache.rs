//! The LARGE mapping cache with debugging off (`MALLOC_DEBUG` unset): freed pages kept
//! resident for reuse, given back by malloc_trim and when RLIMIT_AS leaves no room for a new
//! mapping, and blocks built on cached pages that hold what is written to them. One test per
//! C program of `tests/c/`.

mod common;

use common::run;

#[test]
fn malloc_trim_empties_the_cache() {
    run("large_cache_trim", &[], &[]).assert_ok_clean();
}

#[test]
fn rlimit_as_with_a_resident_cache() {
    run("large_cache_rlimit", &[], &[]).assert_ok_clean();
}

#[test]
fn realloc_on_cached_pages_keeps_the_content() {
    for mode in ["", "1", "full"] {
        let out = run("large_cache_realloc", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok_clean();
    }
}

#[test]
fn a_forgotten_peak_is_purged() {
    run("large_cache_purge", &[], &[]).assert_ok_clean();
}
