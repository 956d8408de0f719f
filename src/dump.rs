//! show_alloc_mem (the classic format) and show_alloc_mem_ex (every block with its state,
//! history, canary status and a hexdump; heap statistics; the recent log).
//!
//! Safe from a signal handler and from gdb: no allocation, raw writes only, errno kept, and the
//! heap locks are only tried a bounded number of times: if the heap stays busy (the interrupted
//! or stopped thread holds it) we say so instead of blocking.

use crate::block::{QUARANTINED, USED};
use crate::fmt::{prefix, Line};
use crate::heap::{self, ARENAS, NARENAS};
use crate::large::{Large, LARGE};
use crate::lock::Guard;
use crate::sys;
use crate::zone::Zone;
use core::sync::atomic::Ordering;

const TRIES: u32 = 200;

/// A zone or a LARGE block, in address order.
pub enum Item<'a> {
    Zone(&'a Zone),
    Large(&'a Large),
}

/// All allocator locks, tried a bounded number of times.
pub struct HeapView {
    arenas: [Option<Guard<'static, heap::Arena>>; heap::MAX_ARENAS],
    large: Option<Guard<'static, crate::large::LargeState>>,
    pub complete: bool,
}

impl HeapView {
    pub fn take() -> HeapView {
        let mut v = HeapView { arenas: [const { None }; heap::MAX_ARENAS], large: None, complete: true };
        let n = NARENAS.load(Ordering::Relaxed);
        for (i, a) in ARENAS.iter().enumerate().take(n) {
            if a.held_by_me() {
                v.complete = false;
                continue;
            }
            v.arenas[i] = a.try_lock(TRIES);
            if v.arenas[i].is_none() {
                v.complete = false;
            }
        }
        if !LARGE.held_by_me() {
            v.large = LARGE.try_lock(TRIES);
        }
        if v.large.is_none() {
            v.complete = false;
        }
        v
    }

    /// Zones of the arenas we hold.
    fn zones(&self, mut f: impl FnMut(&Zone)) {
        for g in self.arenas.iter().flatten() {
            let mut z = g.all;
            while !z.is_null() {
                // SAFETY: zones of an arena whose lock we hold.
                let zr = unsafe { &*z };
                f(zr);
                z = zr.all_next;
            }
        }
    }

    fn larges(&self, mut f: impl FnMut(&Large)) {
        if let Some(l) = &self.large {
            let mut d = l.live;
            while !d.is_null() {
                // SAFETY: live descriptors under the LARGE lock.
                let dr = unsafe { &*d };
                f(dr);
                d = dr.next;
            }
        }
    }

    /// Visits zones and LARGE blocks in increasing address order.
    pub fn in_order(&self, mut f: impl FnMut(Item)) {
        let mut last = 0usize;
        loop {
            let mut best = usize::MAX;
            let mut bz: *const Zone = core::ptr::null();
            let mut bl: *const Large = core::ptr::null();
            self.zones(|z| {
                if z.data > last && z.data < best {
                    best = z.data;
                    bz = z;
                    bl = core::ptr::null();
                }
            });
            self.larges(|d| {
                if d.user > last && d.user < best {
                    best = d.user;
                    bl = d;
                    bz = core::ptr::null();
                }
            });
            if best == usize::MAX {
                return;
            }
            if !bz.is_null() {
                // SAFETY: still under the locks of this view.
                f(Item::Zone(unsafe { &*bz }));
            } else {
                // SAFETY: as above.
                f(Item::Large(unsafe { &*bl }));
            }
            last = best;
        }
    }
}

fn out(l: &mut Line<256>) {
    l.flush_fd(1);
}

/// The classic ft_malloc dump on standard output.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem() {
    crate::init::ensure();
    let _e = sys::ErrnoGuard::new();
    let v = HeapView::take();
    let mut l: Line<256> = Line::new();
    let mut total: u64 = 0;
    v.in_order(|item| match item {
        Item::Zone(z) => {
            let mut header = false;
            for i in 0..z.hiwater as usize {
                // SAFETY: i < hiwater <= nblocks.
                let m = unsafe { *z.meta(i) };
                if m.state != USED {
                    continue;
                }
                if !header {
                    l.s(if z.is_tiny() { b"TINY : " as &[u8] } else { b"SMALL : " }).xu(z.data).c(b'\n');
                    out(&mut l);
                    header = true;
                }
                let start = z.slot_addr(i) + m.front as usize;
                l.xu(start).s(b" - ").xu(start + m.size as usize).s(b" : ").u(m.size as u64).s(b" bytes\n");
                out(&mut l);
                total += m.size as u64;
            }
        }
        Item::Large(d) => {
            if d.state != USED {
                return;
            }
            l.s(b"LARGE : ").xu(d.map_base).c(b'\n');
            l.xu(d.user).s(b" - ").xu(d.user + d.size).s(b" : ").u(d.size as u64).s(b" bytes\n");
            out(&mut l);
            total += d.size as u64;
        }
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l);
    if !v.complete {
        let mut w: Line<128> = Line::new();
        prefix(&mut w).s(b"WARNING: heap busy (a thread is inside malloc); part of the heap was not shown\n");
        w.report();
    }
}

fn state_name(s: u8) -> &'static [u8] {
    match s {
        USED => b"used",
        QUARANTINED => b"quarantined",
        _ => b"free",
    }
}

/// Canonical `hexdump -C` lines of `[from, from+len)`, offsets relative to `from`.
pub fn hexdump(from: usize, len: usize, fd: i32) {
    let mut off = 0usize;
    let mut l: Line<128> = Line::new();
    while off < len {
        let n = (len - off).min(16);
        l.clear();
        l.hx(off as u64, 8).s(b"  ");
        for i in 0..16 {
            if i < n {
                // SAFETY: the caller passes readable memory of ours.
                let b = unsafe { *((from + off + i) as *const u8) };
                l.hx(b as u64, 2).c(b' ');
            } else {
                l.s(b"   ");
            }
            if i == 7 {
                l.c(b' ');
            }
        }
        l.s(b" |");
        for i in 0..n {
            // SAFETY: as above.
            let b = unsafe { *((from + off + i) as *const u8) };
            l.c(if (0x20..0x7f).contains(&b) { b } else { b'.' });
        }
        l.s(b"|\n");
        l.write_fd(fd);
        off += n;
    }
    let mut e: Line<32> = Line::new();
    e.hx(len as u64, 8).c(b'\n');
    e.write_fd(fd);
}

/// Everything show_alloc_mem prints, plus every block's state, history, canary status and a
/// hexdump, heap statistics and the last events of the log.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem_ex() {
    crate::init::ensure();
    let _e = sys::ErrnoGuard::new();
    let cfg = crate::config::get();
    let lay = heap::LAYOUT.get();
    let hex = cfg.hexdump;
    let v = HeapView::take();
    let mut l: Line<256> = Line::new();
    let mut total: u64 = 0;
    let mut blocks: u64 = 0;
    let block_line = |l: &mut Line<256>, info: &heap::Info| {
        l.s(b"  ").s(state_name(info.state)).s(b" ");
        l.xu(info.user).s(b" - ").xu(info.user + info.size).s(b" : ").u(info.size as u64).s(b" bytes");
        l.s(b" (usable ").u((info.slot_end - info.user) as u64).s(b")");
        if info.dbg.alloc_seq != 0 {
            l.s(b" #").u(info.dbg.alloc_seq).s(b" tid ").u(info.dbg.alloc_tid as u64).s(b" caller ").x(info.dbg.alloc_caller);
        }
        if lay.front > 0 || lay.tail > 0 {
            let c = crate::check::verify(info, true, lay.fill);
            l.s(match c {
                None => b" canary ok" as &[u8],
                Some((0, _)) => b" canary OVERFLOW",
                Some((1, _)) => b" canary UNDERFLOW",
                _ => b" fill CHANGED",
            });
        }
        l.c(b'\n');
        out(l);
        if info.state == USED && hex > 0 {
            hexdump(info.user, (info.size as u64).min(hex) as usize, 1);
        }
    };
    v.in_order(|item| match item {
        Item::Zone(z) => {
            l.s(if z.is_tiny() { b"TINY : " as &[u8] } else { b"SMALL : " }).xu(z.data);
            l.s(b" (class ").u(z.block_size as u64).s(b" bytes, ").u(z.nused as u64).s(b"/").u(z.nblocks as u64).s(b" slots used)\n");
            out(&mut l);
            for i in 0..z.hiwater as usize {
                let info = heap::zone_info(z, i);
                if info.state == USED {
                    total += info.size as u64;
                    blocks += 1;
                }
                if info.state != crate::block::FREE {
                    block_line(&mut l, &info);
                }
            }
        }
        Item::Large(d) => {
            l.s(b"LARGE : ").xu(d.map_base).c(b'\n');
            out(&mut l);
            let info = heap::large_info(d);
            if d.state == USED {
                total += d.size as u64;
                blocks += 1;
                block_line(&mut l, &info);
            } else {
                l.s(b"  quarantined ").xu(d.user).s(b" : ").u(d.size as u64).s(b" bytes (inaccessible)\n");
                out(&mut l);
            }
        }
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l);
    drop(v);
    l.s(b"Stats : ").u(blocks).s(b" live blocks, peak ").u(crate::stats::PEAK.load(Ordering::Relaxed) as u64).s(b" bytes\n");
    out(&mut l);
    crate::log::dump_recent(1, 20);
}

/// One command of the dump (see `help`).
/// # Safety
/// `cmd` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn show_alloc_mem_ex_cmd(cmd: *const libc::c_char) {
    crate::init::ensure();
    let _e = sys::ErrnoGuard::new();
    let mut l: Line<256> = Line::new();
    if cmd.is_null() {
        l.s(b"show_alloc_mem_ex_cmd: no command (try \"help\")\n");
        out(&mut l);
        return;
    }
    let mut n = 0;
    // SAFETY: cmd is NUL terminated per the contract; bounded at 256 bytes.
    while n < 256 && unsafe { *cmd.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: n bytes were just read.
    let c = unsafe { core::slice::from_raw_parts(cmd as *const u8, n) };
    crate::cmd::run(c);
}

/// The `stats` option: one line at exit.
pub fn stats_line() {
    let mut l: Line<256> = Line::new();
    prefix(&mut l).s(b"stats: peak ").u(crate::stats::PEAK.load(Ordering::Relaxed) as u64).s(b" bytes, ");
    l.u(crate::stats::MAPS.load(Ordering::Relaxed) as u64).s(b" mappings\n");
    l.report();
}

extern "C" fn on_dump_signal(_sig: libc::c_int) {
    show_alloc_mem_ex();
}

/// `dump_signal=SIG`: installs a handler that runs show_alloc_mem_ex.
pub fn install_signal(sig: i32) {
    if sig <= 0 {
        return;
    }
    // SAFETY: a zeroed sigaction with a valid handler and SA_RESTART is a valid argument.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_dump_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, core::ptr::null_mut());
    }
}
