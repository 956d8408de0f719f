//! Parser for one record of the ft_malloc log (docs/LOGFORMAT.md, format v1).
//!
//! Hand-written for speed: no regex, no allocation, one pass over the bytes of the line.
//! A line is given without its terminating `\n`.

/// The operations of the malloc family, as written in the `op` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Malloc,
    Calloc,
    Realloc,
    Reallocarray,
    Free,
    Memalign,
    PosixMemalign,
    AlignedAlloc,
    Valloc,
    Pvalloc,
    New,
    NewArray,
    Delete,
    DeleteArray,
}

pub const OP_COUNT: usize = 14;

impl Op {
    pub const ALL: [Op; OP_COUNT] = [
        Op::Malloc,
        Op::Calloc,
        Op::Realloc,
        Op::Reallocarray,
        Op::Free,
        Op::Memalign,
        Op::PosixMemalign,
        Op::AlignedAlloc,
        Op::Valloc,
        Op::Pvalloc,
        Op::New,
        Op::NewArray,
        Op::Delete,
        Op::DeleteArray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Malloc => "malloc",
            Op::Calloc => "calloc",
            Op::Realloc => "realloc",
            Op::Reallocarray => "reallocarray",
            Op::Free => "free",
            Op::Memalign => "memalign",
            Op::PosixMemalign => "posix_memalign",
            Op::AlignedAlloc => "aligned_alloc",
            Op::Valloc => "valloc",
            Op::Pvalloc => "pvalloc",
            Op::New => "new",
            Op::NewArray => "new[]",
            Op::Delete => "delete",
            Op::DeleteArray => "delete[]",
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<Op> {
        // Dispatch on the length, then compare with constants of that length (compiled to a
        // couple of integer compares, no memcmp call).
        Some(match b.len() {
            3 if b == b"new" => Op::New,
            4 if b == b"free" => Op::Free,
            5 if b == b"new[]" => Op::NewArray,
            6 => match b {
                b"malloc" => Op::Malloc,
                b"calloc" => Op::Calloc,
                b"valloc" => Op::Valloc,
                b"delete" => Op::Delete,
                _ => return None,
            },
            7 => match b {
                b"realloc" => Op::Realloc,
                b"pvalloc" => Op::Pvalloc,
                _ => return None,
            },
            8 => match b {
                b"memalign" => Op::Memalign,
                b"delete[]" => Op::DeleteArray,
                _ => return None,
            },
            12 if b == b"reallocarray" => Op::Reallocarray,
            13 if b == b"aligned_alloc" => Op::AlignedAlloc,
            14 if b == b"posix_memalign" => Op::PosixMemalign,
            _ => return None,
        })
    }

    /// free, delete, delete[]: end the block at `in`.
    pub fn is_free(self) -> bool {
        matches!(self, Op::Free | Op::Delete | Op::DeleteArray)
    }

    /// realloc, reallocarray.
    pub fn is_realloc(self) -> bool {
        matches!(self, Op::Realloc | Op::Reallocarray)
    }
}

/// One `E` record. `caller` is the raw `<caller>[,<frame>...]` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub seq: u64,
    pub t_ns: u64,
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

    #[inline(always)]
    fn hex(&mut self, what: &'static str) -> Result<u64, ParseError> {
        let b = self.b;
        if b.len() < self.i + 3 || b[self.i] != b'0' || b[self.i + 1] != b'x' {
            return Err(what);
        }
        let start = self.i + 2;
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
pub fn parse_line(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let Some(&first) = line.first() else {
        return Ok(Record::Skip);
    };
    match first {
        b'E' => parse_event(line).map(Record::Event),
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

#[inline]
pub fn parse_event(line: &[u8]) -> Result<RawEvent<'_>, ParseError> {
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
    let op = Op::from_bytes(c.word()).ok_or("event: unknown op")?;
    c.space("event: missing in")?;
    let inp = c.hex("event: bad in pointer")?;
    c.space("event: missing out")?;
    let out = c.hex("event: bad out pointer")?;
    c.space("event: missing size")?;
    let size = c.dec("event: bad size")?;
    c.space("event: missing align")?;
    let align = c.dec("event: bad align")?;
    c.space("event: missing caller")?;
    let caller = &line[c.i..];
    // caller: 0xHEX[,0xHEX]... ; validated when the stack is first interned (see Stacks).
    if caller.len() < 3 {
        return Err("event: bad caller");
    }
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

/// Parse a `<caller>[,<frame>...]` field into addresses.
pub fn parse_frames(field: &[u8]) -> Result<Vec<u64>, ParseError> {
    let mut v = Vec::with_capacity(1 + memchr::memchr_iter(b',', field).count());
    for part in field.split(|&b| b == b',') {
        let mut c = Cur { b: part, i: 0 };
        let a = c.hex("event: bad caller address")?;
        if c.i != part.len() {
            return Err("event: bad caller address");
        }
        v.push(a);
    }
    Ok(v)
}

/// Parse an address given on the command line: `0x...` hex, or decimal.
pub fn parse_addr(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event() {
        let r = parse_line(
            b"E 2 1900 31337 realloc 0x7f3a20000000 0x7f3a20000040 100 0 0x55d0c0001183,0x10",
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
    fn others() {
        assert_eq!(
            parse_line(b"# program /tmp/a b").unwrap(),
            Record::Header(b"program", b"/tmp/a b")
        );
        assert_eq!(
            parse_line(b"M 0x55d0c0000000 /tmp/my dir/a.out").unwrap(),
            Record::Module(0x55d0c0000000, b"/tmp/my dir/a.out")
        );
        assert_eq!(parse_line(b"X whatever").unwrap(), Record::Skip);
        assert_eq!(parse_line(b"").unwrap(), Record::Skip);
        assert!(parse_line(b"E 1 2 3 mall").is_err());
        assert!(parse_line(b"E 1 2 3 malloc 0x0 0x10 24 0 0x").is_err());
        assert!(parse_line(b"E 1 2 3 malloc 0x0 0x10 24 0").is_err());
        assert!(parse_line(b"\x01garbage").is_err());
        assert!(parse_frames(b"0x1,0xzz").is_err());
        assert_eq!(parse_addr("0x10"), Some(16));
        assert_eq!(parse_addr("16"), Some(16));
        for op in Op::ALL {
            assert_eq!(Op::from_bytes(op.name().as_bytes()), Some(op));
        }
        assert_eq!(Op::from_bytes(b"mallocx"), None);
        assert_eq!(Op::from_bytes(b""), None);
        let big = b"E 18446744073709551615 1 2 free 0xffffffffffffffff 0x0 1 0 0x1";
        assert!(parse_event(big).is_ok());
        assert!(parse_event(b"E 18446744073709551616 1 2 free 0x1 0x0 1 0 0x1").is_err());
        assert!(parse_event(b"E 1 1 2 free 0x1ffffffffffffffff 0x0 1 0 0x1").is_err());
    }
}
