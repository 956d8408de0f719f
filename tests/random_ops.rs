//! Long seeded random sequences of the whole malloc family, single-threaded and with 4 threads
//! freeing each other's blocks; every block's content is checked before it is freed or resized.
//! Also under the guard modes (pool slots, page recycling of big blocks, their quarantine).

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

/// The guard modes under 4 threads: aligned allocations keep their alignment, and every block
/// keeps its content through realloc and cross-thread frees (malloc's own results follow the
/// guard modes' alignment, hence ALIGN 1).
#[test]
fn random_ops_four_threads_guard_modes() {
    for debug in [
        "guard",
        "full",
        "guard=exact",
        "full,nomarkers",
        "sample=10",
    ] {
        Run::new(compile("random_ops"))
            .args(["3", &ops(20_000), "4", "1"])
            .env("MALLOC_DEBUG", debug)
            .timeout(Duration::from_secs(600))
            .go()
            .assert_ok_clean();
    }
}
