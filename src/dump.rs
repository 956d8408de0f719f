//! show_alloc_mem (the classic format) and show_alloc_mem_ex (every block with its state,
//! history with symbolized callers, canary status and a hexdump whose canary bytes are marked;
//! heap statistics; the recent log). Called by the program or a debugger they write on stdout;
//! the dumps of `dump_signal` and `dump_at_exit` go where reports go (`dump_to_reports`).
//!
//! Safe from a signal handler and from gdb: no allocation, raw writes only, errno kept, and the
//! heap locks are only tried a bounded number of times: if the heap stays busy (the interrupted
//! or stopped thread holds it) we say so instead of blocking.

use crate::block::{Info, State};
use crate::fmt::{Line, prefix};
use crate::symbols::{Lookup, Pc, Symbolizer};
use crate::sys;
use crate::walk::{Block, View};
use crate::zone::Zone;
use core::sync::atomic::Ordering;

fn out(l: &mut Line<256>, fd: i32) {
    l.flush_fd(fd);
}

/// The classic `TINY : 0x...` / `SMALL : 0x...` zone line.
fn zone_title(l: &mut Line<256>, z: &Zone, fd: i32) {
    l.s(if z.is_tiny() {
        b"TINY : " as &[u8]
    } else {
        b"SMALL : "
    })
    .xu(z.data)
    .c(b'\n');
    out(l, fd);
}

/// The classic `0xSTART - 0xEND : N bytes` block line.
fn block_title(l: &mut Line<256>, user: usize, size: usize, fd: i32) {
    l.xu(user)
        .s(b" - ")
        .xu(user + size)
        .s(b" : ")
        .u(size as u64)
        .s(b" bytes\n");
    out(l, fd);
}

/// The classic ft_malloc dump on standard output.
pub extern "C" fn show_alloc_mem() {
    let _e = sys::ErrnoGuard::new();
    let v = View::take();
    let mut l: Line<256> = Line::new();
    let mut total: u64 = 0;
    let mut zone: *const Zone = core::ptr::null();
    v.in_order(|b| {
        if b.state != State::Used {
            return;
        }
        match b.zone() {
            Some(z) => {
                if !core::ptr::eq(zone, z) {
                    zone_title(&mut l, z, 1);
                    zone = z;
                }
            }
            None => {
                let base = b.mapping().map_or(0, |d| d.map_base);
                l.s(b"LARGE : ").xu(base).c(b'\n');
            }
        }
        block_title(&mut l, b.user, b.size, 1);
        total += b.size as u64;
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l, 1);
    if !v.complete {
        let mut w: Line<128> = Line::new();
        prefix(&mut w)
            .s(b"WARNING: heap busy (a thread is inside malloc); part of the heap was not shown\n");
        w.report();
    }
}

fn state_name(info: &Info) -> &'static [u8] {
    match info.state {
        State::Used if crate::guard::is_guarded(info.guarded) => b"guarded",
        State::Used => b"used",
        State::Quarantined => b"quarantined",
        _ => b"free",
    }
}

/// What marks a canary byte in a hexdump: after its hex digits, and in the text column.
pub const CANARY_MARK: u8 = b'~';

/// The legend printed once under hexdumps that marked canary bytes.
pub const CANARY_LEGEND: &[u8] =
    b"  (~ marks canary bytes: written by ft_malloc around the requested size, not the program's data)\n";

/// Canary bytes shown after a block's requested size, at most.
const TAIL_SHOWN: usize = 16;

/// One `hexdump -C` line: offset, 16 bytes in two groups of 8, `|ascii|`. The bytes whose bit
/// is set in `mark` are canary bytes: `~` after their hex digits and in the text column.
fn hex_line(l: &mut Line<128>, off: usize, b: &[u8], mark: u16) {
    l.clear();
    l.hx(off as u64, 8).s(b"  ");
    for i in 0..16 {
        match b.get(i) {
            Some(&x) => l.hx(x as u64, 2).c(if mark & (1 << i) != 0 {
                CANARY_MARK
            } else {
                b' '
            }),
            None => l.s(b"   "),
        };
        if i == 7 {
            l.c(b' ');
        }
    }
    l.s(b" |");
    for (i, &x) in b.iter().enumerate() {
        l.c(if mark & (1 << i) != 0 {
            CANARY_MARK
        } else if (0x20..0x7f).contains(&x) {
            x
        } else {
            b'.'
        });
    }
    l.s(b"|\n");
}

/// Canonical `hexdump -C` lines of `[from, from+len)` (a repeated line becomes `*`, as
/// hexdump does), offsets starting at `off0`, then the end offset. Bytes whose address lies in
/// one of `canary` (address ranges) are marked as canary bytes (`CANARY_MARK`). Returns
/// whether any was. The caller passes memory of ours that is readable (`walk::readable`).
pub fn hexdump(from: usize, len: usize, fd: i32, off0: usize, canary: [(usize, usize); 2]) -> bool {
    let mut off = 0usize;
    let mut l: Line<128> = Line::new();
    let mut prev = [0u8; 16];
    let mut prev_mark = 0u16;
    let mut have_prev = false;
    let mut starred = false;
    let mut marked = false;
    while off < len {
        let n = (len - off).min(16);
        let mut cur = [0u8; 16];
        let mut mark = 0u16;
        for (i, c) in cur.iter_mut().enumerate().take(n) {
            let a = from + off + i;
            // SAFETY: the caller passes memory of ours that is readable (`walk::readable`).
            *c = unsafe { core::ptr::read_volatile(a as *const u8) };
            if canary.iter().any(|&(lo, hi)| a >= lo && a < hi) {
                mark |= 1 << i;
            }
        }
        marked |= mark != 0;
        if n == 16 && have_prev && cur == prev && mark == prev_mark {
            if !starred {
                sys::write_all(fd, b"*\n");
                starred = true;
            }
        } else {
            hex_line(&mut l, off0 + off, &cur[..n], mark);
            l.write_fd(fd);
            starred = false;
        }
        prev = cur;
        prev_mark = mark;
        have_prev = n == 16;
        off += n;
    }
    let mut e: Line<32> = Line::new();
    e.hx((off0 + len) as u64, 8).c(b'\n');
    e.write_fd(fd);
    marked
}

/// The canary ranges of a block (before it, after its requested size), by address; empty
/// ranges when it has none.
pub fn canary_ranges(info: &Info) -> [(usize, usize); 2] {
    if !crate::check::canaries(info) {
        return [(0, 0); 2];
    }
    let front = if info.guarded.is_guarded() {
        crate::debug::layout::guarded_front(info.slot)
    } else {
        info.slot
    };
    // The tail check may go on into the next slot's front canary: only this block's bytes.
    [
        (front, info.user),
        (info.user + info.size, info.check_end.min(info.slot_end)),
    ]
}

/// `module+0xOFF function+0xOFF` of a caller (as a report's frame names it), or `0xADDR`.
fn caller<const N: usize>(l: &mut Line<N>, sym: Option<&mut Symbolizer>, addr: usize) {
    let Some(sym) = sym else {
        l.x(addr);
        return;
    };
    let f = sym.frame(addr, Pc::Return);
    match &f.module {
        Some(m) => {
            let path = m.path();
            l.s(if path.is_empty() { b"?" } else { path })
                .c(b'+')
                .x(m.offset(addr));
        }
        None => {
            l.x(addr);
        }
    }
    if let Some(name) = &f.function {
        l.c(b' ').s(name.as_bytes()).c(b'+').x(name.offset);
    }
}

/// The detail line of a block: state, requested and usable size, allocation (and free) event,
/// thread and caller (named by `sym`, as reports name frames; the bare address without one),
/// canary or fill status.
pub fn block_detail(info: &Info, fd: i32, mut sym: Option<&mut Symbolizer>) {
    let lay = crate::debug::LAYOUT.get();
    // Room for two callers with their module paths and function names.
    let mut line: Line<1024> = Line::new();
    let l = &mut line;
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
            .s(info.origin.call_name().as_bytes())
            .s(b"() thread ")
            .u(d.alloc_tid as u64);
        l.s(b" from ");
        caller(
            l,
            sym.as_deref_mut(),
            crate::callstack::headline_of(d.alloc_caller),
        );
    } else {
        l.s(b", by ").s(info.origin.call_name().as_bytes()).s(b"()");
    }
    if info.state == State::Quarantined && d.free_seq != 0 {
        l.s(b", freed #")
            .u(d.free_seq)
            .s(b" thread ")
            .u(d.free_tid as u64)
            .s(b" from ");
        caller(l, sym, crate::callstack::headline_of(d.free_caller));
    }
    let canaries = crate::check::canaries(info);
    if crate::walk::readable(info) {
        match crate::check::verify(info) {
            None if info.state == State::Used && canaries => {
                l.s(b", canary ok");
            }
            None if info.state == State::Quarantined && lay.fill => {
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
}

/// Heap statistics: live bytes and blocks, peak, calls per function, size histogram.
pub fn print_stats(fd: i32, live: u64, blocks: u64, complete: bool) {
    let mut l: Line<400> = Line::new();
    let peak = (crate::stats::PEAK.load(Ordering::Relaxed) as u64).max(live);
    l.s(b"Stats : live ")
        .u(live)
        .s(b" bytes in ")
        .u(blocks)
        .s(b" blocks, peak ")
        .u(peak)
        .s(b" bytes, ");
    crate::stats::write_kernel_mappings(&mut l);
    if crate::site::depth() > 1 {
        l.s(b", ");
        crate::callstack::write_depot_stats(&mut l);
    }
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
    for op in crate::block::Op::ALL {
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
            l.c(b' ').s(op.name().as_bytes()).c(b' ').u(n);
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
        let (lo, hi) = crate::log::hist_range(k);
        if k == 0 {
            l.s(b"  0");
        } else {
            l.s(b"  ").u(lo).s(b" - ").u(hi);
        }
        l.s(b" : ").u(n).c(b'\n');
        l.write_fd(fd);
    }
}

/// Everything show_alloc_mem prints, plus every block's state, history, canary status and a
/// hexdump, heap statistics and the last events of the log; on standard output, as the program
/// (or a debugger) that calls it expects.
pub extern "C" fn show_alloc_mem_ex() {
    dump_ex(1);
}

/// The dumps the program did not ask for (`dump_signal`, `dump_at_exit`): where reports go
/// (stderr or `report=`), never into the program's own output.
pub fn dump_to_reports() {
    let _e = sys::ErrnoGuard::new();
    sys::room::with_room(|| dump_ex(sys::report_dest()));
}

/// Slots of `z` held in thread caches (`block::CACHED`), under the zone's arena lock.
fn cached_slots(z: &Zone) -> usize {
    (0..(z.hiwater as usize).min(z.nblocks as usize))
        .filter(|&i| {
            // SAFETY: i < nblocks; a cache changes the byte without the lock (atomically).
            let b = unsafe {
                core::sync::atomic::AtomicU8::from_ptr(&raw mut (*z.meta.add(i)).state)
                    .load(Ordering::Relaxed)
            };
            b == crate::block::CACHED
        })
        .count()
        .min(z.nused as usize)
}

/// show_alloc_mem_ex on `fd`.
fn dump_ex(fd: i32) {
    let _e = sys::ErrnoGuard::new();
    let cfg = crate::config::get();
    let hex = cfg.hexdump;
    let mut sym = Symbolizer::new(Lookup::SignalSafe);
    let mut legend = false;
    let v = View::take();
    let mut l: Line<256> = Line::new();
    let mut total: u64 = 0;
    let mut blocks: u64 = 0;
    let mut zone: *const Zone = core::ptr::null();
    v.in_order(|b: &Block| {
        match b.zone() {
            Some(z) => {
                if !core::ptr::eq(zone, z) {
                    zone_title(&mut l, z, fd);
                    // Slots held in thread caches count in `nused` but are free: shown apart.
                    let cached = cached_slots(z);
                    l.s(b"  zone of ")
                        .u(z.block_size as u64)
                        .s(b"-byte slots, ")
                        .u((z.nused as usize - cached) as u64)
                        .s(b"/")
                        .u(z.nblocks as u64);
                    l.s(b" used");
                    if cached > 0 {
                        l.s(b", ").u(cached as u64).s(b" in thread caches");
                    }
                    l.c(b'\n');
                    out(&mut l, fd);
                    zone = z;
                }
            }
            None => {
                let base = b.mapping().map_or(0, |d| d.map_base);
                l.s(b"LARGE : ").xu(base).c(b'\n');
                out(&mut l, fd);
            }
        }
        let info = b.info();
        if info.state == State::Used {
            // The classic line, then the details.
            block_title(&mut l, info.user, info.size, fd);
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
            out(&mut l, fd);
        }
        block_detail(&info, fd, Some(&mut sym));
        if hex > 0 && info.state == State::Used && crate::walk::readable(&info) {
            // The whole requested size shown: the canary after it too (its first bytes).
            let mut len = (info.size as u64).min(hex) as usize;
            let canary = canary_ranges(&info);
            if len == info.size {
                len += canary[1].1.saturating_sub(canary[1].0).min(TAIL_SHOWN);
            }
            if hexdump(info.user, len, fd, 0, canary) && !legend {
                sys::write_all(fd, CANARY_LEGEND);
                legend = true;
            }
        }
    });
    l.s(b"Total : ").u(total).s(b" bytes\n");
    out(&mut l, fd);
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

/// The `stats` option: one line at exit.
pub fn stats_line() {
    let mut l: Line<400> = Line::new();
    prefix(&mut l)
        .s(b"stats: peak ")
        .u(crate::stats::PEAK.load(Ordering::Relaxed) as u64)
        .s(b" bytes, ");
    crate::stats::write_kernel_mappings(&mut l);
    if crate::site::depth() > 1 {
        l.s(b", ");
        crate::callstack::write_depot_stats(&mut l);
    }
    l.c(b'\n');
    l.report();
}

extern "C" fn on_dump_signal(_sig: libc::c_int) {
    dump_to_reports();
}

/// `dump_signal=SIG`: installs a handler that runs show_alloc_mem_ex. The option parser has
/// refused the signals that cannot take one; a refusal by the kernel is still said.
pub fn install_signal(sig: i32) {
    if sig <= 0 {
        return;
    }
    if !sys::install_handler(sig, on_dump_signal) {
        let mut l: Line<160> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: dump_signal=")
            .u(sig as u64)
            .s(b": sigaction failed ");
        crate::outfile::errno_text(&mut l, sys::errno()).s(b"; no dump signal\n");
        l.report();
    }
}
