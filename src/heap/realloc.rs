//! realloc and malloc_usable_size: a block resized in place when it still fits its slot or
//! mapping (LARGE blocks grow with mremap; guarded ones move inside their mapping), its
//! canaries and fill rewritten after the unlock (`Allocating` until then); else moved to a new
//! block with headroom for the next growth.

use super::alloc::allocate_cap;
use super::defer::defer_free;
use super::free::{deallocate_call, debug_checks};
use super::lookup::{Held, NotHeld, freed_large, hold, peek, with_history};
use crate::block::{ALLOCATING, Info, Kind, Op, State, publish_state};
use crate::config;
use crate::debug::dress::Dress;
use crate::debug::layout::layout;
use crate::report::{self, Bad};
use crate::size_class::{SMALL_MAX, class_of};
use crate::sys;

/// realloc: `p` may be null (malloc) and `n` may be 0 (free).
#[inline]
pub(super) fn reallocate_call(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    if p == 0 {
        return allocate_cap(n, n, 0, op, caller, false);
    }
    if n == 0 {
        deallocate_call(p, op, caller, 0);
        return core::ptr::null_mut();
    }
    let cfg = config::get();
    if n > isize::MAX as usize {
        if cfg.enabled {
            report::absurd_size(op, n, caller);
        }
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    let lay = layout();
    let held = match hold(p) {
        Ok(h) => h,
        Err(NotHeld::Busy) => return realloc_reentered(p, n, op, caller),
        Err(NotHeld::Bad(bad, info)) => {
            // A LARGE block freed for good was there: a realloc of a freed block.
            if bad == Bad::NotOurs
                && info.is_none()
                && cfg.enabled
                && let Some(first) = freed_large(p)
            {
                report::bad_pointer(op, p, Bad::DoubleFree, Some(&first), caller);
                return core::ptr::null_mut();
            }
            report::bad_pointer(op, p, bad, info.map(with_history).as_ref(), caller);
            return core::ptr::null_mut();
        }
    };
    let info = held.info();
    if cfg.enabled {
        if let Some(bad) = debug_checks(&info, op, 0) {
            drop(held);
            report::bad_block(op, p, bad, &with_history(info), caller);
            return core::ptr::null_mut();
        }
        if info.guarded.is_guarded() {
            if let Held::Large(mut l, d, _) = held {
                // SAFETY: d is a used guarded descriptor under the LARGE lock.
                if let Some(q) = unsafe { crate::guard::resize(&mut l, d, n) } {
                    // SAFETY: as above; its canaries move with it (ALLOCATING until then).
                    let (lo, hi) = unsafe {
                        (*d).state = ALLOCATING;
                        ((*d).lo, (*d).map_base + (*d).usable_len)
                    };
                    drop(l);
                    // SAFETY: [lo, hi) is the accessible part of the block's own mapping.
                    unsafe {
                        Dress::guarded(lo, hi, q, n).resized(info.size);
                        publish_state(&raw mut (*d).state, State::Used);
                    }
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                    return q as *mut u8;
                }
            }
            return move_block(p, &info, n, op, caller);
        }
    }
    match held {
        Held::Zone(mut a, z, idx, info) => {
            let room = info.slot_end - info.user - lay.tail;
            // SAFETY: z is live under the lock.
            let class = unsafe { (*z).class as usize };
            let need = (info.user - info.slot) + n + lay.tail;
            if n <= room && (need > SMALL_MAX || class_of(need) == class || n * 2 > room) {
                // SAFETY: used slot of z under the lock; with debugging on its tail canary
                // moves after the unlock (ALLOCATING until then).
                let state = unsafe {
                    let m = (*z).meta(idx);
                    m.size = n as u16;
                    if cfg.enabled {
                        m.state = ALLOCATING;
                    }
                    &raw mut m.state
                };
                a.live_bytes = a.live_bytes - info.size + n;
                drop(a);
                if cfg.enabled {
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                }
                if cfg.enabled {
                    // SAFETY: the slot is ours; the tail moves with the new size. Then the
                    // state of our block, live in its zone. (Without debugging there is
                    // nothing to dress.)
                    unsafe {
                        Dress::zone(info.slot, info.slot_end, p, n, false)
                            .tail_only()
                            .resized(usable_from(&info));
                        publish_state(state, State::Used);
                    }
                }
                return p as *mut u8;
            }
            drop(a);
            move_block(p, &info, n, op, caller)
        }
        Held::Large(mut l, d, info) => {
            if lay.front == 0 && lay.tail == 0 && n > SMALL_MAX / 2 {
                // SAFETY: d is a used descriptor without front offset or guard.
                if let Some(q) = unsafe { l.resize(d, n, 0) } {
                    if cfg.enabled {
                        crate::stats::sub_live(info.size);
                        crate::stats::add_live(n);
                    }
                    return q as *mut u8;
                }
            } else if n > SMALL_MAX / 2 && n + lay.tail.max(8) <= info.slot_end - info.user {
                // Debugging on: the block still fits its mapping (before the guard region).
                // SAFETY: d is a used descriptor under the LARGE lock.
                unsafe {
                    (*d).size = n;
                    (*d).state = ALLOCATING;
                }
                l.live_bytes = l.live_bytes - info.size + n;
                drop(l);
                crate::stats::sub_live(info.size);
                crate::stats::add_live(n);
                // SAFETY: the mapping up to slot_end is ours and accessible.
                unsafe {
                    Dress::large(info.slot, info.slot_end, p, n)
                        .tail_only()
                        .resized(usable_from(&info));
                    publish_state(&raw mut (*d).state, State::Used);
                }
                return p as *mut u8;
            } else if n > info.size && n > SMALL_MAX / 2 && !info.guarded.is_guarded() {
                // Debugging on, the block must grow past its mapping: move its pages with
                // mremap (no copy, no new page faults). No headroom: the region behind must
                // start right after the block's last page.
                let tail = lay.tail.max(8);
                // SAFETY: d is a used unguarded descriptor under the LARGE lock.
                if let Some(q) = unsafe { l.grow_with_region(d, n, tail) } {
                    // SAFETY: as above.
                    let (base, end) = unsafe {
                        (*d).state = ALLOCATING;
                        ((*d).map_base, (*d).map_base + (*d).usable_len)
                    };
                    drop(l);
                    crate::stats::sub_live(info.size);
                    crate::stats::add_live(n);
                    // SAFETY: the block's accessible range [q, end) is ours.
                    unsafe {
                        Dress::large(base, end, q, n)
                            .tail_only()
                            .resized(usable_from(&info));
                        publish_state(&raw mut (*d).state, State::Used);
                    }
                    return q as *mut u8;
                }
            }
            drop(l);
            move_block(p, &info, n, op, caller)
        }
    }
}

/// realloc of a block whose lock `enter` refused (a signal handler interrupted this thread
/// inside the allocator): the block moves to a new one (another arena, or a mapping of its
/// own) and the old one is freed once the interrupted code holds no lock.
fn realloc_reentered(p: usize, n: usize, op: Op, caller: usize) -> *mut u8 {
    let info = match peek(p) {
        Ok(i) => i,
        Err((bad, info)) => {
            report::bad_pointer(op, p, bad, info.as_ref(), caller);
            return core::ptr::null_mut();
        }
    };
    let q = allocate_cap(n, n, 0, op, caller, false);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live, the old one `usable_from` bytes long and the new one n;
    // they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q, usable_from(&info).min(n)) };
    defer_free(p, op, caller);
    q
}

#[unsafe(link_section = "ft_hot")]
fn move_block(p: usize, info: &Info, n: usize, op: Op, caller: usize) -> *mut u8 {
    // A block that grows by realloc gets headroom, so the next few reallocs stay in place. A
    // LARGE one gets room to double (buffers often grow by doubling; the headroom is address
    // space whose pages are only touched when the block grows into them), except with
    // debugging on.
    let lay = layout();
    let cap = if n <= info.size {
        n
    } else if n > SMALL_MAX && lay.canaries() {
        // Debugging: no headroom for LARGE blocks, whose inaccessible region must follow the
        // block's last page (they grow by mremap instead, see `reallocate`).
        n
    } else if n > SMALL_MAX {
        n.saturating_mul(2)
    } else {
        n + n / 2
    };
    let q = allocate_cap(n, cap, 0, op, caller, false);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live, the old one `usable_from` bytes long and the new one n;
    // they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q, usable_from(info).min(n)) };
    deallocate_call(p, op, caller, 0);
    q
}

/// malloc_usable_size.
#[inline]
pub(super) fn usable_size_call(p: usize, caller: usize) -> usize {
    if p == 0 {
        return 0;
    }
    let cfg = config::get();
    let info = match hold(p) {
        Ok(held) => held.info(),
        Err(e) => {
            let (bad, info) = match e {
                NotHeld::Bad(bad, info) => (bad, info),
                // A signal handler interrupted this thread inside the block's lock.
                NotHeld::Busy => match peek(p) {
                    Ok(i) => return usable_from(&i),
                    Err(b) => b,
                },
            };
            report::bad_pointer(
                Op::UsableSize,
                p,
                bad,
                info.map(with_history).as_ref(),
                caller,
            );
            return 0;
        }
    };
    if cfg.enabled
        && cfg.check
        && let Some(bad) = debug_checks(&info, Op::UsableSize, 0)
    {
        report::bad_block(Op::UsableSize, p, bad, &with_history(info), caller);
        return 0;
    }
    usable_from(&info)
}

/// The usable size of a live block: its size when bytes after it are checked (canaries,
/// guard), else the rest of its slot, or of its last page for a LARGE block (the pages of
/// headroom a grown block keeps behind it are not the program's until it grows into them).
/// What malloc_usable_size reports is the program's to write, and a resize keeps it, as
/// glibc, jemalloc and mimalloc do (programs such as systemd fill the usable size of an array
/// before they realloc it): a moved block takes all of it along, and a block grown in place is
/// filled only beyond it.
fn usable_from(info: &Info) -> usize {
    if layout().tail > 0 || info.guarded.is_guarded() {
        return info.size;
    }
    let end = match info.kind {
        Kind::Large => {
            sys::page_round(info.user + info.size).map_or(info.slot_end, |e| e.min(info.slot_end))
        }
        _ => info.slot_end,
    };
    end - info.user
}
