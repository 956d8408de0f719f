//! The log's module records (`M`): the loaded objects and their bases after the header (a fork
//! child repeats the ones it knows), and, when a caller lies outside every known module, a
//! rescan of /proc/self/maps (rate-limited, never while a lock of the allocator is held) that
//! records the objects loaded since (dlopen). The table itself is `maps`'.

use super::dest::MTRACE;
use super::sink::emit;
use crate::fmt::Line;
use crate::maps;
use crate::sys;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Pages of callers still unknown after a rescan (JIT code, anonymous memory).
static MISS: [AtomicUsize; 16] = [const { AtomicUsize::new(0) }; 16];
static MISS_I: AtomicUsize = AtomicUsize::new(0);

/// The `M` record of a module.
fn record(base: usize, path: &[u8]) {
    let mut l: Line<320> = Line::new();
    l.s(b"M ").x(base).c(b' ').s(path).c(b'\n');
    emit(l.as_bytes());
}

/// Rescans the mappings; the modules found are logged unless `quiet` or the format is mtrace.
fn scan(quiet: bool) -> bool {
    maps::scan_modules(|base, path| {
        if !quiet && !MTRACE.load(Ordering::Relaxed) {
            record(base, path);
        }
    })
}

/// Makes sure the module of `caller` is known (and logged), rescanning when it is not.
#[inline]
pub(super) fn check_caller(caller: usize) {
    if caller < 4096 || maps::module_at(caller).is_some() {
        return;
    }
    let page = caller >> 12;
    if MISS.iter().any(|m| m.load(Ordering::Relaxed) == page) {
        return;
    }
    // At most one rescan per millisecond; an address still unknown after a rescan (JIT code,
    // anonymous memory) is remembered so it does not trigger another. The rescan reads
    // /proc/self/maps: the program's errno is kept.
    let _keep = sys::ErrnoGuard::new();
    let now = sys::now_ns();
    if now.wrapping_sub(maps::last_scan_ns()) < 1_000_000 {
        return;
    }
    if scan(false) && maps::module_at(caller).is_none() {
        let i = MISS_I.fetch_add(1, Ordering::Relaxed) % MISS.len();
        MISS[i].store(page, Ordering::Relaxed);
    }
}

/// The module records after the header: a fork child logs the modules it knows again (in its
/// own file), then every process adds the ones not known yet.
pub(super) fn after_header(ppid: u32) {
    if MTRACE.load(Ordering::Relaxed) {
        scan(true);
        return;
    }
    if ppid != 0 {
        maps::each_module(record);
    }
    scan(false);
}
