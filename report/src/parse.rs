//! Parser for one record of the ft_malloc log (docs/LOGFORMAT.md, formats v2 and v1): headers,
//! module records, events (whose last field is a caller, a frame list or a stack reference
//! `@<id>`) and stack records `S <id> <frames>`. The two formats differ only in their `E`
//! records; the caller says which one a file is.
//!
//! Hand-written for speed: no regex, no allocation, one pass over the bytes of the line.
//! A line is given without its terminating `\n`.

/// The operations of the malloc family, as written in the `op` field: the library's numbering
/// and names, from the format crate both sides share.
pub use ft_format::{OP_COUNT, Op};

/// Which form `E` records take (the file's first line says).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Version {
    /// `# ft_malloc log v1`: op names, `0x` pointers, times in nanoseconds, every field.
    V1,
    /// `# ft_malloc log v2`: one-letter ops, bare hex pointers, times in microseconds, the
    /// main thread as `-`, only the fields the operation has.
    #[default]
    V2,
}

/// One `E` record. `caller` is the raw last field: `<caller>[,<frame>...]` or `@<id>`
/// ([`stack_ref`] tells them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub seq: u64,
    pub t_ns: u64,
    /// The thread id; in a v2 record, 0 for the thread whose id is the process id (`-`).
    pub tid: u32,
    pub op: Op,
    pub inp: u64,
    pub out: u64,
    pub size: u64,
    pub align: u64,
    pub caller: &'a [u8],
}

/// What one line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// `# key value` (value may be empty).
    Header(&'a [u8], &'a [u8]),
    /// `M <base> <path>`
    Module(u64, &'a [u8]),
    Event(RawEvent<'a>),
    /// `S <id> <frames>`: the id and the raw frame list (checked by [`parse_frames`]).
    Stack(u32, &'a [u8]),
    /// Empty line, or a record type this reader does not know: skipped, not corrupt.
    Skip,
}

/// Why a line is corrupt.
pub type ParseError = &'static str;

const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    #[inline(always)]
    fn dec(&mut self, what: &'static str) -> Result<u64, ParseError> {
        let b = self.b;
        let start = self.i;
        let mut v: u64 = 0;
        let mut i = self.i;
        while i < b.len() {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        if i == start {
            return Err(what);
        }
        // 19 digits always fit in a u64; longer numbers are checked the slow way.
        if i - start > 19 {
            let mut c: u64 = 0;
            for &d in &b[start..i] {
                c = c
                    .checked_mul(10)
                    .and_then(|c| c.checked_add((d - b'0') as u64))
                    .ok_or(what)?;
            }
            v = c;
        }
        self.i = i;
        Ok(v)
    }

    /// Hex with `0x` (at most 16 digits).
    #[inline(always)]
    fn hex(&mut self, what: &'static str) -> Result<u64, ParseError> {
        let b = self.b;
        if b.len() < self.i + 3 || b[self.i] != b'0' || b[self.i + 1] != b'x' {
            return Err(what);
        }
        self.i += 2;
        self.bare_hex(what)
    }

    /// Lowercase or uppercase hex without `0x` (at most 16 digits).
    #[inline(always)]
    fn bare_hex(&mut self, what: &'static str) -> Result<u64, ParseError> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut v: u64 = 0;
        while i < b.len() {
            let d = HEX[b[i] as usize];
            if d == 0xff {
                break;
            }
            v = (v << 4) | d as u64;
            i += 1;
        }
        if i == start || i - start > 16 {
            return Err(what);
        }
        self.i = i;
        Ok(v)
    }

    #[inline(always)]
    fn space(&mut self, what: &'static str) -> Result<(), ParseError> {
        if self.i < self.b.len() && self.b[self.i] == b' ' {
            self.i += 1;
            Ok(())
        } else {
            Err(what)
        }
    }

    /// A short word (the op): up to the next space, at most 16 bytes looked at.
    #[inline(always)]
    fn word(&mut self) -> &'a [u8] {
        let b = self.b;
        let start = self.i;
        let lim = b.len().min(start + 16);
        let mut i = start;
        while i < lim && b[i] != b' ' {
            i += 1;
        }
        self.i = i;
        &b[start..i]
    }
}

/// Parse one line (without its `\n`).
pub fn parse_line(line: &[u8], v: Version) -> Result<Record<'_>, ParseError> {
    let Some(&first) = line.first() else {
        return Ok(Record::Skip);
    };
    match first {
        b'E' => match v {
            Version::V2 => parse_event(line),
            Version::V1 => parse_event_v1(line),
        }
        .map(Record::Event),
        b'#' => {
            let rest = &line[1..];
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            let (k, v) = match memchr::memchr(b' ', rest) {
                Some(n) => (&rest[..n], trim(&rest[n + 1..])),
                None => (rest, &rest[rest.len()..]),
            };
            Ok(Record::Header(k, v))
        }
        b'M' => {
            let mut c = Cur { b: line, i: 1 };
            c.space("module record: no space after M")?;
            let base = c.hex("module record: bad base address")?;
            c.space("module record: no path")?;
            let path = &line[c.i..];
            if path.is_empty() {
                return Err("module record: empty path");
            }
            Ok(Record::Module(base, path))
        }
        b'S' => {
            let mut c = Cur { b: line, i: 1 };
            c.space("stack record: no space after S")?;
            let id = c.dec("stack record: bad id")?;
            let id = u32::try_from(id).map_err(|_| "stack record: bad id")?;
            c.space("stack record: no frames")?;
            let frames = &line[c.i..];
            if frames.len() < 3 {
                return Err("stack record: no frames");
            }
            Ok(Record::Stack(id, frames))
        }
        b'\r' if line.len() == 1 => Ok(Record::Skip),
        b'A'..=b'Z' | b'a'..=b'z' => Ok(Record::Skip),
        _ => Err("unknown record start"),
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [rest @ .., last] = v {
        if last.is_ascii_whitespace() {
            v = rest;
        } else {
            break;
        }
    }
    v
}

/// The last field of an `E` record: `0xHEX[,0xHEX]...` or `@ID`, validated when the stack is
/// first interned (see `Stacks`); here only its length.
#[inline]
fn caller_field(caller: &[u8]) -> Result<&[u8], ParseError> {
    let min = if caller.first() == Some(&ft_format::log::STACK_REF) {
        2
    } else {
        3
    };
    if caller.len() < min {
        return Err("event: bad caller");
    }
    Ok(caller)
}

/// A v2 `E` record: `E <seq> <t_us> <tid|-> <op> <pointers> <size> [<align>] <where>`.
#[inline]
pub fn parse_event(line: &[u8]) -> Result<RawEvent<'_>, ParseError> {
    let mut c = Cur { b: line, i: 1 };
    c.space("event: no space after E")?;
    let seq = c.dec("event: bad seq")?;
    c.space("event: missing time")?;
    let t_ns = c
        .dec("event: bad time")?
        .checked_mul(ft_format::log::T_UNIT_NS)
        .ok_or("event: bad time")?;
    c.space("event: missing tid")?;
    let tid = if line.get(c.i) == Some(&ft_format::log::MAIN_TID) {
        c.i += 1;
        0
    } else {
        let t = c.dec("event: bad tid")?;
        if t == 0 || t > u32::MAX as u64 {
            return Err("event: bad tid");
        }
        t
    };
    c.space("event: missing op")?;
    let op = line
        .get(c.i)
        .and_then(|&b| Op::from_code(b))
        .ok_or("event: unknown op")?;
    c.i += 1;
    let (has_in, has_out) = op.pointers();
    let mut inp = 0;
    let mut out = 0;
    if has_in {
        c.space("event: missing in")?;
        inp = c.bare_hex("event: bad in pointer")?;
    }
    if has_out {
        c.space("event: missing out")?;
        out = c.bare_hex("event: bad out pointer")?;
    }
    c.space("event: missing size")?;
    let size = c.dec("event: bad size")?;
    let mut align = 0;
    let aligned_new = || op.may_align() && matches!(line.get(c.i + 1), Some(b'1'..=b'9'));
    if op.is_aligned() || aligned_new() {
        c.space("event: missing align")?;
        align = c.dec("event: bad align")?;
    }
    c.space("event: missing caller")?;
    let caller = caller_field(&line[c.i..])?;
    Ok(RawEvent {
        seq,
        t_ns,
        tid: tid as u32,
        op,
        inp,
        out,
        size,
        align,
        caller,
    })
}

/// A v1 `E` record: `E <seq> <t_ns> <tid> <op> <in> <out> <size> <align> <where>`.
#[inline]
pub fn parse_event_v1(line: &[u8]) -> Result<RawEvent<'_>, ParseError> {
    let mut c = Cur { b: line, i: 1 };
    c.space("event: no space after E")?;
    let seq = c.dec("event: bad seq")?;
    c.space("event: missing t_ns")?;
    let t_ns = c.dec("event: bad t_ns")?;
    c.space("event: missing tid")?;
    let tid = c.dec("event: bad tid")?;
    if tid > u32::MAX as u64 {
        return Err("event: bad tid");
    }
    c.space("event: missing op")?;
    let op = Op::from_name(c.word()).ok_or("event: unknown op")?;
    c.space("event: missing in")?;
    let inp = c.hex("event: bad in pointer")?;
    c.space("event: missing out")?;
    let out = c.hex("event: bad out pointer")?;
    c.space("event: missing size")?;
    let size = c.dec("event: bad size")?;
    c.space("event: missing align")?;
    let align = c.dec("event: bad align")?;
    c.space("event: missing caller")?;
    let caller = caller_field(&line[c.i..])?;
    Ok(RawEvent {
        seq,
        t_ns,
        tid: tid as u32,
        op,
        inp,
        out,
        size,
        align,
        caller,
    })
}

/// One record of an mtrace log (glibc's malloc/mtrace-impl.c, or ft_malloc's
/// `log_format=mtrace`), with its caller field still raw.
#[derive(Debug, PartialEq, Eq)]
pub enum MtraceRecord<'a> {
    /// `= Start`, `= End`, an empty line.
    Skip,
    /// `+ ADDR SIZE` (ADDR 0 for `(nil)`).
    Alloc {
        caller: &'a [u8],
        addr: u64,
        size: u64,
    },
    /// `- ADDR`.
    Free { caller: &'a [u8], addr: u64 },
    /// `< OLD`: the first half of a realloc that returned a block.
    ReallocOld { caller: &'a [u8], addr: u64 },
    /// `> NEW SIZE`: its second half.
    ReallocNew {
        caller: &'a [u8],
        addr: u64,
        size: u64,
    },
    /// `! OLD SIZE`: a realloc that failed.
    ReallocFailed {
        caller: &'a [u8],
        addr: u64,
        size: u64,
    },
}

/// `0x...` (or glibc's `(nil)`) as a pointer.
fn mtrace_ptr(t: &[u8]) -> Result<u64, ParseError> {
    if t == ft_format::mtrace::NIL.as_bytes() {
        return Ok(0);
    }
    let mut c = Cur { b: t, i: 0 };
    let v = c.hex("mtrace record: bad address")?;
    if c.i != t.len() {
        return Err("mtrace record: bad address");
    }
    Ok(v)
}

/// Parse one line of an mtrace log: `[@ WHERE ]TAG ADDR[ SIZE]`.
pub fn parse_mtrace_line(line: &[u8]) -> Result<MtraceRecord<'_>, ParseError> {
    use ft_format::mtrace as m;
    if line.is_empty() || line.starts_with(b"= ") || line == b"\r" {
        return Ok(MtraceRecord::Skip);
    }
    // The caller field (`@ path:[0x..] `, `@ [0x..] `) ends with `] `; a path may hold spaces,
    // so the record is what follows the last `] `.
    let (caller, rec): (&[u8], &[u8]) = if line[0] == m::AT {
        let Some(k) = memchr::memmem::rfind(line, b"] ") else {
            return Err("mtrace record: no caller address after @");
        };
        let caller = line[1..k + 1].strip_prefix(b" ").unwrap_or(&line[1..k + 1]);
        (caller, &line[k + 2..])
    } else {
        (&line[..0], line)
    };
    let mut it = rec.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let tag = it.next().ok_or("mtrace record: empty")?;
    let a = it.next().ok_or("mtrace record: no address")?;
    let size_tok = it.next();
    if it.next().is_some() {
        return Err("mtrace record: too many fields");
    }
    let size = || -> Result<u64, ParseError> {
        let s = size_tok.ok_or("mtrace record: no size")?;
        let mut c = Cur { b: s, i: 0 };
        let v = c.hex("mtrace record: bad size")?;
        if c.i != s.len() {
            return Err("mtrace record: bad size");
        }
        Ok(v)
    };
    let addr = mtrace_ptr(a)?;
    Ok(match tag {
        [t] if *t == m::ALLOC => MtraceRecord::Alloc {
            caller,
            addr,
            size: size()?,
        },
        [t] if *t == m::FREE => MtraceRecord::Free { caller, addr },
        [t] if *t == m::REALLOC_OLD => MtraceRecord::ReallocOld { caller, addr },
        [t] if *t == m::REALLOC_NEW => MtraceRecord::ReallocNew {
            caller,
            addr,
            size: size()?,
        },
        [t] if *t == m::REALLOC_FAILED => MtraceRecord::ReallocFailed {
            caller,
            addr,
            size: size()?,
        },
        _ => return Err("mtrace record: unknown tag"),
    })
}

/// Where an mtrace caller field points.
#[derive(Debug, PartialEq, Eq)]
pub enum MtraceWhere<'a> {
    /// No caller written.
    None,
    /// An absolute address (`[0x7f..]`, glibc's `path:(sym+0x10)[0x7f..]`).
    Addr(u64),
    /// An offset in a module (ft_malloc's `path:[0xoffset]`).
    Offset(&'a [u8], u64),
}

/// The bracketed value of a caller field below this is a module offset (ft_malloc writes
/// offsets); above, an absolute address (glibc writes those).
const MTRACE_OFFSET_LIMIT: u64 = 1 << 32;

pub fn parse_mtrace_where(w: &[u8]) -> Result<MtraceWhere<'_>, ParseError> {
    if w.is_empty() {
        return Ok(MtraceWhere::None);
    }
    let bad = "mtrace record: bad caller";
    let open = memchr::memrchr(b'[', w).ok_or(bad)?;
    if w.last() != Some(&b']') {
        return Err(bad);
    }
    let v = mtrace_ptr(&w[open + 1..w.len() - 1]).map_err(|_| bad)?;
    let before = &w[..open];
    if let Some(path) = before.strip_suffix(b":")
        && !path.is_empty()
        && v < MTRACE_OFFSET_LIMIT
    {
        return Ok(MtraceWhere::Offset(path, v));
    }
    Ok(MtraceWhere::Addr(v))
}

/// The stack id of a `@<id>` field; None for a frame list; an error for a bad id.
#[inline]
pub fn stack_ref(field: &[u8]) -> Option<Result<u32, ParseError>> {
    let rest = field.strip_prefix(&[ft_format::log::STACK_REF])?;
    let mut c = Cur { b: rest, i: 0 };
    let bad = "event: bad stack reference";
    Some(match c.dec(bad) {
        Ok(v) if c.i == rest.len() => u32::try_from(v).map_err(|_| bad),
        _ => Err(bad),
    })
}

/// Parse a `<caller>[,<frame>...]` field into addresses.
pub fn parse_frames(field: &[u8]) -> Result<Vec<u64>, ParseError> {
    let mut v = Vec::with_capacity(1 + memchr::memchr_iter(b',', field).count());
    for part in field.split(|&b| b == ft_format::log::FRAME_SEP) {
        let mut c = Cur { b: part, i: 0 };
        let a = c.hex("event: bad caller address")?;
        if c.i != part.len() {
            return Err("event: bad caller address");
        }
        v.push(a);
    }
    Ok(v)
}

/// Parse an address given on the command line: hex, with or without `0x` (every address this
/// project prints, and /proc/PID/maps, gdb or a core dump show, is hex).
pub fn parse_addr(s: &str) -> Option<u64> {
    let s = s.trim();
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() || h.len() > 16 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event() {
        let r = parse_line(
            b"E 2 1900 31337 realloc 0x7f3a20000000 0x7f3a20000040 100 0 0x55d0c0001183,0x10",
            Version::V1,
        )
        .unwrap();
        let Record::Event(e) = r else { panic!() };
        assert_eq!(e.seq, 2);
        assert_eq!(e.t_ns, 1900);
        assert_eq!(e.tid, 31337);
        assert_eq!(e.op, Op::Realloc);
        assert_eq!(e.inp, 0x7f3a20000000);
        assert_eq!(e.out, 0x7f3a20000040);
        assert_eq!(e.size, 100);
        assert_eq!(e.caller, b"0x55d0c0001183,0x10");
        assert_eq!(parse_frames(e.caller).unwrap(), vec![0x55d0c0001183, 0x10]);
    }

    #[test]
    fn event_v2() {
        let r = parse_line(
            b"E 2 19 31337 r 7f3a20000000 7f3a20000040 100 @7",
            Version::V2,
        );
        let Ok(Record::Event(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!((e.seq, e.t_ns, e.tid), (2, 19_000, 31337));
        assert_eq!(
            (e.op, e.inp, e.out, e.size),
            (Op::Realloc, 0x7f3a20000000, 0x7f3a20000040, 100)
        );
        assert_eq!((e.align, e.caller), (0, &b"@7"[..]));
        let Ok(Record::Event(e)) = parse_line(b"E 3 20 - f 7f3a20000040 100 0x10", Version::V2)
        else {
            panic!()
        };
        assert_eq!(
            (e.tid, e.op, e.inp, e.out),
            (0, Op::Free, 0x7f3a20000040, 0)
        );
        let Ok(Record::Event(e)) = parse_line(b"E 4 21 - p 7f00 32 64 @9", Version::V2) else {
            panic!()
        };
        assert_eq!(
            (e.op, e.inp, e.out, e.size, e.align),
            (Op::PosixMemalign, 0, 0x7f00, 32, 64)
        );
        let Ok(Record::Event(e)) = parse_line(b"E 5 22 - m 0 4096 @9", Version::V2) else {
            panic!()
        };
        assert_eq!((e.op, e.out, e.size), (Op::Malloc, 0, 4096));
        // operator new: an alignment only when one was asked for.
        for (line, align) in [
            (&b"E 6 23 - n 7f00 64 128 @9"[..], 128),
            (b"E 6 23 - n 7f00 64 @9", 0),
            (b"E 6 23 - N 7f00 64 0x10", 0),
            (b"E 6 23 - N 7f00 64 32 0x10", 32),
        ] {
            let Ok(Record::Event(e)) = parse_line(line, Version::V2) else {
                panic!("{}", String::from_utf8_lossy(line))
            };
            assert_eq!((e.out, e.size, e.align), (0x7f00, 64, align));
        }
        for bad in [
            &b"E 5 22 - m 4096 @9"[..],
            b"E 5 22 - x 10 4096 @9",
            b"E 5 22 0 m 10 4096 @9",
            b"E 5 22 - m 0x10 4096 @9",
            b"E 5 22 - a 10 4096 @9",
            b"E 5 22 - r 10 4096 @9",
            b"E 5 22 - m 10 4096 @",
            b"E 5 18446744073709552 - m 10 1 @1",
        ] {
            assert!(
                parse_line(bad, Version::V2).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn others() {
        assert_eq!(
            parse_line(b"# program /tmp/a b", Version::V1).unwrap(),
            Record::Header(b"program", b"/tmp/a b")
        );
        assert_eq!(
            parse_line(b"M 0x55d0c0000000 /tmp/my dir/a.out", Version::V1).unwrap(),
            Record::Module(0x55d0c0000000, b"/tmp/my dir/a.out")
        );
        assert_eq!(
            parse_line(b"S 7 0x55d0c0001183,0x10", Version::V1).unwrap(),
            Record::Stack(7, b"0x55d0c0001183,0x10")
        );
        assert!(parse_line(b"S 7", Version::V1).is_err());
        assert!(parse_line(b"S x 0x1", Version::V1).is_err());
        assert!(parse_line(b"S 4294967296 0x1", Version::V1).is_err());
        assert_eq!(stack_ref(b"@4294967295"), Some(Ok(u32::MAX)));
        assert_eq!(stack_ref(b"@0"), Some(Ok(0)));
        assert!(stack_ref(b"@4294967296").unwrap().is_err());
        assert!(stack_ref(b"@").unwrap().is_err());
        assert!(stack_ref(b"@12,0x1").unwrap().is_err());
        assert_eq!(stack_ref(b"0x12"), None);
        let e = parse_event_v1(b"E 1 2 3 malloc 0x0 0x10 24 0 @12").unwrap();
        assert_eq!(e.caller, b"@12");
        assert_eq!(
            parse_line(b"X whatever", Version::V1).unwrap(),
            Record::Skip
        );
        assert_eq!(parse_line(b"", Version::V1).unwrap(), Record::Skip);
        assert!(parse_line(b"E 1 2 3 mall", Version::V1).is_err());
        assert!(parse_line(b"E 1 2 3 malloc 0x0 0x10 24 0 0x", Version::V1).is_err());
        assert!(parse_line(b"E 1 2 3 malloc 0x0 0x10 24 0", Version::V1).is_err());
        assert!(parse_line(b"\x01garbage", Version::V1).is_err());
        assert!(parse_frames(b"0x1,0xzz").is_err());
        assert_eq!(parse_addr("0x10"), Some(16));
        assert_eq!(parse_addr("10"), Some(16));
        assert_eq!(parse_addr("7fc61a46f010"), Some(0x7fc61a46f010));
        assert_eq!(parse_addr("0X7FC61A46F010"), Some(0x7fc61a46f010));
        assert_eq!(parse_addr("0x"), None);
        assert_eq!(parse_addr("zzz"), None);
        assert_eq!(parse_addr("-1"), None);
        assert_eq!(parse_addr("0x10000000000000000"), None);
        let big = b"E 18446744073709551615 1 2 free 0xffffffffffffffff 0x0 1 0 0x1";
        assert!(parse_event_v1(big).is_ok());
        assert!(parse_event_v1(b"E 18446744073709551616 1 2 free 0x1 0x0 1 0 0x1").is_err());
        assert!(parse_event_v1(b"E 1 1 2 free 0x1ffffffffffffffff 0x0 1 0 0x1").is_err());
    }
}
