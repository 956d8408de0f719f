//! Row of an address by the library's CFI reader and by gimli, for examples/bench.rs and for
//! the code-size comparison (cdylib built with `nostd` and one of `mine`/`gimli`).
#![cfg_attr(feature = "nostd", no_std)]
#![allow(dead_code)]
pub mod unwind;
#[cfg(feature = "mine")]
use unwind::cfi;
#[cfg(any(feature = "mine", feature = "gimli"))]
use unwind::module;

/// (cfa register, cfa offset, ra offset) of the row at pc, by the project's reader.
#[cfg(feature = "mine")]
#[inline(never)]
pub fn row_mine(pc: usize) -> Option<(u16, i64, i64)> {
    let m = module::find(pc, false)?;
    let segs = module::Segments::of(&m);
    let row = cfi::row_at(&m, &segs, pc)?;
    let (r, o) = match row.cfa {
        cfi::Cfa::RegOff(r, o) => (r as u16, o as i64),
        _ => (99, 0),
    };
    let ra = match row.regs[cfi::RA] {
        cfi::Rule::Offset(o) => o as i64,
        _ => 0,
    };
    Some((r, o, ra))
}

#[cfg(feature = "gimli")]
mod g {
    use gimli::{ReaderOffset, Register, RegisterRule, UnwindContextStorage, UnwindTableRow};
    pub struct StoreOnStack;
    impl<T: ReaderOffset> UnwindContextStorage<T> for StoreOnStack {
        type Rules = [(Register, RegisterRule<T>); 32];
        type Stack = [UnwindTableRow<T, Self>; 4];
    }
}

/// The same by gimli's no-alloc reader (read-core, context on the stack).
#[cfg(feature = "gimli")]
#[inline(never)]
pub fn row_gimli(pc: usize) -> Option<(u16, i64, i64)> {
    use gimli::{
        BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, LittleEndian, RegisterRule,
        UnwindContext, UnwindSection,
    };
    let m = module::find(pc, false)?;
    let segs = module::Segments::of(&m);
    let hdr_bytes = segs.from(m.eh_hdr)?;
    let bases = BaseAddresses::default().set_eh_frame_hdr(m.eh_hdr as u64);
    let hdr = EhFrameHdr::new(hdr_bytes, LittleEndian)
        .parse(&bases, 8)
        .ok()?;
    let eh_frame_ptr = match hdr.eh_frame_ptr() {
        gimli::Pointer::Direct(a) => a as usize,
        _ => return None,
    };
    let eh = segs.from(eh_frame_ptr)?;
    let bases = bases.set_eh_frame(eh_frame_ptr as u64);
    let eh_frame = EhFrame::new(eh, LittleEndian);
    let table = hdr.table()?;
    let mut ctx = UnwindContext::<usize, g::StoreOnStack>::new_in();
    let row = table
        .unwind_info_for_address(
            &eh_frame,
            &bases,
            &mut ctx,
            pc as u64,
            EhFrame::cie_from_offset,
        )
        .ok()?;
    let (r, o) = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => (register.0, *offset),
        _ => (99, 0),
    };
    let ra = match row.register(gimli::X86_64::RA) {
        Some(RegisterRule::Offset(o)) => o,
        _ => 0,
    };
    let _: Option<EndianSlice<LittleEndian>> = None;
    Some((r, o, ra))
}

#[cfg(feature = "nostd")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(all(feature = "nostd", feature = "mine"))]
#[unsafe(no_mangle)]
pub extern "C" fn cmp_row(pc: usize) -> i64 {
    row_mine(pc).map(|r| r.1).unwrap_or(-1)
}
#[cfg(all(feature = "nostd", feature = "gimli"))]
#[unsafe(no_mangle)]
pub extern "C" fn cmp_row(pc: usize) -> i64 {
    row_gimli(pc).map(|r| r.1).unwrap_or(-1)
}
#[cfg(all(feature = "nostd", not(any(feature = "gimli", feature = "mine"))))]
#[unsafe(no_mangle)]
pub extern "C" fn cmp_row(pc: usize) -> i64 {
    pc as i64
}
