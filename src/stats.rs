//! Process-wide counters that cost nothing on the fast path (mapping count; call counts only
//! when debugging is on).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Mappings we created and have not unmapped (for the vm.max_map_count budget).
pub static MAPS: AtomicUsize = AtomicUsize::new(0);
/// Peak of live bytes (debug/log only).
pub static PEAK: AtomicUsize = AtomicUsize::new(0);
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Calls per entry point, indexed by `Op` (debug/log only).
pub static CALLS: [AtomicU64; 15] = [const { AtomicU64::new(0) }; 15];

pub fn count(op: crate::block::Op) {
    CALLS[op as usize].fetch_add(1, Ordering::Relaxed);
}

/// Live and peak bytes are tracked only with debugging on (set at init; atomics cost).
pub static TRACK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn add_live(n: usize) {
    if !TRACK.load(Ordering::Relaxed) {
        return;
    }
    let v = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(v, Ordering::Relaxed);
}

pub fn sub_live(n: usize) {
    if !TRACK.load(Ordering::Relaxed) {
        return;
    }
    LIVE.fetch_sub(n, Ordering::Relaxed);
}
