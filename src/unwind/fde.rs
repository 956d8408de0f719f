//! Finding and reading the FDE of an address: the binary search of `.eh_frame_hdr`'s sorted
//! table (a linear scan of `.eh_frame` when a linker wrote none), CIE parsing (versions 1, 3,
//! 4; augmentations `z`, `R`, `P`, `L`, `S`, `B`, `G`) and FDE parsing.
//!
//! # Invariants
//! - Every byte read comes from a slice built by `Segments::from`, so parsing stops at the end
//!   of a readable segment; malformed tables give `None`, never a fault or a panic.
//! - The linear scan stops after `MAX_SCAN` entries.

use super::module::Segments;
use super::reader::Cursor;

const MAX_SCAN: usize = 1 << 20;

/// What a CIE says about its FDEs.
pub struct Cie {
    pub code_align: u64,
    pub data_align: i64,
    pub ra: u64,
    pub fde_enc: u8,
    has_aug_data: bool,
    pub signal: bool,
    /// Initial instructions: address and length.
    pub instr: (usize, usize),
}

/// Length and body of the entry (CIE or FDE) at the cursor: (body start, body length); a zero
/// length is the terminator (None).
fn entry(c: &mut Cursor) -> Option<(usize, usize)> {
    let len = match c.u32()? {
        0 => return None,
        0xffff_ffff => c.u64()? as usize,
        n => n as usize,
    };
    let start = c.pos;
    c.skip(len)?;
    Some((start, len))
}

fn parse_cie(segs: &Segments, at: usize) -> Option<Cie> {
    let mut c = Cursor::new(segs.from(at)?, at);
    let (start, len) = entry(&mut c)?;
    let mut c = Cursor::new(c.b.get(start..start + len)?, at.wrapping_add(start));
    if c.u32()? != 0 {
        return None; // an FDE, not a CIE
    }
    let version = c.u8()?;
    if !matches!(version, 1 | 3 | 4) {
        return None;
    }
    let mut aug = [0u8; 8];
    let mut naug = 0;
    loop {
        let ch = c.u8()?;
        if ch == 0 {
            break;
        }
        *aug.get_mut(naug)? = ch;
        naug += 1;
    }
    if version == 4 {
        let (addr_size, seg_size) = (c.u8()?, c.u8()?);
        if addr_size != 8 || seg_size != 0 {
            return None;
        }
    }
    let code_align = c.uleb()?;
    let data_align = c.sleb()?;
    let ra = if version == 1 {
        c.u8()? as u64
    } else {
        c.uleb()?
    };
    let mut cie = Cie {
        code_align,
        data_align,
        ra,
        fde_enc: 0,
        has_aug_data: false,
        signal: false,
        instr: (0, 0),
    };
    let aug = &aug[..naug];
    if let Some((&b'z', rest)) = aug.split_first() {
        cie.has_aug_data = true;
        let alen = c.uleb()? as usize;
        let data_end = c.pos.checked_add(alen)?;
        for &ch in rest {
            match ch {
                b'R' => cie.fde_enc = c.u8()?,
                b'L' => {
                    c.u8()?;
                }
                b'P' => {
                    let enc = c.u8()?;
                    c.pointer(enc & 0x7f, 0)?;
                }
                b'S' => cie.signal = true,
                b'B' | b'G' => {}
                _ => return None,
            }
        }
        if c.pos > data_end {
            return None;
        }
        c.pos = data_end;
    } else if !aug.is_empty() {
        return None;
    }
    cie.instr = (c.addr(), c.b.len().checked_sub(c.pos)?);
    Some(cie)
}

/// Reads the FDE at `at`: its CIE, range and instructions, if it covers `pc`.
pub fn parse_fde(
    segs: &Segments,
    at: usize,
    pc: Option<usize>,
) -> Option<(Cie, usize, usize, (usize, usize))> {
    let mut c = Cursor::new(segs.from(at)?, at);
    let (start, len) = entry(&mut c)?;
    let mut c = Cursor::new(c.b.get(start..start + len)?, at.wrapping_add(start));
    let id_at = c.addr();
    let id = c.u32()? as usize;
    if id == 0 {
        return None; // a CIE
    }
    let cie = parse_cie(segs, id_at.wrapping_sub(id))?;
    let begin = c.pointer(cie.fde_enc, 0)?;
    let range = c.pointer(cie.fde_enc & 0x0f, 0)?;
    let end = begin.wrapping_add(range);
    if let Some(pc) = pc
        && !(pc >= begin && pc < end)
    {
        return None;
    }
    if cie.has_aug_data {
        let n = c.uleb()? as usize;
        c.skip(n)?;
    }
    let instr = (c.addr(), c.b.len().checked_sub(c.pos)?);
    Some((cie, begin, end, instr))
}

/// The FDE address for `pc`, from the header's sorted table (or a scan of `.eh_frame`).
pub fn find_fde(segs: &Segments, hdr: usize, pc: usize) -> Option<usize> {
    let mut c = Cursor::new(segs.from(hdr)?, hdr);
    let version = c.u8()?;
    let (frame_enc, count_enc, table_enc) = (c.u8()?, c.u8()?, c.u8()?);
    if version != 1 {
        return None;
    }
    let eh_frame = c.pointer(frame_enc, hdr)?;
    let count = if count_enc == 0xff {
        None
    } else {
        c.pointer(count_enc, hdr)
    };
    match count {
        // datarel sdata4 pairs, the only table encoding linkers write: binary search.
        Some(n) if table_enc == 0x3b => {
            let table = c.b.get(c.pos..c.pos.checked_add(n.checked_mul(8)?)?)?;
            let key = |i: usize| -> Option<(usize, usize)> {
                let e = table.get(i * 8..i * 8 + 8)?;
                let loc = i32::from_le_bytes([e[0], e[1], e[2], e[3]]) as isize as usize;
                let fde = i32::from_le_bytes([e[4], e[5], e[6], e[7]]) as isize as usize;
                Some((hdr.wrapping_add(loc), hdr.wrapping_add(fde)))
            };
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if key(mid)?.0 <= pc {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Some(key(lo.checked_sub(1)?)?.1)
        }
        _ => scan(segs, eh_frame, pc),
    }
}

/// Linear search of `.eh_frame` from its start to the terminator or the segment's end.
fn scan(segs: &Segments, eh_frame: usize, pc: usize) -> Option<usize> {
    let b = segs.from(eh_frame)?;
    let mut c = Cursor::new(b, eh_frame);
    for _ in 0..MAX_SCAN {
        let at = c.addr();
        let (start, _) = entry(&mut c)?;
        let id = u32::from_le_bytes(b.get(start..start + 4)?.try_into().ok()?);
        if id != 0 && parse_fde(segs, at, Some(pc)).is_some() {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::module;

    #[inline(never)]
    fn probe_fn(x: usize) -> usize {
        core::hint::black_box(x).wrapping_mul(3)
    }

    #[test]
    fn own_eh_frame_hdr_table_is_sorted_and_every_fde_parses() {
        let f = probe_fn as fn(usize) -> usize as usize;
        let m = module::find(f, false).unwrap();
        let segs = Segments::of(&m);
        let mut c = Cursor::new(segs.from(m.eh_hdr).unwrap(), m.eh_hdr);
        assert_eq!(c.u8(), Some(1), "version");
        let (fe, ce, te) = (c.u8().unwrap(), c.u8().unwrap(), c.u8().unwrap());
        assert_eq!(te, 0x3b, "datarel sdata4 table");
        let eh_frame = c.pointer(fe, m.eh_hdr).unwrap();
        let n = c.pointer(ce, m.eh_hdr).unwrap();
        assert!(n > 100, "{n} FDEs");
        let mut prev = 0;
        for _ in 0..n {
            let loc = m
                .eh_hdr
                .wrapping_add(c.u32().unwrap() as i32 as isize as usize);
            let fde = m
                .eh_hdr
                .wrapping_add(c.u32().unwrap() as i32 as isize as usize);
            assert!(loc >= prev);
            prev = loc;
            let (_, begin, end, _) = parse_fde(&segs, fde, None).expect("FDE parses");
            assert_eq!(begin, loc);
            assert!(end > begin);
            assert_eq!(find_fde(&segs, m.eh_hdr, begin), Some(fde));
        }
        // The linear scan finds the same FDE as the table.
        assert_eq!(scan(&segs, eh_frame, f), find_fde(&segs, m.eh_hdr, f));
    }
}
