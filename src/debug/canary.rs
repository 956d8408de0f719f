//! Canary and fill bytes.
//!
//! The canary byte at address `a` is `PATTERN[a % 8]`: eight bytes drawn at random per process
//! from 0x80..=0xFE minus the fill bytes, so never 0x00, 0xFF, printable ASCII or a fill byte —
//! a program that writes any common value one byte past its block always changes a canary.
//! Fill bytes differ from other allocators' (glibc perturb, jemalloc 0xa5/0x5a, OpenBSD
//! 0xdb/0xdf, mimalloc 0xd0/0xdf, bionic 0xeb/0xef), so a pattern in a crash dump names us.

use core::sync::atomic::{AtomicU64, Ordering};

pub const ALLOC_FILL: u8 = 0xCE;
pub const FREE_FILL: u8 = 0xDE;

static PATTERN: AtomicU64 = AtomicU64::new(0xA5B6C7D8E9F18293);

/// Draws the per-process pattern (init).
pub fn init(seed: u64) {
    let mut p = [0u8; 8];
    let mut s = seed;
    for b in p.iter_mut() {
        loop {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 0x80 + ((s >> 33) % 0x7F) as u8; // 0x80..=0xFE
            if v != ALLOC_FILL && v != FREE_FILL {
                *b = v;
                break;
            }
        }
    }
    PATTERN.store(u64::from_le_bytes(p), Ordering::Relaxed);
}

/// The canary bytes of an 8-aligned word (`byte_at(a + i)` is its byte `i`, little-endian).
#[inline]
pub fn word() -> u64 {
    PATTERN.load(Ordering::Relaxed)
}

#[inline]
pub fn byte_at(addr: usize) -> u8 {
    PATTERN.load(Ordering::Relaxed).to_le_bytes()[addr & 7]
}

/// Writes canary bytes over `[from, to)`. The pattern repeats every 8 bytes of address, so the
/// 8-aligned middle of the range is written a word at a time.
/// # Safety
/// The range is writable memory of ours.
pub unsafe fn write(from: usize, to: usize) {
    let word = PATTERN.load(Ordering::Relaxed);
    let pat = word.to_le_bytes();
    let mut a = from;
    while a < to && a & 7 != 0 {
        // SAFETY: a lies in the caller's range.
        unsafe { *(a as *mut u8) = pat[a & 7] };
        a += 1;
    }
    while a + 8 <= to {
        // SAFETY: in the caller's range and 8-aligned.
        unsafe { *(a as *mut u64) = word };
        a += 8;
    }
    while a < to {
        // SAFETY: a lies in the caller's range.
        unsafe { *(a as *mut u8) = pat[a & 7] };
        a += 1;
    }
}

/// First address in `[from, to)` whose canary byte was changed (word at a time where aligned).
/// # Safety
/// The range is readable memory of ours.
pub unsafe fn check(from: usize, to: usize) -> Option<usize> {
    let word = PATTERN.load(Ordering::Relaxed);
    let pat = word.to_le_bytes();
    let mut a = from;
    while a < to && a & 7 != 0 {
        // SAFETY: a lies in the caller's range.
        if unsafe { *(a as *const u8) } != pat[a & 7] {
            return Some(a);
        }
        a += 1;
    }
    while a + 8 <= to {
        // SAFETY: in the caller's range and 8-aligned.
        if unsafe { *(a as *const u64) } != word {
            break; // the byte loop below finds which byte
        }
        a += 8;
    }
    while a < to {
        // SAFETY: a lies in the caller's range.
        if unsafe { *(a as *const u8) } != pat[a & 7] {
            return Some(a);
        }
        a += 1;
    }
    None
}

/// First address in `[from, to)` that does not hold `byte`.
/// # Safety
/// The range is readable memory of ours.
pub unsafe fn check_fill(from: usize, to: usize, byte: u8) -> Option<usize> {
    let mut a = from;
    // Word at a time where aligned.
    let word = u64::from_ne_bytes([byte; 8]);
    while a < to && a & 7 != 0 {
        // SAFETY: in range.
        if unsafe { *(a as *const u8) } != byte {
            return Some(a);
        }
        a += 1;
    }
    while a + 8 <= to {
        // SAFETY: in range and 8-aligned.
        if unsafe { *(a as *const u64) } != word {
            break;
        }
        a += 8;
    }
    while a < to {
        // SAFETY: in range.
        if unsafe { *(a as *const u8) } != byte {
            return Some(a);
        }
        a += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Both tests change the process-wide pattern: they must not run at the same time.
    static PATTERN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn pattern_avoids_common_bytes() {
        let _g = PATTERN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for seed in 0..2000u64 {
            init(seed);
            for a in 0..8 {
                let b = byte_at(a);
                assert!(b >= 0x80 && b != 0xFF && b != ALLOC_FILL && b != FREE_FILL);
            }
        }
    }
    #[test]
    fn detects_change() {
        let _g = PATTERN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        init(7);
        let mut buf = [0u8; 40];
        let (f, t) = (
            buf.as_mut_ptr() as usize + 3,
            buf.as_mut_ptr() as usize + 37,
        );
        // SAFETY: inside buf.
        unsafe {
            write(f, t);
            assert_eq!(check(f, t), None);
            *((f + 5) as *mut u8) = b'Z';
            assert_eq!(check(f, t), Some(f + 5));
            write(f, t);
            *((f + 21) as *mut u8) = 0;
            assert_eq!(check(f, t), Some(f + 21));
            write(f, t);
            *((t - 1) as *mut u8) = 0xFF;
            assert_eq!(check(f, t), Some(t - 1));
        }
        let fillb = [FREE_FILL; 33];
        let s = fillb.as_ptr() as usize;
        // SAFETY: inside fillb.
        unsafe { assert_eq!(check_fill(s, s + 33, FREE_FILL), None) };
    }
}
