//! What the library finds at exit: blocks broken and never freed (canaries of live blocks, the
//! free fill of quarantined ones), in address order, before the leak report; a LARGE block freed
//! twice long after its first free; the leak scan of big blocks whose pages were never touched,
//! of a process whose main thread exited first and of other threads' stale frames, and
//! the page faults of the check itself; exit() on a small stack (a thread's, a coroutine's inside
//! a heap block); a program that used up its file descriptors.

mod common;

use common::{Output, Run, compile, mask_report as mask};

const SIGABRT: i32 = 6;

fn masked_lines(o: &Output) -> Vec<String> {
    mask(&o.stderr).lines().map(str::to_string).collect()
}

fn error_lines(o: &Output) -> Vec<String> {
    masked_lines(o)
        .into_iter()
        .filter(|l| l.starts_with("ft_malloc[PID]: ERROR: "))
        .collect()
}

/// The block the program announced on stdout (`block 0x...`), as the reports print it.
fn announced(o: &Output) -> String {
    let line = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("block 0x"))
        .unwrap_or_else(|| panic!("no block line: {}", o.describe()));
    format!("0x{line}")
}

/// The program ended normally, then the check at exit reported one error and aborted: `first`
/// is the first line of stderr (masked), and the report names the announced block.
#[track_caller]
fn aborted_at_exit(o: &Output, first: &str) {
    assert_eq!(o.signal, Some(SIGABRT), "{}", o.describe());
    let lines = masked_lines(o);
    assert_eq!(
        lines.first().map(String::as_str),
        Some(first),
        "{}",
        o.describe()
    );
    assert_eq!(error_lines(o).len(), 1, "{}", o.describe());
    let head = o.stderr.lines().next().unwrap();
    assert!(
        head.contains(&format!(": {} (", announced(o))),
        "the report does not name the block: {}",
        o.describe()
    );
    assert_eq!(
        lines
            .iter()
            .rfind(|l| l.starts_with("ft_malloc[PID]"))
            .map(String::as_str),
        Some("ft_malloc[PID]: aborting (MALLOC_DEBUG on_error=abort; on_error=continue goes on)"),
        "{}",
        o.describe()
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("ft_malloc[PID]: LEAK")),
        "the leak report comes after the check: {}",
        o.describe()
    );
}

fn exit_check(mode: &str, debug: &str) -> Output {
    Run::new(compile("exit_check"))
        .arg(mode)
        .env("MALLOC_DEBUG", debug)
        .go()
}

#[test]
fn a_byte_written_into_malloc_0_is_found_at_exit() {
    aborted_at_exit(
        &exit_check("zero", "1"),
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 0 bytes) written past its end at offset 0 (1 byte past the end), found at exit",
    );
}

#[test]
fn a_byte_past_a_block_never_freed_is_found_at_exit() {
    let o = exit_check("past", "1");
    aborted_at_exit(
        &o,
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 24 bytes) written past its end at offset 24 (1 byte past the end), found at exit",
    );
    // With its history: where it was allocated.
    assert!(
        o.stderr.contains("  allocated by malloc() at event #"),
        "{}",
        o.describe()
    );
}

/// A wide-string copy runs 4 KiB over the blocks after its 16-byte destination, freed ones
/// among them: the report names the destination, the lowest block it broke.
#[test]
fn a_long_overflow_is_reported_at_the_block_it_started_from() {
    aborted_at_exit(
        &exit_check("wide", "1"),
        "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 16 bytes) written past its end at offset 16 (1 byte past the end), found at exit",
    );
}

/// on_error=continue: every block it broke is counted once, and reported once per kind and
/// allocation site (as any report under on_error=continue): the destination first, then the
/// freed blocks after it, then the live ones whose front canary it hit.
#[test]
fn a_long_overflow_under_continue_reports_each_block_once() {
    let o = exit_check("wide", "1,on_error=continue");
    assert_eq!(o.status, Some(0), "{}", o.describe());
    let errors = error_lines(&o);
    assert_eq!(
        errors,
        [
            "ft_malloc[PID]: ERROR: heap overflow: ADDR (TINY, 16 bytes) written past its end at offset 16 (1 byte past the end), found at exit",
            "ft_malloc[PID]: ERROR: write after free: ADDR (TINY, 16 bytes) modified at offset 0 after it was freed (found when it left quarantine)",
            "ft_malloc[PID]: ERROR: heap underflow: ADDR (TINY, 16 bytes) written 16 bytes before its start, found at exit",
        ],
        "{}",
        o.describe()
    );
    let head = o
        .stderr
        .lines()
        .find(|l| l.contains("ERROR: heap overflow"))
        .unwrap();
    assert!(
        head.contains(&format!(": {} (", announced(&o))),
        "{}",
        o.describe()
    );
}

#[test]
fn a_write_into_a_quarantined_block_is_found_at_exit() {
    aborted_at_exit(
        &exit_check("quarantine", "1"),
        "ft_malloc[PID]: ERROR: write after free: ADDR (TINY, 24 bytes) modified at offset 16 after it was freed (found when it left quarantine)",
    );
}

#[test]
fn a_quarantined_block_reported_at_exit_is_not_reported_again() {
    let o = exit_check("quarantine", "1,on_error=continue");
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(error_lines(&o).len(), 1, "{}", o.describe());
    // Counted once: the drain after the check found the fill restored.
    assert!(
        mask(&o.stderr).contains("ft_malloc[PID]: ERROR SUMMARY: 1 error(s)\n"),
        "{}",
        o.describe()
    );
}

#[test]
fn a_clean_program_stays_silent_at_exit() {
    for debug in ["1", "full"] {
        let o = Run::new(compile("leak_free_program"))
            .env("MALLOC_DEBUG", debug)
            .go();
        o.assert_ok_clean();
    }
}

// ---------------------------------------------------------------------------------------------
// The leak scan of untouched blocks.

fn leak_lines(o: &Output) -> Vec<String> {
    masked_lines(o)
        .into_iter()
        .filter(|l| l.starts_with("ft_malloc[PID]: LEAK"))
        .collect()
}

/// The leak report names one site in `exe` for each `(bytes, blocks)` of `sites`, largest
/// first, all allocated by malloc(), and nothing else unreachable.
fn leaks_are(o: &Output, exe: &std::path::Path, sites: &[(usize, usize)], debug: &str) {
    let leaks = leak_lines(o);
    let want: Vec<String> = sites
        .iter()
        .map(|(bytes, blocks)| {
            format!(
                "ft_malloc[PID]: LEAK: {bytes} bytes in {blocks} block(s) allocated by malloc() \
                 from {}+ADDR",
                exe.display()
            )
        })
        .collect();
    assert_eq!(leaks.len(), sites.len() + 1, "{debug}: {}", o.describe());
    assert_eq!(leaks[..sites.len()], want, "{debug}: {}", o.describe());
    let (bytes, blocks) = sites
        .iter()
        .fold((0, 0), |(b, n), (sb, sn)| (b + sb, n + sn));
    assert!(
        leaks[sites.len()].starts_with(&format!(
            "ft_malloc[PID]: LEAK SUMMARY: {bytes} bytes in {blocks} unreachable block(s); "
        )),
        "{debug}: {}",
        o.describe()
    );
}

/// The leak report names one block of `bytes` allocated by malloc() in `exe`, and nothing
/// else unreachable.
fn one_leak(o: &Output, exe: &std::path::Path, bytes: usize, debug: &str) {
    leaks_are(o, exe, &[(bytes, 1)], debug);
}

/// Runs `tests/c/<name>.c` under `1`, `leaks` and `full`: it exits 0 printing `stdout`, and its
/// leaks are `sites` (see `leaks_are`).
fn leaks_in_every_mode(name: &str, stdout: &str, sites: &[(usize, usize)]) {
    let exe = compile(name);
    for debug in ["1", "leaks", "full"] {
        let o = Run::new(&exe).env("MALLOC_DEBUG", debug).go();
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(o.stdout, stdout, "{debug}: {}", o.describe());
        leaks_are(&o, &exe, sites, debug);
    }
}

/// Two threads keep a 256 MiB block each in globals and main drops two more, all never
/// touched: main's two are leaks, the threads' are not. Nor are a block whose only pointer lies
/// in a touched 1 MiB block and one whose only pointer lies on the one touched page of an
/// untouched 256 MiB block. The scan is conservative, and a stale word anywhere in the process
/// that happens to point into one of these wide blocks keeps it (seen once in a few dozen runs
/// on a loaded machine): a run that finds one leak fewer is tried again.
#[test]
fn untouched_big_blocks_keep_their_leak_verdict() {
    let exe = compile("leak_untouched");
    let want = format!(
        "ft_malloc[PID]: LEAK: 536870912 bytes in 2 block(s) allocated by malloc() from {}+ADDR",
        exe.display()
    );
    let mut o = None;
    for _ in 0..3 {
        let run = Run::new(&exe)
            .args(["2", "256"])
            .env("MALLOC_DEBUG", "1")
            .go();
        assert_eq!(run.status, Some(0), "{}", run.describe());
        assert_eq!(run.stdout, "OK\n", "{}", run.describe());
        let leaks = leak_lines(&run);
        let one_fewer = leaks.len() == 2
            && leaks[0].starts_with("ft_malloc[PID]: LEAK: 268435456 bytes in 1 block(s)");
        o = Some(run);
        if !one_fewer {
            break;
        }
    }
    let o = o.unwrap();
    let leaks = leak_lines(&o);
    assert_eq!(leaks.len(), 2, "{}", o.describe());
    assert_eq!(leaks[0], want, "{}", o.describe());
    assert!(
        leaks[1].starts_with(
            "ft_malloc[PID]: LEAK SUMMARY: 536870912 bytes in 2 unreachable block(s); "
        ),
        "{}",
        o.describe()
    );
}

#[test]
fn untouched_big_blocks_all_reachable_are_no_leak() {
    for debug in ["1", "full"] {
        let o = Run::new(compile("leak_untouched"))
            .args(["2", "256", "keep"])
            .env("MALLOC_DEBUG", debug)
            .go();
        o.assert_ok_clean();
    }
}

/// main ends with pthread_exit and the last thread exits the process: /proc/self then names
/// the dead main thread (its maps read empty), yet the scan still finds the roots, so the one
/// block main dropped is the one leak, named in the program, and what main kept (and what libc
/// holds) is not.
#[test]
fn leaks_after_the_main_thread_exited() {
    let exe = compile("leak_main_exits");
    for debug in ["1", "full"] {
        let o = Run::new(&exe).env("MALLOC_DEBUG", debug).go();
        assert_eq!(o.status, Some(0), "{}", o.describe());
        let mut out: Vec<&str> = o.stdout.lines().collect();
        out.sort();
        assert_eq!(out, ["worker 0 done", "worker 1 done"], "{}", o.describe());
        one_leak(&o, &exe, 4242, debug);
    }
}

/// Stale frames of other threads hold no references. A joined thread leaked 16 blocks that only
/// its own frames pointed to, and glibc keeps its stack mapped for reuse, stale addresses and
/// all; a thread blocked in read(2) leaked 16 more in a call that returned, whose frame below
/// its stack pointer still holds their addresses. Neither is read, so the 32 are leaks, as
/// valgrind finds. An exited thread's result (kept in its descriptor until a join) and a block
/// in the blocked thread's own frame still count as referenced.
#[test]
fn other_threads_stale_frames_hold_no_references() {
    leaks_in_every_mode("leak_dead_thread", "threads 2\n", &[(3320, 16), (1720, 16)]);
}

/// exit() from a thread while main waits in pthread_join: the check reads main's stack from its
/// stack pointer up, so the 16 blocks main leaked in a call that returned (their addresses
/// still on the stack below) are leaks, as valgrind finds, and the one in main's own frame is
/// not.
#[test]
fn a_waiting_main_threads_stale_frame_holds_no_reference() {
    leaks_in_every_mode("leak_main_waits", "exit from a thread\n", &[(4920, 16)]);
}

/// A block referenced only from shared anonymous memory is reachable, as valgrind says (the
/// check reads the shared mapping's pages in memory, and no others: its 64 MiB, untouched but
/// for a page, do not become resident); the dropped block is the one leak.
#[test]
fn shared_memory_holds_references() {
    leaks_in_every_mode("leak_shared_memory", "shared\n", &[(3131, 1)]);
}

/// Under a seccomp filter that kills the process for `mincore` (systemd's
/// `SystemCallFilter=@system-service` has no group with it), the leak check asks the kernel
/// nothing about residency and reads the pages instead: the program ends normally and the
/// dropped block is reported.
#[test]
fn leak_check_under_a_seccomp_filter() {
    let exe = compile("leak_under_seccomp");
    for debug in ["1", "full"] {
        let o = Run::new(&exe).env("MALLOC_DEBUG", debug).go();
        if o.status == Some(2) && o.stderr.contains("seccomp: ") {
            println!("skipped: a seccomp filter cannot be installed here");
            return;
        }
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(o.stdout, "filtered\n", "{debug}: {}", o.describe());
        one_leak(&o, &exe, 3333, debug);
    }
}

/// exit() from a thread with a 16 KiB stack: the check, the drain and the leak report at exit
/// run on that stack, and fit. The dropped block is the one leak.
#[test]
fn exit_reports_fit_a_small_thread_stack() {
    let exe = compile("exit_small_stack");
    for debug in ["1", "full", "1,leaks=all,stats,dump_at_exit"] {
        let o = Run::new(&exe).arg("thread").env("MALLOC_DEBUG", debug).go();
        if o.status == Some(2) {
            println!("skipped: {}", o.stdout.trim());
            return;
        }
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(o.stdout, "exiting\n", "{debug}: {}", o.describe());
        one_leak(&o, &exe, 4321, debug);
    }
}

/// exit() from a coroutine whose stack lies in a heap block: the memory below its stack (here,
/// the only pointer to a block) is neither changed nor left unread by the exit reports, so
/// nothing leaks.
#[test]
fn exit_from_a_coroutine_leaves_the_memory_below_its_stack() {
    for debug in ["1", "full"] {
        let o = Run::new(compile("exit_small_stack"))
            .arg("coroutine")
            .env("MALLOC_DEBUG", debug)
            .go();
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(o.stdout, "exiting\n", "{debug}: {}", o.describe());
        assert_eq!(
            leak_lines(&o),
            Vec::<String>::new(),
            "{debug}: {}",
            o.describe()
        );
    }
}

/// A program that used up its descriptors to the soft limit still gets its leak report and
/// reports whose frames name their modules: our files are opened above that limit, which is
/// raised for the one call and put back.
#[test]
fn leaks_and_reports_of_a_program_out_of_descriptors() {
    let exe = compile("leak_no_fds");
    for debug in ["1", "full"] {
        let o = Run::new(&exe)
            .args(["soft", "double"])
            .env("MALLOC_DEBUG", format!("{debug},on_error=continue"))
            .go();
        if o.status == Some(2) {
            println!("skipped: {}", o.stdout.trim());
            return;
        }
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(
            o.stdout,
            "out of descriptors\n",
            "{debug}: {}",
            o.describe()
        );
        let head = format!(
            "ft_malloc[PID]:   free() called from {}+ADDR",
            exe.display()
        );
        assert!(
            masked_lines(&o).iter().any(|l| l.starts_with(&head)),
            "{debug}: {}",
            o.describe()
        );
        one_leak(&o, &exe, 4444, debug);
    }
}

/// With the hard limit reached too, the leak check is skipped, and the warning says why.
#[test]
fn a_leak_check_without_descriptors_says_why() {
    let o = Run::new(compile("leak_no_fds"))
        .arg("hard")
        .env("MALLOC_DEBUG", "1")
        .go();
    if o.status == Some(2) {
        println!("skipped: {}", o.stdout.trim());
        return;
    }
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(
        masked_lines(&o),
        [
            "ft_malloc[PID]: WARNING: leak check skipped: /proc/self/maps unreadable (EMFILE: Too \
             many open files), the program's memory could not be scanned"
        ],
        "{}",
        o.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// LARGE blocks freed twice, long after the first free.

/// A 1 MiB block freed, then 16 MiB of other LARGE blocks freed (the quarantine holds 4 MiB),
/// then freed again: a double free naming the block and its first free, not a pointer that
/// was never allocated. Under `full` the block is guarded and 16 other frees leave it in the
/// guarded blocks' quarantine (a double free as before; pushed out of it, it is remembered too,
/// unless the page bank gave its pages to a later block, whose free it then is).
#[test]
fn a_large_block_freed_again_after_leaving_the_quarantine_is_a_double_free() {
    let exe = compile("double_free_large_late");
    for (debug, others, kind, state) in [
        ("1", "16", "LARGE", "freed"),
        ("full", "16", "GUARDED", "freed (in quarantine)"),
    ] {
        let o = Run::new(&exe)
            .args(["free", others])
            .env("MALLOC_DEBUG", debug)
            .go();
        let what = format!("{debug}, {others} others");
        assert_eq!(o.signal, Some(SIGABRT), "{what}: {}", o.describe());
        let errors = error_lines(&o);
        assert_eq!(
            errors,
            [format!(
                "ft_malloc[PID]: ERROR: double free of ADDR ({kind}, 1048576 bytes) in free()"
            )],
            "{what}: {}",
            o.describe()
        );
        assert!(
            o.stderr
                .lines()
                .next()
                .unwrap()
                .contains(&format!(" of {} (", announced(&o))),
            "{what}: {}",
            o.describe()
        );
        let lines = masked_lines(&o);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("ft_malloc[PID]:   block ")
                    && l.ends_with(&format!(", {state}"))),
            "{what}: {}",
            o.describe()
        );
        // The first free, with its event, thread and stack.
        let i = lines
            .iter()
            .position(|l| l.starts_with("ft_malloc[PID]:   freed at event #"))
            .unwrap_or_else(|| panic!("{what}: no first free: {}", o.describe()));
        assert!(
            lines[i + 1].starts_with("ft_malloc[PID]:     #0 ADDR ")
                && lines[i + 1].contains(" main+ADDR"),
            "{what}: {}",
            o.describe()
        );
        assert!(!o.stdout.contains("continued"), "{what}: {}", o.describe());
    }
}

#[test]
fn a_large_block_reallocated_after_leaving_the_quarantine_is_a_realloc_of_a_freed_block() {
    let o = Run::new(compile("double_free_large_late"))
        .args(["realloc", "16"])
        .env("MALLOC_DEBUG", "1")
        .go();
    assert_eq!(o.signal, Some(SIGABRT), "{}", o.describe());
    assert_eq!(
        error_lines(&o),
        ["ft_malloc[PID]: ERROR: realloc of freed block ADDR (LARGE, 1048576 bytes) in realloc()"],
        "{}",
        o.describe()
    );
    assert!(o.stderr.contains("  freed at event #"), "{}", o.describe());
}

/// The leak check at exit reads the program's memory, not the allocator's own, and no page that
/// holds nothing: a forked child that exits makes fewer than 300 minor page faults in all
/// (about 190 here, 135 with debugging off; reading the page map's whole first level made it
/// 1,100). One that holds blocks in eight SMALL zones and maps 64 MiB it never touches makes
/// fewer than 600 (about 280; reading the zones' untouched pages and the mapping made it some
/// 20,000).
#[test]
fn the_exit_check_reads_only_pages_that_may_hold_references() {
    for debug in ["1", "full"] {
        for arg in ["", "untouched"] {
            let o = Run::new(compile("exit_scan_faults"))
                .arg(arg)
                .env("MALLOC_DEBUG", debug)
                .go();
            assert_eq!(o.status, Some(0), "{}", o.describe());
            assert_eq!(o.stdout, "OK\n", "{}", o.describe());
        }
    }
}
