//! `MALLOC_DEBUG`: one table of options (name, type, default, range, description), parsed once
//! at init without allocating. Items are separated by `,`: `name`, `name=value`, `noname`, or a
//! preset (`1`/`default`, `full`, `help`); names, presets and keyword values are
//! case-insensitive. Later items override earlier ones. A bad item prints one WARNING line
//! naming the valid choices and is skipped; the rest still applies. A number outside its range
//! is replaced by the nearest valid one, with one WARNING line naming the range.
//! Files: `range` (the ranges and clamping), `values` (each type's value parser).
//!
//! # Invariants
//! `CONFIG` is written only by `lifecycle` (at init) before the allocator is Ready, and
//! read-only after.

use crate::fmt::{Line, prefix};
use core::cell::UnsafeCell;

mod range;
mod values;

pub use range::*;
use values::*;
pub use values::{Fail, Guard, LogFormat, OnError, parse_size};

/// A path or destination kept inside the config (no allocation): bytes + length. The value
/// given is at most 255 bytes; made absolute (`absolute`), it may be longer.
#[derive(Clone, Copy)]
pub struct Path {
    pub buf: [u8; PATH_CAP],
    pub len: usize,
}

/// Room of a `Path`: a value of 255 bytes under a current directory of up to 768.
const PATH_CAP: usize = 1024;

impl Path {
    pub const NONE: Path = Path {
        buf: [0; PATH_CAP],
        len: 0,
    };

    /// A file path relative to the current directory made absolute (at start, so that a
    /// process that changes directory, and its forked children, still write where the value
    /// meant); unchanged when the directory cannot be had or the whole would not fit.
    #[unsafe(link_section = "ft_hot")]
    pub fn absolute(&mut self) {
        // Unset (every run with debugging off) returns before any code off the hot section.
        if !self.is_set() {
            return;
        }
        if !matches!(Dest::parse(self.as_bytes()), Dest::File(p) if p.first() != Some(&b'/')) {
            return;
        }
        let mut cwd = [0u8; PATH_CAP];
        let Some(n) = crate::sys::getcwd(&mut cwd) else {
            return;
        };
        if cwd[0] != b'/' || n + 1 + self.len > PATH_CAP {
            return;
        }
        self.buf.copy_within(..self.len, n + 1);
        self.buf[..n].copy_from_slice(&cwd[..n]);
        self.buf[n] = b'/';
        self.len += n + 1;
    }
    pub fn is_set(&self) -> bool {
        self.len > 0
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    fn from(v: &[u8]) -> Option<Path> {
        if v.is_empty() || v.len() >= 256 {
            return None;
        }
        let mut p = Path::NONE;
        p.buf[..v.len()].copy_from_slice(v);
        p.len = v.len();
        Some(p)
    }
}

/// Where a `report=` or `log=` value sends its output: `stderr`, `fd:N` or a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dest<'a> {
    Stderr,
    /// `fd:N`; `None` when N is not a descriptor number.
    Fd(Option<i32>),
    /// A path (`%p` not yet expanded).
    File(&'a [u8]),
}

impl<'a> Dest<'a> {
    /// Reads a destination value; the one place that knows `stderr` and `fd:N`.
    pub fn parse(spec: &'a [u8]) -> Dest<'a> {
        if spec == b"stderr" {
            Dest::Stderr
        } else if let Some(n) = spec.strip_prefix(b"fd:") {
            Dest::Fd(
                crate::fmt::parse_num(n)
                    .filter(|&v| v <= i32::MAX as u64)
                    .map(|v| v as i32),
            )
        } else {
            Dest::File(spec)
        }
    }
}

/// Default quarantine of the `1` preset: 4 MiB of freed blocks held back.
pub const DEFAULT_QUARANTINE: u64 = 4 << 20;
/// Default in-memory event ring when debugging is on.
pub const DEFAULT_RING: u64 = 4096;

macro_rules! options {
    ($( $name:ident : $ty:ident = $default:expr, $help_default:literal, $range:expr, $desc:literal; )*) => {
        #[derive(Clone, Copy)]
        pub struct Config {
            /// Any debugging at all (MALLOC_DEBUG set to something).
            pub enabled: bool,
            /// Only options that leave ordinary blocks alone (guard, sample, fail, on_error,
            /// report, dump_signal, nochildren): ordinary blocks then take the plain fast paths
            /// (no history, no event ring), so `sample=N` costs next to nothing.
            pub light: bool,
            /// The C entry points serve ordinary TINY and SMALL blocks from the threads' caches
            /// as with debugging off: debugging off, or light options that decide nothing per
            /// call (not `fail`, not a guard page for every block; `sample=N` is counted down on
            /// the way, the sampled call taking the full path).
            pub fast: bool,
            /// Debugging that writes no byte of a block and keeps no freed block (the log, the
            /// ring, stacks, the leak check, stats, dumps): blocks of the zones go through the
            /// threads' caches like with debugging off, their histories written on the way.
            pub cached: bool,
            $( pub $name: options!(@ty $ty), )*
        }
        impl Config {
            pub const DEFAULT: Config =
                Config { enabled: false, light: false, fast: true, cached: false, $( $name: $default, )* };
        }
        /// (name, type, default, description) for `help` and for warnings.
        pub const TABLE: &[(&str, &str, &str, &str)] = &[
            $( (stringify!($name), stringify!($ty), $help_default, $desc), )*
        ];
        /// The range of each option, in `TABLE`'s order (`Range::NONE`: not a number).
        pub const RANGES: &[Range] = &[ $( $range, )* ];
        fn set_option(c: &mut Config, name: &[u8], value: Option<&[u8]>, negate: bool) -> Result<(), OptionError> {
            $(
                if name == stringify!($name).as_bytes() {
                    return options!(@set $ty, c.$name, value, negate, $range);
                }
            )*
            Err(OptionError::Unknown)
        }
    };
    (@ty bool) => { bool };
    (@ty size) => { u64 };
    (@ty count) => { u64 };
    (@ty leaks) => { u8 };
    (@ty onerror) => { OnError };
    (@ty guard) => { Guard };
    (@ty fail) => { Fail };
    (@ty path) => { Path };
    (@ty logfmt) => { LogFormat };
    (@ty hexdump) => { u64 };
    (@ty signal) => { i32 };
    (@set bool, $f:expr, $v:expr, $neg:expr, $r:expr) => { parse_bool($v, $neg).map(|b| $f = b).map_err(OptionError::Invalid) };
    (@set size, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = 0; Ok(()) } else { ranged(parse_size($v), $r, &mut $f) } };
    (@set count, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = 0; Ok(()) } else { ranged(parse_count($v), $r, &mut $f) } };
    (@set leaks, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = 0; Ok(()) } else { parse_leaks($v).map(|n| $f = n).map_err(OptionError::Invalid) } };
    (@set onerror, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = OnError::Continue; Ok(()) } else { parse_onerror($v).map(|(n, w)| { $f = n; w }).map_err(OptionError::Invalid).and_then(warned) } };
    (@set guard, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = Guard::Off; Ok(()) } else { parse_guard($v).map(|n| $f = n).map_err(OptionError::Invalid) } };
    (@set fail, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = Fail::Off; Ok(()) } else { parse_fail($v).map(|(n, w)| { $f = n; w }).map_err(OptionError::Invalid).and_then(warned) } };
    (@set path, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = Path::NONE; Ok(()) } else { $v.and_then(Path::from).map(|p| $f = p).ok_or(OptionError::Invalid("expects a path (1-255 bytes)")) } };
    (@set logfmt, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = LogFormat::Text; Ok(()) } else { parse_logfmt($v).map(|n| $f = n).map_err(OptionError::Invalid) } };
    (@set hexdump, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = 0; Ok(()) } else { match $v { Some(b"all") => { $f = u64::MAX; Ok(()) } _ => ranged(parse_hexdump($v), $r, &mut $f) } } };
    (@set signal, $f:expr, $v:expr, $neg:expr, $r:expr) => { if $neg { $f = 0; Ok(()) } else { parse_signal($v).map(|n| $f = n).map_err(OptionError::Invalid) } };
}

options! {
    check:        bool    = false, "off", Range::NONE, "verify every pointer and its block metadata on each call; bad pointers become ERROR reports";
    canary:       bool    = false, "off", Range::NONE, "canary bytes right after the requested size and before the block, checked on free/realloc";
    fill:         bool    = false, "off", Range::NONE, "fill new blocks with 0xCE and freed blocks with 0xDE (freed fill rechecked on reuse)";
    quarantine:   size    = 0, "0", Range::bytes(0, MAX_QUARANTINE), "bytes of freed blocks held back before reuse (FIFO), e.g. quarantine=64m (preset 1's 4m shrinks for small heaps)";
    leaks:        leaks   = 0, "off", Range::NONE, "report unreachable blocks at exit (leaks=all also lists reachable ones)";
    on_error:     onerror = OnError::Abort, "abort", EXIT_RANGE, "after an ERROR report: abort, continue, or exit:N";
    check_every:  count   = 0, "0", Range::count(0, MAX_CHECK_EVERY), "verify the whole heap (canaries, freed fill) every N calls";
    report:       path    = Path::NONE, "stderr", Range::NONE, "write reports to this file instead of stderr (%p = pid)";
    suppress:     path    = Path::NONE, "none", Range::NONE, "leak suppressions: a file of leak:PATTERN lines (LeakSanitizer's format)";
    fail:         fail    = Fail::Off, "off", FAIL_N_RANGE, "fault injection: nth:N, every:N or size:SIZE calls return NULL/ENOMEM";
    guard:        guard   = Guard::Off, "off", Range::NONE, "PROT_NONE guard page after each block (guard=below: before; guard=exact: no alignment slack)";
    sample:       count   = 0, "0", Range::count(0, MAX_SAMPLE), "guard only about one allocation in N (like GWP-ASan)";
    guard_budget: size    = 0, "256m (RAM/8 or RLIMIT_AS/8, RLIMIT_DATA/8 if less)", Range::bytes(0, MAX_GUARD_BUDGET), "pages of live guarded blocks at most; past it new blocks get canaries (said once)";
    markers:      bool    = true, "on", Range::NONE, "small guarded blocks, and the region behind LARGE blocks, use page-table guard markers where the kernel has them (Linux 6.13); nomarkers: mprotect";
    log:          path    = Path::NONE, "off", Range::NONE, "allocation log: a file (%p = pid), stderr or fd:N";
    log_format:   logfmt  = LogFormat::Text, "text", Range::NONE, "log format: text (ft_malloc v2) or mtrace (glibc mtrace)";
    ring:         count   = 0, "0 (4096 when debugging)", Range::count(0, MAX_RING), "events kept in the in-memory ring for reports and dumps";
    stack:        count   = 0, "16 with debugging (1 with only guard/sample)", Range::count(0, MAX_STACK), "frames of call stack kept per allocation, free and report (1 = the caller alone; alias backtrace)";
    hexdump:      hexdump = 64, "64", Range::bytes(0, MAX_HEXDUMP), "bytes of each block shown by show_alloc_mem_ex (hexdump=all: whole blocks)";
    dump_signal:  signal  = 0, "off", Range::NONE, "signal (name or number) whose delivery runs show_alloc_mem_ex (written where reports go)";
    dump_at_exit: bool    = false, "off", Range::NONE, "run show_alloc_mem_ex at exit (written where reports go)";
    stats:        bool    = false, "off", Range::NONE, "print a one-line summary of calls and peak at exit";
    nochildren:   bool    = false, "off", Range::NONE, "remove LD_PRELOAD and MALLOC_DEBUG from the environment so exec'd programs run without us";
}

pub struct ConfigCell(UnsafeCell<Config>);
// SAFETY: written only during single-threaded init, read-only afterwards (see module invariant).
unsafe impl Sync for ConfigCell {}

pub static CONFIG: ConfigCell = ConfigCell(UnsafeCell::new(Config::DEFAULT));

/// The configuration (read-only after init).
#[inline(always)]
pub fn get() -> &'static Config {
    // SAFETY: see ConfigCell: no writer once init has finished; init itself goes through `set`.
    unsafe { &*CONFIG.0.get() }
}

/// # Safety
/// Only during init, before any other thread can read the config.
pub unsafe fn set(c: Config) {
    // SAFETY: the caller guarantees no concurrent reader.
    unsafe { *CONFIG.0.get() = c };
}

/// The `1`/`default` preset: every check of the detection layer.
fn preset_default(c: &mut Config) {
    c.check = true;
    c.canary = true;
    c.fill = true;
    c.quarantine = DEFAULT_QUARANTINE;
    c.leaks = 1;
}

/// Outcome of parsing: the config and whether `help` was asked for.
pub struct Parsed {
    pub config: Config,
    pub help: bool,
}

/// Parses a MALLOC_DEBUG value. `warn` receives (item, reason) for every bad item.
pub fn parse(value: &[u8], warn: &mut dyn FnMut(&[u8], OptionError)) -> Parsed {
    let mut c = Config::DEFAULT;
    let mut help = false;
    if value.is_empty() {
        return Parsed { config: c, help };
    }
    c.enabled = true;
    // Whether a known item follows the last `0`/`off`/`none`.
    let mut asked = true;
    for item in value.split(|&b| b == b',') {
        let item = trim(item);
        if item.is_empty() {
            continue;
        }
        let (name, value) = match item.iter().position(|&b| b == b'=') {
            Some(i) => (&item[..i], Some(&item[i + 1..])),
            None => (item, None),
        };
        // Names, presets and keyword values are case-insensitive; paths are taken as given.
        let mut name_buf = [0u8; 32];
        let name = lower(name, &mut name_buf);
        let mut value_buf = [0u8; 64];
        let value = match value {
            Some(v) if !matches!(name, b"report" | b"log" | b"suppress") => {
                Some(lower(v, &mut value_buf))
            }
            v => v,
        };
        match if value.is_none() { name } else { b"" } {
            b"1" | b"default" | b"yes" | b"on" => {
                preset_default(&mut c);
                asked = true;
                continue;
            }
            b"full" => {
                preset_default(&mut c);
                c.guard = Guard::After;
                asked = true;
                continue;
            }
            b"0" | b"off" | b"none" => {
                c = Config::DEFAULT;
                c.enabled = true;
                asked = false;
                continue;
            }
            b"help" => {
                help = true;
                continue;
            }
            _ => {}
        }
        let name = if name == b"backtrace" {
            b"stack" as &[u8]
        } else {
            name
        };
        let mut r = set_option(&mut c, name, value, false);
        if r == Err(OptionError::Unknown) && value.is_none() && name.starts_with(b"no") {
            r = set_option(&mut c, &name[2..], None, true);
        }
        if r != Err(OptionError::Unknown) {
            asked = true;
        }
        if let Err(e) = r {
            warn(item, e);
        }
    }
    c.light = c.enabled
        && !c.check
        && !c.canary
        && !c.fill
        && c.quarantine == 0
        && c.leaks == 0
        && c.check_every == 0
        && !c.log.is_set()
        && c.ring == 0
        && c.stack == 0
        && !c.dump_at_exit
        && !c.stats;
    if !asked {
        // `0`, `off` or `none` last, with no known item after it: as unset.
        c.enabled = false;
    }
    c.fast =
        !c.enabled || (c.light && c.fail == Fail::Off && (c.guard == Guard::Off || c.sample > 0));
    c.cached = c.enabled
        && !c.light
        && !c.check
        && !c.canary
        && !c.fill
        && c.quarantine == 0
        && c.check_every == 0
        && c.guard == Guard::Off
        && c.sample == 0;
    Parsed { config: c, help }
}

/// `s` in ASCII lower case, in `buf`; as it is when longer than `buf` (no name is that long).
fn lower<'a>(s: &'a [u8], buf: &'a mut [u8]) -> &'a [u8] {
    if s.len() > buf.len() {
        return s;
    }
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    &buf[..s.len()]
}

fn trim(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && s[a] == b' ' {
        a += 1;
    }
    while b > a && s[b - 1] == b' ' {
        b -= 1;
    }
    &s[a..b]
}

/// Bytes of a bad item echoed in its warning; a longer item is cut there and its length said.
const ECHO_MAX: usize = 128;

/// One WARNING line for a bad MALLOC_DEBUG item; unknown names list the valid ones.
pub fn warn_item(item: &[u8], why: OptionError) {
    let mut l: Line<2048> = Line::new();
    warning_line(&mut l, item, why);
    l.report();
}

/// The text of `warn_item`. It always ends with its newline: a long item is echoed in part
/// (`…(N bytes)`) and control bytes as `?`, so the line is bounded (well under the buffer with
/// every option name listed) and the next message starts a line of its own.
fn warning_line<const N: usize>(l: &mut Line<N>, item: &[u8], why: OptionError) {
    let out_of_range = matches!(why, OptionError::OutOfRange { .. });
    prefix(l).s(if out_of_range {
        b"WARNING: MALLOC_DEBUG: '" as &[u8]
    } else {
        b"WARNING: MALLOC_DEBUG: ignoring '"
    });
    for &b in item.iter().take(ECHO_MAX) {
        l.c(if b < b' ' || b == 0x7f { b'?' } else { b });
    }
    if item.len() > ECHO_MAX {
        l.s("…(".as_bytes()).u(item.len() as u64).s(b" bytes)");
    }
    l.s(b"': ").s(why.reason().as_bytes());
    if let OptionError::OutOfRange { range, used, tag } = why {
        l.s(b" (valid: ");
        write_range(l, range);
        l.s(b"); using ").s(tag.as_bytes());
        range_value(l, range.unit, used);
    }
    if why == OptionError::Unknown {
        l.s(b"; valid: 1, default, full, help");
        for (name, _, _, _) in TABLE {
            l.s(b", ").s(name.as_bytes());
        }
    }
    l.c(b'\n');
}

/// `LO-HI` (`N or more` when unbounded above).
fn write_range<const N: usize>(l: &mut Line<N>, r: Range) {
    range_value(l, r.unit, r.lo);
    if r.hi == u64::MAX {
        l.s(b" or more");
    } else {
        l.c(b'-');
        range_value(l, r.unit, r.hi);
    }
}

/// `MALLOC_DEBUG=help`: the table, on stderr.
pub fn print_help() {
    let mut l: Line<512> = Line::new();
    l.s(b"ft_malloc: MALLOC_DEBUG=item,item,...  (presets: 1 or default = check,canary,fill,quarantine=4m,leaks; full = default + guard)\n");
    l.report();
    for ((name, ty, def, desc), range) in TABLE.iter().zip(RANGES) {
        l.clear();
        l.s(b"  ").s(name.as_bytes());
        for _ in name.len()..14 {
            l.c(b' ');
        }
        l.s(b"[").s(ty.as_bytes());
        if *range != Range::NONE {
            // on_error and fail: the range is that of their N (exit:N, nth:N, every:N).
            l.s(if matches!(*ty, "onerror" | "fail") {
                b" N " as &[u8]
            } else {
                b" "
            });
            write_range(&mut l, *range);
        }
        l.s(b", default ")
            .s(def.as_bytes())
            .s(b"] ")
            .s(desc.as_bytes())
            .c(b'\n');
        l.report();
    }
    l.clear();
    l.s(b"  Bools take 0/1/yes/no or a 'no' prefix (nocanary); sizes take k/m/g. Names and presets\n");
    l.s(b"  are case-insensitive. A number out of its range is replaced by the nearest valid one,\n");
    l.s(
        b"  with a warning. 0 is off for quarantine, check_every, sample and hexdump, the default\n",
    );
    l.s(b"  for ring, stack and guard_budget.\n");
    l.report();
}

#[cfg(test)]
mod tests;

/// A value written once during init and read-only afterwards.
pub struct Once<T>(UnsafeCell<T>);
// SAFETY: written only during single-threaded init (see `set`), read-only afterwards.
unsafe impl<T> Sync for Once<T> {}
impl<T> Once<T> {
    pub const fn new(v: T) -> Self {
        Once(UnsafeCell::new(v))
    }
    #[inline(always)]
    pub fn get(&self) -> &T {
        // SAFETY: no writer once init has finished.
        unsafe { &*self.0.get() }
    }
    /// # Safety
    /// Only during init, before other threads read it.
    pub unsafe fn set(&self, v: T) {
        // SAFETY: the caller guarantees no concurrent reader.
        unsafe { *self.0.get() = v };
    }
}

impl Config {
    /// Frames per call stack: `stack=N`, else 16 when debugging keeps block histories or a log,
    /// else 1 (the caller alone: the plain allocator, and `guard`/`sample`-only runs, whose
    /// ordinary blocks take the fast paths).
    pub fn stack_depth(&self) -> usize {
        if self.stack != 0 {
            self.stack as usize
        } else if self.enabled && !self.light {
            16
        } else {
            1
        }
    }
}
