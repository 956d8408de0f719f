//! Long seeded random sequences of the whole malloc family, single-threaded and with 4 threads
//! freeing each other's blocks; every block's content is checked before it is freed or resized.

mod common;

use common::{Run, compile};
use std::time::Duration;

/// Operations per thread: fewer with an unoptimised (debug profile) library.
fn ops(release: u64) -> String {
    if cfg!(debug_assertions) {
        release / 4
    } else {
        release
    }
    .to_string()
}

fn random_ops(seed: &str, ops_per_thread: &str, threads: &str) {
    Run::new(compile("random_ops"))
        .args([seed, ops_per_thread, threads])
        .timeout(Duration::from_secs(600))
        .go()
        .assert_ok_clean();
}

#[test]
fn random_ops_single_thread() {
    random_ops("1", &ops(2_000_000), "1");
}

#[test]
fn random_ops_four_threads() {
    random_ops("2", &ops(500_000), "4");
}
