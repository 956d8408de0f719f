//! `gen`: writes a synthetic log for benchmarks and tests (hidden subcommand).
//!
//! A mix of malloc/calloc/realloc/free from 256 call stacks (64 call sites) in 4 threads over a
//! pool of at most 20000 live blocks, with log-uniform sizes; a few blocks are never freed.
//!
//! The stack of each event is written in one of the log's three forms ([`Form`]); the events
//! are the same in all three for a given seed. The stacks are 2 to 16 frames deep, innermost
//! first: a quarter start with a frame in libc (a runtime frame before the site), stacks `j`
//! and `j + 64` share their site and differ in their callers, and all end in `main`. In the reference form, stacks
//! `j` with `j % 4 == 1` get their `S` record three events after the first event naming them
//! (as when another thread's chunk holds it), the others just before it.

use ft_format::Op;
use std::io::Write;

/// How the generated events name their stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// `<caller>`: the site alone (`stack=1`).
    Caller,
    /// `<caller>,<frame>...`: the whole stack in each event (older `backtrace=N`).
    List,
    /// `@<id>`, with an `S <id> <frames>` record per stack (`stack=N`).
    Ref,
}

/// Distinct stacks of a generated log.
const STACKS: u64 = 256;
const EXE: u64 = 0x55d0_c000_0000;
const LIBC: u64 = 0x7f3a_1000_0000;

/// The frames of stack `j`, innermost first.
pub fn stack(j: u64) -> Vec<u64> {
    let site = EXE + 0x1100 + (j % 64) * 0x37;
    let mut v = Vec::with_capacity(16);
    if j.is_multiple_of(4) {
        v.push(LIBC + 0x9a000 + (j % 8) * 0x10);
    }
    v.push(site);
    let depth = 2 + (j * 7) % 15;
    let mut k = 0;
    while (v.len() as u64) + 1 < depth {
        v.push(EXE + 0x5000 + ((j >> (k % 5)) % 32) * 0x40 + k * 8);
        k += 1;
    }
    // Every stack starts in main.
    v.push(EXE + 0x4010);
    v
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn put_dec(o: &mut Vec<u8>, mut v: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    o.extend_from_slice(&b[i..]);
}

fn put_hex(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(b"0x");
    put_bare_hex(o, v);
}

fn put_bare_hex(o: &mut Vec<u8>, v: u64) {
    const H: &[u8; 16] = b"0123456789abcdef";
    let digits = if v == 0 {
        1
    } else {
        (64 - v.leading_zeros()).div_ceil(4)
    };
    for k in (0..digits).rev() {
        o.push(H[((v >> (k * 4)) & 15) as usize]);
    }
}

fn put_frames(o: &mut Vec<u8>, frames: &[u64]) {
    for (i, &a) in frames.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        put_hex(o, a);
    }
}

/// The `S` record of stack `j`, whose id in the log is `j + 1` (as the library's, ids start at 1).
fn put_stack_record(o: &mut Vec<u8>, j: u64) {
    o.extend_from_slice(b"S ");
    put_dec(o, j + 1);
    o.push(b' ');
    put_frames(o, &stack(j));
    o.push(b'\n');
}

pub fn generate(path: &str, events: u64, seed: u64, form: Form) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(
        w,
        "{}\n# program /usr/bin/synthetic\n# pid 4242\n# ppid 1\n# page_size 4096\n# start_ns 1000000000\n# debug log={path}",
        ft_format::log::MAGIC
    )?;
    writeln!(
        w,
        "M 0x{EXE:x} /usr/bin/synthetic\nM 0x{LIBC:x} /usr/lib/x86_64-linux-gnu/libc.so.6"
    )?;
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let stacks: Vec<Vec<u64>> = (0..STACKS).map(stack).collect();
    let mut defined = vec![false; STACKS as usize];
    // (stack, seq after which its S record is written)
    let mut deferred: Vec<(u64, u64)> = Vec::new();
    let mut live: Vec<(u64, u64)> = Vec::with_capacity(20000);
    let mut next_addr = 0x7f3a_2000_0000u64;
    let mut t = 0u64;
    let mut o: Vec<u8> = Vec::with_capacity(1 << 16);
    for seq in 1..=events {
        t += 50 + rng.below(200);
        let tid = 4242 + rng.below(4);
        let r = rng.below(100);
        let (op, inp, out, size): (Op, u64, u64, u64);
        let want_free = live.len() >= 20000 || (!live.is_empty() && r < 46);
        if want_free {
            let i = rng.below(live.len() as u64) as usize;
            let (a, s) = live.swap_remove(i);
            if r < 5 && rng.below(2) == 0 {
                let ns = 1 + (1u64 << rng.below(12)) + rng.below(64);
                next_addr += (ns + 15) & !15;
                let na = next_addr;
                live.push((na, ns));
                (op, inp, out, size) = (Op::Realloc, a, na, ns);
            } else {
                (op, inp, out, size) = (Op::Free, a, 0, s);
            }
        } else {
            let s = (1u64 << rng.below(14)) + rng.below(100);
            next_addr += (s + 15) & !15;
            let a = next_addr;
            // 1 in 1000 allocations is never freed (kept out of the pool).
            if rng.below(1000) != 0 {
                live.push((a, s));
            }
            (op, inp, out, size) = (if r < 90 { Op::Malloc } else { Op::Calloc }, 0, a, s);
        }
        o.extend_from_slice(b"E ");
        put_dec(&mut o, seq);
        o.push(b' ');
        put_dec(&mut o, t / ft_format::log::T_UNIT_NS);
        o.push(b' ');
        if tid == 4242 {
            o.push(ft_format::log::MAIN_TID);
        } else {
            put_dec(&mut o, tid);
        }
        o.push(b' ');
        o.push(op.code());
        let (has_in, has_out) = op.pointers();
        for (has, p) in [(has_in, inp), (has_out, out)] {
            if has {
                o.push(b' ');
                put_bare_hex(&mut o, p);
            }
        }
        o.push(b' ');
        put_dec(&mut o, size);
        o.push(b' ');
        let j = rng.below(STACKS);
        let frames = &stacks[j as usize];
        match form {
            // The site: the first frame outside libc.
            Form::Caller => put_hex(&mut o, frames[usize::from(j.is_multiple_of(4))]),
            Form::List => put_frames(&mut o, frames),
            Form::Ref => {
                if !defined[j as usize] {
                    defined[j as usize] = true;
                    if j % 4 == 1 {
                        deferred.push((j, seq + 3));
                    } else {
                        // Written before the event: move it ahead of the `E ...` begun above.
                        let line = o.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
                        let event = o.split_off(line);
                        put_stack_record(&mut o, j);
                        o.extend_from_slice(&event);
                    }
                }
                o.push(b'@');
                put_dec(&mut o, j + 1);
            }
        }
        o.push(b'\n');
        while let Some(k) = deferred.iter().position(|&(_, after)| after <= seq) {
            let (j, _) = deferred.swap_remove(k);
            put_stack_record(&mut o, j);
        }
        if o.len() > (1 << 16) - 256 {
            w.write_all(&o)?;
            o.clear();
        }
    }
    for (j, _) in deferred {
        put_stack_record(&mut o, j);
    }
    w.write_all(&o)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_distinct_and_share_sites() {
        let all: Vec<Vec<u64>> = (0..STACKS).map(stack).collect();
        for (i, a) in all.iter().enumerate() {
            assert!((2..=16).contains(&a.len()), "{i}: {a:x?}");
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Same first frame, other callers.
        assert_eq!(stack(1)[0], stack(65)[0]);
        assert_ne!(stack(1), stack(65));
        assert!(all.iter().any(|s| s.len() == 16));
    }
}
