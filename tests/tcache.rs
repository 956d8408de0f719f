//! The per-thread caches of free slots (debugging off, and debugging that leaves blocks alone:
//! `leaks`, `log=`) and the same programs with the debugging modes that bypass them: threads
//! freeing each other's blocks, a thread's exit with a full cache, fork from a thread with
//! cached blocks, double frees of cached blocks.

mod common;

use common::{fresh_dir, hex_numbers, mask_report, run};

const MODES: &[&[(&str, &str)]] = &[
    &[],
    &[("MALLOC_DEBUG", "1")],
    &[("MALLOC_DEBUG", "full")],
    &[("MALLOC_DEBUG", "leaks")],
];

/// 64 threads, cross-thread frees, every block's content checked before its free.
#[test]
fn sixty_four_threads_free_each_others_blocks() {
    for env in MODES {
        run("tcache_threads", &[], env).assert_ok_clean();
    }
}

/// A thread exits with a full cache: its slots go back (their zones are released by
/// malloc_trim), in-use bytes stay exact, and the main thread's dump shows none of its blocks.
#[test]
fn thread_exit_gives_the_cache_back() {
    let out = run("tcache_thread_exit", &[], &[]);
    out.assert_ok_clean();
    let mut lines = out.stdout.lines();
    let main = hex_numbers(lines.next().unwrap_or(""));
    assert_eq!(main.len(), 2, "{}", out.describe());
    let sized = |n: u64| -> Vec<u64> {
        out.stdout
            .lines()
            .filter(|l| l.ends_with(&format!(" : {n} bytes")))
            .map(|l| hex_numbers(l)[0])
            .collect()
    };
    // The thread's blocks were of 3000 and 40 bytes: the main thread's block of 3000 only.
    assert_eq!(sized(3000), vec![main[0]], "{}", out.describe());
    assert_eq!(sized(40), Vec::<u64>::new(), "{}", out.describe());
    assert_eq!(sized(24), vec![main[1]], "{}", out.describe());
    assert!(out.stdout.contains("Total : "), "{}", out.describe());
}

/// fork from a thread with cached blocks while others churn: the child allocates and frees
/// (in a thread of its own too) and exits 0, in every mode.
#[test]
fn fork_from_a_thread_with_cached_blocks() {
    for env in MODES {
        run("tcache_fork", &[], env).assert_ok_clean();
    }
}

/// A second free of a block in a thread cache, by its thread and by another one (also of a
/// block another thread holds for its arena, and freed again once given back): with
/// debugging off, one WARNING each and the program goes on (the blocks are not handed out
/// twice); with debugging on, an ERROR and abort.
#[test]
fn double_free_of_a_cached_block() {
    let out = run("tcache_double_free", &[], &[]);
    out.assert_success();
    assert_eq!(out.stdout, "continued\nOK\n", "{}", out.describe());
    assert_eq!(
        mask_report(&out.stderr).lines().collect::<Vec<_>>(),
        vec![
            "ft_malloc[PID]: WARNING: free(): double free of ADDR (TINY, 24 bytes); ignored",
            "ft_malloc[PID]: WARNING: free(): double free of ADDR (SMALL, 3000 bytes); ignored",
            "ft_malloc[PID]: WARNING: free(): double free of ADDR (TINY, 200 bytes); ignored",
            "ft_malloc[PID]: WARNING: free(): double free of ADDR (TINY, 200 bytes); ignored",
        ],
        "{}",
        out.describe()
    );
    for env in &MODES[1..] {
        let out = run("tcache_double_free", &[], env);
        assert_eq!(out.signal, Some(6), "SIGABRT: {}", out.describe());
        assert_eq!(out.stdout, "", "{}", out.describe());
        // (`full` guards the block: GUARDED instead of TINY.)
        let first = mask_report(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(
            first.starts_with("ft_malloc[PID]: ERROR: double free of ADDR (")
                && first.ends_with(", 24 bytes) in free()"),
            "{}",
            out.describe()
        );
    }
}

/// Blocks freed by a thread of another arena come back to their own thread's allocations, are
/// never handed out twice (in a fork child too), and a second free of one is refused.
#[test]
fn blocks_freed_by_another_thread_come_back() {
    let out = run("tcache_inbox", &[], &[]);
    out.assert_success();
    assert_eq!(out.stdout, "reused 1\nOK\n", "{}", out.describe());
    assert_eq!(
        mask_report(&out.stderr).lines().collect::<Vec<_>>(),
        vec!["ft_malloc[PID]: WARNING: free(): double free of ADDR (TINY, 100 bytes); ignored"],
        "{}",
        out.describe()
    );
    for env in &MODES[1..] {
        let out = run("tcache_inbox", &[], env);
        assert_eq!(out.signal, Some(6), "SIGABRT: {}", out.describe());
        assert!(
            mask_report(&out.stderr).contains("ERROR: double free of ADDR ("),
            "{}",
            out.describe()
        );
    }
}

/// With debugging off, a thread keeps the blocks it frees, whichever thread allocated them, and
/// takes them back first: the 200 blocks another thread allocated and this one freed are its
/// next 200 blocks of that size (never handed out twice, their contents intact).
#[test]
fn a_thread_reuses_the_blocks_it_frees() {
    let out = run("tcache_keep", &[], &[]);
    out.assert_ok_clean();
    assert_eq!(out.stdout, "reused 200\nOK\n", "{}", out.describe());
    for env in &MODES[1..] {
        run("tcache_keep", &[], env).assert_ok_clean();
    }
}

/// With debugging that neither dresses nor keeps freed blocks (here the log), zone blocks go
/// through the thread caches and their histories are written on the way: the double free of a
/// cached block names its allocation and first free by the log's event numbers, and the log
/// holds both events and the refused free.
#[test]
fn cached_blocks_keep_their_history_with_the_log() {
    let dir = fresh_dir("tcache_log");
    let log = dir.join("l.log");
    let debug = format!("log={},stack=1", log.display());
    let out = run("tcache_double_free", &[], &[("MALLOC_DEBUG", &debug)]);
    assert_eq!(out.signal, Some(6), "SIGABRT: {}", out.describe());
    let err = mask_report(&out.stderr);
    assert!(
        err.starts_with("ft_malloc[PID]: ERROR: double free of ADDR (TINY, 24 bytes) in free()"),
        "{}",
        out.describe()
    );
    assert!(
        err.contains("allocated by malloc() at event #1, thread "),
        "{}",
        out.describe()
    );
    assert!(
        err.contains("freed at event #2, thread "),
        "{}",
        out.describe()
    );
    let text = std::fs::read_to_string(&log).expect("the log");
    let events: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("E "))
        .take(3)
        .map(|l| l.split(' ').collect())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    let block = events[0][5];
    // E seq t tid op pointer size caller
    let fields = |e: &Vec<&str>| {
        (
            e[1].to_string(),
            e[4].to_string(),
            e[5].to_string(),
            e[6].to_string(),
        )
    };
    assert_eq!(
        fields(&events[0]),
        ("1".into(), "m".into(), block.into(), "24".into()),
        "{text}"
    );
    assert_eq!(
        fields(&events[1]),
        ("2".into(), "f".into(), block.into(), "24".into()),
        "{text}"
    );
    assert_eq!(
        fields(&events[2]),
        ("3".into(), "f".into(), block.into(), "0".into()),
        "{text}"
    );
}

/// How many slots of the dump's 112-byte zone sit in thread caches (0 when the dump says none).
fn cached_in_zone(stdout: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|l| l.contains("zone of 112-byte slots"))?;
    let Some(at) = line.find(" in thread caches") else {
        return Some(0);
    };
    line[..at].rsplit(' ').next()?.parse().ok()
}

/// A class's cache outgrows its first array: every block freed comes back, newest first (with
/// debugging that leaves blocks alone too).
#[test]
fn a_class_cache_keeps_every_block_as_it_grows() {
    for env in [&[][..], &[("MALLOC_DEBUG", "leaks")][..]] {
        run("tcache_widen", &[], env).assert_ok_clean();
    }
}

/// A thread's first refill of a class takes one slot: a thread that makes one block of a size
/// holds no other slot of its zone (it took half the class's capacity, 9 slots of 3 KiB here,
/// and thousands of threads making a few blocks of many sizes each held pages they never used).
#[test]
fn a_threads_first_block_of_a_size_takes_one_slot() {
    let out = run("tcache_first_fill", &[], &[]);
    out.assert_ok_clean();
    let zones: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| {
            l.split("zone of ")
                .nth(1)
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| (3000..4096).contains(&n))
        })
        .collect();
    assert_eq!(zones.len(), 1, "{}", out.describe());
    assert!(zones[0].contains(", 1/"), "{}", out.describe());
    assert!(!zones[0].contains("in thread caches"), "{}", out.describe());
}

/// Options that leave ordinary blocks alone (`0`, `on_error`, `sample=N`) keep the threads'
/// caches, as with debugging off; the checking modes do without them.
#[test]
fn light_options_keep_the_thread_caches() {
    for debug in [
        None,
        Some("0"),
        Some("on_error=continue"),
        Some("sample=1000"),
    ] {
        let env: Vec<(&str, &str)> = debug.iter().map(|d| ("MALLOC_DEBUG", *d)).collect();
        let out = run("light_caches", &[], &env);
        out.assert_ok_clean();
        let n = cached_in_zone(&out.stdout);
        assert!(n >= Some(20), "{debug:?}: {n:?} cached\n{}", out.describe());
    }
    let out = run("light_caches", &[], &[("MALLOC_DEBUG", "1")]);
    assert!(out.success(), "{}", out.describe());
    assert!(
        !out.stdout.contains("in thread caches"),
        "{}",
        out.describe()
    );
}
