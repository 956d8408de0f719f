//! Faults outside our guard pages, in the processes that die of them: a pointer made of our
//! free fill, allocation fill or canary bytes is a wild pointer (an ERROR naming the register,
//! and the freed block it was probably loaded from);
//! any other fault gets one line saying it is not in our memory; a program with its own
//! SIGSEGV handler keeps its faults.

mod common;

use common::{Output, Run, compile, compile_optimised};

fn lines_with<'a>(o: &'a Output, needle: &str) -> Vec<&'a str> {
    o.stderr.lines().filter(|l| l.contains(needle)).collect()
}

fn dies_of_segv(o: &Output) {
    assert_eq!(o.signal, Some(libc::SIGSEGV), "{}", o.describe());
    assert_eq!(o.stdout, "start\n", "{}", o.describe());
}

#[test]
fn a_pointer_read_from_a_freed_node_is_a_wild_pointer_naming_the_node() {
    let exe = compile("wild_pointer");
    let o = Run::new(&exe).arg("list").env("MALLOC_DEBUG", "1").go();
    dies_of_segv(&o);
    let head = lines_with(&o, "ERROR: wild pointer: SIGSEGV (access) with r");
    assert_eq!(head.len(), 1, "{}", o.describe());
    assert!(
        head[0].ends_with(
            " = 0xdededededededede, made of the free fill (0xDE...): a pointer loaded from a freed block"
        ),
        "{}",
        o.describe()
    );
    // No register holds the node any more: the block this thread freed last is the lead,
    // named with its history.
    let node = lines_with(
        &o,
        "]:   probably loaded from the block this thread freed last: the 16-byte block at 0x",
    );
    assert_eq!(node.len(), 1, "{}", o.describe());
    assert!(
        o.stderr.contains(" : 16 bytes, TINY zone 0x"),
        "{}",
        o.describe()
    );
    assert!(
        o.stderr.contains(", freed (in quarantine)\n"),
        "{}",
        o.describe()
    );
    assert_eq!(
        lines_with(&o, "remove_even+0x").len(),
        2,
        "fault stack and free stack: {}",
        o.describe()
    );
    assert!(
        o.stderr.contains("the process now dies of this fault"),
        "{}",
        o.describe()
    );
}

#[test]
fn a_wild_pointer_in_optimised_code_names_its_register() {
    let exe = compile_optimised("wild_pointer", "O2", &["-O2"]);
    let o = Run::new(&exe).arg("list").env("MALLOC_DEBUG", "1").go();
    dies_of_segv(&o);
    assert_eq!(
        lines_with(&o, " = 0xdededededededede, made of the free fill (0xDE...)").len(),
        1,
        "{}",
        o.describe()
    );
}

#[test]
fn a_pointer_never_initialised_is_made_of_the_allocation_fill() {
    let exe = compile("wild_pointer");
    let o = Run::new(&exe).arg("uninit").env("MALLOC_DEBUG", "1").go();
    dies_of_segv(&o);
    let head = lines_with(&o, "ERROR: wild pointer: SIGSEGV (access) with r");
    assert_eq!(head.len(), 1, "{}", o.describe());
    assert!(
        head[0].contains(" = 0xcececececececece, made of the allocation fill (0xCE...): a pointer loaded from a block's memory that was never initialised"),
        "{}",
        o.describe()
    );
}

#[test]
fn a_pointer_read_past_the_end_is_made_of_canary_bytes() {
    let exe = compile("wild_pointer");
    let o = Run::new(&exe).arg("past").env("MALLOC_DEBUG", "1").go();
    dies_of_segv(&o);
    let head = lines_with(&o, "ERROR: wild pointer: SIGSEGV (access) with r");
    assert_eq!(head.len(), 1, "{}", o.describe());
    assert!(
        head[0].ends_with(", made of canary bytes: a pointer loaded from past the end of a block"),
        "{}",
        o.describe()
    );
}

#[test]
fn a_fault_outside_our_memory_gets_one_line() {
    let exe = compile("wild_pointer");
    let o = Run::new(&exe).arg("null").env("MALLOC_DEBUG", "1").go();
    dies_of_segv(&o);
    let ours: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("ft_malloc["))
        .collect();
    assert_eq!(ours.len(), 1, "{}", o.describe());
    assert!(
        ours[0].contains("]: SIGSEGV (write) at 0x0 by ")
            && ours[0].ends_with(" is not in ft_malloc's memory, and no register holds our fill or canary bytes; MALLOC_DEBUG=guard (ft-malloc --guard) stops reads and writes past a block at the faulting instruction"),
        "{}",
        o.describe()
    );
    // Under guard pages the advice is moot.
    let o = Run::new(&exe).arg("null").env("MALLOC_DEBUG", "full").go();
    dies_of_segv(&o);
    let line = lines_with(&o, "is not in ft_malloc's memory");
    assert_eq!(line.len(), 1, "{}", o.describe());
    assert!(!line[0].contains("--guard"), "{}", o.describe());
}

#[test]
fn a_program_with_its_own_segv_handler_keeps_its_faults() {
    let exe = compile("wild_pointer");
    let o = Run::new(&exe).arg("handled").env("MALLOC_DEBUG", "1").go();
    assert_eq!(o.status, Some(42), "{}", o.describe());
    assert_eq!(o.stdout, "start\ncaught\n", "{}", o.describe());
    assert!(!o.stderr.contains("ft_malloc["), "{}", o.describe());
}

/// Our handler runs on the thread's alternate signal stack, and a program's may be small (8 KiB
/// here, as Rust's standard library gives each thread): the report still comes whole, on a
/// stack of its own, and the process dies of its fault (it used to fault in the handler and
/// loop). A guard-page overflow and a wild pointer.
#[test]
fn a_small_alternate_signal_stack_still_gets_the_whole_report() {
    let exe = compile("segv_small_altstack");
    for (mode, debug, first) in [
        ("guard", "guard", "ERROR: heap overflow (read) at 0x"),
        ("wild", "1", "ERROR: wild pointer: SIGSEGV (access) with r"),
    ] {
        let o = Run::new(&exe)
            .arg(mode)
            .env("MALLOC_DEBUG", debug)
            .timeout(std::time::Duration::from_secs(20))
            .go();
        assert_eq!(o.signal, Some(libc::SIGSEGV), "{mode}: {}", o.describe());
        assert_eq!(lines_with(&o, first).len(), 1, "{mode}: {}", o.describe());
        assert!(
            !lines_with(&o, " main+0x").is_empty(),
            "{mode}: the stack of the fault: {}",
            o.describe()
        );
        assert!(
            o.stderr.ends_with("the process now dies of this fault\n"),
            "{mode}: {}",
            o.describe()
        );
    }
}
