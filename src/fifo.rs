//! A bounded FIFO ring of `(address, value)` pairs that keeps the total weight of its entries,
//! under the quarantine of freed blocks (`debug::quarantine`) and the address-space quarantine
//! of freed guarded blocks (`guard::ring`). This file owns the head/length/weight arithmetic
//! only: the storage is the owner's (`Slots`: an inline array, or entries mapped on first use),
//! so is the weight of an entry (`Weigh`, from its value), and so are the policies (budgets,
//! eviction). Nothing here allocates or locks (the owner keeps the ring under its lock), and
//! it names no other module of the crate.
//!
//! # Invariants
//! `head < CAP`, `len <= CAP` (0 while there is no storage), and `weight` is the sum of the
//! weights of the `len` entries from `head` on (modulo `CAP`).

use core::marker::PhantomData;

/// Where a ring's entries live: `CAP` of them, or none yet (empty slices) for storage that is
/// made on first use.
pub trait Slots {
    const CAP: usize;
    fn slots(&self) -> &[(usize, usize)];
    fn slots_mut(&mut self) -> &mut [(usize, usize)];
}

impl<const N: usize> Slots for [(usize, usize); N] {
    const CAP: usize = N;
    #[inline]
    fn slots(&self) -> &[(usize, usize)] {
        self
    }
    #[inline]
    fn slots_mut(&mut self) -> &mut [(usize, usize)] {
        self
    }
}

/// The weight an entry adds to its ring's total, from its value.
pub trait Weigh {
    fn weigh(value: usize) -> usize;
}

pub struct Ring<S, W> {
    slots: S,
    head: usize,
    len: usize,
    weight: usize,
    _w: PhantomData<W>,
}

impl<S: Slots, W: Weigh> Ring<S, W> {
    pub const fn new(slots: S) -> Self {
        Ring {
            slots,
            head: 0,
            len: 0,
            weight: 0,
            _w: PhantomData,
        }
    }

    /// The storage, for an owner that provides it late (a mapping made on first use).
    #[inline]
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.slots
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == S::CAP
    }

    /// The sum of the entries' weights.
    #[inline]
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Appends at the newest end; false (nothing changed) when the ring is full or has no
    /// storage.
    #[inline]
    pub fn push(&mut self, addr: usize, value: usize) -> bool {
        let s = self.slots.slots_mut();
        if s.is_empty() || self.len == S::CAP {
            return false;
        }
        s[(self.head + self.len) % S::CAP] = (addr, value);
        self.len += 1;
        self.weight += W::weigh(value);
        true
    }

    /// Takes the oldest entry.
    #[inline]
    pub fn pop(&mut self) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        let e = self.slots.slots()[self.head];
        self.head = (self.head + 1) % S::CAP;
        self.len -= 1;
        self.weight -= W::weigh(e.1);
        Some(e)
    }

    /// The entries, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let s = self.slots.slots();
        (0..self.len).map(move |i| s[(self.head + i) % S::CAP])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Min16;
    impl Weigh for Min16 {
        fn weigh(v: usize) -> usize {
            v.max(16)
        }
    }

    #[test]
    fn fifo_order_weight_and_wrap() {
        let mut r: Ring<[(usize, usize); 3], Min16> = Ring::new([(0, 0); 3]);
        assert!(r.is_empty() && r.pop().is_none());
        assert!(r.push(1, 8) && r.push(2, 100) && r.push(3, 20));
        assert!(r.is_full() && !r.push(4, 1));
        assert_eq!(r.weight(), 16 + 100 + 20);
        assert_eq!(r.pop(), Some((1, 8)));
        assert!(r.push(4, 32));
        assert_eq!(r.iter().collect::<Vec<_>>(), [(2, 100), (3, 20), (4, 32)]);
        assert_eq!(r.weight(), 100 + 20 + 32);
        assert_eq!(
            (r.pop(), r.pop(), r.pop()),
            (Some((2, 100)), Some((3, 20)), Some((4, 32)))
        );
        assert_eq!((r.len(), r.weight()), (0, 0));
    }

    struct Late(Option<[(usize, usize); 2]>);
    impl Slots for Late {
        const CAP: usize = 2;
        fn slots(&self) -> &[(usize, usize)] {
            self.0.as_ref().map_or(&[], |a| a)
        }
        fn slots_mut(&mut self) -> &mut [(usize, usize)] {
            self.0.as_mut().map_or(&mut [], |a| a)
        }
    }

    #[test]
    fn storage_made_late() {
        let mut r: Ring<Late, Min16> = Ring::new(Late(None));
        assert!(!r.is_full() && !r.push(1, 1) && r.pop().is_none());
        r.storage_mut().0 = Some([(0, 0); 2]);
        assert!(r.push(1, 1) && r.push(2, 2) && !r.push(3, 3));
        assert_eq!((r.pop(), r.weight()), (Some((1, 1)), 16));
    }
}
