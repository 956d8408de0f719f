//! Process-wide counters that cost nothing on the fast path (live and peak bytes, only when
//! debugging is on), and the process's count of kernel mappings for the dumps (read from the
//! kernel through `sys`, so this module sits below everything that allocates).

use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
/// Peak of live bytes (debug/log only).
pub static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Live bytes as far as the threads' batches have reached it (may dip below zero for a while
/// when one thread frees what others allocated).
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live and peak bytes are tracked only with debugging on (set at init; atomics cost).
pub static TRACK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// A thread adds its allocations to `LIVE` once its own balance moved by this much: one shared
/// atomic per ~64 KiB instead of two per call. An allocation in between raises `PEAK` to
/// `LIVE` plus the thread's own balance (two loads of lines that rarely change), so `PEAK` is
/// exact in a single thread and within this many bytes per other thread.
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
        if n > 0 {
            let v = LIVE.load(Ordering::Relaxed) + d as isize;
            if v > 0 && v as usize > PEAK.load(Ordering::Relaxed) {
                PEAK.fetch_max(v as usize, Ordering::Relaxed);
            }
        }
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

/// The kernel mappings (VMAs) of the process now, counted in /proc/self/maps (None without
/// /proc), and vm.max_map_count (None if unreadable). A count kept by our own mmap and munmap
/// calls could not be exact: a partial munmap, an mprotect or a guard region splits mappings,
/// mremap moves them and the kernel merges neighbours. Raw open/read only: dumps call this
/// from signal handlers.
pub fn kernel_mappings() -> (Option<usize>, Option<usize>) {
    (
        crate::sys::count_mappings(),
        crate::sys::read_max_map_count(),
    )
}

/// Writes `N kernel mappings (vm.max_map_count M)`, or what of it is known.
pub fn write_kernel_mappings<const N: usize>(l: &mut crate::fmt::Line<N>) {
    match kernel_mappings() {
        (Some(n), max) => {
            l.u(n as u64).s(b" kernel mappings");
            if let Some(m) = max {
                l.s(b" (vm.max_map_count ").u(m as u64).c(b')');
            }
        }
        (None, _) => {
            l.s(b"kernel mappings unknown (no /proc)");
        }
    }
}
