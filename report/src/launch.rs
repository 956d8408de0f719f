//! `run-summary` (hidden): the end of a run of scripts/ft-malloc. It reads what the library
//! announced (the announce file: which processes it was loaded into, each one's verdict at
//! exit; format in the format crate, `ft_format::announce`) and what the stderr filter noted
//! (`symbolize --counts`: ERROR and LEAK lines by pid, the loader's refusals), and says:
//! whether the library was loaded into the program at all (and if not, why), the errors the
//! library counted, its LEAK verdict, how the program ended, and a line per child process.
//!
//! Its exit status tells the launcher what to exit with: 0 (the program's status), 3 (the
//! library reported errors: `--error-exitcode`), 4 (the library was not loaded into the program,
//! or the program's own malloc took every allocation: 125).

use crate::commands::{human, plural};
use ft_format::announce as a;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const EXIT_ERRORS: u8 = 3;
pub const EXIT_NOT_LOADED: u8 = 4;

/// One `exit` record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    pub errors: u64,
    pub leak_check: String,
    /// (bytes, blocks)
    pub leaked: Option<(u64, u64)>,
    pub reachable: Option<(u64, u64)>,
    pub peak: Option<u64>,
    /// The object whose own malloc took every allocation ahead of the library's.
    pub bypassed: Option<String>,
}

/// A process the library announced (one pid from its first record to its `exit`).
#[derive(Clone, Debug, Default)]
pub struct Proc {
    pub pid: u32,
    /// Parent at the first `start` or `fork`.
    pub ppid: Option<u32>,
    /// Executables it ran with the library, in order (several after `exec`s).
    pub exes: Vec<String>,
    /// The parent's executable, as the first `start` saw it.
    pub parent_exe: String,
    pub forked: bool,
    /// Debugging was on (MALLOC_DEBUG) in its last image.
    pub debug: bool,
    pub exit: Option<Exit>,
    /// Programs it executed that ft_malloc was not loaded into: a child of it announced a
    /// parent executable other than the last one this process announced.
    pub exec_without: Vec<String>,
    /// Its parent announced nothing: ft_malloc was not loaded into the parent.
    pub parent_without: bool,
}

impl Proc {
    pub fn exe(&self) -> &str {
        self.exes.last().map(|s| s.as_str()).unwrap_or("")
    }
}

/// `\xHH` escapes of the announce file's paths, undone.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1] == b'x'
            && let Ok(h) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("-"), 16)
        {
            out.push(h);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An executable's path as /proc/PID/exe shows it, without the mark of a deleted file.
fn exe_name(e: &str) -> &str {
    e.strip_suffix(" (deleted)").unwrap_or(e)
}

fn pair(v: &str) -> Option<(u64, u64)> {
    let (x, y) = v.split_once('/')?;
    Some((x.parse().ok()?, y.parse().ok()?))
}

/// The processes of an announce file, in the order they first appeared.
pub fn parse_announce(text: &str) -> Vec<Proc> {
    let mut procs: Vec<Proc> = Vec::new();
    // pid -> index of its current process (a pid reused after an exit starts a new one).
    let mut cur: BTreeMap<u32, usize> = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let Some(tag) = it.next() else { continue };
        let kv: BTreeMap<&str, &str> = it.filter_map(|t| t.split_once('=')).collect();
        let Some(pid) = kv.get(a::key::PID).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let ppid = kv.get(a::key::PPID).and_then(|p| p.parse::<u32>().ok());
        let live = cur.get(&pid).copied().filter(|&i| procs[i].exit.is_none());
        let new_proc = |procs: &mut Vec<Proc>, cur: &mut BTreeMap<u32, usize>| {
            procs.push(Proc {
                pid,
                ppid,
                ..Default::default()
            });
            cur.insert(pid, procs.len() - 1);
            procs.len() - 1
        };
        match tag {
            a::START => {
                let parent_exe = unescape(kv.get(a::key::PARENT).copied().unwrap_or(""));
                let parent = ppid.and_then(|pp| cur.get(&pp).copied());
                let i = match live {
                    Some(i) => i,
                    None => new_proc(&mut procs, &mut cur),
                };
                match parent {
                    Some(q) if q != i => {
                        let (seen, now) = (exe_name(procs[q].exe()), exe_name(&parent_exe));
                        if !now.is_empty()
                            && now != seen
                            && !procs[q].exec_without.iter().any(|e| exe_name(e) == now)
                        {
                            procs[q].exec_without.push(parent_exe.clone());
                        }
                    }
                    Some(_) => {}
                    None => procs[i].parent_without = procs[i].exes.is_empty(),
                }
                let p = &mut procs[i];
                p.exes
                    .push(unescape(kv.get(a::key::EXE).copied().unwrap_or("")));
                if p.parent_exe.is_empty() {
                    p.parent_exe = unescape(kv.get(a::key::PARENT).copied().unwrap_or(""));
                }
                p.debug = kv.get(a::key::DEBUG) == Some(&"1");
                if p.ppid.is_none() {
                    p.ppid = ppid;
                }
            }
            a::FORK => {
                let i = new_proc(&mut procs, &mut cur);
                procs[i].forked = true;
                // A forked child runs its parent's executable until it execs.
                if let Some(parent) = ppid.and_then(|pp| cur.get(&pp)).copied() {
                    let (exe, debug) = (procs[parent].exe().to_string(), procs[parent].debug);
                    procs[i].exes.push(exe);
                    procs[i].debug = debug;
                }
            }
            a::EXIT => {
                let i = match live {
                    Some(i) => i,
                    None => new_proc(&mut procs, &mut cur),
                };
                procs[i].exit = Some(Exit {
                    errors: kv
                        .get(a::key::ERRORS)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    leak_check: kv
                        .get(a::key::LEAK_CHECK)
                        .copied()
                        .unwrap_or(a::LEAK_CHECK_OFF)
                        .to_string(),
                    leaked: kv.get(a::key::LEAKED).and_then(|v| pair(v)),
                    reachable: kv.get(a::key::REACHABLE).and_then(|v| pair(v)),
                    peak: kv.get(a::key::PEAK).and_then(|v| v.parse().ok()),
                    bypassed: kv.get(a::key::BYPASSED).map(|v| unescape(v)),
                });
            }
            _ => {}
        }
    }
    procs
}

/// What the stderr filter noted about one pid.
#[derive(Clone, Debug, Default)]
pub struct Noted {
    /// ERROR reports (first lines) seen.
    pub errors: u64,
    pub error_summary: Option<u64>,
    /// LEAK lines (as shown, symbolized), the first few.
    pub leaks: Vec<String>,
    /// `X bytes in N unreachable block(s); Y bytes in M block(s) still reachable`
    pub leak_summary: Option<String>,
    /// Why the leak check did not run, as the library said.
    pub leak_skipped: Option<String>,
    pub aborted: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// The program's stderr ended without a newline.
    pub open_line: bool,
    pub by_pid: BTreeMap<u32, Noted>,
    /// The dynamic loader's refusals (`ERROR: ld.so: object ... cannot be preloaded`).
    pub ldso: Vec<String>,
}

pub fn parse_counts(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        if tag == "newline" {
            c.open_line = rest == "0";
            continue;
        }
        if tag == "ldso" {
            c.ldso.push(rest.to_string());
            continue;
        }
        let (pid, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let n = c.by_pid.entry(pid).or_default();
        match tag {
            "error" => n.errors += 1,
            "error_summary" => n.error_summary = text.parse().ok(),
            "leak" => n.leaks.push(text.to_string()),
            "leak_summary" => n.leak_summary = Some(text.to_string()),
            "leak_skipped" => n.leak_skipped = Some(text.to_string()),
            "abort" => n.aborted = true,
            _ => {}
        }
    }
    c
}

/// `X bytes in N unreachable block(s); Y bytes in M block(s) still reachable` ->
/// ((X, N), (Y, M)).
fn parse_leak_summary(s: &str) -> Option<((u64, u64), (u64, u64))> {
    let nums: Vec<u64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect();
    match nums[..] {
        [a, b, c, d, ..] => Some(((a, b), (c, d))),
        _ => None,
    }
}

/// `...; of the unreachable, X bytes in N block(s) indirectly lost (...)` -> (X, N).
fn parse_indirect(s: &str) -> Option<Amount> {
    let (_, rest) = s.split_once("; of the unreachable, ")?;
    let w: Vec<&str> = rest.split_whitespace().collect();
    Some((w.first()?.parse().ok()?, w.get(3)?.parse().ok()?))
}

/// `...; X bytes in N unreachable block(s) suppressed` -> (X, N).
fn parse_suppressed(s: &str) -> Option<Amount> {
    let k = s.find(" unreachable block(s) suppressed")?;
    let w: Vec<&str> = s[..k].rsplit("; ").next()?.split_whitespace().collect();
    match w[..] {
        [x, "bytes", "in", n] => Some((x.parse().ok()?, n.parse().ok()?)),
        _ => None,
    }
}

// ------------------------------------------------------------------ why it was not loaded

/// The first bytes of an ELF file's header that tell whether a library can be preloaded.
struct Elf {
    class64: bool,
    machine: u16,
    /// PT_INTERP: the dynamic loader it asks for (None: statically linked).
    interp: Option<String>,
}

fn read_elf(path: &Path) -> Option<Elf> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = [0u8; 64];
    f.read_exact(&mut h[..52]).ok()?;
    if &h[..4] != b"\x7fELF" || h[5] != 1 {
        return None;
    }
    let class64 = h[4] == 2;
    if class64 {
        f.read_exact(&mut h[52..64]).ok()?;
    }
    let u16at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let u32at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let machine = u16at(18);
    let (phoff, phentsize, phnum) = if class64 {
        (u64at(&h, 32), u16at(54) as u64, u16at(56) as u64)
    } else {
        (u32at(&h, 28) as u64, u16at(42) as u64, u16at(44) as u64)
    };
    let mut interp = None;
    for i in 0..phnum.min(512) {
        let mut ph = [0u8; 56];
        let n = if class64 { 56 } else { 32 };
        f.seek(SeekFrom::Start(phoff + i * phentsize)).ok()?;
        f.read_exact(&mut ph[..n]).ok()?;
        if u32at(&ph, 0) == 3 {
            // PT_INTERP
            let (off, size) = if class64 {
                (u64at(&ph, 8), u64at(&ph, 32))
            } else {
                (u32at(&ph, 4) as u64, u32at(&ph, 16) as u64)
            };
            let mut s = vec![0u8; size.min(4096) as usize];
            f.seek(SeekFrom::Start(off)).ok()?;
            f.read_exact(&mut s).ok()?;
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            interp = Some(String::from_utf8_lossy(&s[..end]).into_owned());
        }
    }
    Some(Elf {
        class64,
        machine,
        interp,
    })
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "i386".into(),
        40 => "ARM".into(),
        62 => "x86-64".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        8 => "MIPS".into(),
        20 => "PowerPC".into(),
        21 => "PowerPC64".into(),
        22 => "S/390".into(),
        _ => format!("machine {m}"),
    }
}

/// `#!INTERP [ARG]`: the program that really runs (through `env NAME`, looked up in PATH).
fn shebang(path: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut b = [0u8; 256];
    let n = f.read(&mut b).ok()?;
    let line = b[..n].strip_prefix(b"#!")?;
    let end = line.iter().position(|&c| c == b'\n').unwrap_or(line.len());
    let line = String::from_utf8_lossy(&line[..end]).into_owned();
    let mut words = line.split_whitespace();
    let interp = PathBuf::from(words.next()?);
    if interp.file_name().is_some_and(|f| f == "env") {
        let name = words.find(|w| !w.starts_with('-'))?;
        return which(name);
    }
    Some(interp)
}

fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

fn groups() -> Vec<u32> {
    // SAFETY: getgroups with a 0 size returns the count; the second call fills a buffer of it.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return Vec::new();
        }
        let mut v = vec![0 as libc::gid_t; n as usize];
        let m = libc::getgroups(n, v.as_mut_ptr());
        v.truncate(m.max(0) as usize);
        v
    }
}

fn has_file_capabilities(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL terminated; a NULL buffer of size 0 asks for the size only.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

/// Why the dynamic loader did not preload `lib` into `program`, as a clause about the program
/// ("it is statically linked: ..."). Checked in this order: not readable, script (its
/// interpreter is examined instead), not ELF, another architecture, static, set-user-ID or
/// capabilities, another C library, a refusal the loader printed.
pub fn why_not_loaded(program: &Path, lib: &Path, ldso: &[String]) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut program = program.to_path_buf();
    let mut it = "it".to_string();
    for _ in 0..4 {
        match shebang(&program) {
            Some(i) => {
                it = format!("its interpreter {}", i.display());
                program = i;
            }
            None => break,
        }
    }
    let meta = std::fs::metadata(&program);
    let Some(elf) = read_elf(&program) else {
        return match meta {
            Err(e) => format!("{it} cannot be examined ({e})"),
            Ok(_) if std::fs::File::open(&program).is_err() => format!(
                "{it} cannot be read to tell why (an execute-only file is often set-user-ID)"
            ),
            Ok(_) => format!("{it} is not an ELF executable"),
        };
    };
    if let Some(l) = read_elf(lib)
        && (l.class64 != elf.class64 || l.machine != elf.machine)
    {
        return format!(
            "{it} is a {}-bit {} program and the library is {}-bit {}, which the loader cannot preload into it",
            if elf.class64 { 64 } else { 32 },
            machine_name(elf.machine),
            if l.class64 { 64 } else { 32 },
            machine_name(l.machine),
        );
    }
    let Some(interp) = elf.interp else {
        return format!(
            "{it} is statically linked: no dynamic loader runs, so LD_PRELOAD is never read"
        );
    };
    let secure =
        "runs in secure-execution mode, where the loader ignores LD_PRELOAD paths with a slash";
    if let Ok(m) = &meta {
        // SAFETY: geteuid and getegid have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if m.mode() & 0o4000 != 0 && m.uid() != euid {
            return format!("{it} is set-user-ID: it {secure}");
        }
        if m.mode() & 0o2000 != 0 && m.gid() != egid && !groups().contains(&m.gid()) {
            return format!("{it} is set-group-ID: it {secure}");
        }
        if has_file_capabilities(&program) {
            return format!("{it} has file capabilities: it {secure}");
        }
    }
    if !interp.contains("ld-linux") {
        return format!(
            "{it} runs under another C library (its loader is {interp}), and the library is built for glibc"
        );
    }
    if let Some(l) = ldso.first() {
        return format!("the loader refused the library: {l}");
    }
    format!(
        "the reason is unknown ({it} is dynamically linked, loader {interp}): did it remove LD_PRELOAD from its environment and execute itself again?"
    )
}

// ------------------------------------------------------------------ the summary

pub struct Options {
    pub announce: PathBuf,
    pub counts: Option<PathBuf>,
    /// The program's status as the shell gives it (128+N: signal N).
    pub status: i32,
    /// The launcher's pid: the program is the process whose parent it is.
    pub launcher_pid: u32,
    pub program: PathBuf,
    /// The program as the command line names it.
    pub name: String,
    pub library: PathBuf,
    /// check, guard, sample, debug
    pub mode: String,
    pub full: bool,
    pub quiet: bool,
    pub command: String,
    /// --trace was given.
    pub traced: bool,
    /// Logs kept with --trace: (path, pid, one-line summary of its process).
    pub logs: Vec<(String, Option<u32>, String)>,
}

fn signal_name(n: i32) -> &'static str {
    match n {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        5 => "TRAP",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        24 => "XCPU",
        25 => "XFSZ",
        31 => "SYS",
        _ => "?",
    }
}

/// A signal that a bug raises (as opposed to one sent from outside: INT, TERM, KILL...).
fn crash_signal(n: i32) -> bool {
    matches!(n, 4 | 5 | 6 | 7 | 8 | 11 | 31)
}

/// (bytes, blocks)
type Amount = (u64, u64);

/// The verdict of one process: errors and the LEAK verdict, from its `exit` record or, when
/// it did not write one (it crashed, aborted, was killed or called _exit), from its reports on
/// stderr.
struct Verdict {
    errors: u64,
    /// Errors counted by the library at exit (false: from the reports seen on stderr).
    counted: bool,
    /// (unreachable, still reachable); None: no leak verdict.
    leaks: Option<(Amount, Option<Amount>)>,
    /// Of the unreachable, what only other unreachable blocks point to (from the LEAK SUMMARY
    /// line).
    indirect: Option<Amount>,
    /// Unreachable blocks a suppression pattern left out (from the summary line).
    suppressed: Option<Amount>,
    leak_note: String,
    leak_lines: Vec<String>,
    aborted: bool,
    exited: bool,
}

fn verdict(p: &Proc, n: Option<&Noted>) -> Verdict {
    let empty = Noted::default();
    let n = n.unwrap_or(&empty);
    let stderr_errors = n.errors.max(n.error_summary.unwrap_or(0));
    let (errors, counted) = match &p.exit {
        Some(e) => (e.errors, true),
        None => (stderr_errors, false),
    };
    let mut leak_note = String::new();
    let leaks = match &p.exit {
        None => {
            leak_note = "not checked: the process did not run its exit handlers (crash, signal, abort or _exit)".to_string();
            None
        }
        Some(Exit {
            bypassed: Some(_), ..
        }) => {
            leak_note = "not checked: no allocation came to ft_malloc".to_string();
            None
        }
        Some(e) if e.leak_check == a::LEAK_CHECK_OFF => {
            leak_note = "not checked (leak check off)".to_string();
            None
        }
        Some(e) if e.leak_check == a::LEAK_CHECK_SKIPPED || n.leak_skipped.is_some() => {
            let why = n.leak_skipped.as_deref().filter(|w| !w.is_empty());
            leak_note = format!(
                "not checked: {}",
                why.unwrap_or("the library could not run it")
            );
            None
        }
        Some(e) => match e.leaked {
            Some(l) => Some((l, e.reachable)),
            None => match n.leak_summary.as_deref().and_then(parse_leak_summary) {
                Some((l, r)) => Some((l, Some(r))),
                // The library prints a LEAK SUMMARY only when something leaked.
                None => Some(((0, 0), None)),
            },
        },
    };
    Verdict {
        errors,
        counted,
        leaks,
        indirect: n.leak_summary.as_deref().and_then(parse_indirect),
        suppressed: n.leak_summary.as_deref().and_then(parse_suppressed),
        leak_note,
        leak_lines: n.leaks.clone(),
        aborted: n.aborted,
        exited: p.exit.is_some(),
    }
}

fn leak_text(v: &Verdict) -> String {
    let Some(((b, n), r)) = v.leaks else {
        return v.leak_note.clone();
    };
    let mut notes = Vec::new();
    if let Some((ib, in_)) = v.indirect
        && in_ > 0
    {
        notes.push(format!("{} in {in_} of them indirectly lost", human(ib)));
    }
    if let Some((sb, sn)) = v.suppressed
        && sn > 0
    {
        notes.push(format!(
            "{} in {} suppressed",
            human(sb),
            plural(sn, "block")
        ));
    }
    if let Some((rb, rn)) = r
        && rn > 0
    {
        notes.push(format!(
            "{} in {} still reachable at exit",
            human(rb),
            plural(rn, "block")
        ));
    }
    let mut s = if n == 0 {
        "none".to_string()
    } else {
        format!("{} in {} unreachable", human(b), plural(n, "block"))
    };
    if !notes.is_empty() {
        if n == 0 {
            s.push_str(" unreachable");
        }
        let _ = write!(s, " ({})", notes.join("; "));
    }
    s
}

/// The object whose own malloc took every allocation of `p` (nothing was checked in it).
fn bypassed(p: &Proc) -> Option<&str> {
    p.exit.as_ref().and_then(|e| e.bypassed.as_deref())
}

fn leaked(v: &Verdict) -> bool {
    matches!(v.leaks, Some(((b, n), _)) if b > 0 || n > 0)
}

/// The summary (on stdout) and the exit status for the launcher.
pub fn run_summary(o: &Options) -> std::io::Result<(String, u8)> {
    let ann = std::fs::read_to_string(&o.announce).unwrap_or_default();
    let procs = parse_announce(&ann);
    let counts_text = o
        .counts
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c).ok());
    // Without the filter's notes (--no-symbolize), a process that died left no count at all.
    let stderr_read = counts_text.is_some();
    let counts = counts_text.map(|t| parse_counts(&t)).unwrap_or_default();
    let mut out = String::new();
    let top = procs
        .iter()
        .position(|p| p.ppid == Some(o.launcher_pid) && !p.forked);
    let verdicts: Vec<Verdict> = procs
        .iter()
        .map(|p| verdict(p, counts.by_pid.get(&p.pid)))
        .collect();
    let total_errors: u64 = verdicts.iter().map(|v| v.errors).sum();
    // A program whose own malloc took every allocation was not checked either.
    let code = if top.is_none() || top.is_some_and(|t| bypassed(&procs[t]).is_some()) {
        EXIT_NOT_LOADED
    } else if total_errors > 0 {
        EXIT_ERRORS
    } else {
        0
    };
    if top.is_none() {
        let _ = writeln!(
            out,
            "ft-malloc: ft_malloc was not loaded into {}: {}. Nothing was checked in it{}.",
            o.name,
            why_not_loaded(&o.program, &o.library, &counts.ldso),
            if procs.is_empty() {
                ""
            } else {
                " (only in the processes listed below)"
            }
        );
    }
    if o.quiet {
        return Ok((out, code));
    }
    if counts.open_line {
        out.insert(0, '\n');
    }
    let _ = writeln!(out, "==== ft-malloc summary: {}", o.command);
    // How the program ended.
    let sig = (o.status > 128 && o.status < 160).then_some(o.status - 128);
    match sig {
        Some(s) => {
            let _ = writeln!(out, "status     killed by signal {s} ({})", signal_name(s));
        }
        None => {
            let _ = writeln!(out, "status     exit {}", o.status);
        }
    }
    if let Some(t) = top {
        let p = &procs[t];
        let v = &verdicts[t];
        let others = total_errors - v.errors;
        // Errors: the library's count, never a bare 0 for a run that crashed or failed.
        let in_children = if others > 0 {
            format!(", {others} in child processes")
        } else {
            String::new()
        };
        if !v.counted && !stderr_read && v.errors == 0 {
            let _ = writeln!(
                out,
                "errors     unknown: the program ended before ft_malloc wrote its count, and its stderr was not read (--no-symbolize){in_children}"
            );
            if sig.is_some_and(crash_signal) {
                let _ = writeln!(out, "           {}", crash_hint(&o.mode));
            }
        } else if v.errors > 0 {
            let how = if v.counted {
                "ft_malloc's count"
            } else {
                "reported on stderr before the program ended"
            };
            let _ = writeln!(out, "errors     {} ({how}){in_children}", v.errors);
            if v.aborted {
                let _ = writeln!(
                    out,
                    "           ft_malloc aborted the program after the first report (MALLOC_DEBUG on_error=continue goes on)"
                );
            }
        } else if let Some(s) = sig {
            if crash_signal(s) {
                let _ = writeln!(
                    out,
                    "errors     none reported, but the program died of SIG{}: a crash ft_malloc did not explain, so this run is not clean{in_children}",
                    signal_name(s)
                );
                let _ = writeln!(out, "           {}", crash_hint(&o.mode));
            } else {
                let _ = writeln!(
                    out,
                    "errors     none found before the program was stopped by SIG{} (the run did not finish){in_children}",
                    signal_name(s)
                );
            }
        } else if o.status != 0 {
            let _ = writeln!(
                out,
                "errors     none reported, but the program failed (exit {}), which is no verdict on its memory{in_children}",
                o.status
            );
            let _ = writeln!(
                out,
                "           if it should have succeeded, {}",
                fail_hint(&o.mode)
            );
        } else if let Some(by) = bypassed(p) {
            let _ = writeln!(
                out,
                "errors     not checked: malloc is {by}'s own, ahead of ft_malloc, and no allocation came to ft_malloc{in_children}"
            );
        } else if !p.debug {
            let _ = writeln!(
                out,
                "errors     none: debugging was off in the program (MALLOC_DEBUG empty or removed), nothing was checked{in_children}"
            );
        } else if !v.exited && !p.exec_without.is_empty() {
            let _ = writeln!(
                out,
                "errors     0 reported, but the program then executed {}, which ft_malloc was not loaded into{in_children}",
                p.exec_without.join(", ")
            );
        } else if !v.exited {
            let _ = writeln!(
                out,
                "errors     0 reported; no exit report from the program: it ended with _exit (as dash does) or executed a program ft_malloc was not loaded into{in_children}"
            );
        } else {
            let _ = writeln!(out, "errors     0{in_children}");
        }
        let _ = writeln!(out, "leaks      {}", leak_text(v));
        for l in v.leak_lines.iter().take(3) {
            let _ = writeln!(out, "             {l}");
        }
        if v.leak_lines.len() > 3 {
            let more = v.leak_lines.len() - 3;
            let _ = writeln!(
                out,
                "             ({more} more site{} in the LEAK lines above)",
                if more == 1 { "" } else { "s" }
            );
        }
        if let Some(peak) = p.exit.as_ref().and_then(|e| e.peak).filter(|&b| b > 0) {
            let _ = writeln!(
                out,
                "peak       about {} in use (to within 64 KiB per thread)",
                human(peak)
            );
        }
        if p.exes.len() > 1 {
            let _ = writeln!(out, "exec       {}", p.exes.join(" -> "));
        }
    } else {
        let _ = writeln!(
            out,
            "errors     not checked: ft_malloc was not loaded into the program"
        );
    }
    // Child processes.
    let known: std::collections::HashSet<u32> = procs.iter().map(|p| p.pid).collect();
    let children: Vec<usize> = (0..procs.len()).filter(|&i| Some(i) != top).collect();
    let mut without: Vec<String> = Vec::new();
    for p in &procs {
        if p.parent_without
            && let Some(pp) = p.ppid
            && pp != o.launcher_pid
            && !known.contains(&pp)
        {
            let line = format!(
                "pid {pp} {} (parent of pid {})",
                if p.parent_exe.is_empty() {
                    "?"
                } else {
                    &p.parent_exe
                },
                p.pid
            );
            if !without.contains(&line) {
                without.push(line);
            }
        }
        for e in &p.exec_without {
            without.push(format!("pid {} {e} (executed by {})", p.pid, p.exe()));
        }
    }
    if !children.is_empty() {
        let notable = |i: usize| {
            let v = &verdicts[i];
            v.errors > 0
                || leaked(v)
                || !v.exited
                || !procs[i].debug
                || bypassed(&procs[i]).is_some()
        };
        let with_errors = children
            .iter()
            .filter(|&&i| verdicts[i].errors > 0 || leaked(&verdicts[i]))
            .count();
        let _ = writeln!(
            out,
            "children   {} with ft_malloc{}",
            processes(children.len()),
            if with_errors > 0 {
                format!(", {with_errors} with errors or leaks")
            } else {
                String::new()
            }
        );
        // Brief: a line for each child with something to say; the clean ones by program.
        let mut clean: Vec<(String, usize)> = Vec::new();
        for &i in &children {
            let p = &procs[i];
            let v = &verdicts[i];
            let name = if p.forked && p.exes.len() <= 1 {
                format!("{} (fork of {})", p.exe(), p.ppid.unwrap_or(0))
            } else {
                p.exe().to_string()
            };
            if !o.full && !notable(i) {
                match clean.iter_mut().find(|(e, _)| *e == p.exe()) {
                    Some((_, n)) => *n += 1,
                    None => clean.push((p.exe().to_string(), 1)),
                }
                continue;
            }
            let mut what = Vec::new();
            if v.errors > 0 {
                what.push(format!(
                    "{}{}",
                    plural(v.errors, "error"),
                    if v.counted { "" } else { " (on stderr)" }
                ));
            }
            if !p.debug {
                what.push("debugging off (MALLOC_DEBUG removed)".to_string());
            }
            if let Some(by) = bypassed(p) {
                what.push(format!(
                    "not checked: malloc is {by}'s own, and no allocation came to ft_malloc"
                ));
            }
            if !v.exited && !p.exec_without.is_empty() {
                what.push(format!(
                    "then executed {}, which ft_malloc was not loaded into",
                    p.exec_without.join(", ")
                ));
            } else if !v.exited {
                what.push(
                    "no exit report (_exit, a signal, or an exec of a program without ft_malloc)"
                        .to_string(),
                );
            } else if leaked(v) {
                what.push(format!("leaks {}", leak_text(v)));
            } else if v.errors == 0 && p.debug && bypassed(p).is_none() {
                what.push(match v.leaks {
                    Some(_) => "clean".to_string(),
                    None => format!("no errors; leaks {}", v.leak_note),
                });
            }
            let _ = writeln!(out, "  pid {} {}: {}", p.pid, name, what.join("; "));
            if o.full || v.errors > 0 || leaked(v) {
                for l in v.leak_lines.iter().take(if o.full { 10 } else { 3 }) {
                    let _ = writeln!(out, "             {l}");
                }
            }
            if o.full {
                if let Some(peak) = p.exit.as_ref().and_then(|e| e.peak).filter(|&b| b > 0) {
                    let _ = writeln!(out, "             peak about {} in use", human(peak));
                }
                if p.exes.len() > 1 {
                    let _ = writeln!(out, "             exec {}", p.exes.join(" -> "));
                }
            }
        }
        if !clean.is_empty() {
            let list: Vec<String> = clean
                .iter()
                .map(|(e, n)| {
                    if *n == 1 {
                        e.clone()
                    } else {
                        format!("{n} x {e}")
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "  clean: {} ({}; --children=full lists each)",
                processes(clean.iter().map(|(_, n)| n).sum()),
                list.join(", ")
            );
        }
    }
    for w in &without {
        let _ = writeln!(out, "without    {w}: ft_malloc was not loaded into it");
    }
    // Logs kept with --trace.
    for (path, pid, line) in &o.logs {
        let child = pid.is_some_and(|pid| top.is_none_or(|t| procs[t].pid != pid));
        if o.full || !child || o.logs.len() == 1 {
            let _ = writeln!(out, "process    {line}");
        }
        let _ = writeln!(out, "log        {path}");
    }
    if o.logs.is_empty() {
        let _ = writeln!(
            out,
            "log        {}",
            if o.traced {
                "none written"
            } else {
                "none (--trace FILE writes one)"
            }
        );
    }
    Ok((out, code))
}

fn processes(n: usize) -> String {
    if n == 1 {
        "1 process".to_string()
    } else {
        format!("{n} processes")
    }
}

fn crash_hint(mode: &str) -> &'static str {
    match mode {
        "guard" => {
            "the guard pages did not stop it at a heap block: run it under a debugger (the bad access may be outside the heap)"
        }
        _ => {
            "rerun with --guard: guard pages stop an overflow or a use after free at the faulting access"
        }
    }
}

fn fail_hint(mode: &str) -> &'static str {
    match mode {
        "guard" => "run it under a debugger",
        _ => "rerun with --guard (guard pages stop a bad access where it happens)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_records() {
        let t = "# ft_malloc announce v1\n\
            start pid=10 ppid=1 debug=1 exe=/bin/sh parent=/usr/bin/bash\n\
            fork pid=11 ppid=10\n\
            start pid=11 ppid=10 debug=1 exe=/tmp/my\\x20prog parent=/bin/sh\n\
            exit pid=11 errors=2 leak_check=on leaked=48/2 reachable=4096/1 peak=70000\n\
            fork pid=12 ppid=10\n\
            exit pid=10 errors=0 leak_check=off future=1\n\
            start pid=10 ppid=1 debug=0 exe=/bin/true parent=/usr/bin/bash\n";
        let p = parse_announce(t);
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!((p[0].pid, p[0].ppid, p[0].exe()), (10, Some(1), "/bin/sh"));
        assert_eq!(p[0].parent_exe, "/usr/bin/bash");
        assert!(!p[0].forked && p[0].debug);
        assert_eq!(p[0].exit.as_ref().unwrap().errors, 0);
        assert_eq!(p[1].exes, ["/bin/sh", "/tmp/my prog"]);
        assert!(p[1].forked);
        let e = p[1].exit.as_ref().unwrap();
        assert_eq!(
            (e.errors, e.leaked, e.reachable, e.peak),
            (2, Some((48, 2)), Some((4096, 1)), Some(70000))
        );
        assert!(p[2].forked && p[2].exit.is_none());
        assert_eq!(p[2].exe(), "/bin/sh");
        // pid 10 again after its exit: a new process.
        assert_eq!((p[3].pid, p[3].exe(), p[3].debug), (10, "/bin/true", false));
    }

    #[test]
    fn leak_summary_numbers() {
        assert_eq!(
            parse_leak_summary(
                "26 bytes in 3 unreachable block(s); 4096 bytes in 1 block(s) still reachable"
            ),
            Some(((26, 3), (4096, 1)))
        );
        let s = "400 bytes in 11 unreachable block(s); 4160 bytes in 3 block(s) still reachable; \
                 of the unreachable, 256 bytes in 7 block(s) indirectly lost (only other \
                 unreachable blocks point to them)";
        assert_eq!(parse_leak_summary(s), Some(((400, 11), (4160, 3))));
        assert_eq!(parse_indirect(s), Some((256, 7)));
        assert_eq!(parse_indirect("26 bytes in 3 unreachable block(s)"), None);
        let s = "0 bytes in 0 unreachable block(s); 4160 bytes in 3 block(s) still reachable; \
                 400 bytes in 11 unreachable block(s) suppressed";
        assert_eq!(parse_suppressed(s), Some((400, 11)));
        assert_eq!(parse_suppressed("26 bytes in 3 unreachable block(s)"), None);
    }
}
