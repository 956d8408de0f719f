//! Live blocks whose free was refused (an interior or misaligned pointer into them, reported,
//! the program going on with `on_error=continue` or `exit:N`): the program meant to free them,
//! so the exit leak check does not list them. They stay in use (never reused: the pointer
//! given was not theirs, so the block may still be the program's).
//!
//! A fixed table of (address, allocation sequence number): a slot reused by a later allocation
//! has another sequence number and is not matched. Past `CAP` entries, further blocks are not
//! remembered (and may be listed as leaks).
//!
//! # Invariants
//! An entry's address is written after its sequence number and read before it; a reader sees
//! a complete entry or an address of 0 (not yet written).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const CAP: usize = 1024;

static USED: AtomicUsize = AtomicUsize::new(0);
static ADDR: [AtomicUsize; CAP] = [const { AtomicUsize::new(0) }; CAP];
static SEQ: [AtomicU64; CAP] = [const { AtomicU64::new(0) }; CAP];

/// Remembers the block at `user`, allocated at event `seq` (0 without history).
pub fn add(user: usize, seq: u64) {
    if contains(user, seq) {
        return;
    }
    let i = USED.fetch_add(1, Ordering::AcqRel);
    if i >= CAP {
        USED.store(CAP, Ordering::Relaxed);
        return;
    }
    SEQ[i].store(seq, Ordering::Relaxed);
    ADDR[i].store(user, Ordering::Release);
}

/// Whether the block at `user`, allocated at event `seq`, had its free refused.
pub fn contains(user: usize, seq: u64) -> bool {
    let n = USED.load(Ordering::Acquire).min(CAP);
    (0..n).any(|i| ADDR[i].load(Ordering::Acquire) == user && SEQ[i].load(Ordering::Relaxed) == seq)
}
