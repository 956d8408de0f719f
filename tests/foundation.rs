//! The foundation: every entry point of the malloc family with debugging off (`MALLOC_DEBUG`
//! unset), the show_alloc_mem() format, the classic grading programs and their page counts,
//! threads, fork and RLIMIT_AS. One test per C program of `tests/c/`.

mod common;

use common::{dump, mask_addresses, run};

#[test]
fn malloc_zero_unique() {
    run("malloc_zero_unique", &[], &[]).assert_ok_clean();
}

#[test]
fn realloc_edges() {
    run("realloc_edges", &[], &[]).assert_ok_clean();
}

/// What malloc_usable_size reports is the program's, and realloc keeps it: in every mode (with
/// canaries the usable size is the requested one).
#[test]
fn realloc_keeps_the_usable_size() {
    let dir = common::fresh_dir("realloc_usable_log");
    let log = format!("log={}", dir.join("l.log").display());
    for mode in ["", "1", "full", "fill", "check", log.as_str()] {
        let out = run("realloc_keeps_usable", &[], &[("MALLOC_DEBUG", mode)]);
        assert_eq!(out.signal, None, "{mode}: {}", out.describe());
        out.assert_ok();
        assert!(!out.stderr.contains("ERROR"), "{mode}: {}", out.describe());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A successful call leaves errno as the program set it, in every mode.
#[test]
fn successful_calls_keep_errno() {
    let dir = common::fresh_dir("errno_kept_log");
    let log = format!("log={}", dir.join("l.log").display());
    for mode in ["", "1", "full", "sample=3", log.as_str()] {
        let out = run("errno_kept", &[], &[("MALLOC_DEBUG", mode)]);
        out.assert_ok();
        assert!(!out.stderr.contains("ERROR"), "{mode}: {}", out.describe());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn calloc_zeroing() {
    run("calloc_zeroing", &[], &[]).assert_ok_clean();
}

#[test]
fn memalign_family() {
    run("memalign_family", &[], &[]).assert_ok_clean();
}

#[test]
fn usable_size() {
    run("usable_size", &[], &[]).assert_ok_clean();
}

/// Also checks that nothing is reported on stderr for a failed request with debugging off.
#[test]
fn huge_requests() {
    run("huge_requests", &[], &[]).assert_ok_clean();
}

/// Splits the dump into its sections (a zone line and its block lines), masked.
fn masked_sections(dump_text: &str) -> (Vec<String>, String) {
    let masked = mask_addresses(dump_text);
    let mut sections: Vec<String> = Vec::new();
    let mut total = String::new();
    for line in masked.lines() {
        if line.starts_with("Total : ") {
            total = line.to_string();
        } else if line.ends_with(" : ADDR") {
            sections.push(format!("{line}\n"));
        } else if let Some(s) = sections.last_mut() {
            s.push_str(line);
            s.push('\n');
        } else {
            sections.push(format!("{line}\n"));
        }
    }
    (sections, total)
}

/// Checks that the blocks of the dump are exactly the program's live blocks (address and size).
fn assert_blocks_are(d: &dump::Dump, ptrs: &[(u64, u64)], text: &str) {
    let mut shown: Vec<(u64, u64)> = d.blocks().map(|(_, b)| (b.start, b.size)).collect();
    let mut want = ptrs.to_vec();
    shown.sort();
    want.sort();
    assert_eq!(
        shown, want,
        "blocks listed (address, size) differ from the live blocks:\n{text}"
    );
}

/// A known sequence of live blocks: the masked output is exact, sections being compared as a
/// set because their order follows addresses, which the allocator chooses.
#[test]
fn show_alloc_mem_output() {
    let out = run("show_alloc_mem_output", &[], &[]);
    out.assert_ok_clean();
    let (text, ptrs) = dump::split_program_output(&out.stdout);
    let d = dump::parse(&text).unwrap_or_else(|e| panic!("bad show_alloc_mem output: {e}\n{text}"));
    assert_blocks_are(&d, &ptrs, &text);
    let (mut sections, total) = masked_sections(&text);
    sections.sort();
    let mut want = vec![
        "TINY : ADDR\nADDR - ADDR : 42 bytes\nADDR - ADDR : 42 bytes\nADDR - ADDR : 42 bytes\n"
            .to_string(),
        "SMALL : ADDR\nADDR - ADDR : 3725 bytes\nADDR - ADDR : 3725 bytes\n".to_string(),
        "LARGE : ADDR\nADDR - ADDR : 48847 bytes\n".to_string(),
        "LARGE : ADDR\nADDR - ADDR : 48847 bytes\n".to_string(),
    ];
    want.sort();
    assert_eq!(sections, want, "masked sections differ; output:\n{text}");
    assert_eq!(total, "Total : 105270 bytes");
    assert!(
        text.ends_with("Total : 105270 bytes\n"),
        "output must end with the Total line:\n{text}"
    );
}

/// The code a program runs with debugging off sits together (the `ft_hot` section, placed by
/// `src/hot.ld`): the kernel maps code a folio or a 64 KiB window at a time around each page
/// that faults, and scattered, the paths of two threads' malloc, free and realloc made the
/// whole of it resident. Together they take about a quarter of the pages (at most half here: a
/// kernel without large folios maps 64 KiB windows, and a path outside them costs one).
#[test]
fn plain_programs_keep_most_of_the_code_unmapped() {
    let out = run("code_resident", &[], &[]);
    out.assert_ok_clean();
    let line = out.stdout.lines().next().unwrap_or("");
    let n: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(
        n.len() == 2 && n[0] * 2 <= n[1],
        "more than half of the code resident: {}",
        out.describe()
    );
}

#[test]
fn grade_malloc_1024_times() {
    run("grade_malloc_1024_times", &[], &[]).assert_ok_clean();
}

#[test]
fn grade_malloc_free_1024_times() {
    run("grade_malloc_free_1024_times", &[], &[]).assert_ok_clean();
}

/// The grading scenario's page counts, taken by the program around its loop: 1024 blocks of
/// 1 KiB written cost at most 260 page faults (256 of them data), and at most 3 when each is
/// freed at once (4 KiB pages; with others the counts mean nothing).
#[test]
fn grade_page_counts() {
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } != 4096 {
        println!("skipped: pages are not 4 KiB");
        return;
    }
    for (arg, most) in [("", 260), ("free", 3)] {
        let out = run("grade_pages", &[arg], &[]);
        out.assert_success();
        let pages: i64 = out
            .stdout
            .strip_prefix("pages ")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count: {}", out.describe()));
        assert!(
            pages <= most,
            "{arg}: {pages} pages > {most}: {}",
            out.describe()
        );
    }
}

#[test]
fn grade_realloc_16m_to_128m() {
    let out = run("grade_realloc_16m_to_128m", &[], &[]);
    out.assert_ok_clean();
    assert_eq!(out.stdout, "Bonjour\nOK\n");
}

#[test]
fn grade_free_interior_pointer() {
    let out = run("grade_free_interior_pointer", &[], &[]);
    out.assert_success();
    assert_eq!(out.stdout, "Bonjour\nOK\n", "{}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "expected one warning for free(p+5), one for realloc(p+5):\n{}",
        out.describe()
    );
    assert!(
        lines.iter().all(|l| common::is_warning_line(l)),
        "{}",
        out.describe()
    );
}

/// One block of each class and the class boundaries: each listed under the right class.
#[test]
fn grade_one_block_each_class() {
    let out = run("grade_one_block_each_class", &[], &[]);
    out.assert_ok_clean();
    let (text, ptrs) = dump::split_program_output(&out.stdout);
    let d = dump::parse(&text).unwrap_or_else(|e| panic!("bad show_alloc_mem output: {e}\n{text}"));
    assert_blocks_are(&d, &ptrs, &text);
    for (kind, b) in d.blocks() {
        assert_eq!(
            kind,
            dump::class_of(b.size),
            "{} bytes listed under {kind}:\n{text}",
            b.size
        );
    }
    let sum: u64 = ptrs.iter().map(|p| p.1).sum();
    assert_eq!(d.total, sum);
}

/// free and realloc of stack, global, interior, misaligned, freed, foreign and wild pointers:
/// ignored with exactly one warning line, the program goes on.
#[test]
fn bad_pointer_ignored() {
    let kinds = [
        "stack",
        "global",
        "interior",
        "interior_aligned",
        "interior_large",
        "misaligned",
        "double_free_tiny",
        "double_free_small",
        "double_free_large",
        "mmap",
        "wild",
    ];
    let mut failures = Vec::new();
    for kind in kinds {
        for op in ["free", "realloc"] {
            let out = run("bad_pointer_ignored", &[kind, op], &[]);
            let lines: Vec<&str> = out.stderr.lines().collect();
            let good = out.success()
                && out.stdout == "OK\n"
                && lines.len() == 1
                && common::is_warning_line(lines[0]);
            if !good {
                failures.push(format!("{op}({kind}): {}", out.describe()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn threads_cross_free() {
    run("threads_cross_free", &[], &[]).assert_ok_clean();
}

#[test]
fn fork_from_thread() {
    run("fork_from_thread", &[], &[]).assert_ok_clean();
}

#[test]
fn rlimit_as() {
    run("rlimit_as", &[], &[]).assert_ok_clean();
}

/// free_sized and free_aligned_sized free like free, in every mode: no report, no leak.
#[test]
fn c23_sized_frees() {
    for env in [
        &[][..],
        &[("MALLOC_DEBUG", "1")][..],
        &[("MALLOC_DEBUG", "full")][..],
    ] {
        let out = run("free_sized", &[], env);
        out.assert_ok_clean();
        assert_eq!(out.stdout, "OK\n", "{env:?}: {}", out.describe());
    }
}

/// malloc_stats writes to stderr, so only our warnings are ruled out there.
#[test]
fn glibc_extras() {
    let out = run("glibc_extras", &[], &[]);
    out.assert_success();
    assert_eq!(out.stdout.lines().last(), Some("OK"), "{}", out.describe());
    assert!(out.warning_lines().is_empty(), "{}", out.describe());
}
