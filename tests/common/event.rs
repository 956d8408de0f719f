//! The `E` records of a log as the tests read them (docs/LOGFORMAT.md, format v2), checked
//! strictly: a record that does not have exactly the fields its operation takes is refused.

use ft_format::Op;

/// One event record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub seq: u64,
    /// Microseconds since the header's `start_ns`.
    pub t_us: u64,
    /// The thread id; None for `-`, the thread whose id is the header's `pid`.
    pub tid: Option<u64>,
    pub op: Op,
    pub inp: u64,
    pub out: u64,
    pub size: u64,
    pub align: u64,
    /// The last field: `@ID` or a caller address with `0x`.
    pub site: &'a str,
}

impl Event<'_> {
    /// The id of the stack an `@ID` site names.
    pub fn stack_id(&self) -> Option<&str> {
        self.site.strip_prefix('@')
    }
}

/// Parses the part of an `E` record after `E `; None if it is malformed.
pub fn parse(rest: &str) -> Option<Event<'_>> {
    let mut f = rest.split(' ');
    let mut next = || f.next();
    let dec = |s: Option<&str>| s?.parse::<u64>().ok();
    let hex = |s: Option<&str>| {
        let s = s?;
        if s.starts_with("0x") {
            return None;
        }
        u64::from_str_radix(s, 16).ok()
    };
    let seq = dec(next())?;
    let t_us = dec(next())?;
    let tid = match next()? {
        "-" => None,
        t => Some(t.parse::<u64>().ok().filter(|&t| t != 0)?),
    };
    let op_field = next()?;
    if op_field.len() != 1 {
        return None;
    }
    let op = Op::from_code(op_field.as_bytes()[0])?;
    let (has_in, has_out) = op.pointers();
    let inp = if has_in { hex(next())? } else { 0 };
    let out = if has_out { hex(next())? } else { 0 };
    let size = dec(next())?;
    let mut field = next()?;
    let mut align = 0;
    // An alignment: always for the aligned ops, for operator new only when one was asked for
    // (it starts with a digit other than 0; the site starts with `0x` or `@`).
    if op.is_aligned() || (op.may_align() && field.starts_with(|c: char| ('1'..='9').contains(&c)))
    {
        align = field.parse::<u64>().ok()?;
        field = next()?;
    }
    let site = field;
    let site_ok = match site.strip_prefix('@') {
        Some(id) => id.parse::<u32>().is_ok(),
        None => site.strip_prefix("0x").is_some_and(|h| {
            h.split(',')
                .all(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).is_ok())
        }),
    };
    if !site_ok || next().is_some() {
        return None;
    }
    Some(Event {
        seq,
        t_us,
        tid,
        op,
        inp,
        out,
        size,
        align,
        site,
    })
}
