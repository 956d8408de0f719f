//! Guard pages: `MALLOC_DEBUG=guard` (`guard=exact`, `guard=below`, `sample=N`, and
//! `full`, which includes `guard`). Each memory bug of `tests/c/guard_fault.c` must fault at the
//! faulting instruction with our report (its first line checked exactly, addresses masked, and
//! the report's addresses checked against the block the program printed), the process dying of
//! the real SIGSEGV; correct programs (aligned allocations, realloc, calloc, threads, a million
//! live blocks, sampling, real programs) must run as usual.

mod common;

use common::{Output, hex_numbers, mask_report as mask, real, run};

const SIGSEGV: i32 = 11;
const SIGABRT: i32 = 6;

/// The address of the last `block 0x... N` line the program printed on stdout.
fn program_block(out: &Output) -> u64 {
    let line = out
        .stdout
        .lines()
        .rfind(|l| l.starts_with("block 0x") || l.starts_with("try "))
        .unwrap_or_else(|| panic!("the program printed no block line: {}", out.describe()));
    hex_numbers(line)[0]
}

/// Asserts the process died of SIGSEGV with a report whose first line is `want` once masked,
/// whose fault address is `offset` bytes from the block the program printed, whose block
/// address is that block, and which ends with the "dies of this fault" line.
#[track_caller]
fn assert_fault(out: &Output, want: &str, offset: i64) {
    assert_eq!(
        out.signal,
        Some(SIGSEGV),
        "expected death by SIGSEGV: {}",
        out.describe()
    );
    assert!(!out.stdout.contains("NOT CAUGHT"), "{}", out.describe());
    let first = out.stderr.lines().next().unwrap_or("");
    assert_eq!(mask(first), want, "first report line: {}", out.describe());
    let block = program_block(out);
    let nums = hex_numbers(first);
    assert_eq!(nums.len(), 2, "{first}");
    assert_eq!(
        nums[0] as i64 - block as i64,
        offset,
        "fault address vs block {block:#x}: {first}"
    );
    assert_eq!(
        nums[1], block,
        "the report names another block than the program's: {first}"
    );
    let last = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with("ft_malloc["))
        .unwrap_or("");
    assert_eq!(
        mask(last),
        "ft_malloc[PID]:   the process now dies of this fault",
        "{}",
        out.describe()
    );
}

fn fault(mode: &str, debug: &str) -> Output {
    run("guard_fault", &[mode], &[("MALLOC_DEBUG", debug)])
}

const OVER16: &str = "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 16-byte block at ADDR (guard page)";

#[test]
fn overflow_read_past_16_byte_block() {
    assert_fault(&fault("over16", "guard"), OVER16, 16);
}

#[test]
fn overflow_read_past_16_byte_block_full() {
    assert_fault(&fault("over16", "full"), OVER16, 16);
}

/// 13 bytes with guard=exact: alignment 1, the block ends at the guard page.
#[test]
fn overflow_read_past_13_byte_block_exact() {
    assert_fault(
        &fault("over13", "guard=exact"),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 13-byte block at ADDR (guard page)",
        13,
    );
}

#[test]
fn underflow_write_before_block_below() {
    assert_fault(
        &fault("under16", "guard=below"),
        "ft_malloc[PID]: ERROR: heap underflow (write) at ADDR: 1 bytes before the 16-byte block at ADDR (guard page)",
        -1,
    );
}

/// 1008 is a multiple of 16: the block ends exactly at the guard page, so an 8-byte read just
/// past it faults on its first byte.
#[test]
fn overflow_read_8_bytes_past_1008_byte_block() {
    assert_fault(
        &fault("over1008_word", "guard"),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 1008-byte block at ADDR (guard page)",
        1008,
    );
}

#[test]
fn overflow_read_7_bytes_past_1008_byte_block() {
    assert_fault(
        &fault("over1008_7", "guard"),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 7 bytes after the 1008-byte block at ADDR (guard page)",
        1015,
    );
}

/// A write into the 3-byte alignment gap of a 13-byte block (default alignment 8) does not
/// fault: the canary there reports it at free, and the process aborts.
#[test]
fn write_into_alignment_gap_caught_at_free() {
    let out = fault("gap13", "guard");
    assert_eq!(
        out.signal,
        Some(SIGABRT),
        "expected death by SIGABRT: {}",
        out.describe()
    );
    assert!(out.stdout.contains("gap written\n"), "{}", out.describe());
    let first = out.stderr.lines().next().unwrap_or("");
    assert_eq!(
        mask(first),
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (GUARDED, 13 bytes) written past its end at offset 13 \
         (1 byte past the end), found in free()",
        "{}",
        out.describe()
    );
    assert_eq!(hex_numbers(first), vec![program_block(&out)], "{first}");
}

fn uaf_line(access: &str) -> String {
    format!(
        "ft_malloc[PID]: ERROR: use after free ({access}) at ADDR: 3 bytes into the freed 16-byte block at ADDR \
         (guard page)"
    )
}

#[test]
fn use_after_free_read() {
    assert_fault(&fault("uaf_read", "guard"), &uaf_line("read"), 3);
}

#[test]
fn use_after_free_write() {
    assert_fault(&fault("uaf_write", "guard"), &uaf_line("write"), 3);
}

/// After 10,000 other allocations (half of them freed into the address-space quarantine too),
/// the freed block is still PROT_NONE and the report names it, with its size.
#[test]
fn use_after_free_read_after_10000_allocations() {
    let out = fault("uaf_read_late", "guard");
    assert!(out.stdout.contains("others done\n"), "{}", out.describe());
    assert_fault(&out, &uaf_line("read"), 3);
}

#[test]
fn use_after_free_write_after_10000_allocations() {
    let out = fault("uaf_write_late", "guard");
    assert!(out.stdout.contains("others done\n"), "{}", out.describe());
    assert_fault(&out, &uaf_line("write"), 3);
}

#[test]
fn use_after_free_after_10000_allocations_full() {
    for (mode, access) in [("uaf_read_late", "read"), ("uaf_write_late", "write")] {
        let out = fault(mode, "full");
        assert!(out.stdout.contains("others done\n"), "{}", out.describe());
        assert_fault(&out, &uaf_line(access), 3);
    }
}

/// Runs `mode` with `1` and with `1,nomarkers` (the region behind LARGE blocks made of guard
/// markers where the kernel has them, then PROT_NONE); `check` looks at each run, and its
/// write 4 KiB past the end of its `size`-byte block must fault in that region.
fn assert_region_overflow(mode: &str, size: i64, check: impl Fn(&Output)) {
    for debug in ["1", "1,nomarkers"] {
        let out = fault(mode, debug);
        check(&out);
        let want = format!(
            "ft_malloc[PID]: ERROR: heap overflow (write) at ADDR: 4096 bytes after the \
             {size}-byte block at ADDR (LARGE block guard region)"
        );
        assert_fault(&out, &want, size + 4096);
    }
}

/// MALLOC_DEBUG=1: a LARGE block (20000 bytes) has a 64 KiB inaccessible region after it; a
/// write 4 KiB past its end lands there.
#[test]
fn large_block_overflow_4k_guard_region() {
    assert_region_overflow("large_over", 20000, |_| {});
}

/// The same past a block grown by realloc (its pages moved by mremap, content kept, the region
/// behind it re-created at its new end).
#[test]
fn large_block_overflow_4k_after_realloc_growth() {
    assert_region_overflow("large_over_grown", 300000, |out| {
        assert!(out.stdout.contains("(grown)"), "{}", out.describe());
    });
}

/// The same after the LARGE cache was churned by 400 blocks of many sizes: a block carved from a
/// cached range still has its region behind it.
#[test]
fn large_block_overflow_4k_guard_region_reused() {
    assert_region_overflow("large_over_reused", 20000, |_| {});
}

/// The same overflow in guard mode (debugging on, so LARGE blocks have their 64 KiB region):
/// it must fault too, whichever PROT_NONE area it hits, never write into another mapping.
#[test]
fn large_block_overflow_4k_guard_mode() {
    for debug in ["guard", "full"] {
        let out = fault("large_over", debug);
        assert_eq!(
            out.signal,
            Some(SIGSEGV),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
        let first = mask(out.stderr.lines().next().unwrap_or(""));
        assert!(
            first.starts_with(
                "ft_malloc[PID]: ERROR: heap overflow (write) at ADDR: 4096 bytes after the 20000-byte block at ADDR ("
            ),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
    }
}

/// posix_memalign 8..65536, aligned_alloc, memalign, valloc keep their alignment, and their
/// whole content is usable, in each guard placement.
#[test]
fn aligned_allocations_keep_alignment() {
    assert_clean_in(
        "guard_aligned",
        &["guard", "guard=below", "full", "sample=2"],
    );
}

/// guard=exact gives plain malloc alignment 1, but an explicit alignment (16 and below
/// included) is still a promise.
#[test]
fn aligned_allocations_keep_alignment_exact() {
    run("guard_aligned", &[], &[("MALLOC_DEBUG", "guard=exact")]).assert_ok_clean();
}

/// Plain operator new and new[] keep the 16-byte alignment C++ code relies on in every guard
/// placement but `exact` (LLVM's allocators, clang among them, read past blocks that had less).
#[test]
fn operator_new_keeps_16_byte_alignment() {
    assert_clean_in(
        "guard_new_align",
        &["guard", "guard=below", "full", "sample=1"],
    );
}

/// A page-aligned 4096-byte block ends at its guard page.
#[test]
fn aligned_block_overflow() {
    assert_fault(
        &run("guard_aligned", &["overflow"], &[("MALLOC_DEBUG", "guard")]),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 4096-byte block at ADDR (guard page)",
        4096,
    );
}

/// The program's own SIGSEGV handler (installed after ours) gets its own faults, twice, and
/// sigaction reports it as installed; debugging off, on without guards, and in guard mode.
#[test]
fn own_sigsegv_handler_called_for_own_faults() {
    for how in ["sigaction", "signal"] {
        for debug in [None, Some("1"), Some("guard"), Some("full")] {
            let envs: Vec<(&str, &str)> = debug.map(|d| ("MALLOC_DEBUG", d)).into_iter().collect();
            let out = run("guard_own_handler", &[how], &envs);
            assert!(
                out.success()
                    && out.stdout == "own fault 1 handled\nown fault 2 handled\nOK\n"
                    && out.stderr.is_empty(),
                "{how}, MALLOC_DEBUG={debug:?}: {}",
                out.describe()
            );
        }
    }
}

/// ... and an overflow of a guarded block after that is still ours: reported, SIGSEGV (the
/// program's handler is not called: it would exit 4).
#[test]
fn own_sigsegv_handler_then_guarded_overflow() {
    for how in ["sigaction", "signal"] {
        let out = run(
            "guard_own_handler",
            &[how, "overflow"],
            &[("MALLOC_DEBUG", "guard")],
        );
        assert!(
            out.stdout
                .starts_with("own fault 1 handled\nown fault 2 handled\n"),
            "{how}: {}",
            out.describe()
        );
        assert_fault(&out, OVER16, 16);
    }
}

/// The budget warning line.
/// The warning of a spent mapping budget (vm.max_map_count) or memory budget (guarded pages).
fn is_budget_warning(line: &str) -> bool {
    let m = mask(line);
    m.starts_with("ft_malloc[PID]: WARNING: guard: mapping budget spent ")
        || m.starts_with("ft_malloc[PID]: WARNING: guard: memory budget spent ")
}

fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A million live small blocks. With guard markers (Linux 6.13) pool slots cost no kernel
/// mapping, and the memory budget (at most 1 GiB of guarded pages) stops guarding, said once.
/// Without markers two mappings each would exceed vm.max_map_count, so the mapping budget
/// warning comes once and the rest are not guarded. Either way the program completes.
#[test]
fn million_live_allocations_complete() {
    for debug in ["guard", "full"] {
        let out = run("guard_million", &[], &[("MALLOC_DEBUG", debug)]);
        assert!(
            out.success() && out.stdout.ends_with("OK\n"),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
        let lines: Vec<&str> = out.stderr.lines().collect();
        if out.stdout.starts_with("slots: markers\n") {
            // 4 GiB of guarded pages: past the memory budget (at most 1 GiB), which stops
            // guarding once said; the first quarter million blocks are guarded, not one more.
            assert!(
                lines.len() == 1
                    && mask(lines[0]).starts_with(
                        "ft_malloc[PID]: WARNING: guard: memory budget spent by live blocks ("
                    ),
                "MALLOC_DEBUG={debug}: {}",
                out.describe()
            );
            let guarded: u32 = out
                .stdout
                .lines()
                .find_map(|l| {
                    l.strip_prefix("guarded ")?
                        .strip_suffix(" of 1000")?
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no guarded line: {}", out.describe()));
            assert!(
                (1..=300).contains(&guarded),
                "the first sampled blocks (up to the budget) are guarded: {}",
                out.describe()
            );
            continue;
        }
        assert!(
            lines.iter().all(|l| is_budget_warning(l)),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
        assert!(
            lines.len() <= 1,
            "more than one budget warning: {}",
            out.describe()
        );
        if max_map_count().is_some_and(|m| m < 2_000_000) {
            assert_eq!(
                lines.len(),
                1,
                "the budget must be spent (and said once): {}",
                out.describe()
            );
        }
    }
}

/// Churn with frees: live guarded blocks and freed ones held PROT_NONE both use mappings; once
/// the budget is spent, allocations go on (unguarded) and never fail.
fn churn(debug: &str) {
    let out = run("guard_churn", &[], &[("MALLOC_DEBUG", debug)]);
    assert!(
        out.success() && out.stdout == "OK\n",
        "MALLOC_DEBUG={debug}: {}",
        out.describe()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() <= 1 && lines.iter().all(|l| is_budget_warning(l)),
        "MALLOC_DEBUG={debug}: {}",
        out.describe()
    );
}

#[test]
fn churn_with_frees_completes() {
    churn("guard");
}

#[test]
fn churn_with_frees_completes_full() {
    churn("full");
}

#[test]
fn churn_with_frees_completes_below() {
    churn("guard=below");
}

/// Runs `prog` under every guard mode: it must print OK and nothing else.
fn assert_clean_in_guard_modes(prog: &str) {
    assert_clean_in(
        prog,
        &["guard", "guard=below", "guard=exact", "full", "sample=3"],
    );
}

/// Runs `prog` with each `MALLOC_DEBUG` value of `modes`: it must print OK and nothing else.
fn assert_clean_in(prog: &str, modes: &[&str]) {
    for &debug in modes {
        let out = run(prog, &[], &[("MALLOC_DEBUG", debug)]);
        assert!(
            out.success() && out.stdout == "OK\n" && out.stderr.is_empty(),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
    }
}

#[test]
fn realloc_keeps_content() {
    assert_clean_in_guard_modes("guard_realloc");
}

/// The block realloc returns is guarded too.
#[test]
fn realloc_result_is_guarded() {
    assert_fault(
        &run("guard_realloc", &["overflow"], &[("MALLOC_DEBUG", "guard")]),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 32-byte block at ADDR (guard page)",
        32,
    );
}

#[test]
fn calloc_zeroes() {
    assert_clean_in_guard_modes("guard_calloc");
}

#[test]
fn threads_allocate_and_free() {
    for debug in ["guard", "full", "sample=10"] {
        let out = run("guard_threads", &[], &[("MALLOC_DEBUG", debug)]);
        assert!(
            out.success() && out.stdout == "OK\n",
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
        assert!(
            out.stderr.lines().all(is_budget_warning),
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
    }
}

/// sample=100: 100,000 allocations of mixed sizes run as usual.
#[test]
fn sample_100_runs() {
    run("guard_sample", &["run"], &[("MALLOC_DEBUG", "sample=100")]).assert_ok_clean();
}

/// sample=100: an overflow read repeated on 2,000 fresh blocks is caught sometimes (on one of the
/// sampled blocks, whichever that is): each run either dies with the report naming the block it
/// was reading, or completes; over 5 runs at least one is caught.
#[test]
fn sample_100_catches_a_bug_sometimes() {
    let mut caught = 0;
    for _ in 0..5 {
        let out = run("guard_sample", &["bug"], &[("MALLOC_DEBUG", "sample=100")]);
        if out.status == Some(3) {
            assert!(
                out.stdout.ends_with("NOT CAUGHT\n") && out.stderr.is_empty(),
                "{}",
                out.describe()
            );
        } else {
            assert_fault(&out, OVER16, 16);
            caught += 1;
        }
    }
    assert!(caught > 0, "no run out of 5 caught the bug");
}

/// A real program under a guard mode: its normal output (checked by `common::real`), and no
/// line of ours but the budget warning.
fn real_check(name: &str, debug: &str) {
    let (_, check) = real::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known real check");
    if let Some(out) = check(&[("MALLOC_DEBUG", debug)]) {
        let ours: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("ft_malloc[") && !is_budget_warning(l))
            .collect();
        assert!(
            ours.is_empty(),
            "{name} with MALLOC_DEBUG={debug}: the library reported:\n{}",
            out.describe()
        );
        assert!(
            out.stderr.lines().filter(|l| is_budget_warning(l)).count() <= 1,
            "{name}: budget warning repeated:\n{}",
            out.describe()
        );
    }
}

macro_rules! real_tests {
    ($($name:ident),* $(,)?) => {
        mod real_guard {
            $( #[test] fn $name() { super::real_check(stringify!($name), "guard"); } )*
        }
        mod real_sample_100 {
            $( #[test] fn $name() { super::real_check(stringify!($name), "sample=100"); } )*
        }
    };
}

real_tests!(
    bash_string_loop,
    python_dicts_lists,
    python_threads,
    perl_hash_200k,
    git_init_commit_log,
    gcc_compile_and_run,
    clang_cxx_compile_and_run,
    rustc_compile_and_run,
    sort_100k_lines,
    sqlite3_10k_rows,
    systemd_analyze_table,
);

/// Every real check of `common::real` is covered by `real_tests!`.
#[test]
fn real_tests_cover_all_checks() {
    let covered = [
        "bash_string_loop",
        "python_dicts_lists",
        "python_threads",
        "perl_hash_200k",
        "git_init_commit_log",
        "gcc_compile_and_run",
        "clang_cxx_compile_and_run",
        "rustc_compile_and_run",
        "sort_100k_lines",
        "sqlite3_10k_rows",
        "systemd_analyze_table",
    ];
    for (name, _) in real::ALL {
        assert!(
            covered.contains(name),
            "real check {name} is not run in guard mode"
        );
    }
}

/// Pool slots are reused once their freed block has left the address-space quarantine: after
/// 50,000 blocks of the size went through, a recycled slot still ends at its guard page (and
/// starts right after one with guard=below), a freed one still faults, and one of a big block
/// (with its 64 KiB region) too.
#[test]
fn recycled_pool_slots_keep_their_guards() {
    let over = |debug: &str| run("guard_pool_reuse", &["over"], &[("MALLOC_DEBUG", debug)]);
    assert_fault(&over("guard"), OVER16, 16);
    assert_fault(&over("full"), OVER16, 16);
    assert_fault(
        &run(
            "guard_pool_reuse",
            &["under"],
            &[("MALLOC_DEBUG", "guard=below")],
        ),
        "ft_malloc[PID]: ERROR: heap underflow (write) at ADDR: 1 bytes before the 16-byte block at ADDR (guard page)",
        -1,
    );
    for debug in ["guard", "full"] {
        assert_fault(
            &run("guard_pool_reuse", &["uaf"], &[("MALLOC_DEBUG", debug)]),
            &uaf_line("read"),
            3,
        );
    }
    assert_fault(
        &run(
            "guard_pool_reuse",
            &["big", "100000"],
            &[("MALLOC_DEBUG", "guard")],
        ),
        "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 100000-byte block at ADDR (guard page)",
        100000,
    );
}

/// Recycled slots read as zero (their pages were given back when freed) and keep what is
/// written to them through realloc, for sizes across the pools.
#[test]
fn recycled_pool_slots_are_zeroed() {
    for debug in ["guard", "full", "guard=below", "guard=exact"] {
        for size in ["16", "5000"] {
            let out = run(
                "guard_pool_reuse",
                &["zero", size],
                &[("MALLOC_DEBUG", debug)],
            );
            assert!(
                out.stdout.contains(&format!("churn {size} done")),
                "MALLOC_DEBUG={debug}: {}",
                out.describe()
            );
            out.assert_ok_clean();
        }
    }
}

/// A big guarded block built on the pages of a freed one (page recycling) costs few page
/// faults, still ends at its guard, leaves the freed block's range faulting, and calloc still
/// reads as zero; threads recycling each other's pages keep their contents; after thousands
/// of recycled blocks a block spans at most 4 kernel mappings.
#[test]
fn recycled_big_block_pages() {
    for debug in ["guard", "full", "guard=exact"] {
        let out = run("guard_bank", &["reuse"], &[("MALLOC_DEBUG", debug)]);
        assert!(out.stdout.contains("faults "), "{}", out.describe());
        out.assert_ok_clean();
        assert_fault(
            &run("guard_bank", &["over"], &[("MALLOC_DEBUG", debug)]),
            "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 1500000-byte block at ADDR (guard page)",
            1500000,
        );
    }
    for debug in ["guard", "full"] {
        assert_fault(
            &run("guard_bank", &["uaf"], &[("MALLOC_DEBUG", debug)]),
            "ft_malloc[PID]: ERROR: use after free (read) at ADDR: 3 bytes into the freed 1048576-byte block at ADDR (guard page)",
            3,
        );
    }
    for mode in ["calloc", "threads", "maps"] {
        for debug in ["guard", "full", "guard=below"] {
            run("guard_bank", &[mode], &[("MALLOC_DEBUG", debug)]).assert_ok_clean();
        }
    }
}

/// `guard_budget`: past it the library says so once and new blocks are not guarded; once the
/// live guarded blocks are freed, new ones are guarded again (checked where the kernel has
/// guard markers, which /proc/self/mem cannot read through).
#[test]
fn guard_budget_bounds_guarded_pages() {
    let out = run(
        "guard_budget",
        &[],
        &[("MALLOC_DEBUG", "guard,guard_budget=1m")],
    );
    assert!(
        out.success() && out.stdout.ends_with("OK\n"),
        "{}",
        out.describe()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one warning: {}", out.describe());
    assert!(
        mask(lines[0]).starts_with(
            "ft_malloc[PID]: WARNING: guard: memory budget spent by live blocks (1 MiB in guarded pages, see guard_budget)"
        ),
        "{}",
        out.describe()
    );
    if !out.stdout.starts_with("no markers") {
        assert!(
            out.stdout
                .starts_with("first guarded 1, last guarded 0, again guarded 1\n"),
            "{}",
            out.describe()
        );
    }
    // The default budget (256 MiB) holds the same program without a word.
    run("guard_budget", &[], &[("MALLOC_DEBUG", "guard")]).assert_ok_clean();
}

/// The mprotect path for small blocks (`nomarkers`, what kernels before 6.13 get): overflows,
/// underflows and uses after free still fault with the report, recycled pool slots keep their
/// guards, churn completes, and a million live blocks spend the mapping budget (said once).
#[test]
fn mprotect_slots_without_markers() {
    assert_fault(&fault("over16", "guard,nomarkers"), OVER16, 16);
    assert_fault(&fault("over16", "full,nomarkers"), OVER16, 16);
    assert_fault(
        &fault("under16", "guard=below,nomarkers"),
        "ft_malloc[PID]: ERROR: heap underflow (write) at ADDR: 1 bytes before the 16-byte block at ADDR (guard page)",
        -1,
    );
    let out = fault("uaf_read_late", "guard,nomarkers");
    assert!(out.stdout.contains("others done\n"), "{}", out.describe());
    assert_fault(&out, &uaf_line("read"), 3);
    assert_fault(
        &run(
            "guard_pool_reuse",
            &["over"],
            &[("MALLOC_DEBUG", "guard,nomarkers")],
        ),
        OVER16,
        16,
    );
    churn("guard,nomarkers");
    let out = run("guard_million", &[], &[("MALLOC_DEBUG", "guard,nomarkers")]);
    assert!(
        out.success() && out.stdout.ends_with("OK\n"),
        "{}",
        out.describe()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    if max_map_count().is_some_and(|m| m < 2_000_000) {
        assert!(
            lines.len() == 1
                && mask(lines[0])
                    .starts_with("ft_malloc[PID]: WARNING: guard: mapping budget spent "),
            "{}",
            out.describe()
        );
    }
}

/// fork: the child inherits guarded blocks with their guards (markers or PROT_NONE), can
/// allocate and free, and an overflow in it faults with the report; the parent goes on.
#[test]
fn fork_keeps_guards() {
    for debug in ["guard", "full", "guard,nomarkers"] {
        let out = run("guard_fork", &[], &[("MALLOC_DEBUG", debug)]);
        assert!(
            out.success() && out.stdout == "child killed by signal 11\nOK\n",
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
        let first = out.stderr.lines().next().unwrap_or("");
        assert_eq!(
            mask(first),
            "ft_malloc[PID]: ERROR: heap overflow (read) at ADDR: 0 bytes after the 32-byte block at ADDR (guard page)",
            "MALLOC_DEBUG={debug}: {}",
            out.describe()
        );
    }
}
