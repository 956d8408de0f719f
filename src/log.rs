//! Allocation log (tracing): placeholder until the tracing work lands.

use crate::block::Op;
use crate::config::Config;

pub fn init(_c: &Config) {}

#[inline]
pub fn event(_op: Op, _inp: usize, _out: usize, _size: usize, _align: usize, _caller: usize) {}

/// Prints the events of the in-memory ring that touched the block at `p` (reports).
pub fn report_history(_p: usize) {}
pub fn block_history(_p: usize, _fd: i32) {}
pub fn dump_recent(_fd: i32, _n: usize) {}
pub fn lock_for_fork() {}
pub fn unlock_after_fork() {}
pub fn reset_in_child() {}
pub fn flush_at_exit() {}
pub fn close_at_exit() {}
