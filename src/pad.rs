//! `Padded<T>`: a value alone on its cache lines (128 bytes: two 64-byte lines, since x86
//! processors fetch lines in adjacent pairs). For statics that several threads write on every
//! call (the event sequence counter, the arenas, the quarantine shards): beside each other or
//! beside values that other threads only read, each write would take the line away from the
//! threads that read its neighbours. And `prefetch`: a cache line asked for ahead of its use.

/// `T` on 128-byte-aligned lines of its own; derefs to `T`.
#[repr(C, align(128))]
pub struct Padded<T>(pub T);

impl<T> core::ops::Deref for Padded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Asks for the cache line of `p` ahead of its use (a hint: nothing happens where nothing is
/// mapped).
#[inline(always)]
pub fn prefetch(p: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::Padded;

    #[test]
    fn neighbours_do_not_share_a_line() {
        let v = [Padded(0u8), Padded(1u8)];
        let a = &v[0] as *const _ as usize;
        let b = &v[1] as *const _ as usize;
        assert_eq!(a % 128, 0);
        assert_eq!(b - a, 128);
        assert_eq!(*v[1], 1);
    }
}
