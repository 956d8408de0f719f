//! `MALLOC_DEBUG`: one table of options (name, type, default, description), parsed once at
//! init without allocating. Items are separated by `,`: `name`, `name=value`, `noname`, or a
//! preset (`1`/`default`, `full`, `help`). Later items override earlier ones. A bad item prints
//! one WARNING line naming the valid choices and is skipped; the rest still applies.
//!
//! # Invariants
//! `CONFIG` is written only by `lifecycle` (at init) before the allocator is Ready, and
//! read-only after.

use crate::fmt::{Line, prefix};
use core::cell::UnsafeCell;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnError {
    Abort,
    Continue,
    Exit(i32),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Guard {
    Off,
    After,
    Below,
    Exact,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fail {
    Off,
    Nth(u64),
    Every(u64),
    Size(u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogFormat {
    Text,
    Mtrace,
}

/// A path or destination kept inside the config (no allocation): bytes + length.
#[derive(Clone, Copy)]
pub struct Path {
    pub buf: [u8; 256],
    pub len: usize,
}
impl Path {
    pub const NONE: Path = Path {
        buf: [0; 256],
        len: 0,
    };
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

/// Why a MALLOC_DEBUG item was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OptionError {
    /// No option of that name (nor, for `noNAME`, of NAME).
    Unknown,
    /// A known option with a value it does not take: what it expects.
    Invalid(&'static str),
}

impl OptionError {
    /// The reason shown in the warning.
    pub fn reason(self) -> &'static str {
        match self {
            OptionError::Unknown => "unknown option",
            OptionError::Invalid(why) => why,
        }
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
    ($( $name:ident : $ty:ident = $default:expr, $help_default:literal, $desc:literal; )*) => {
        #[derive(Clone, Copy)]
        pub struct Config {
            /// Any debugging at all (MALLOC_DEBUG set to something).
            pub enabled: bool,
            /// Only options that leave ordinary blocks alone (guard, sample, fail, on_error,
            /// report, dump_signal, nochildren): ordinary blocks then take the plain fast paths
            /// (no history, no event ring), so `sample=N` costs next to nothing.
            pub light: bool,
            $( pub $name: options!(@ty $ty), )*
        }
        impl Config {
            pub const DEFAULT: Config = Config { enabled: false, light: false, $( $name: $default, )* };
        }
        /// (name, type, default, description) for `help` and for warnings.
        pub const TABLE: &[(&str, &str, &str, &str)] = &[
            $( (stringify!($name), stringify!($ty), $help_default, $desc), )*
        ];
        fn set_option(c: &mut Config, name: &[u8], value: Option<&[u8]>, negate: bool) -> Result<(), OptionError> {
            $(
                if name == stringify!($name).as_bytes() {
                    return options!(@set $ty, c.$name, value, negate).map_err(OptionError::Invalid);
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
    (@set bool, $f:expr, $v:expr, $neg:expr) => { parse_bool($v, $neg).map(|b| $f = b) };
    (@set size, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = 0; Ok(()) } else { parse_size($v).map(|n| $f = n) } };
    (@set count, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = 0; Ok(()) } else { parse_count($v).map(|n| $f = n) } };
    (@set leaks, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = 0; Ok(()) } else { parse_leaks($v).map(|n| $f = n) } };
    (@set onerror, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = OnError::Continue; Ok(()) } else { parse_onerror($v).map(|n| $f = n) } };
    (@set guard, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = Guard::Off; Ok(()) } else { parse_guard($v).map(|n| $f = n) } };
    (@set fail, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = Fail::Off; Ok(()) } else { parse_fail($v).map(|n| $f = n) } };
    (@set path, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = Path::NONE; Ok(()) } else { $v.and_then(Path::from).map(|p| $f = p).ok_or("expects a path (1-255 bytes)") } };
    (@set logfmt, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = LogFormat::Text; Ok(()) } else { parse_logfmt($v).map(|n| $f = n) } };
    (@set hexdump, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = 0; Ok(()) } else { parse_hexdump($v).map(|n| $f = n) } };
    (@set signal, $f:expr, $v:expr, $neg:expr) => { if $neg { $f = 0; Ok(()) } else { parse_signal($v).map(|n| $f = n) } };
}

options! {
    check:        bool    = false, "off", "verify every pointer and its block metadata on each call; bad pointers become ERROR reports";
    canary:       bool    = false, "off", "canary bytes right after the requested size and before the block, checked on free/realloc";
    fill:         bool    = false, "off", "fill new blocks with 0xCE and freed blocks with 0xDE (freed fill rechecked on reuse)";
    quarantine:   size    = 0,     "0", "bytes of freed blocks held back before reuse (FIFO), e.g. quarantine=64m (preset 1's 4m shrinks for small heaps)";
    leaks:        leaks   = 0,     "off", "report unreachable blocks at exit (leaks=all also lists reachable ones)";
    on_error:     onerror = OnError::Abort, "abort", "after an ERROR report: abort, continue, or exit:N";
    check_every:  count   = 0,     "0", "verify the whole heap (canaries, freed fill) every N calls";
    report:       path    = Path::NONE, "stderr", "write reports to this file instead of stderr (%p = pid)";
    fail:         fail    = Fail::Off, "off", "fault injection: nth:N, every:N or size:SIZE calls return NULL/ENOMEM";
    guard:        guard   = Guard::Off, "off", "PROT_NONE guard page after each block (guard=below: before; guard=exact: no alignment slack)";
    sample:       count   = 0,     "0", "guard only about one allocation in N (like GWP-ASan)";
    guard_budget: size    = 0,     "256m (RAM/8 if less)", "pages of live guarded blocks at most; past it new blocks get canaries (said once)";
    markers:      bool    = true,  "on", "small guarded blocks use page-table guard markers where the kernel has them (Linux 6.13); nomarkers: mprotect";
    log:          path    = Path::NONE, "off", "allocation log: a file (%p = pid), stderr or fd:N";
    log_format:   logfmt  = LogFormat::Text, "text", "log format: text (ft_malloc v1) or mtrace (glibc mtrace)";
    ring:         count   = 0,     "0 (4096 when debugging)", "events kept in the in-memory ring for reports and dumps";
    stack:        count   = 0,     "16 with debugging (1 with only guard/sample)", "frames of call stack kept per allocation, free and report (1-64; 1 = the caller alone; alias backtrace)";
    hexdump:      hexdump = 64,    "64", "bytes of each block shown by show_alloc_mem_ex (hexdump=all: whole blocks)";
    dump_signal:  signal  = 0,     "off", "signal (name or number) whose delivery runs show_alloc_mem_ex";
    dump_at_exit: bool    = false, "off", "run show_alloc_mem_ex at exit";
    stats:        bool    = false, "off", "print a one-line summary of calls and peak at exit";
    nochildren:   bool    = false, "off", "remove LD_PRELOAD and MALLOC_DEBUG from the environment so exec'd programs run without us";
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

fn parse_bool(v: Option<&[u8]>, negate: bool) -> Result<bool, &'static str> {
    let b = match v {
        None => true,
        Some(b"1") | Some(b"yes") | Some(b"on") | Some(b"true") => true,
        Some(b"0") | Some(b"no") | Some(b"off") | Some(b"false") => false,
        _ => return Err("expects 0/1/yes/no"),
    };
    Ok(b != negate)
}

pub fn parse_size(v: Option<&[u8]>) -> Result<u64, &'static str> {
    const E: &str = "expects a size such as 4096, 64k, 16m or 1g";
    let v = v.ok_or(E)?;
    if v.is_empty() {
        return Err(E);
    }
    let (num, mult) = match v[v.len() - 1] {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1u64 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1u64 << 30),
        _ => (v, 1),
    };
    crate::fmt::parse_num(num)
        .and_then(|n| n.checked_mul(mult))
        .ok_or(E)
}

fn parse_count(v: Option<&[u8]>) -> Result<u64, &'static str> {
    v.and_then(crate::fmt::parse_num).ok_or("expects a number")
}

fn parse_leaks(v: Option<&[u8]>) -> Result<u8, &'static str> {
    match v {
        None | Some(b"1") | Some(b"yes") | Some(b"on") => Ok(1),
        Some(b"all") => Ok(2),
        Some(b"0") | Some(b"no") | Some(b"off") => Ok(0),
        _ => Err("expects leaks, leaks=all or noleaks"),
    }
}

fn parse_onerror(v: Option<&[u8]>) -> Result<OnError, &'static str> {
    const E: &str = "expects abort, continue or exit:N";
    match v {
        Some(b"abort") => Ok(OnError::Abort),
        Some(b"continue") => Ok(OnError::Continue),
        Some(x) if x.starts_with(b"exit:") => crate::fmt::parse_num(&x[5..])
            .filter(|n| *n <= 255)
            .map(|n| OnError::Exit(n as i32))
            .ok_or(E),
        _ => Err(E),
    }
}

fn parse_guard(v: Option<&[u8]>) -> Result<Guard, &'static str> {
    match v {
        None | Some(b"1") | Some(b"after") | Some(b"yes") => Ok(Guard::After),
        Some(b"below") | Some(b"before") => Ok(Guard::Below),
        Some(b"exact") => Ok(Guard::Exact),
        Some(b"0") | Some(b"off") | Some(b"no") => Ok(Guard::Off),
        _ => Err("expects guard, guard=below, guard=exact or noguard"),
    }
}

fn parse_fail(v: Option<&[u8]>) -> Result<Fail, &'static str> {
    const E: &str = "expects nth:N, every:N or size:SIZE";
    let v = v.ok_or(E)?;
    if let Some(r) = v.strip_prefix(b"nth:") {
        return crate::fmt::parse_num(r)
            .filter(|n| *n > 0)
            .map(Fail::Nth)
            .ok_or(E);
    }
    if let Some(r) = v.strip_prefix(b"every:") {
        return crate::fmt::parse_num(r)
            .filter(|n| *n > 0)
            .map(Fail::Every)
            .ok_or(E);
    }
    if let Some(r) = v.strip_prefix(b"size:") {
        return parse_size(Some(r)).map(Fail::Size).map_err(|_| E);
    }
    Err(E)
}

fn parse_logfmt(v: Option<&[u8]>) -> Result<LogFormat, &'static str> {
    match v {
        Some(b"text") => Ok(LogFormat::Text),
        Some(b"mtrace") => Ok(LogFormat::Mtrace),
        _ => Err("expects text or mtrace"),
    }
}

fn parse_hexdump(v: Option<&[u8]>) -> Result<u64, &'static str> {
    match v {
        Some(b"all") => Ok(u64::MAX),
        _ => parse_size(v).map_err(|_| "expects a byte count or all"),
    }
}

/// The signals a dump handler must not take: the fault signals (a fault's handler returns to the
/// faulting instruction, so a dump there would repeat forever, and our fault explainer owns
/// SIGSEGV/SIGBUS), the two that cannot be caught, and glibc's two internal signals.
const REFUSED_SIGNALS: [i32; 8] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGKILL,
    libc::SIGSTOP,
    32,
    33,
];

macro_rules! valid_signals {
    () => {
        "valid: USR1, USR2, HUP, INT, QUIT, TERM, ALRM, PROF, WINCH, TRAP (SIG prefix optional) \
         or a number 1-64 other than 4 (ILL), 7 (BUS), 8 (FPE), 9 (KILL), 11 (SEGV), 19 (STOP), \
         32, 33 (glibc's)"
    };
}

fn parse_signal(v: Option<&[u8]>) -> Result<i32, &'static str> {
    const E: &str = concat!("expects a signal name or number; ", valid_signals!());
    const REFUSED: &str = concat!(
        "a fault signal, KILL, STOP or glibc's own cannot be the dump signal; ",
        valid_signals!()
    );
    let v = v.ok_or(E)?;
    let sig = if let Some(n) = crate::fmt::parse_num(v) {
        if !(1..=64).contains(&n) {
            return Err(E);
        }
        n as i32
    } else {
        let name = v.strip_prefix(b"SIG").unwrap_or(v);
        match name {
            b"USR1" => libc::SIGUSR1,
            b"USR2" => libc::SIGUSR2,
            b"HUP" => libc::SIGHUP,
            b"INT" => libc::SIGINT,
            b"QUIT" => libc::SIGQUIT,
            b"TERM" => libc::SIGTERM,
            b"ALRM" => libc::SIGALRM,
            b"PROF" => libc::SIGPROF,
            b"WINCH" => libc::SIGWINCH,
            b"TRAP" => libc::SIGTRAP,
            b"SEGV" => libc::SIGSEGV,
            b"BUS" => libc::SIGBUS,
            b"ILL" => libc::SIGILL,
            b"FPE" => libc::SIGFPE,
            b"KILL" => libc::SIGKILL,
            b"STOP" => libc::SIGSTOP,
            _ => return Err(E),
        }
    };
    if REFUSED_SIGNALS.contains(&sig) {
        return Err(REFUSED);
    }
    Ok(sig)
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
    for item in value.split(|&b| b == b',') {
        let item = trim(item);
        if item.is_empty() {
            continue;
        }
        match item {
            b"1" | b"default" | b"yes" | b"on" => {
                preset_default(&mut c);
                continue;
            }
            b"full" => {
                preset_default(&mut c);
                c.guard = Guard::After;
                continue;
            }
            b"0" | b"off" | b"none" => {
                c = Config::DEFAULT;
                c.enabled = true;
                continue;
            }
            b"help" => {
                help = true;
                continue;
            }
            _ => {}
        }
        let (name, value) = match item.iter().position(|&b| b == b'=') {
            Some(i) => (&item[..i], Some(&item[i + 1..])),
            None => (item, None),
        };
        let name = if name == b"backtrace" { b"stack" as &[u8] } else { name };
        let mut r = set_option(&mut c, name, value, false);
        if r == Err(OptionError::Unknown) && value.is_none() && name.starts_with(b"no") {
            r = set_option(&mut c, &name[2..], None, true);
        }
        if let Err(e) = r {
            warn(item, e);
        }
    }
    if c.stack > crate::site::MAX_DEPTH as u64 {
        let mut l: Line<160> = Line::new();
        prefix(&mut l)
            .s(b"WARNING: MALLOC_DEBUG: stack=")
            .u(c.stack)
            .s(b" is out of range (1-64); using 64\n");
        l.report();
        c.stack = crate::site::MAX_DEPTH as u64;
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
    Parsed { config: c, help }
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
    prefix(l).s(b"WARNING: MALLOC_DEBUG: ignoring '");
    for &b in item.iter().take(ECHO_MAX) {
        l.c(if b < b' ' || b == 0x7f { b'?' } else { b });
    }
    if item.len() > ECHO_MAX {
        l.s("…(".as_bytes()).u(item.len() as u64).s(b" bytes)");
    }
    l.s(b"': ").s(why.reason().as_bytes());
    if why == OptionError::Unknown {
        l.s(b"; valid: 1, default, full, help");
        for (name, _, _, _) in TABLE {
            l.s(b", ").s(name.as_bytes());
        }
    }
    l.c(b'\n');
}

/// `MALLOC_DEBUG=help`: the table, on stderr.
pub fn print_help() {
    let mut l: Line<512> = Line::new();
    l.s(b"ft_malloc: MALLOC_DEBUG=item,item,...  (presets: 1 or default = check,canary,fill,quarantine=4m,leaks; full = default + guard)\n");
    l.report();
    for (name, ty, def, desc) in TABLE {
        l.clear();
        l.s(b"  ").s(name.as_bytes());
        for _ in name.len()..14 {
            l.c(b' ');
        }
        l.s(b"[")
            .s(ty.as_bytes())
            .s(b", default ")
            .s(def.as_bytes())
            .s(b"] ")
            .s(desc.as_bytes())
            .c(b'\n');
        l.report();
    }
    l.clear();
    l.s(b"  Bools take 0/1/yes/no or a 'no' prefix (nocanary); sizes take k/m/g.\n");
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
