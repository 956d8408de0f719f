//! The guard budgets. Mappings are counted against `vm.max_map_count`: with mprotect a live
//! pooled block costs two (its data and the inaccessible run it splits), a freed pooled one
//! at most one (it merges with the guards around it, unless the kernel keeps it apart), a
//! pooled free slot none; with guard markers pooled blocks cost none. A block with a mapping
//! of its own costs what its descriptor counts (`Large::vmas`: two, more when built on
//! recycled pages or when a later block took part of its pages) until it is unmapped. The
//! pages of live guarded blocks are bounded too (`guard_budget`). When a budget is spent we
//! say so once and further allocations use the zones until live guarded blocks are freed.

use crate::config;
use crate::fmt::{Line, prefix};
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Mappings (VMAs) our guarded blocks use now.
static VMAS: AtomicUsize = AtomicUsize::new(0);
/// How many we allow ourselves (set at init from vm.max_map_count).
static BUDGET: AtomicUsize = AtomicUsize::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);
/// Data pages of the live guarded blocks (each holds at least one of its own: two blocks never
/// share a page), and their bound: `guard_budget`, by default 256 MiB (65,536 small blocks
/// with 4 KiB pages) or an eighth of the machine's RAM or of RLIMIT_AS (RLIMIT_DATA) if less.
/// With guard markers the mapping budget no longer stops a program with millions of small
/// blocks (python's alloc-heavy run would keep 6 GiB of guarded pages, four times slower); this
/// does.
static PAGES: AtomicUsize = AtomicUsize::new(0);
static PAGE_BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static PAGES_WARNED: AtomicBool = AtomicBool::new(false);
const DEFAULT_PAGE_BUDGET: usize = 256 << 20;

/// Kernel mappings a new guarded block with a mapping of its own may cost: its guard and its
/// data, which is up to four mappings when built on recycled pages (`Large::vmas` counts the
/// real number).
const OWN_VMAS: usize = 5;

/// Sets the budgets from vm.max_map_count, the mappings the process has now, the machine's
/// RAM and `guard_budget` (init).
pub fn init(c: &config::Config) {
    let max = sys::read_max_map_count().unwrap_or(65530);
    let mut used = 0usize;
    crate::maps::for_each(|_| {
        used += 1;
        true
    });
    // Keep half of the limit (and 1000 more) for the program and for our zones and LARGE
    // blocks, whose guard regions split mappings too.
    let budget = (max / 2).saturating_sub(used + 1000);
    BUDGET.store(budget, Ordering::Relaxed);
    let ram = sys::phys_pages();
    let page = sys::page_size();
    let pages = if c.guard_budget > 0 {
        c.guard_budget as usize / page
    } else {
        // A guarded block also takes a guard page of address space: under an address-space
        // limit (RLIMIT_AS or RLIMIT_DATA) the program and the zones keep three quarters of it.
        let cap = (DEFAULT_PAGE_BUDGET / page).min(sys::space_limit() / 8 / page);
        if ram > 0 { (ram / 8).min(cap) } else { cap }
    };
    PAGE_BUDGET.store(pages.max(1), Ordering::Relaxed);
}

/// Whether a new block with a mapping of its own could exceed the mapping budget.
#[inline]
pub fn mappings_spent() -> bool {
    VMAS.load(Ordering::Relaxed) + OWN_VMAS > BUDGET.load(Ordering::Relaxed)
}

/// Says once that the mapping budget is spent.
#[cold]
pub fn warn_mappings() {
    if !WARNED.swap(true, Ordering::Relaxed) {
        let mut l: Line<256> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: guard: mapping budget spent by live blocks (")
            .u(VMAS.load(Ordering::Relaxed) as u64);
        l.s(b" mappings, vm.max_map_count leaves no more); further blocks get canaries instead of guard pages\n");
        l.report();
    }
}

/// Whether a block of `size` bytes fits in the page budget (said once when it is spent).
#[inline]
pub fn pages_fit(size: usize) -> bool {
    let pages = size / sys::page_size() + 1;
    let budget = PAGE_BUDGET.load(Ordering::Relaxed);
    if pages > budget {
        // One request bigger than the whole budget: no live block spent it, and such a request
        // is often unsatisfiable (NULL and ENOMEM, which is no report). It gets canaries, and
        // the budget stays open for the blocks that fit.
        return false;
    }
    if PAGES.load(Ordering::Relaxed) + pages > budget {
        warn_pages();
        return false;
    }
    true
}

/// Says once that the page budget is spent.
#[cold]
fn warn_pages() {
    if !PAGES_WARNED.swap(true, Ordering::Relaxed) {
        let mut l: Line<256> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: guard: memory budget spent by live blocks (")
            .u(((PAGES.load(Ordering::Relaxed) * sys::page_size()) >> 20) as u64);
        l.s(b" MiB in guarded pages, see guard_budget); further blocks get canaries instead of guard pages\n");
        l.report();
    }
}

static REFUSED_WARNED: AtomicBool = AtomicBool::new(false);

/// Says once that the kernel refused to make a guard region inaccessible (errno `e`: a seccomp
/// filter that forbids mprotect, or no memory left for the mapping it splits): the block gets
/// canaries instead.
#[cold]
pub fn warn_refused(e: i32) {
    if !REFUSED_WARNED.swap(true, Ordering::Relaxed) {
        let mut l: Line<256> = Line::new();
        prefix(&mut l).s(b"WARNING: guard: the kernel refused to make a guard page inaccessible ");
        crate::outfile::errno_text(&mut l, e)
            .s(b"; such blocks get canaries instead of guard pages\n");
        l.report();
    }
}

/// A new guarded block: `vmas` kernel mappings, `pages` data pages.
#[inline]
pub fn add(vmas: usize, pages: usize) {
    VMAS.fetch_add(vmas, Ordering::Relaxed);
    PAGES.fetch_add(pages, Ordering::Relaxed);
}

/// A freed guarded block gave its `pages` data pages back (or banked them, which is bounded).
#[inline]
pub fn sub_pages(pages: usize) {
    PAGES.fetch_sub(pages, Ordering::Relaxed);
}

/// Kernel mappings that went away (merged or unmapped).
#[inline]
pub fn sub_vmas(n: usize) {
    VMAS.fetch_sub(n, Ordering::Relaxed);
}

/// Counts kernel mappings made by splitting a freed block's banked pages.
#[inline]
pub fn count_vmas(n: usize) {
    VMAS.fetch_add(n, Ordering::Relaxed);
}
