//! The values of MALLOC_DEBUG options and their types: booleans, sizes (k/m/g), counts, and
//! each option's own keywords (leaks, on_error, guard, fail, log_format, hexdump, dump_signal). A parser returns
//! the value or what the option expects; numbers out of range are clamped by the caller
//! (`range`), except the N of `exit:N`, `nth:N` and `every:N`, clamped here.

use super::range::{EXIT_RANGE, FAIL_N_RANGE, OptionError};

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

pub(super) fn parse_bool(v: Option<&[u8]>, negate: bool) -> Result<bool, &'static str> {
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
    parse_num_saturating(num)
        .map(|n| n.saturating_mul(mult))
        .ok_or(E)
}

/// A number; digits past what u64 holds give u64::MAX (out of every range, so said).
pub(super) fn parse_num_saturating(v: &[u8]) -> Option<u64> {
    crate::fmt::parse_num(v)
        .or_else(|| (!v.is_empty() && v.iter().all(u8::is_ascii_digit)).then_some(u64::MAX))
}

pub(super) fn parse_count(v: Option<&[u8]>) -> Result<u64, &'static str> {
    v.and_then(parse_num_saturating).ok_or("expects a number")
}

pub(super) fn parse_leaks(v: Option<&[u8]>) -> Result<u8, &'static str> {
    match v {
        None | Some(b"1") | Some(b"yes") | Some(b"on") => Ok(1),
        Some(b"all") => Ok(2),
        Some(b"0") | Some(b"no") | Some(b"off") => Ok(0),
        _ => Err("expects leaks, leaks=all or noleaks"),
    }
}

/// A parsed value and the warning of its clamping, if it was out of range.
pub(super) type Clamped<T> = Result<(T, Option<OptionError>), &'static str>;

pub(super) fn parse_onerror(v: Option<&[u8]>) -> Clamped<OnError> {
    const E: &str = "expects abort, continue or exit:N (N 0-255)";
    match v {
        Some(b"abort") => Ok((OnError::Abort, None)),
        Some(b"continue") => Ok((OnError::Continue, None)),
        Some(x) if x.starts_with(b"exit:") => {
            let n = parse_num_saturating(&x[5..]).ok_or(E)?;
            let (n, w) = EXIT_RANGE.clamp(n, "exit:");
            Ok((OnError::Exit(n as i32), w))
        }
        _ => Err(E),
    }
}

pub(super) fn parse_guard(v: Option<&[u8]>) -> Result<Guard, &'static str> {
    match v {
        None | Some(b"1") | Some(b"after") | Some(b"yes") => Ok(Guard::After),
        Some(b"below") | Some(b"before") => Ok(Guard::Below),
        Some(b"exact") => Ok(Guard::Exact),
        Some(b"0") | Some(b"off") | Some(b"no") => Ok(Guard::Off),
        _ => Err("expects guard, guard=below, guard=exact or noguard"),
    }
}

pub(super) fn parse_fail(v: Option<&[u8]>) -> Clamped<Fail> {
    const E: &str = "expects nth:N, every:N (N >= 1) or size:SIZE";
    let v = v.ok_or(E)?;
    if let Some(r) = v.strip_prefix(b"nth:") {
        let (n, w) = FAIL_N_RANGE.clamp(parse_num_saturating(r).ok_or(E)?, "nth:");
        return Ok((Fail::Nth(n), w));
    }
    if let Some(r) = v.strip_prefix(b"every:") {
        let (n, w) = FAIL_N_RANGE.clamp(parse_num_saturating(r).ok_or(E)?, "every:");
        return Ok((Fail::Every(n), w));
    }
    if let Some(r) = v.strip_prefix(b"size:") {
        return parse_size(Some(r))
            .map(|n| (Fail::Size(n), None))
            .map_err(|_| E);
    }
    Err(E)
}

pub(super) fn parse_logfmt(v: Option<&[u8]>) -> Result<LogFormat, &'static str> {
    match v {
        Some(b"text") => Ok(LogFormat::Text),
        Some(b"mtrace") => Ok(LogFormat::Mtrace),
        _ => Err("expects text or mtrace"),
    }
}

pub(super) fn parse_hexdump(v: Option<&[u8]>) -> Result<u64, &'static str> {
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

pub(super) fn parse_signal(v: Option<&[u8]>) -> Result<i32, &'static str> {
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
        let mut up = [0u8; 16];
        let v = if v.len() <= up.len() {
            for (d, c) in up.iter_mut().zip(v) {
                *d = c.to_ascii_uppercase();
            }
            &up[..v.len()]
        } else {
            v
        };
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
