//! The subcommands' output.

use crate::parse::Op;
use crate::reader::{self, Event, FREED_SIZE_UNKNOWN, Format, LogInfo, Sink, Stacks};
use crate::replay::{Block, Heap};
use crate::stats::{self, Stats};
use crate::symbols::AddrNamer;
use crate::{Global, TopBy, flame, plot};
use std::fmt;
use std::io::Write;
use std::time::Instant;

pub enum Error {
    Io(std::io::Error),
    Open(String, std::io::Error),
    /// An output file could not be written.
    Write(String, std::io::Error),
    /// The input is not a log this reader knows (the message names the file and says why).
    NotALog(String),
    Usage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Open(p, e) => write!(f, "cannot read {p}: {e}"),
            Error::Write(p, e) => write!(f, "cannot write {p}: {e}"),
            Error::NotALog(why) => write!(f, "{why}"),
            Error::Usage(s) => write!(f, "{s}"),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result = std::result::Result<(), Error>;
type Out<'a> = &'a mut dyn Write;

fn read<S: Sink>(g: &Global, path: &str, sink: &mut S) -> std::result::Result<LogInfo, Error> {
    let t = Instant::now();
    let info = reader::read_log(path, sink, &g.opts).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            Error::NotALog(e.to_string())
        } else {
            Error::Open(path.to_string(), e)
        }
    })?;
    if g.speed {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "ft-malloc-report: read {} events ({} lines, {:.1} MiB) in {:.3} s: {:.2} M events/s, {:.0} MiB/s",
            info.events,
            info.lines,
            info.bytes as f64 / 1048576.0,
            s,
            info.events as f64 / s / 1e6,
            info.bytes as f64 / 1048576.0 / s
        );
    }
    Ok(info)
}

/// `1300 bytes` below 10 KiB, else `1.2 MiB (1234567 bytes)`.
pub fn human(b: u64) -> String {
    if b < 10 * 1024 {
        return format!("{b} bytes");
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {} ({b} bytes)", units[u])
}

pub fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub fn secs(ns: u64) -> String {
    format!("{:.6} s", ns as f64 / 1e9)
}

fn describe(ev: &Event) -> String {
    let o = ev.op.name();
    // Every operation by name (no wildcard): one added to the format crate must be placed here.
    match ev.op {
        Op::Free | Op::Delete | Op::DeleteArr => {
            if ev.size == 0 {
                format!("{o}(0x{:x}) refused", ev.inp)
            } else if ev.size == FREED_SIZE_UNKNOWN {
                format!("{o}(0x{:x})", ev.inp)
            } else {
                format!("{o}(0x{:x}) of {} bytes", ev.inp, ev.size)
            }
        }
        Op::Realloc | Op::Reallocarray => {
            format!("{o}(0x{:x}, {}) = 0x{:x}", ev.inp, ev.size, ev.out)
        }
        Op::Memalign | Op::PosixMemalign | Op::AlignedAlloc => {
            format!("{o}(align {}, {}) = 0x{:x}", ev.align, ev.size, ev.out)
        }
        Op::Malloc | Op::Calloc | Op::Valloc | Op::Pvalloc | Op::New | Op::NewArr => {
            format!("{o}({}) = 0x{:x}", ev.size, ev.out)
        }
        Op::UsableSize => format!("{o}(0x{:x})", ev.inp),
    }
}

/// How the reports show the stacks of one log: frames as `function (file:line)`, the calls
/// inlined at a frame expanded under it, a stack's site named by its first frame outside the
/// C/C++ runtime.
struct StackView<'a> {
    stacks: &'a Stacks,
    namer: AddrNamer,
    sites: rustc_hash::FxHashMap<u32, std::rc::Rc<str>>,
}

impl<'a> StackView<'a> {
    fn new(g: &Global, info: &'a LogInfo) -> Self {
        StackView {
            stacks: &info.stacks,
            namer: AddrNamer::new(&info.modules, g.symbols),
            sites: Default::default(),
        }
    }

    /// What stands for a stack the log names by id but does not define.
    fn missing(&self, id: u32) -> String {
        match self.stacks.log_id(id) {
            Some(n) => format!("stack @{n} (no S record in the log)"),
            None => "?".to_string(),
        }
    }

    /// The site of stack `id`: its first frame outside the C/C++ runtime (`function
    /// (file:line)` of the innermost source-level frame there).
    fn site(&mut self, id: u32) -> std::rc::Rc<str> {
        if let Some(s) = self.sites.get(&id) {
            return s.clone();
        }
        let f = self.stacks.get(id);
        let s: std::rc::Rc<str> = if f.is_empty() {
            self.missing(id).into()
        } else {
            let i = self.namer.site_index(f);
            self.namer.name(f[i]).into()
        };
        self.sites.insert(id, s.clone());
        s
    }

    /// Up to `max` frames of stack `id` (at least one), one per line, innermost first: `at`
    /// before frame 0, `by` before the others, and the frames a call was inlined into under it.
    fn print(&mut self, out: Out, id: u32, max: usize, indent: &str) -> std::io::Result<()> {
        let frames = self.stacks.get(id);
        if frames.is_empty() {
            return writeln!(out, "{indent}{}", self.missing(id));
        }
        let max = max.max(1);
        for (i, &a) in frames.iter().take(max).enumerate() {
            let r = self.namer.resolve(a);
            for (k, l) in r.lines.iter().enumerate() {
                if k == 0 {
                    writeln!(out, "{indent}{} {l}", if i == 0 { "at" } else { "by" })?;
                } else {
                    writeln!(out, "{indent}   inlined into {l}")?;
                }
            }
        }
        if frames.len() > max {
            writeln!(
                out,
                "{indent}   ({} more {})",
                frames.len() - max,
                if frames.len() - max == 1 {
                    "frame"
                } else {
                    "frames"
                }
            )?;
        }
        Ok(())
    }
}

fn program(info: &LogInfo) -> String {
    if info.format == Format::Mtrace {
        return "? (an mtrace log names no program)".to_string();
    }
    let p = info.header("program").unwrap_or("?");
    match info.header("pid") {
        Some(pid) => format!("{p} (pid {pid})"),
        None => p.to_string(),
    }
}

fn state_note(out: Out, info: &LogInfo) -> std::io::Result<()> {
    if !info.earlier_images.is_empty() {
        writeln!(
            out,
            "note: the file holds {} process images of this pid (an exec in place appends to it): {} before this one; only the last is read",
            info.earlier_images.len() + 1,
            info.earlier_images.join(", then ")
        )?;
    }
    if info.mixed_images {
        writeln!(
            out,
            "note: the log holds several process images (exec in place), read from a pipe as one: give the file to read the last alone"
        )?;
    }
    if info.truncated {
        writeln!(
            out,
            "note: the log ends with a cut record: the program crashed or was killed, or is still running"
        )?;
    }
    if info.corrupt > 0 {
        writeln!(out, "note: {} corrupt records were skipped", info.corrupt)?;
    }
    let missing = info.stacks.missing();
    if missing > 0 {
        writeln!(
            out,
            "note: {} named by events {} no S record in the log (shown as `stack @ID`)",
            plural(missing as u64, "stack"),
            if missing == 1 { "has" } else { "have" }
        )?;
    }
    if info.late > 0 {
        writeln!(
            out,
            "note: {} events came too far out of seq order to be put back in place",
            info.late
        )?;
    }
    Ok(())
}

pub fn summary(g: &Global, path: &str, brief: bool, out: Out) -> Result {
    let mut st = Stats::new(false);
    let info = read(g, path, &mut st)?;
    st.finish();
    let live_blocks = st.heap.live.len();
    if brief {
        writeln!(
            out,
            "{}: peak {} in use at event #{} (t={}); {} allocations, {} in all; {} in {} blocks live at the end{}{}",
            program(&info),
            human(st.peak_bytes),
            st.peak_seq,
            secs(st.peak_t),
            st.alloc_blocks,
            human(st.alloc_bytes),
            human(st.live_bytes()),
            live_blocks,
            if info.truncated {
                "; log cut short"
            } else {
                ""
            },
            if info.corrupt > 0 {
                format!("; {} corrupt lines", info.corrupt)
            } else {
                String::new()
            },
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "log        {} ({} lines, {} events, {} corrupt)",
        path, info.lines, info.events, info.corrupt
    )?;
    writeln!(out, "program    {}", program(&info))?;
    if let Some(pp) = info.header("ppid") {
        writeln!(out, "parent     pid {pp}")?;
    }
    if let Some(d) = info.header("debug") {
        writeln!(out, "debug      {d}")?;
    }
    if info.format == Format::Mtrace {
        writeln!(
            out,
            "format     mtrace (no pid, times, threads or sizes of freed blocks; {} reads it too)",
            ft_format::mtrace::READER
        )?;
    } else {
        writeln!(
            out,
            "duration   {} (to the last event; {} threads)",
            secs(st.duration_ns()),
            st.threads.len()
        )?;
    }
    writeln!(out, "modules    {}", info.modules.len())?;
    let canon = info.stacks.canonical();
    let distinct = (0..canon.len())
        .filter(|&i| canon[i] == i as u32 && !info.stacks.get(i as u32).is_empty())
        .count();
    let deepest = info
        .stacks
        .frames
        .iter()
        .map(|f| f.len())
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "stacks     {} distinct, {} deep at most",
        distinct,
        plural(deepest as u64, "frame")
    )?;
    writeln!(out, "calls      {} in all", st.total_calls())?;
    for op in Op::ALL {
        let n = st.calls[op as usize];
        if n > 0 {
            let f = st.failed[op as usize];
            if f > 0 {
                writeln!(out, "  {:<16}{:>12}   ({} failed)", op.name(), n, f)?;
            } else {
                writeln!(out, "  {:<16}{:>12}", op.name(), n)?;
            }
        }
    }
    if st.unknown_frees > 0 {
        writeln!(
            out,
            "  ({} frees/reallocs of pointers that were not live blocks)",
            st.unknown_frees
        )?;
    }
    writeln!(
        out,
        "allocated  {} in {} blocks",
        human(st.alloc_bytes),
        st.alloc_blocks
    )?;
    writeln!(
        out,
        "temporary  {} blocks freed before any other allocation",
        st.temporary
    )?;
    write!(
        out,
        "peak       {} in {} blocks, at event #{}",
        human(st.peak_bytes),
        st.peak_blocks,
        st.peak_seq,
    )?;
    if info.format == Format::Mtrace {
        writeln!(out)?;
    } else {
        writeln!(out, " (t={})", secs(st.peak_t))?;
    }
    writeln!(
        out,
        "at end     {} in {} blocks still live",
        human(st.live_bytes()),
        live_blocks
    )?;
    state_note(out, &info)?;
    writeln!(out, "sizes      (requested sizes of the allocations)")?;
    let maxc = st.hist.iter().copied().max().unwrap_or(0).max(1);
    for (b, &n) in st.hist.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let (lo, hi) = stats::hist_range(b);
        let range = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}-{hi}")
        };
        let bar = "#".repeat(((n as f64 / maxc as f64) * 40.0).ceil() as usize);
        writeln!(
            out,
            "  {:>24} {:>12} {:5.1}% {}",
            range,
            n,
            100.0 * n as f64 / st.alloc_blocks.max(1) as f64,
            bar
        )?;
    }
    Ok(())
}

/// The one-line summary of a log (`summary --brief`) and the pid its header names.
pub fn brief(g: &Global, path: &str) -> std::result::Result<(Option<u32>, String), Error> {
    let mut buf: Vec<u8> = Vec::new();
    summary(g, path, true, &mut buf)?;
    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
    let pid = line
        .split_once("(pid ")
        .and_then(|(_, r)| r.split(')').next())
        .and_then(|p| p.parse().ok());
    Ok((pid, line))
}

pub fn leaks(g: &Global, path: &str, brief: bool, limit: usize, frames: usize, out: Out) -> Result {
    let mut st = Stats::new(false);
    let info = read(g, path, &mut st)?;
    let sites = stats::leak_sites(&st.heap, &info.stacks.canonical());
    let bytes: u64 = sites.iter().map(|s| s.bytes).sum();
    let blocks: u64 = sites.iter().map(|s| s.blocks).sum();
    let mut view = StackView::new(g, &info);
    let shown = if limit == 0 {
        sites.len()
    } else {
        limit.min(sites.len())
    };
    if brief {
        let shown = if limit == 0 {
            3.min(sites.len())
        } else {
            shown
        };
        writeln!(
            out,
            "{} in {} never freed, from {}{}",
            human(bytes),
            plural(blocks, "block"),
            plural(sites.len() as u64, "stack"),
            if info.truncated {
                " (log cut short: blocks live when it stopped)"
            } else {
                ""
            }
        )?;
        for s in &sites[..shown] {
            writeln!(
                out,
                "  {} in {} at {}",
                human(s.bytes),
                plural(s.blocks, "block"),
                view.site(s.stack)
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "Leaks in {} of {}: {} in {} never freed, from {}",
        path,
        program(&info),
        human(bytes),
        plural(blocks, "block"),
        plural(sites.len() as u64, "stack")
    )?;
    state_note(out, &info)?;
    for s in &sites[..shown] {
        writeln!(out)?;
        let each = if s.min_size == s.max_size {
            format!("{} bytes each", s.min_size)
        } else {
            format!("{} to {} bytes", s.min_size, s.max_size)
        };
        writeln!(
            out,
            "LEAK {} in {} ({}) at {}",
            human(s.bytes),
            plural(s.blocks, "block"),
            each,
            view.site(s.stack)
        )?;
        writeln!(
            out,
            "    first block 0x{:x}, allocated at event #{}",
            s.first_addr, s.first_seq
        )?;
        view.print(out, s.stack, frames, "    ")?;
    }
    if shown < sites.len() {
        writeln!(
            out,
            "\n({} more stacks; --limit 0 shows all)",
            sites.len() - shown
        )?;
    }
    Ok(())
}

pub fn top(g: &Global, path: &str, limit: usize, by: TopBy, frames: usize, out: Out) -> Result {
    let mut st = Stats::new(false);
    let info = read(g, path, &mut st)?;
    st.finish();
    let sites = st.sites_by(&info.stacks.canonical());
    let mut view = StackView::new(g, &info);
    writeln!(
        out,
        "{} of {}: {} allocations, {} in all, from {}",
        path,
        program(&info),
        st.alloc_blocks,
        human(st.alloc_bytes),
        plural(
            sites.iter().filter(|(_, s)| s.calls > 0).count() as u64,
            "stack"
        )
    )?;
    state_note(out, &info)?;
    type Key = fn(&stats::Site) -> u64;
    let tables: [(TopBy, &str, Key); 4] = [
        (TopBy::Calls, "most allocation calls", |s| s.calls),
        (TopBy::Bytes, "most bytes allocated", |s| s.bytes),
        (
            TopBy::Temporary,
            "most temporary allocations (freed before any other allocation)",
            |s| s.temporary,
        ),
        (TopBy::Peak, "largest at the peak", |s| s.peak_bytes),
    ];
    // Stacks are numbered [1], [2]... in the order the tables first show them, and printed
    // once, after the tables.
    let mut numbered: Vec<u32> = Vec::new();
    let mut number = |id: u32| -> usize {
        match numbered.iter().position(|&n| n == id) {
            Some(k) => k + 1,
            None => {
                numbered.push(id);
                numbered.len()
            }
        }
    };
    for (which, title, key) in tables {
        if by != TopBy::All && by != which {
            continue;
        }
        let mut v: Vec<&(u32, stats::Site)> = sites.iter().filter(|(_, s)| key(s) > 0).collect();
        v.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(&b.0)));
        v.truncate(limit);
        writeln!(out)?;
        if which == TopBy::Peak {
            writeln!(
                out,
                "Stacks {title} ({} in {} blocks at event #{}, t={}):",
                human(st.peak_bytes),
                st.peak_blocks,
                st.peak_seq,
                secs(st.peak_t)
            )?;
            writeln!(
                out,
                "  {:>14} {:>10} {:>6} {:>6}  site",
                "bytes at peak", "blocks", "%", "stack"
            )?;
            for (id, s) in v.iter().map(|p| (p.0, &p.1)) {
                writeln!(
                    out,
                    "  {:>14} {:>10} {:>5.1}% {:>6}  {}",
                    s.peak_bytes,
                    s.peak_blocks,
                    100.0 * s.peak_bytes as f64 / st.peak_bytes.max(1) as f64,
                    format!("[{}]", number(id)),
                    view.site(id)
                )?;
            }
        } else {
            writeln!(out, "Stacks with the {title}:")?;
            writeln!(
                out,
                "  {:>12} {:>16} {:>10} {:>6}  site",
                "calls", "bytes", "temporary", "stack"
            )?;
            for (id, s) in v.iter().map(|p| (p.0, &p.1)) {
                writeln!(
                    out,
                    "  {:>12} {:>16} {:>10} {:>6}  {}",
                    s.calls,
                    s.bytes,
                    s.temporary,
                    format!("[{}]", number(id)),
                    view.site(id)
                )?;
            }
        }
        if v.is_empty() {
            writeln!(out, "  (none)")?;
        }
    }
    if !numbered.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Stacks (innermost frame first, {} at most; --frames N):",
            plural(frames.max(1) as u64, "frame")
        )?;
        for (k, &id) in numbered.iter().enumerate() {
            writeln!(out, "[{}]", k + 1)?;
            view.print(out, id, frames, "    ")?;
        }
    }
    Ok(())
}

/// Collects the events that touch the block(s) holding one address.
struct History {
    addr: u64,
    heap: Heap,
    /// The live block holding `addr`, if any.
    cur: Option<(u64, Block)>,
    /// The last block that held `addr` and ended (to catch double and invalid frees of it).
    prev: Option<(u64, u64)>,
    hits: Vec<(Event, &'static str)>,
}

fn contains(start: u64, size: u64, a: u64) -> bool {
    start <= a && a < start.saturating_add(size.max(1))
}

impl Sink for History {
    fn prefetch(&self, ev: &Event) {
        self.heap.prefetch(ev);
    }

    fn event(&mut self, ev: &Event) -> bool {
        let in_hit = ev.inp != 0
            && (ev.inp == self.addr || self.cur.is_some_and(|(s, b)| contains(s, b.size, ev.inp)));
        let c = self.heap.apply(ev);
        let in_hit = in_hit
            || (c.unknown_in && self.prev.is_some_and(|(s, size)| contains(s, size, ev.inp)));
        let out_hit = c.created && contains(ev.out, ev.size, self.addr);
        let mut note = "";
        if let Some((a, _)) = c.ended {
            if let Some((s, b)) = self.cur.filter(|(s, _)| *s == a) {
                self.prev = Some((s, b.size));
                self.cur = None;
                note = if ev.op.is_free() {
                    "block freed"
                } else {
                    "block moved by realloc"
                };
            }
        } else if in_hit && c.unknown_in {
            note = "not the start of a live block: invalid or double free";
        }
        if out_hit {
            self.cur = Some((ev.out, *self.heap.live.get(&ev.out).unwrap()));
            note = if note.is_empty() {
                "block allocated"
            } else {
                "block moved by realloc, still holds the address"
            };
        }
        if in_hit || out_hit {
            self.hits.push((*ev, note));
        }
        true
    }
}

pub fn history(g: &Global, path: &str, addr: u64, frames: usize, out: Out) -> Result {
    let mut h = History {
        addr,
        heap: Heap::default(),
        cur: None,
        prev: None,
        hits: Vec::new(),
    };
    let info = read(g, path, &mut h)?;
    let mut view = StackView::new(g, &info);
    writeln!(out, "Events that touched 0x{addr:x} in {path}:")?;
    for (ev, note) in &h.hits {
        writeln!(
            out,
            "#{:<10} t={}  tid {}  {}  [{}]",
            ev.seq,
            secs(ev.t_ns),
            ev.tid,
            describe(ev),
            note
        )?;
        view.print(out, ev.stack, frames, "        ")?;
    }
    if h.hits.is_empty() {
        writeln!(out, "no event touched 0x{addr:x}")?;
    } else {
        match h.cur {
            Some((s, b)) => writeln!(
                out,
                "at the end of the log 0x{addr:x} is in a live block: 0x{s:x}, {} bytes, allocated at #{}",
                b.size, b.seq
            )?,
            None => writeln!(out, "at the end of the log no live block holds 0x{addr:x}")?,
        }
    }
    state_note(out, &info)?;
    Ok(())
}

struct HeapAt {
    at: u64,
    heap: Heap,
    last_seq: u64,
    last_t: u64,
}

impl Sink for HeapAt {
    fn prefetch(&self, ev: &Event) {
        self.heap.prefetch(ev);
    }

    fn event(&mut self, ev: &Event) -> bool {
        if ev.seq > self.at {
            return false;
        }
        self.heap.apply(ev);
        self.last_seq = ev.seq;
        self.last_t = ev.t_ns;
        true
    }
}

pub fn heap(g: &Global, path: &str, at: Option<u64>, plain: bool, out: Out) -> Result {
    let mut h = HeapAt {
        at: at.unwrap_or(u64::MAX),
        heap: Heap::default(),
        last_seq: 0,
        last_t: 0,
    };
    let info = read(g, path, &mut h)?;
    let mut v: Vec<(u64, Block)> = h.heap.live.iter().map(|(a, b)| (*a, *b)).collect();
    v.sort_by_key(|(a, _)| *a);
    let total: u64 = v.iter().map(|(_, b)| b.size).sum();
    if plain {
        for (a, b) in &v {
            writeln!(out, "0x{:X} - 0x{:X} : {} bytes", a, a + b.size, b.size)?;
        }
        writeln!(out, "Total : {total} bytes")?;
        return Ok(());
    }
    let mut view = StackView::new(g, &info);
    match at {
        Some(s) if h.last_seq < s && !info.stopped_early => writeln!(
            out,
            "The log ends at event #{} (t={}), before #{s}: live blocks at its end:",
            h.last_seq,
            secs(h.last_t)
        )?,
        _ => writeln!(
            out,
            "Live blocks after event #{} (t={}) in {}:",
            h.last_seq,
            secs(h.last_t),
            path
        )?,
    }
    for (a, b) in &v {
        let caller = view.site(b.stack);
        writeln!(
            out,
            "0x{:X} - 0x{:X} : {} bytes  #{} t={} {} {}",
            a,
            a + b.size,
            b.size,
            b.seq,
            secs(b.t_ns),
            b.op.name(),
            caller
        )?;
    }
    writeln!(out, "Total : {total} bytes in {} blocks", v.len())?;
    if !info.stopped_early {
        state_note(out, &info)?;
    }
    Ok(())
}

pub fn plot(
    g: &Global,
    path: &str,
    file: &str,
    x: plot::XAxis,
    width: u32,
    height: u32,
    out: Out,
) -> Result {
    let lower = file.to_ascii_lowercase();
    let png = if lower.ends_with(".png") {
        true
    } else if lower.ends_with(".svg") {
        false
    } else {
        return Err(Error::Usage(format!(
            "{file}: the output file must end in .svg or .png"
        )));
    };
    // The output is opened first: a path that cannot be written fails before a long read.
    let mut f = std::fs::File::create(file).map_err(|e| Error::Write(file.to_string(), e))?;
    let mut st = Stats::new(true);
    let info = match read(g, path, &mut st) {
        Ok(i) => i,
        Err(e) => {
            drop(f);
            let _ = std::fs::remove_file(file);
            return Err(e);
        }
    };
    st.finish();
    // An mtrace log has no times: its events are the time axis.
    let x = if info.format == Format::Mtrace {
        plot::XAxis::Events
    } else {
        x
    };
    let fig = plot::figure(
        &st,
        &info,
        x,
        width.clamp(300, 8000),
        height.clamp(240, 8000),
    );
    let bytes = if png {
        plot::to_png(&fig)
    } else {
        plot::to_svg(&fig).into_bytes()
    };
    f.write_all(&bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::Write(file.to_string(), e))?;
    writeln!(
        out,
        "wrote {file}: memory in use over {} (peak {} at event #{}) and size histogram",
        if x == plot::XAxis::Time {
            "time"
        } else {
            "events"
        },
        human(st.peak_bytes),
        st.peak_seq
    )?;
    Ok(())
}

/// `flame`: the bytes per stack, live at the peak (or of every allocation with `all`), as
/// collapsed stacks on `out`, or drawn into the SVG file `file`.
pub fn flame(g: &Global, path: &str, file: Option<&str>, all: bool, out: Out) -> Result {
    let mut f = match file {
        Some(file) if !file.to_ascii_lowercase().ends_with(".svg") => {
            return Err(Error::Usage(format!(
                "{file}: the flame graph is written as SVG: the file name must end in .svg (without a file, the collapsed stacks go to standard output)"
            )));
        }
        // Opened first: a path that cannot be written fails before a long read.
        Some(file) => {
            Some(std::fs::File::create(file).map_err(|e| Error::Write(file.to_string(), e))?)
        }
        None => None,
    };
    let mut st = Stats::new(false);
    let info = match read(g, path, &mut st) {
        Ok(i) => i,
        Err(e) => {
            if let Some(file) = file {
                drop(f.take());
                let _ = std::fs::remove_file(file);
            }
            return Err(e);
        }
    };
    st.finish();
    let mut view = StackView::new(g, &info);
    let mut stacks: Vec<flame::Folded> = Vec::new();
    for (id, s) in st.sites_by(&info.stacks.canonical()) {
        let v = if all { s.bytes } else { s.peak_bytes };
        if v == 0 {
            continue;
        }
        let addrs = info.stacks.get(id);
        let mut frames: Vec<flame::Frame> = Vec::new();
        if addrs.is_empty() {
            frames.push(flame::Frame {
                name: flame::clean(&view.missing(id)),
                runtime: false,
            });
        }
        for &a in addrs.iter().rev() {
            let r = view.namer.resolve(a);
            for name in r.functions.iter().rev() {
                frames.push(flame::Frame {
                    name: flame::clean(name),
                    runtime: r.runtime,
                });
            }
        }
        stacks.push((frames, v));
    }
    let stacks = flame::merge(stacks);
    let Some(mut f) = f else {
        out.write_all(flame::collapsed(&stacks).as_bytes())?;
        return Ok(());
    };
    let file = file.unwrap_or_default();
    let title = if all {
        format!(
            "All allocations: {} in {}",
            human(st.alloc_bytes),
            plural(st.alloc_blocks, "block")
        )
    } else {
        format!(
            "Live heap at its peak: {} in {} at event #{}",
            human(st.peak_bytes),
            plural(st.peak_blocks, "block"),
            st.peak_seq
        )
    };
    let subtitle = format!(
        "{} in {path}; width: bytes; warm: the program's frames, blue: the C/C++ runtime's",
        program(&info)
    );
    f.write_all(flame::svg(&stacks, &title, &subtitle).as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::Write(file.to_string(), e))?;
    writeln!(
        out,
        "wrote {file}: flame graph of {} ({})",
        if all {
            "all allocations"
        } else {
            "the live heap at its peak"
        },
        plural(stacks.len() as u64, "stack")
    )?;
    Ok(())
}

struct Counter(u64);

impl Sink for Counter {
    fn event(&mut self, _: &Event) -> bool {
        self.0 += 1;
        true
    }
}

pub fn count(g: &Global, path: &str, out: Out) -> Result {
    let mut c = Counter(0);
    let info = read(g, path, &mut c)?;
    writeln!(
        out,
        "{} events, {} lines, {} corrupt",
        c.0, info.lines, info.corrupt
    )?;
    Ok(())
}
