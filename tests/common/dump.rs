//! Parser and checks of the `show_alloc_mem()` output:
//! ```text
//! TINY : 0xA0000
//! 0xA0020 - 0xA004A : 42 bytes
//! LARGE : 0xB0000
//! 0xB0020 - 0xBBEEF : 48847 bytes
//! Total : 48889 bytes
//! ```

/// Largest request of the TINY class.
pub const TINY_MAX: u64 = 512;
/// Largest request of the SMALL class.
pub const SMALL_MAX: u64 = 16384;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start: u64,
    pub end: u64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Zone {
    /// `TINY`, `SMALL` or `LARGE`.
    pub kind: String,
    pub addr: u64,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub struct Dump {
    pub zones: Vec<Zone>,
    pub total: u64,
}

impl Dump {
    pub fn blocks(&self) -> impl Iterator<Item = (&str, &Block)> {
        self.zones
            .iter()
            .flat_map(|z| z.blocks.iter().map(move |b| (z.kind.as_str(), b)))
    }
}

/// The class a request of `size` bytes belongs to.
pub fn class_of(size: u64) -> &'static str {
    if size <= TINY_MAX {
        "TINY"
    } else if size <= SMALL_MAX {
        "SMALL"
    } else {
        "LARGE"
    }
}

/// `0x` followed by uppercase hex digits only.
fn hex(s: &str) -> Result<u64, String> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{s:?}: no 0x prefix"))?;
    if digits.is_empty()
        || !digits
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
    {
        return Err(format!("{s:?}: not uppercase hex"));
    }
    u64::from_str_radix(digits, 16).map_err(|e| format!("{s:?}: {e}"))
}

fn bytes(s: &str) -> Result<u64, String> {
    let n = s
        .strip_suffix(" bytes")
        .ok_or_else(|| format!("{s:?}: no ' bytes' suffix"))?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("{s:?}: not a decimal size"));
    }
    n.parse().map_err(|e| format!("{s:?}: {e}"))
}

/// Parses the whole text (it must end with the `Total` line) and checks its consistency:
/// zones in increasing address order, blocks in increasing order inside their zone and not
/// overlapping, `end - start == size`, blocks at or after their zone's address, one block per
/// LARGE zone, the total equal to the sum of the sizes.
pub fn parse(text: &str) -> Result<Dump, String> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut total = None;
    for (no, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {line:?}: {e}", no + 1);
        if total.is_some() {
            return Err(err("text after the Total line".into()));
        }
        if let Some(rest) = line.strip_prefix("Total : ") {
            total = Some(bytes(rest).map_err(err)?);
        } else if let Some((kind, addr)) = line
            .split_once(" : ")
            .filter(|(k, _)| ["TINY", "SMALL", "LARGE"].contains(k))
        {
            zones.push(Zone {
                kind: kind.to_string(),
                addr: hex(addr).map_err(err)?,
                blocks: Vec::new(),
            });
        } else if let Some((range, size)) = line.split_once(" : ") {
            let (start, end) = range
                .split_once(" - ")
                .ok_or_else(|| err("no ' - ' in block line".into()))?;
            let b = Block {
                start: hex(start).map_err(err)?,
                end: hex(end).map_err(err)?,
                size: bytes(size).map_err(err)?,
            };
            let z = zones
                .last_mut()
                .ok_or_else(|| err("block line before any zone line".into()))?;
            if b.end.checked_sub(b.start) != Some(b.size) {
                return Err(err("end - start != size".into()));
            }
            if b.start < z.addr {
                return Err(err("block before its zone's address".into()));
            }
            if let Some(prev) = z.blocks.last()
                && (b.start < prev.end || b.start <= prev.start)
            {
                return Err(err("block not after the previous one".into()));
            }
            z.blocks.push(b);
        } else {
            return Err(err("unrecognised line".into()));
        }
    }
    let total = total.ok_or("no Total line")?;
    for w in zones.windows(2) {
        if w[1].addr <= w[0].addr {
            return Err(format!(
                "zones not in increasing address order: {:X} then {:X}",
                w[0].addr, w[1].addr
            ));
        }
        if let Some(last) = w[0].blocks.last()
            && last.end > w[1].addr
        {
            return Err(format!(
                "block {:X}-{:X} runs into the next zone {:X}",
                last.start, last.end, w[1].addr
            ));
        }
    }
    for z in &zones {
        if z.kind == "LARGE" && z.blocks.len() != 1 {
            return Err(format!(
                "LARGE : {:X} has {} blocks, expected 1",
                z.addr,
                z.blocks.len()
            ));
        }
    }
    let sum: u64 = zones.iter().flat_map(|z| &z.blocks).map(|b| b.size).sum();
    if sum != total {
        return Err(format!("Total {total} != sum of the blocks {sum}"));
    }
    Ok(Dump { zones, total })
}

/// Splits a test program's stdout into the dump (up to and including the `Total` line) and the
/// `P <hex address> <size>` lines the program printed after it.
pub fn split_program_output(stdout: &str) -> (String, Vec<(u64, u64)>) {
    let mut dump = String::new();
    let mut ptrs = Vec::new();
    let mut in_dump = true;
    for line in stdout.lines() {
        if in_dump {
            dump.push_str(line);
            dump.push('\n');
            if line.starts_with("Total : ") {
                in_dump = false;
            }
        } else if let Some(rest) = line.strip_prefix("P ") {
            let (a, n) = rest.split_once(' ').expect("P line");
            ptrs.push((
                u64::from_str_radix(a, 16).expect("P address"),
                n.parse().expect("P size"),
            ));
        }
    }
    (dump, ptrs)
}
