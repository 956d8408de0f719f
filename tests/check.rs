//! `check_every=N`: heap checks made while other threads take, resize and free blocks see only
//! finished blocks (a block whose canaries or fill are still being written after its lock was
//! dropped is skipped), so a correct program gets no report.

mod common;

use common::run;

#[test]
fn check_every_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &[],
        &[("MALLOC_DEBUG", "1,check_every=100")],
    )
    .assert_ok_clean();
}

#[test]
fn check_every_often_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &["20000"],
        &[("MALLOC_DEBUG", "1,check_every=10")],
    )
    .assert_ok_clean();
}

#[test]
fn check_every_full_preset_with_four_threads_finds_nothing() {
    run(
        "check_every_threads",
        &["20000"],
        &[("MALLOC_DEBUG", "full,check_every=50")],
    )
    .assert_ok_clean();
}
