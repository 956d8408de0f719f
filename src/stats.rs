//! Process-wide counters that cost nothing on the fast path (mapping count; call counts only
//! when debugging is on).

use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Mappings we created and have not unmapped (for the vm.max_map_count budget).
pub static MAPS: AtomicUsize = AtomicUsize::new(0);
/// Peak of live bytes (debug/log only).
pub static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Live bytes as far as the threads' batches have reached it (may dip below zero for a while
/// when one thread frees what others allocated).
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live and peak bytes are tracked only with debugging on (set at init; atomics cost).
pub static TRACK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// A thread adds its allocations to `LIVE` once its own balance moved by this much: one shared
/// atomic per ~64 KiB instead of two per call. `PEAK` is therefore exact to within this many
/// bytes per thread.
const LIVE_BATCH: i64 = 64 << 10;

#[inline]
fn live_move(n: i64) {
    let st = crate::tls::state();
    // SAFETY: our own TLS block.
    let d = unsafe {
        (*st).live_delta += n;
        (*st).live_delta
    };
    if (-LIVE_BATCH..LIVE_BATCH).contains(&d) {
        return;
    }
    // SAFETY: as above.
    unsafe { (*st).live_delta = 0 };
    let v = LIVE.fetch_add(d as isize, Ordering::Relaxed) + d as isize;
    if d > 0 && v > 0 {
        PEAK.fetch_max(v as usize, Ordering::Relaxed);
    }
}

pub fn add_live(n: usize) {
    if !TRACK.load(Ordering::Relaxed) {
        return;
    }
    live_move(n as i64);
}

pub fn sub_live(n: usize) {
    if !TRACK.load(Ordering::Relaxed) {
        return;
    }
    live_move(-(n as i64));
}
