//! Rows of about 4300 addresses (two thirds into each function of libc and of this binary),
//! by the library's reader and by gimli: they must agree; then ns per row for each (a row from
//! scratch, as the unwinder computes it the first time it sees a return address).
use std::time::Instant;

/// One address inside each function of the object holding `f`, from its .eh_frame_hdr table.
fn pcs_of(f: usize) -> Vec<usize> {
    let m = cmp::unwind::module::find(f, false).unwrap();
    let hdr = m.eh_hdr;
    // SAFETY: the header of a loaded object: version, encodings, eh_frame_ptr (sdata4), count
    // (udata4), then (sdata4, sdata4) pairs, as every linker writes it.
    unsafe {
        let count = *((hdr + 8) as *const u32) as usize;
        let table = hdr + 12;
        let mut locs: Vec<usize> = (0..count)
            .map(|i| hdr.wrapping_add(*((table + i * 8) as *const i32) as isize as usize))
            .collect();
        locs.push(m.end);
        locs.windows(2)
            .map(|w| w[0] + (w[1] - w[0]) * 2 / 3)
            .collect()
    }
}

fn main() {
    let getpid = libc::getpid as unsafe extern "C" fn() -> i32 as usize;
    let mut pcs = pcs_of(getpid);
    pcs.extend(pcs_of(main as fn() as usize));
    println!("{} addresses (libc + this binary)", pcs.len());
    let (mut agree, mut both_none, mut differ) = (0, 0, 0);
    for &pc in &pcs {
        match (cmp::row_mine(pc), cmp::row_gimli(pc)) {
            (Some(a), Some(b)) if a == b => agree += 1,
            (None, None) => both_none += 1,
            (a, b) => {
                differ += 1;
                if differ < 5 {
                    println!("differ at {pc:#x}: {a:?} {b:?}");
                }
            }
        }
    }
    println!("same row {agree}, no row for either {both_none}, different {differ}");
    for round in 0..3 {
        let t = Instant::now();
        let s: i64 = pcs
            .iter()
            .map(|&pc| cmp::row_mine(pc).map_or(0, |r| r.1))
            .sum();
        let a = t.elapsed().as_nanos() as f64 / pcs.len() as f64;
        let t = Instant::now();
        let s2: i64 = pcs
            .iter()
            .map(|&pc| cmp::row_gimli(pc).map_or(0, |r| r.1))
            .sum();
        let b = t.elapsed().as_nanos() as f64 / pcs.len() as f64;
        assert_eq!(s, s2);
        println!("round {round}: own reader {a:.0} ns/row, gimli {b:.0} ns/row");
    }
}
