//! Streaming reader: one pass over a log file with bounded memory.
//!
//! - reads fixed-size chunks (the buffer only grows for a single line longer than it);
//! - splits on `\n` and on NUL (a NUL run is the unwritten tail of a crashed run, or a
//!   reserved-but-never-written record): a non-empty fragment not ended by `\n` is a cut
//!   record, reported as corrupt;
//! - reports each corrupt line by number (the first few in full, then a count) and goes on;
//! - interns call stacks (one id per distinct `<caller>[,<frame>...]` field or `@<id>`
//!   reference; the frames of a reference come from its `S` record, before or after it);
//! - hands events to the sink in `seq` order through a bounded reorder window (lines of
//!   several threads are out of order in the file: each fills a chunk of its own), which grows
//!   when events still come too late.

use crate::parse::{self, MtraceRecord, MtraceWhere, Op, Record};
use ft_format::log;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Events held back at most to restore `seq` order, at first (16 MiB of events).
const REORDER_WINDOW: usize = 1 << 18;
/// The most the window grows to when events still come too late (256 MiB of events): a thread
/// writes up to 1 MiB of lines (some 25,000 events) into its own chunk of the file while every
/// other thread fills one of its own, so a log of many busy threads needs about threads × 25,000.
const REORDER_MAX: usize = 1 << 22;
/// Corrupt lines printed in full; the rest are only counted.
const CORRUPT_SHOWN: u64 = 10;

/// An event as the sinks see it: the caller field replaced by an interned stack id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub t_ns: u64,
    pub tid: u32,
    pub op: Op,
    pub stack: u32,
    pub inp: u64,
    pub out: u64,
    pub size: u64,
    pub align: u64,
}

impl Ord for Event {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.seq.cmp(&o.seq)
    }
}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Interned call stacks: one dense id per distinct stack of the log, and its frames (innermost
/// first), stored once.
///
/// Events name their stack in one of three forms (docs/LOGFORMAT.md): a caller or a frame list
/// (interned by the bytes of the field), or `@<id>`, a reference to an `S <id> <frames>` record
/// of the same file. Such a record may come after the events naming it (another thread's
/// chunk), so a reference gets its dense id at once and its frames whenever the record is read:
/// ids are resolved at output, after the whole log was read.
#[derive(Default)]
pub struct Stacks {
    /// Caller / frame-list fields -> id.
    ids: FxHashMap<Box<[u8]>, u32>,
    /// The log's stack ids (`@<id>`, `S <id>`) -> id.
    by_ref: FxHashMap<u32, u32>,
    /// id -> frames; empty for a referenced stack whose `S` record was not (yet) read.
    pub frames: Vec<Box<[u64]>>,
    /// id -> the log's stack id, for the stacks named by reference.
    log_ids: Vec<Option<u32>>,
    /// `S` records read after an event that named their id.
    pub defined_late: u64,
}

impl Stacks {
    fn push(&mut self, frames: Box<[u64]>, log_id: Option<u32>) -> u32 {
        let id = self.frames.len() as u32;
        self.frames.push(frames);
        self.log_ids.push(log_id);
        id
    }

    #[inline]
    fn intern(&mut self, field: &[u8]) -> Result<u32, parse::ParseError> {
        if let Some(r) = parse::stack_ref(field) {
            let log_id = r?;
            if let Some(&id) = self.by_ref.get(&log_id) {
                return Ok(id);
            }
            let id = self.push(Box::default(), Some(log_id));
            self.by_ref.insert(log_id, id);
            return Ok(id);
        }
        if let Some(&id) = self.ids.get(field) {
            return Ok(id);
        }
        let frames = parse::parse_frames(field)?;
        let id = self.push(frames.into_boxed_slice(), None);
        self.ids.insert(field.into(), id);
        Ok(id)
    }

    /// An `S <id> <frames>` record.
    fn define(&mut self, log_id: u32, field: &[u8]) -> Result<(), parse::ParseError> {
        let frames = parse::parse_frames(field).map_err(|_| "stack record: bad frame address")?;
        match self.by_ref.get(&log_id) {
            Some(&id) if self.frames[id as usize].is_empty() => {
                self.frames[id as usize] = frames.into_boxed_slice();
                self.defined_late += 1;
                Ok(())
            }
            Some(&id) if *self.frames[id as usize] == *frames => Ok(()),
            Some(_) => Err("stack record: id already defined with other frames"),
            None => {
                let id = self.push(frames.into_boxed_slice(), Some(log_id));
                self.by_ref.insert(log_id, id);
                Ok(())
            }
        }
    }

    /// Interns a stack given by a key other than a `caller` field (an mtrace caller).
    fn intern_with(&mut self, key: &[u8], frames: impl FnOnce() -> Vec<u64>) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = self.push(frames().into_boxed_slice(), None);
        self.ids.insert(key.into(), id);
        id
    }

    /// The frames of stack `id`, innermost first; empty when the log named the stack by
    /// reference and has no `S` record for it.
    pub fn get(&self, id: u32) -> &[u64] {
        &self.frames[id as usize]
    }

    /// The log's own id of a stack named by reference (`@<id>`).
    pub fn log_id(&self, id: u32) -> Option<u32> {
        self.log_ids[id as usize]
    }

    /// Stacks named by events whose `S` record is not in the log.
    pub fn missing(&self) -> usize {
        self.frames.iter().filter(|f| f.is_empty()).count()
    }

    /// For every id, the smallest id with the same frames (the same stack named in two forms,
    /// or defined twice): what reports group by. A missing stack stays apart.
    pub fn canonical(&self) -> Vec<u32> {
        let mut first: FxHashMap<&[u64], u32> = FxHashMap::default();
        self.frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if f.is_empty() {
                    i as u32
                } else {
                    *first.entry(&f[..]).or_insert(i as u32)
                }
            })
            .collect()
    }
}

/// The two formats the library writes (`log_format=text|mtrace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// docs/LOGFORMAT.md, first line `# ft_malloc log v2` (or `v1`).
    #[default]
    Text,
    /// glibc's mtrace records, first line `= Start`: no pid, times or threads; sizes of freed
    /// blocks come from the replay.
    Mtrace,
}

/// Synthetic load base of the n-th module named in an mtrace log (whose callers are
/// `path:[0xoffset]`): far above any user-space address, so an absolute caller never falls in
/// one of them.
const MTRACE_BASE: u64 = 1 << 56;
const MTRACE_STRIDE: u64 = 1 << 40;

/// What the reader learnt about the log besides the events.
#[derive(Default)]
pub struct LogInfo {
    pub path: String,
    pub format: Format,
    pub headers: Vec<(String, String)>,
    /// (base, path), in file order.
    pub modules: Vec<(u64, String)>,
    pub stacks: Stacks,
    pub lines: u64,
    pub events: u64,
    pub corrupt: u64,
    /// Events that arrived out of `seq` order and were put back in place.
    pub reordered: u64,
    /// Events whose `seq` was not above one already handed on (duplicates or far out of order).
    pub late: u64,
    /// The file did not end with a complete record (crash, or still being written).
    pub truncated: bool,
    /// The sink asked to stop before the end of the file.
    pub stopped_early: bool,
    /// The programs of the process images before the one read, in order: an exec in place
    /// appends the new image's header and records to the file (docs/LOGFORMAT.md), and the
    /// reader reads the last image alone.
    pub earlier_images: Vec<String>,
    /// Read from a pipe, the file held several images, whose events are mixed.
    pub mixed_images: bool,
    pub bytes: u64,
}

impl LogInfo {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Receives the events in `seq` order. Return false to stop reading.
pub trait Sink {
    fn event(&mut self, ev: &Event) -> bool;
    /// Called a few events ahead of `event(ev)`: a hint to bring its data into the cache.
    #[inline(always)]
    fn prefetch(&self, _ev: &Event) {}
}

/// How many events ahead `Sink::prefetch` is called.
const PREFETCH_AHEAD: usize = 12;

/// Events handed from the parsing thread to the sink's thread in batches of this many.
const BATCH: usize = 4096;

pub struct Options {
    /// Show a progress bar on stderr if it is a terminal.
    pub progress: bool,
    /// Print corrupt lines on stderr.
    pub warn: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            progress: true,
            warn: true,
        }
    }
}

struct Reorder {
    heap: BinaryHeap<Reverse<Event>>,
    /// Events held back at most now: doubled (up to `REORDER_MAX`) by each event that came
    /// too late.
    window: usize,
    next: u64,
    /// Highest seq handed on so far (0 = none).
    last: u64,
}

struct State {
    info: LogInfo,
    batch: Vec<Event>,
    tx: mpsc::SyncSender<Vec<Event>>,
    recycle: mpsc::Receiver<Vec<Event>>,
    ro: Reorder,
    warn: bool,
    stop: bool,
    /// The first line said which format this is (None before it).
    format: Option<Format>,
    /// Which form the text format's `E` records take (the first line, or the header block of
    /// a later image, says).
    version: parse::Version,
    /// The process id of the current header block: the thread a v2 record writes as `-`.
    main_tid: u32,
    /// Why the file is not a log (stops the reading).
    fatal: Option<String>,
    mtrace: MtraceState,
}

#[derive(Default)]
struct MtraceState {
    seq: u64,
    /// A `< OLD` waiting for its `> NEW SIZE`: (old, stack).
    pending: Option<(u64, u32)>,
    bases: FxHashMap<Vec<u8>, u64>,
}

/// `text`, shown safely in a message: at most 60 characters, control bytes escaped.
fn excerpt(line: &[u8]) -> String {
    let mut shown = String::new();
    for &b in line.iter().take(60) {
        if (0x20..0x7f).contains(&b) {
            shown.push(b as char);
        } else {
            shown.push_str(&format!("\\x{b:02x}"));
        }
    }
    if line.len() > 60 {
        shown.push_str("...");
    }
    shown
}

impl State {
    #[inline]
    fn emit(&mut self, ev: Event) {
        if self.stop {
            return;
        }
        if ev.seq <= self.ro.last && self.ro.last != 0 {
            self.info.late += 1;
        } else {
            self.ro.last = ev.seq;
        }
        self.info.events += 1;
        self.batch.push(ev);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.stop {
            return;
        }
        let next = self
            .recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        if self.tx.send(full).is_err() {
            // The sink has seen enough.
            self.stop = true;
        }
    }

    #[inline]
    fn push(&mut self, ev: Event) {
        if ev.seq == self.ro.next && self.ro.heap.is_empty() {
            self.ro.next = ev.seq + 1;
            self.emit(ev);
            return;
        }
        if ev.seq < self.ro.next {
            // Older than what was already handed on: too late to put in place. Later ones
            // get a larger window.
            self.ro.window = (self.ro.window * 2).min(REORDER_MAX);
            self.emit(ev);
            return;
        }
        self.info.reordered += 1;
        self.ro.heap.push(Reverse(ev));
        self.drain(false);
    }

    fn drain(&mut self, all: bool) {
        while let Some(Reverse(top)) = self.ro.heap.peek() {
            let top = *top;
            if top.seq == self.ro.next || all || self.ro.heap.len() > self.ro.window {
                self.ro.heap.pop();
                self.ro.next = top.seq + 1;
                self.emit(top);
                if self.stop {
                    return;
                }
            } else {
                break;
            }
        }
    }

    fn corrupt(&mut self, line_no: u64, why: &str, line: &[u8]) {
        self.info.corrupt += 1;
        if !self.warn {
            return;
        }
        if self.info.corrupt <= CORRUPT_SHOWN {
            clear_progress();
            let mut shown = String::new();
            for &b in line.iter().take(80) {
                if (0x20..0x7f).contains(&b) {
                    shown.push(b as char);
                } else {
                    shown.push_str(&format!("\\x{b:02x}"));
                }
            }
            if line.len() > 80 {
                shown.push_str("...");
            }
            eprintln!(
                "ft-malloc-report: {}:{}: corrupt record skipped ({}): {}",
                self.info.path, line_no, why, shown
            );
        } else if self.info.corrupt == CORRUPT_SHOWN + 1 {
            eprintln!(
                "ft-malloc-report: {}: more corrupt records; only counting them from now on",
                self.info.path
            );
        }
    }

    /// The first line says what the file is: an ft_malloc log (`# ft_malloc log v2` or `v1`), an
    /// mtrace log (`= Start`), or something else, which stops the reading.
    #[cold]
    fn first_line(&mut self, line: &[u8], complete: bool) {
        use ft_format::mtrace;
        if line == log::MAGIC.as_bytes() {
            self.format = Some(Format::Text);
            self.version = parse::Version::V2;
        } else if line == log::MAGIC_V1.as_bytes() {
            self.format = Some(Format::Text);
            self.version = parse::Version::V1;
        } else if line == mtrace::START.as_bytes() {
            self.format = Some(Format::Mtrace);
            self.info.format = Format::Mtrace;
        } else if !complete
            && (log::MAGIC.as_bytes().starts_with(line)
                || mtrace::START.as_bytes().starts_with(line))
        {
            self.fatal = Some(format!(
                "{} ends inside its first line (`{}`): the program wrote nothing more",
                self.info.path,
                excerpt(line)
            ));
        } else if let Some(v) = line.strip_prefix(log::MAGIC_PREFIX.as_bytes()) {
            self.fatal = Some(format!(
                "{} is a log of format v{} (its first line is `{}`); this reader knows `{}` and `{}`",
                self.info.path,
                excerpt(v),
                excerpt(line),
                log::MAGIC,
                log::MAGIC_V1
            ));
        } else {
            self.fatal = Some(format!(
                "{} is not an ft_malloc log: its first line is `{}`, where a log starts with `{}` (or `{}` for log_format=mtrace)",
                self.info.path,
                excerpt(line),
                log::MAGIC,
                mtrace::START
            ));
        }
        if self.fatal.is_some() {
            self.stop = true;
        }
    }

    #[inline]
    fn line(&mut self, line_no: u64, line: &[u8], complete: bool) {
        if line.is_empty() {
            return;
        }
        if self.format.is_none() {
            self.first_line(line, complete);
            if self.stop {
                return;
            }
        }
        if self.format == Some(Format::Mtrace) {
            if complete {
                self.mtrace_line(line_no, line);
            } else {
                self.info.truncated = true;
                self.corrupt(line_no, "record cut short", line);
            }
            return;
        }
        if !complete {
            self.info.truncated = true;
            self.corrupt(line_no, "record cut short", line);
            return;
        }
        match parse::parse_line(line, self.version) {
            Ok(Record::Event(e)) => match self.info.stacks.intern(e.caller) {
                Ok(stack) => self.push(Event {
                    seq: e.seq,
                    t_ns: e.t_ns,
                    tid: if e.tid == 0 { self.main_tid } else { e.tid },
                    op: e.op,
                    stack,
                    inp: e.inp,
                    out: e.out,
                    size: e.size,
                    align: e.align,
                }),
                Err(why) => self.corrupt(line_no, why, line),
            },
            Ok(Record::Header(k, v)) => {
                // The header block of an image that an exec in place appended may be of
                // another format version; its pid names the main thread.
                if line == log::MAGIC.as_bytes() {
                    self.version = parse::Version::V2;
                    // A file is read from its last image on (`last_image`); a pipe cannot be.
                    self.info.mixed_images |= self.info.events > 0;
                } else if line == log::MAGIC_V1.as_bytes() {
                    self.version = parse::Version::V1;
                } else if k == log::key::PID.as_bytes() {
                    self.main_tid = std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                }
                // Only the first lines of the file are headers; keep memory bounded anyway.
                if self.info.headers.len() < 1024 {
                    self.info.headers.push((
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    ));
                }
            }
            Ok(Record::Stack(id, frames)) => {
                if let Err(why) = self.info.stacks.define(id, frames) {
                    self.corrupt(line_no, why, line);
                }
            }
            Ok(Record::Module(base, path)) => {
                let path = String::from_utf8_lossy(path).into_owned();
                if !self
                    .info
                    .modules
                    .iter()
                    .any(|(b, p)| *b == base && *p == path)
                {
                    self.info.modules.push((base, path));
                }
            }
            Ok(Record::Skip) => {}
            Err(why) => self.corrupt(line_no, why, line),
        }
    }
}

impl State {
    /// The stack id of an mtrace caller field (one frame).
    fn mtrace_stack(&mut self, caller: &[u8]) -> Result<u32, parse::ParseError> {
        let frame = match parse::parse_mtrace_where(caller)? {
            MtraceWhere::None => 0,
            MtraceWhere::Addr(a) => a,
            MtraceWhere::Offset(path, off) => {
                let n = self.mtrace.bases.len() as u64;
                let base = *self
                    .mtrace
                    .bases
                    .entry(path.to_vec())
                    .or_insert_with(|| MTRACE_BASE + n * MTRACE_STRIDE);
                if base == MTRACE_BASE + n * MTRACE_STRIDE
                    && !self.info.modules.iter().any(|(b, _)| *b == base)
                {
                    self.info
                        .modules
                        .push((base, String::from_utf8_lossy(path).into_owned()));
                }
                base + off
            }
        };
        Ok(self.info.stacks.intern_with(caller, || vec![frame]))
    }

    fn mtrace_event(&mut self, op: Op, stack: u32, inp: u64, out: u64, size: u64) {
        self.mtrace.seq += 1;
        let seq = self.mtrace.seq;
        self.push(Event {
            seq,
            t_ns: 0,
            tid: 0,
            op,
            stack,
            inp,
            out,
            size,
            align: 0,
        });
    }

    /// A `< OLD` never completed by `> NEW SIZE`: OLD was released.
    fn mtrace_flush_pending(&mut self) {
        if let Some((old, stack)) = self.mtrace.pending.take() {
            self.mtrace_event(Op::Free, stack, old, 0, FREED_SIZE_UNKNOWN);
        }
    }

    fn mtrace_line(&mut self, line_no: u64, line: &[u8]) {
        let rec = match parse::parse_mtrace_line(line) {
            Ok(MtraceRecord::Skip) => return,
            Ok(r) => r,
            Err(why) => return self.corrupt(line_no, why, line),
        };
        let caller = match &rec {
            MtraceRecord::Alloc { caller, .. }
            | MtraceRecord::Free { caller, .. }
            | MtraceRecord::ReallocOld { caller, .. }
            | MtraceRecord::ReallocNew { caller, .. }
            | MtraceRecord::ReallocFailed { caller, .. } => *caller,
            MtraceRecord::Skip => return,
        };
        let stack = match self.mtrace_stack(caller) {
            Ok(s) => s,
            Err(why) => return self.corrupt(line_no, why, line),
        };
        if !matches!(rec, MtraceRecord::ReallocNew { .. }) {
            self.mtrace_flush_pending();
        }
        match rec {
            MtraceRecord::Alloc { addr, size, .. } => {
                self.mtrace_event(Op::Malloc, stack, 0, addr, size)
            }
            MtraceRecord::Free { addr, .. } => {
                self.mtrace_event(Op::Free, stack, addr, 0, FREED_SIZE_UNKNOWN)
            }
            MtraceRecord::ReallocOld { addr, .. } => self.mtrace.pending = Some((addr, stack)),
            MtraceRecord::ReallocNew { addr, size, .. } => {
                let old = self.mtrace.pending.take().map_or(0, |(o, _)| o);
                self.mtrace_event(Op::Realloc, stack, old, addr, size)
            }
            MtraceRecord::ReallocFailed { addr, size, .. } => {
                self.mtrace_event(Op::Realloc, stack, addr, 0, size)
            }
            MtraceRecord::Skip => {}
        }
    }
}

/// The `size` of a free read from an mtrace log, which does not say it (any non-zero size ends
/// the block; zero would mean a refused free).
pub const FREED_SIZE_UNKNOWN: u64 = u64::MAX;

static PROGRESS_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn clear_progress() {
    if PROGRESS_SHOWN.swap(false, std::sync::atomic::Ordering::Relaxed) {
        eprint!("\r\x1b[K");
    }
}

/// Open `path` (`-` = standard input) and stream it into `sink`.
///
/// Reading and parsing run in a thread of their own; the sink gets the events in batches in
/// the calling thread (two cores: the replay overlaps the parsing).
pub fn read_log<S: Sink>(path: &str, sink: &mut S, opts: &Options) -> std::io::Result<LogInfo> {
    let mut last = LastImage::default();
    let (input, total): (Box<dyn Read + Send>, u64) = if path == "-" {
        (Box::new(std::io::stdin()), 0)
    } else {
        let mut f = File::open(path)?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        last = last_image(&mut f)?;
        f.seek(SeekFrom::Start(last.offset))?;
        (Box::new(f), len - last.offset.min(len))
    };
    let (tx, rx) = mpsc::sync_channel::<Vec<Event>>(16);
    let (rtx, rrx) = mpsc::channel::<Vec<Event>>();
    let st = State {
        info: LogInfo {
            path: path.to_string(),
            earlier_images: last.earlier,
            ..Default::default()
        },
        batch: Vec::with_capacity(BATCH),
        tx,
        recycle: rrx,
        ro: Reorder {
            heap: BinaryHeap::new(),
            window: REORDER_WINDOW,
            next: 1,
            last: 0,
        },
        warn: opts.warn,
        stop: false,
        format: None,
        version: parse::Version::V2,
        main_tid: 0,
        fatal: None,
        mtrace: MtraceState::default(),
    };
    let progress = opts.progress && total > (64 << 20) && std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || parse_all(st, input, total, progress, last.line));
        let mut stopped = false;
        'recv: for mut batch in rx.iter() {
            for i in 0..batch.len() {
                if let Some(ahead) = batch.get(i + PREFETCH_AHEAD) {
                    sink.prefetch(ahead);
                }
                if !sink.event(&batch[i]) {
                    stopped = true;
                    break 'recv;
                }
            }
            batch.clear();
            let _ = rtx.send(batch);
        }
        drop(rx);
        let mut info = parser.join().expect("log parser thread")?;
        info.stopped_early = stopped;
        Ok(info)
    })
}

/// Where the last process image of a log file starts.
#[derive(Default)]
struct LastImage {
    /// Byte offset of its first line.
    offset: u64,
    /// Number of that line, from 1.
    line: u64,
    /// The programs (`# program`) of the images before it.
    earlier: Vec<String>,
}

/// Finds the last process image of the log file `f`: an exec in place appends the new image's
/// first line (`# ft_malloc log v2`, or `= Start` for the mtrace format) and the rest after the
/// former image's records. Leaves the file position anywhere.
fn last_image(f: &mut File) -> std::io::Result<LastImage> {
    const MARKS: [&[u8]; 2] = [b"\n# ft_malloc log v", b"\n= Start\n"];
    const KEEP: usize = 512;
    let count = |t: &[u8]| memchr::memchr_iter(b'\n', t).count() as u64;
    let mut starts: Vec<(u64, u64)> = vec![(0, 1)]; // (offset, line) of each image
    let mut programs: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 4 << 20];
    // buf[..carry] holds the last bytes of the previous chunk, which starts at file offset
    // `base`; `lines` counts the newlines before `base + carry`.
    let (mut base, mut carry, mut lines) = (0u64, 0usize, 0u64);
    loop {
        let n = match f.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = carry + n;
        let text = &buf[..end];
        if base == 0 && programs.is_empty() {
            programs.push(program_in(text));
        }
        let mut at: Vec<usize> = MARKS
            .iter()
            .flat_map(|m| memchr::memmem::find_iter(text, m))
            .collect();
        at.sort_unstable();
        for i in at {
            // The image starts after the newline. A match the previous chunk held whole was
            // taken then.
            let (o, upto) = (base + i as u64 + 1, i + 1);
            if starts.last().is_some_and(|&(s, _)| s >= o) {
                continue;
            }
            let before = if upto >= carry {
                lines + count(&text[carry..upto])
            } else {
                lines - count(&text[upto..carry])
            };
            starts.push((o, before + 1));
            programs.push(program_in(&text[upto..]));
        }
        if n == 0 {
            break;
        }
        lines += count(&text[carry..]);
        let keep = end.min(KEEP);
        buf.copy_within(end - keep..end, 0);
        base += (end - keep) as u64;
        carry = keep;
    }
    let &(offset, line) = starts.last().unwrap_or(&(0, 1));
    programs.truncate(starts.len() - 1);
    Ok(LastImage {
        offset,
        line,
        earlier: programs,
    })
}

/// The `# program` of the header block at the start of `text` (`?` if it is not there).
fn program_in(text: &[u8]) -> String {
    text.split(|&b| b == b'\n')
        .take(16)
        .find_map(|l| l.strip_prefix(b"# program "))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "?".to_string())
}

fn parse_all(
    mut st: State,
    mut input: Box<dyn Read + Send>,
    total: u64,
    progress: bool,
    first_line: u64,
) -> std::io::Result<LogInfo> {
    let started = Instant::now();
    let mut last_shown = started;
    let mut buf = vec![0u8; 4 << 20];
    let mut end = 0usize; // valid bytes in buf
    let mut line_no = first_line; // number of the line being read
    let mut read_total = 0u64;
    // Bytes other than NUL seen since the last `\n` (a last line without its newline).
    let mut open_line = false;
    'outer: loop {
        let n = loop {
            match input.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        read_total += n as u64;
        let eof = n == 0;
        end += n;
        let mut start = 0usize;
        while let Some(k) = memchr::memchr2(b'\n', 0, &buf[start..end]) {
            let term = buf[start + k];
            st.line(line_no, &buf[start..start + k], term == b'\n');
            if term == b'\n' {
                line_no += 1;
                open_line = false;
            } else if k > 0 {
                open_line = true;
            }
            start += k + 1;
            if st.stop {
                break 'outer;
            }
        }
        if eof {
            if start < end {
                open_line = true;
                st.line(line_no, &buf[start..end], false);
            }
            break;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        if end == buf.len() {
            // One line longer than the buffer: grow it (bounded by that line).
            buf.resize(buf.len() * 2, 0);
        }
        if progress && last_shown.elapsed() > Duration::from_millis(250) {
            last_shown = Instant::now();
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let frac = read_total as f64 / total as f64;
            let width = 30usize;
            let filled = ((frac * width as f64) as usize).min(width);
            PROGRESS_SHOWN.store(true, std::sync::atomic::Ordering::Relaxed);
            eprint!(
                "\r\x1b[Kreading {} [{}{}] {:3.0}%  {:.1}M events  {:.1}M events/s",
                st.info.path,
                "#".repeat(filled),
                "-".repeat(width - filled),
                frac * 100.0,
                st.info.events as f64 / 1e6,
                st.info.events as f64 / secs / 1e6
            );
            let _ = std::io::stderr().flush();
        }
    }
    if let Some(why) = st.fatal.take() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    }
    if st.format.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is empty: not an ft_malloc log (a log starts with `{}`; the program may have ended before the library wrote it)",
                st.info.path,
                ft_format::log::MAGIC
            ),
        ));
    }
    if !st.stop {
        st.mtrace_flush_pending();
        st.drain(true);
        st.flush();
    }
    st.info.lines = line_no - 1 + u64::from(open_line && !st.stop);
    st.info.bytes = read_total;
    clear_progress();
    if st.warn && st.info.corrupt > CORRUPT_SHOWN {
        eprintln!(
            "ft-malloc-report: {}: {} corrupt records skipped in all",
            st.info.path, st.info.corrupt
        );
    }
    Ok(st.info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_by_reference_resolve_late() {
        let mut s = Stacks::default();
        // Named before its record, then again: one id, frames once the record is read.
        let a = s.intern(b"@7").unwrap();
        assert_eq!(s.intern(b"@7").unwrap(), a);
        assert!(s.get(a).is_empty());
        assert_eq!(s.missing(), 1);
        s.define(7, b"0x10,0x20,0x30").unwrap();
        assert_eq!(s.get(a), [0x10, 0x20, 0x30]);
        assert_eq!(s.log_id(a), Some(7));
        assert_eq!(s.defined_late, 1);
        // A repeated record with the same frames is harmless; other frames are refused.
        s.define(7, b"0x10,0x20,0x30").unwrap();
        assert!(s.define(7, b"0x10,0x20").is_err());
        assert_eq!(s.get(a), [0x10, 0x20, 0x30]);
        // Defined first, named after.
        s.define(9, b"0x10,0x99").unwrap();
        let b = s.intern(b"@9").unwrap();
        assert_eq!(s.get(b), [0x10, 0x99]);
        // The same frames as a list and by reference: one group. A frame list with the same
        // first frame but other callers stays apart.
        let c = s.intern(b"0x10,0x20,0x30").unwrap();
        let d = s.intern(b"0x10").unwrap();
        let e = s.intern(b"@12").unwrap();
        let canon = s.canonical();
        assert_eq!(canon[c as usize], a);
        assert_eq!(canon[b as usize], b);
        assert_eq!(canon[d as usize], d);
        assert_eq!(canon[e as usize], e);
        assert_eq!(s.missing(), 1);
        assert_eq!(s.log_id(c), None);
        assert!(s.intern(b"@x").is_err());
        assert!(s.define(3, b"0x1,zz").is_err());
    }
}
