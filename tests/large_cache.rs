//! The LARGE mapping cache with debugging off (`MALLOC_DEBUG` unset) or tracing alone: freed
//! pages kept resident for reuse, given back by malloc_trim and when RLIMIT_AS leaves no room
//! for a new mapping, and blocks built on cached pages that hold what is written to them; in
//! every mode, ranges of blocks aligned beyond a page reused by the cache; and, with debugging
//! on too, blocks grown by realloc on cached pages. One test per C program of `tests/c/`.

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
fn growth_by_realloc_faults_in_few_new_pages() {
    for mode in ["", "1"] {
        let out = run("large_cache_debug_growth", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok_clean();
        assert!(
            out.stdout.contains("faults per round"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn a_forgotten_peak_is_purged() {
    run("large_cache_purge", &[], &[]).assert_ok_clean();
}

#[test]
fn a_mass_free_keeps_its_pages_cached_until_malloc_trim() {
    run("large_cache_mass_free", &[], &[]).assert_ok_clean();
}

/// The same with 3400 ranges of 40 KiB apart at once (the odd blocks of 6800), then 266 MiB
/// freed in all: kept up to the recent peak, with debugging off and with `leaks`.
#[test]
fn a_big_mass_free_keeps_its_pages_cached_until_malloc_trim() {
    for env in [&[][..], &[("MALLOC_DEBUG", "leaks")][..]] {
        run("large_cache_mass_free", &["6800", "40"], env).assert_ok_clean();
    }
}

#[test]
fn tracing_alone_keeps_freed_large_pages_resident() {
    let dir = common::fresh_dir("large_cache_tracing_log");
    let log = format!("log={}", dir.join("l.log").display());
    for mode in ["", "leaks", "stats", log.as_str()] {
        let out = run("large_cache_tracing", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok();
        assert!(
            out.stderr.lines().all(|l| l.contains("stats:")),
            "{}",
            out.describe()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn aligned_blocks_of_every_alignment_churn_in_every_mode() {
    for mode in ["", "check", "1", "full", "guard=below", "1,nomarkers"] {
        let out = run("large_aligned_churn", &[], &[("MALLOC_DEBUG", mode)]);
        assert_eq!(out.signal, None, "{mode}: {}", out.describe());
        out.assert_ok();
        assert!(!out.stderr.contains("ERROR"), "{mode}: {}", out.describe());
    }
}
