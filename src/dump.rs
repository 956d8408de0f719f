//! show_alloc_mem (the classic format) and show_alloc_mem_ex (every block with its state,
//! history, canary status and a hexdump; heap statistics; the recent log).
//!
//! Safe from a signal handler and from gdb: no allocation, raw writes only, errno kept, and the
//! heap locks are only tried a bounded number of times: if the heap stays busy (the interrupted
//! or stopped thread holds it) we say so instead of blocking.

use crate::block::{QUARANTINED, USED};
use crate::fmt::{Line, prefix};
use crate::heap::{self, ARENAS, NARENAS};
use crate::large::{LARGE, Large};
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
        let mut v = HeapView {
            arenas: [const { None }; heap::MAX_ARENAS],
            large: None,
            complete: true,
        };
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

    /// The block (used or quarantined) that holds `addr`, among the arenas this view holds.
    pub fn find(&self, addr: usize) -> Option<heap::Info> {
        let mut found = None;
        self.zones(|z| {
            if found.is_some() {
                return;
            }
            if let Some(i) = z.index_of(addr).filter(|&i| i < z.hiwater as usize) {
                let info = heap::zone_info(z, i);
                if info.state != crate::block::FREE && addr >= info.slot && addr < info.slot_end {
                    found = Some(info);
                }
            }
        });
        self.larges(|d| {
            if found.is_none() && addr >= d.lo && addr < d.map_base + d.usable_len {
                found = Some(heap::large_info(d));
            }
        });
        found
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

/// The classic `TINY : 0x...` / `SMALL : 0x...` zone line.
fn zone_title(l: &mut Line<256>, z: &Zone) {
    l.s(if z.is_tiny() {
        b"TINY : " as &[u8]
    } else {
        b"SMALL : "
    })
    .xu(z.data)
    .c(b'\n');
    out(l);
}

/// The classic `0xSTART - 0xEND : N bytes` block line.
fn block_title(l: &mut Line<256>, user: usize, size: usize) {
    l.xu(user)
        .s(b" - ")
        .xu(user + size)
        .s(b" : ")
        .u(size as u64)
        .s(b" bytes\n");
    out(l);
}

/// The classic ft_malloc dump on standard output.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem() {
    crate::ready::ensure();
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
                    zone_title(&mut l, z);
                    header = true;
                }
                block_title(&mut l, z.slot_addr(i) + m.front as usize, m.size as usize);
                total += m.size as u64;
            }
        }
        Item::Large(d) => {
            if d.state != USED {
                return;
            }
            l.s(b"LARGE : ").xu(d.map_base).c(b'\n');
            block_title(&mut l, d.user, d.size);
            total += d.size as u64;
        }
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l);
    if !v.complete {
        let mut w: Line<128> = Line::new();
        prefix(&mut w)
            .s(b"WARNING: heap busy (a thread is inside malloc); part of the heap was not shown\n");
        w.report();
    }
}

fn state_name(info: &heap::Info) -> &'static [u8] {
    match info.state {
        USED if crate::guard::is_guarded(info) => b"guarded",
        USED => b"used",
        QUARANTINED => b"quarantined",
        _ => b"free",
    }
}

/// True if the bytes of the block can be read (a freed LARGE or guarded block is PROT_NONE).
pub fn readable(info: &heap::Info) -> bool {
    info.state == USED
        || (info.state == QUARANTINED
            && info.kind != heap::LARGE_KIND
            && !crate::guard::is_guarded(info))
}

/// One `hexdump -C` line: offset, 16 bytes in two groups of 8, `|ascii|`.
fn hex_line(l: &mut Line<128>, off: usize, b: &[u8]) {
    l.clear();
    l.hx(off as u64, 8).s(b"  ");
    for i in 0..16 {
        match b.get(i) {
            Some(&x) => l.hx(x as u64, 2).c(b' '),
            None => l.s(b"   "),
        };
        if i == 7 {
            l.c(b' ');
        }
    }
    l.s(b" |");
    for &x in b {
        l.c(if (0x20..0x7f).contains(&x) { x } else { b'.' });
    }
    l.s(b"|\n");
}

/// Canonical `hexdump -C` lines of `[from, from+len)` (a repeated line becomes `*`, as
/// hexdump does), offsets starting at `off0`, then the end offset.
pub fn hexdump(from: usize, len: usize, fd: i32, off0: usize) {
    let mut off = 0usize;
    let mut l: Line<128> = Line::new();
    let mut prev = [0u8; 16];
    let mut have_prev = false;
    let mut starred = false;
    while off < len {
        let n = (len - off).min(16);
        let mut cur = [0u8; 16];
        for (i, c) in cur.iter_mut().enumerate().take(n) {
            // SAFETY: the caller passes memory of ours that is readable (`readable`).
            *c = unsafe { core::ptr::read_volatile((from + off + i) as *const u8) };
        }
        if n == 16 && have_prev && cur == prev {
            if !starred {
                sys::write_all(fd, b"*\n");
                starred = true;
            }
        } else {
            hex_line(&mut l, off0 + off, &cur[..n]);
            l.write_fd(fd);
            starred = false;
        }
        prev = cur;
        have_prev = n == 16;
        off += n;
    }
    let mut e: Line<32> = Line::new();
    e.hx((off0 + len) as u64, 8).c(b'\n');
    e.write_fd(fd);
}

/// The detail line of a block: state, requested and usable size, allocation (and free) event,
/// thread and caller, canary or fill status.
pub fn block_detail(l: &mut Line<256>, info: &heap::Info, fd: i32) {
    let lay = heap::LAYOUT.get();
    l.clear();
    l.s(b"  ")
        .s(state_name(info))
        .s(b", ")
        .u(info.size as u64)
        .s(b" bytes requested, ");
    l.u(info.slot_end.saturating_sub(info.user) as u64)
        .s(b" usable");
    let d = &info.dbg;
    if d.alloc_seq != 0 {
        l.s(b", #")
            .u(d.alloc_seq)
            .s(b" ")
            .s(info.origin.call_name())
            .s(b"() thread ")
            .u(d.alloc_tid as u64);
        l.s(b" from ").x(d.alloc_caller);
    } else {
        l.s(b", by ").s(info.origin.call_name()).s(b"()");
    }
    if info.state == QUARANTINED && d.free_seq != 0 {
        l.s(b", freed #")
            .u(d.free_seq)
            .s(b" thread ")
            .u(d.free_tid as u64)
            .s(b" from ")
            .x(d.free_caller);
    }
    let canaries = lay.front > 0 || lay.tail > 0 || crate::guard::is_guarded(info);
    if readable(info) {
        match crate::check::verify(info, canaries, lay.fill) {
            None if info.state == USED && canaries => {
                l.s(b", canary ok");
            }
            None if info.state == QUARANTINED && lay.fill => {
                l.s(b", fill ok");
            }
            None => {
                l.s(b", no canary");
            }
            Some((0, at)) => {
                l.s(b", canary OVERFLOW at +")
                    .u(at.wrapping_sub(info.user) as u64);
            }
            Some((1, at)) => {
                l.s(b", canary UNDERFLOW at -")
                    .u(info.user.wrapping_sub(at) as u64);
            }
            Some((_, at)) => {
                l.s(b", fill CHANGED at +")
                    .u(at.wrapping_sub(info.user) as u64);
            }
        }
    } else {
        l.s(b", inaccessible");
    }
    l.c(b'\n');
    l.write_fd(fd);
    l.clear();
}

/// Heap statistics: live bytes and blocks, peak, calls per function, size histogram.
pub fn print_stats(fd: i32, live: u64, blocks: u64, complete: bool) {
    let mut l: Line<256> = Line::new();
    let peak = (crate::stats::PEAK.load(Ordering::Relaxed) as u64).max(live);
    l.s(b"Stats : live ")
        .u(live)
        .s(b" bytes in ")
        .u(blocks)
        .s(b" blocks, peak ")
        .u(peak)
        .s(b" bytes, ");
    crate::stats::write_kernel_mappings(&mut l);
    if !complete {
        l.s(b" (heap busy: partial)");
    }
    l.c(b'\n');
    l.write_fd(fd);
    if !crate::log::enabled() {
        sys::write_all(fd, b"Calls : not counted (MALLOC_DEBUG is not set)\n");
        return;
    }
    l.clear();
    l.s(b"Calls :");
    let mut any = false;
    for i in 0..15u8 {
        let op = crate::block::Op::from_u8(i);
        if op == crate::block::Op::UsableSize {
            continue;
        }
        let n = crate::log::calls(op);
        if n > 0 {
            if l.room() < 40 {
                l.c(b'\n');
                l.write_fd(fd);
                l.clear();
                l.s(b"       ");
            }
            l.c(b' ').s(op.name()).c(b' ').u(n);
            any = true;
        }
    }
    if !any {
        l.s(b" none");
    }
    l.s(b", failed ").u(crate::log::failures()).c(b'\n');
    l.write_fd(fd);
    sys::write_all(fd, b"Sizes : requested bytes -> allocations\n");
    for k in 0..crate::log::HIST_BUCKETS {
        let n = crate::log::hist(k);
        if n == 0 {
            continue;
        }
        l.clear();
        if k == 0 {
            l.s(b"  0");
        } else {
            let lo = 1u64 << (k - 1);
            l.s(b"  ")
                .u(lo)
                .s(b" - ")
                .u(if k >= 64 { u64::MAX } else { (1u64 << k) - 1 });
        }
        l.s(b" : ").u(n).c(b'\n');
        l.write_fd(fd);
    }
}

/// Everything show_alloc_mem prints, plus every block's state, history, canary status and a
/// hexdump, heap statistics and the last events of the log.
#[unsafe(no_mangle)]
pub extern "C" fn show_alloc_mem_ex() {
    crate::ready::ensure();
    let _e = sys::ErrnoGuard::new();
    let cfg = crate::config::get();
    let hex = cfg.hexdump;
    let fd = 1;
    let v = HeapView::take();
    let mut l: Line<256> = Line::new();
    let mut total: u64 = 0;
    let mut blocks: u64 = 0;
    let mut show = |l: &mut Line<256>, info: &heap::Info| {
        if info.state == USED {
            // The classic line, then the details.
            block_title(l, info.user, info.size);
            total += info.size as u64;
            blocks += 1;
        } else {
            l.s(b"(")
                .xu(info.user)
                .s(b" - ")
                .xu(info.user + info.size)
                .s(b" : ")
                .u(info.size as u64)
                .s(b" bytes)\n");
            out(l);
        }
        block_detail(l, info, fd);
        if hex > 0 && info.state == USED && readable(info) {
            hexdump(info.user, (info.size as u64).min(hex) as usize, fd, 0);
        }
    };
    v.in_order(|item| match item {
        Item::Zone(z) => {
            let mut header = false;
            for i in 0..z.hiwater as usize {
                let info = heap::zone_info(z, i);
                if info.state == crate::block::FREE {
                    continue;
                }
                if !header {
                    zone_title(&mut l, z);
                    l.s(b"  zone of ")
                        .u(z.block_size as u64)
                        .s(b"-byte slots, ")
                        .u(z.nused as u64)
                        .s(b"/")
                        .u(z.nblocks as u64);
                    l.s(b" used\n");
                    out(&mut l);
                    header = true;
                }
                show(&mut l, &info);
            }
        }
        Item::Large(d) => {
            l.s(b"LARGE : ").xu(d.map_base).c(b'\n');
            out(&mut l);
            show(&mut l, &heap::large_info(d));
        }
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l);
    let complete = v.complete;
    drop(v);
    if !complete {
        let mut w: Line<128> = Line::new();
        prefix(&mut w)
            .s(b"WARNING: heap busy (a thread is inside malloc); part of the heap was not shown\n");
        w.write_fd(fd);
    }
    print_stats(fd, total, blocks, complete);
    crate::log::dump_recent(fd, 20);
}

/// One command of the dump (see `help`).
/// # Safety
/// `cmd` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn show_alloc_mem_ex_cmd(cmd: *const libc::c_char) {
    crate::ready::ensure();
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
    prefix(&mut l)
        .s(b"stats: peak ")
        .u(crate::stats::PEAK.load(Ordering::Relaxed) as u64)
        .s(b" bytes, ");
    crate::stats::write_kernel_mappings(&mut l);
    l.c(b'\n');
    l.report();
}

extern "C" fn on_dump_signal(_sig: libc::c_int) {
    show_alloc_mem_ex();
}

/// `dump_signal=SIG`: installs a handler that runs show_alloc_mem_ex. The option parser has
/// refused the signals that cannot take one; a refusal by the kernel is still said.
pub fn install_signal(sig: i32) {
    if sig <= 0 {
        return;
    }
    // SAFETY: a zeroed sigaction with a valid handler and SA_RESTART is a valid argument.
    let r = unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_dump_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, core::ptr::null_mut())
    };
    if r != 0 {
        let mut l: Line<160> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: dump_signal=")
            .u(sig as u64)
            .s(b": sigaction failed (errno ")
            .u(sys::errno() as u64)
            .s(b"); no dump signal\n");
        l.report();
    }
}
