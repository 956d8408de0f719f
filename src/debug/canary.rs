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

/// The canary bytes as an unaligned word load at `a` reads them (the pattern rotated to `a`).
#[inline(always)]
fn pattern_at(word: u64, a: usize) -> u64 {
    word.rotate_right(8 * (a & 7) as u32)
}

/// Offset of the first byte that differs in `d` (two words XORed, d != 0; little-endian).
#[inline(always)]
fn first_byte(d: u64) -> usize {
    (d.trailing_zeros() / 8) as usize
}

/// Writes canary bytes over `[from, to)`. The pattern repeats every 8 bytes of address: a
/// range of 8 bytes or more takes an unaligned word at each end and aligned words between
/// (overlapping stores write the same bytes), a shorter one byte by byte.
/// # Safety
/// The range is writable memory of ours.
#[inline]
pub unsafe fn write(from: usize, to: usize) {
    let word = PATTERN.load(Ordering::Relaxed);
    if to <= from {
        return;
    }
    if to - from < 8 {
        let pat = word.to_le_bytes();
        for a in from..to {
            // SAFETY: a lies in the caller's range.
            unsafe { *(a as *mut u8) = pat[a & 7] };
        }
        return;
    }
    // SAFETY: [from, from + 8) and [to - 8, to) lie in the caller's range (8 bytes or more).
    unsafe {
        core::ptr::write_unaligned(from as *mut u64, pattern_at(word, from));
        core::ptr::write_unaligned((to - 8) as *mut u64, pattern_at(word, to - 8));
    }
    let mut a = (from & !7) + 8;
    while a + 8 <= to {
        // SAFETY: from < a, a + 8 <= to, and a is 8-aligned.
        unsafe { *(a as *mut u64) = word };
        a += 8;
    }
}

/// First address in `[from, to)` whose canary byte was changed. Words as in `write`, checked
/// in address order (bytes a word shares with the one before were found intact there), so
/// the first difference found is the lowest.
/// # Safety
/// The range is readable memory of ours.
#[inline]
pub unsafe fn check(from: usize, to: usize) -> Option<usize> {
    let word = PATTERN.load(Ordering::Relaxed);
    if to <= from {
        return None;
    }
    if to - from < 8 {
        let pat = word.to_le_bytes();
        // SAFETY: a lies in the caller's range.
        return (from..to).find(|&a| unsafe { *(a as *const u8) } != pat[a & 7]);
    }
    // SAFETY: in the caller's range (8 bytes or more).
    let d = unsafe { core::ptr::read_unaligned(from as *const u64) } ^ pattern_at(word, from);
    if d != 0 {
        return Some(from + first_byte(d));
    }
    let mut a = (from & !7) + 8;
    while a + 8 <= to {
        // SAFETY: from < a, a + 8 <= to, and a is 8-aligned.
        let d = unsafe { *(a as *const u64) } ^ word;
        if d != 0 {
            return Some(a + first_byte(d));
        }
        a += 8;
    }
    let t = to - 8;
    // SAFETY: in the caller's range.
    let d = unsafe { core::ptr::read_unaligned(t as *const u64) } ^ pattern_at(word, t);
    (d != 0).then(|| t + first_byte(d))
}

/// First address in `[from, to)` that does not hold `byte`: words as in `check`, four at a
/// time in the aligned middle.
/// # Safety
/// The range is readable memory of ours.
#[inline]
pub unsafe fn check_fill(from: usize, to: usize, byte: u8) -> Option<usize> {
    if to <= from {
        return None;
    }
    if to - from < 8 {
        // SAFETY: a lies in the caller's range.
        return (from..to).find(|&a| unsafe { *(a as *const u8) } != byte);
    }
    let word = u64::from_ne_bytes([byte; 8]);
    // SAFETY: in the caller's range (8 bytes or more).
    let d = unsafe { core::ptr::read_unaligned(from as *const u64) } ^ word;
    if d != 0 {
        return Some(from + first_byte(d));
    }
    let mut a = (from & !7) + 8;
    while a + 32 <= to {
        // SAFETY: from < a, a + 32 <= to, and a is 8-aligned.
        let any = unsafe {
            let w = a as *const u64;
            (*w ^ word) | (*w.add(1) ^ word) | (*w.add(2) ^ word) | (*w.add(3) ^ word)
        };
        if any != 0 {
            break; // the word loop below finds which byte
        }
        a += 32;
    }
    while a + 8 <= to {
        // SAFETY: from < a, a + 8 <= to, and a is 8-aligned.
        let d = unsafe { *(a as *const u64) } ^ word;
        if d != 0 {
            return Some(a + first_byte(d));
        }
        a += 8;
    }
    let t = to - 8;
    // SAFETY: in the caller's range.
    let d = unsafe { core::ptr::read_unaligned(t as *const u64) } ^ word;
    (d != 0).then(|| t + first_byte(d))
}

/// Fills `[p, p + n)` with `byte`. Up to `INLINE_FILL` bytes the stores are written here,
/// 16 bytes at a time (any alignment) with an overlapping last store (no call, no size
/// dispatch: most blocks are small); longer ranges go to `memset`.
/// # Safety
/// The range is writable memory of ours.
#[inline(always)]
pub unsafe fn fill(p: usize, n: usize, byte: u8) {
    const INLINE_FILL: usize = 256;
    let w = u64::from_ne_bytes([byte; 8]);
    // SAFETY: every store of every arm lies in [p, p + n), per the caller.
    unsafe {
        if n > INLINE_FILL {
            core::ptr::write_bytes(p as *mut u8, byte, n);
        } else if n >= 16 {
            let v = [w, w];
            let mut a = p;
            while a + 16 < p + n {
                core::ptr::write_unaligned(a as *mut [u64; 2], v);
                // Keeps the loop a loop (the compiler would make it a memset call again).
                core::arch::asm!("", options(nostack, preserves_flags));
                a += 16;
            }
            core::ptr::write_unaligned((p + n - 16) as *mut [u64; 2], v);
        } else if n >= 8 {
            core::ptr::write_unaligned(p as *mut u64, w);
            core::ptr::write_unaligned((p + n - 8) as *mut u64, w);
        } else if n >= 4 {
            core::ptr::write_unaligned(p as *mut u32, w as u32);
            core::ptr::write_unaligned((p + n - 4) as *mut u32, w as u32);
        } else {
            for a in p..p + n {
                *(a as *mut u8) = byte;
            }
        }
    }
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
    /// Every start offset and length up to 70 bytes: `write` writes exactly the canary bytes
    /// of the range, `check` and `check_fill` find the first changed byte wherever it is, and
    /// `fill` writes exactly its range.
    #[test]
    fn word_paths_match_bytes() {
        let _g = PATTERN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        init(11);
        let mut buf = [0u8; 96];
        let base = buf.as_mut_ptr() as usize;
        for off in 0..16 {
            for len in 0..70 {
                let (f, t) = (base + 8 + off, base + 8 + off + len);
                buf.fill(0x11);
                // SAFETY: inside buf.
                unsafe {
                    write(f, t);
                    for a in base..base + 96 {
                        let want = if (f..t).contains(&a) {
                            byte_at(a)
                        } else {
                            0x11
                        };
                        assert_eq!(*(a as *const u8), want, "write off {off} len {len}");
                    }
                    assert_eq!(check(f, t), None);
                    for bad in (f..t).rev() {
                        *(bad as *mut u8) ^= 0x40;
                        assert_eq!(check(f, t), Some(bad));
                    }
                    buf.fill(0x11);
                    fill(f, len, FREE_FILL);
                    for a in base..base + 96 {
                        let want = if (f..t).contains(&a) { FREE_FILL } else { 0x11 };
                        assert_eq!(*(a as *const u8), want, "fill off {off} len {len}");
                    }
                    assert_eq!(check_fill(f, t, FREE_FILL), None);
                    for bad in (f..t).rev() {
                        *(bad as *mut u8) = 0;
                        assert_eq!(check_fill(f, t, FREE_FILL), Some(bad));
                    }
                }
            }
        }
        let mut big = vec![0u8; 1000];
        let b = big.as_mut_ptr() as usize;
        // SAFETY: inside big.
        unsafe {
            fill(b + 3, 990, ALLOC_FILL);
            assert_eq!(check_fill(b + 3, b + 993, ALLOC_FILL), None);
            assert_eq!((big[2], big[993]), (0, 0));
        }
    }
}
