//! LARGE blocks made without the lock, for a signal handler that interrupted its thread
//! inside the `LARGE` lock: a few descriptors set aside (`SPARE`) while the lock is held, the
//! block made with one of them (`alloc_loose`), and its adoption on the live list by the next
//! holder of the lock (`adopt_loose`).
//!
//! # Invariants
//! - `alloc_loose` takes a descriptor from `SPARE`, puts it on `LOOSE` (linked through `next`,
//!   marked `loose`) before entering it in the page map; the next holder of the lock puts it
//!   on the live list (`adopt_loose`) before touching any descriptor.

use super::desc::{Large, MAX_PIECES};
use super::state::LargeState;
use crate::block::DebugMeta;
use crate::pagemap;
use crate::sys;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Descriptors set aside for `alloc_loose`, which cannot take the slab's free list.
static SPARE: [AtomicPtr<Large>; 4] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 4];
/// Blocks made by `alloc_loose`, not yet on the live list (linked through `next`).
static LOOSE: AtomicPtr<Large> = AtomicPtr::new(core::ptr::null_mut());

/// Whether blocks made by `alloc_loose` wait for `adopt_loose`.
#[inline]
pub fn has_loose() -> bool {
    !LOOSE.load(Ordering::Relaxed).is_null()
}

/// Pushes a descriptor on `LOOSE` (lock-free: any thread's signal handler may push; only
/// `adopt_loose` takes, all at once).
fn push_loose(d: *mut Large) {
    let mut head = LOOSE.load(Ordering::Relaxed);
    loop {
        // SAFETY: a descriptor only the caller holds until the exchange below publishes it.
        unsafe { (*d).next = head };
        match LOOSE.compare_exchange_weak(head, d, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

impl LargeState {
    /// Puts the blocks `alloc_loose` made on the live list (and in the counts). Called by
    /// every path that reaches a descriptor through the page map, before it touches it.
    #[inline]
    pub fn adopt_loose(&mut self) {
        if has_loose() {
            self.adopt_loose_slow();
        }
    }

    #[cold]
    fn adopt_loose_slow(&mut self) {
        let mut d = LOOSE.swap(core::ptr::null_mut(), Ordering::Acquire);
        while !d.is_null() {
            // SAFETY: descriptors on LOOSE were written by `alloc_loose` and are only ever
            // taken off the list here, under the lock.
            unsafe {
                let next = (*d).next;
                if (*d).user == 0 {
                    // Its mapping failed to enter the page map: the descriptor comes back.
                    self.release_desc(d);
                } else {
                    (*d).loose = false;
                    (*d).prev = core::ptr::null_mut();
                    (*d).next = self.live;
                    if !self.live.is_null() {
                        (*self.live).prev = d;
                    }
                    self.live = d;
                    self.live_bytes += (*d).size;
                    self.live_count += 1;
                    self.mapped_bytes += (*d).map_len;
                }
                d = next;
            }
        }
    }

    /// Keeps `SPARE` filled, so a block can be made without the lock.
    pub(super) fn refill_spares(&mut self) {
        for s in SPARE.iter() {
            if s.load(Ordering::Relaxed).is_null() {
                let Some(d) = self.new_desc() else {
                    return;
                };
                if s.compare_exchange(
                    core::ptr::null_mut(),
                    d,
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_err()
                {
                    self.release_desc(d);
                }
            }
        }
    }

    /// A LARGE block made without the lock, for a signal handler that interrupted this thread
    /// inside it: a fresh mapping (no cache), laid out as `alloc` does, with a descriptor from
    /// `SPARE`, put on `LOOSE` and in the page map. The caller marks the lock so that its
    /// release adopts the block. None when no descriptor is set aside or the kernel refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn alloc_loose(
        size: usize,
        align: usize,
        front: usize,
        tail: usize,
        guard: usize,
        op: crate::block::Op,
        dbg: DebugMeta,
        state: u8,
    ) -> Option<*mut Large> {
        let page = sys::page_size();
        let extra_align = if align > page { align } else { 0 };
        let need = front
            .checked_add(size)?
            .checked_add(tail)?
            .checked_add(extra_align)?;
        let usable = sys::page_round(need)?;
        let map_len = usable.checked_add(guard)?;
        if map_len > isize::MAX as usize {
            return None;
        }
        let d = SPARE
            .iter()
            .map(|s| s.swap(core::ptr::null_mut(), Ordering::Acquire))
            .find(|d| !d.is_null())?;
        let Some(base) = sys::map(map_len) else {
            // Back to a free spare slot (one is: we just emptied one), else kept on LOOSE as
            // a failed block for the next holder to take back.
            if !SPARE.iter().any(|s| {
                s.compare_exchange(
                    core::ptr::null_mut(),
                    d,
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            }) {
                // SAFETY: a spare descriptor only this call holds.
                unsafe { (*d).user = 0 };
                push_loose(d);
            }
            return None;
        };
        let base = base as usize;
        if guard > 0 {
            // SAFETY: the region behind is the tail of the mapping just made.
            unsafe { super::region::close(base + usable, guard) };
        }
        let a = align.max(16);
        let user = (base + front + a - 1) & !(a - 1);
        // SAFETY: a spare descriptor only this call holds.
        unsafe {
            d.write(Large {
                map_base: base,
                map_len,
                usable_len: usable,
                lo: base,
                guarded: crate::block::GuardAt::No,
                user,
                size,
                align,
                state,
                origin: op as u8,
                dirty: false,
                seams: [0; MAX_PIECES],
                vmas: 0,
                loose: true,
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
                dbg,
            })
        };
        // On LOOSE before the page map names it: whoever finds it there adopts it first.
        push_loose(d);
        if !pagemap::set_range(base, map_len, pagemap::large_entry(d as usize)) {
            pagemap::clear_range(base, map_len);
            // SAFETY: our mapping, never handed out; the descriptor is taken back on adoption.
            unsafe {
                sys::unmap(base as *mut u8, map_len);
                (*d).user = 0;
            }
            return None;
        }
        Some(d)
    }
}
