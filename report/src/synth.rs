//! `gen`: writes a synthetic log for benchmarks (hidden subcommand).
//!
//! A mix of malloc/calloc/realloc/free from 64 call sites in 4 threads over a pool of at
//! most 20000 live blocks, with log-uniform sizes; a few blocks are never freed.

use std::io::Write;

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
    const H: &[u8; 16] = b"0123456789abcdef";
    o.extend_from_slice(b"0x");
    let digits = if v == 0 {
        1
    } else {
        (64 - v.leading_zeros()).div_ceil(4)
    };
    for k in (0..digits).rev() {
        o.push(H[((v >> (k * 4)) & 15) as usize]);
    }
}

pub fn generate(path: &str, events: u64, seed: u64) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(
        w,
        "# ft_malloc log v1\n# program /usr/bin/synthetic\n# pid 4242\n# ppid 1\n# page_size 4096\n# start_ns 1000000000\n# debug log={path}"
    )?;
    let exe = 0x55d0_c000_0000u64;
    writeln!(
        w,
        "M 0x{exe:x} /usr/bin/synthetic\nM 0x7f3a10000000 /usr/lib/x86_64-linux-gnu/libc.so.6"
    )?;
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let sites: Vec<u64> = (0..64).map(|i| exe + 0x1100 + i * 0x37).collect();
    let mut live: Vec<(u64, u64)> = Vec::with_capacity(20000);
    let mut next_addr = 0x7f3a_2000_0000u64;
    let mut t = 0u64;
    let mut o: Vec<u8> = Vec::with_capacity(1 << 16);
    for seq in 1..=events {
        t += 50 + rng.below(200);
        let tid = 4242 + rng.below(4);
        let r = rng.below(100);
        let (op, inp, out, size): (&str, u64, u64, u64);
        let want_free = live.len() >= 20000 || (!live.is_empty() && r < 46);
        if want_free {
            let i = rng.below(live.len() as u64) as usize;
            let (a, s) = live.swap_remove(i);
            if r < 5 && rng.below(2) == 0 {
                let ns = 1 + (1u64 << rng.below(12)) + rng.below(64);
                next_addr += (ns + 15) & !15;
                let na = next_addr;
                live.push((na, ns));
                (op, inp, out, size) = ("realloc", a, na, ns);
            } else {
                (op, inp, out, size) = ("free", a, 0, s);
            }
        } else {
            let s = (1u64 << rng.below(14)) + rng.below(100);
            next_addr += (s + 15) & !15;
            let a = next_addr;
            // 1 in 1000 allocations is never freed (kept out of the pool).
            if rng.below(1000) != 0 {
                live.push((a, s));
            }
            (op, inp, out, size) = (if r < 90 { "malloc" } else { "calloc" }, 0, a, s);
        }
        o.extend_from_slice(b"E ");
        put_dec(&mut o, seq);
        o.push(b' ');
        put_dec(&mut o, t);
        o.push(b' ');
        put_dec(&mut o, tid);
        o.push(b' ');
        o.extend_from_slice(op.as_bytes());
        o.push(b' ');
        put_hex(&mut o, inp);
        o.push(b' ');
        put_hex(&mut o, out);
        o.push(b' ');
        put_dec(&mut o, size);
        o.extend_from_slice(b" 0 ");
        put_hex(&mut o, sites[rng.below(sites.len() as u64) as usize]);
        o.push(b'\n');
        if o.len() > (1 << 16) - 256 {
            w.write_all(&o)?;
            o.clear();
        }
    }
    w.write_all(&o)?;
    w.flush()
}
