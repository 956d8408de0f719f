//! Guard pages (MALLOC_DEBUG=guard, sample=N): placeholder until the guard-pages work lands.
//! `wants` says whether an allocation takes the guarded path; with guards off it is false.

use crate::block::Op;
use crate::heap::Info;

#[inline]
pub fn wants(_size: usize, _align: usize) -> bool {
    false
}

pub fn allocate(_size: usize, _align: usize, _op: Op, _caller: usize) -> Option<usize> {
    None
}

#[inline]
pub fn is_guarded(_info: &Info) -> bool {
    false
}

pub fn init(_c: &crate::config::Config) {}
pub fn install_handler() {}
