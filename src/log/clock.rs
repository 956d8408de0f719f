//! Event times: nanoseconds since the log started (`START_NS`), read from the TSC where it is
//! invariant (x86_64), else from the vDSO clock.

use crate::sys;
use core::sync::atomic::AtomicU64;
#[cfg(target_arch = "x86_64")]
use core::sync::atomic::{AtomicBool, Ordering};

/// CLOCK_MONOTONIC at start (event times are relative to it).
pub(super) static START_NS: AtomicU64 = AtomicU64::new(0);

/// TSC clock for event times (x86_64 with an invariant TSC): `rdtsc` costs ~11 ns where the
/// vDSO clock costs ~29 ns here. Calibrated lazily against CLOCK_MONOTONIC: events use the vDSO
/// clock until 10 ms have passed since init, then the TSC scaled by the rate measured over
/// that span (no start-up delay). 0 in `TSC_MULT`: not calibrated (yet).
#[cfg(target_arch = "x86_64")]
static TSC0: AtomicU64 = AtomicU64::new(0);
#[cfg(target_arch = "x86_64")]
static TSC_NS0: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, 32.32 fixed point.
#[cfg(target_arch = "x86_64")]
static TSC_MULT: AtomicU64 = AtomicU64::new(0);
#[cfg(target_arch = "x86_64")]
static TSC_OK: AtomicBool = AtomicBool::new(false);

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Records the calibration start if the CPU says its TSC is invariant.
#[cfg(target_arch = "x86_64")]
pub(super) fn start_tsc() {
    // (`__cpuid` is a safe function in recent Rust releases, an unsafe one in older ones.)
    #[allow(unused_unsafe)]
    // SAFETY: cpuid is available on every x86_64 CPU; leaf 0x80000007 is checked before it is
    // read.
    let invariant = unsafe {
        core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
            && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
    };
    if invariant {
        TSC_NS0.store(sys::now_ns(), Ordering::Relaxed);
        TSC0.store(rdtsc(), Ordering::Relaxed);
        TSC_OK.store(true, Ordering::Release);
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn start_tsc() {}

/// Monotonic nanoseconds for event records.
#[inline]
pub(super) fn clock_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let m = TSC_MULT.load(Ordering::Relaxed);
        if m != 0 {
            let d = rdtsc().wrapping_sub(TSC0.load(Ordering::Relaxed));
            return TSC_NS0.load(Ordering::Relaxed) + ((d as u128 * m as u128) >> 32) as u64;
        }
        let now = sys::now_ns();
        if TSC_OK.load(Ordering::Acquire) {
            let ns0 = TSC_NS0.load(Ordering::Relaxed);
            let c0 = TSC0.load(Ordering::Relaxed);
            if now.wrapping_sub(ns0) >= 10_000_000 {
                let c = rdtsc();
                if c > c0 {
                    let mult = (((now - ns0) as u128) << 32) / (c - c0) as u128;
                    TSC_MULT.store(mult as u64, Ordering::Relaxed);
                }
            }
        }
        now
    }
    #[cfg(not(target_arch = "x86_64"))]
    sys::now_ns()
}
