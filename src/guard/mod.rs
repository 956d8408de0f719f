//! Guard pages: `MALLOC_DEBUG=guard` (or `guard=below`, `guard=exact`, `sample=N`) gives an
//! allocation a mapping of its own whose last byte touches a PROT_NONE page (or whose first
//! byte follows one), so an overflow faults at the faulting instruction (the SIGSEGV explainer
//! says which block). The gap left by 16-byte alignment is closed with canary bytes, checked
//! on free.
//!
//! Freed guarded blocks become PROT_NONE, give their pages back (or lend them to the next big
//! guarded block), and stay mapped in a bounded FIFO (address-space quarantine), so a use after
//! free faults too.
//!
//! - `block`: a guarded block's life (making, resizing, retiring, releasing) and `wants`;
//! - `layout`: its alignment, guard size, data length and descriptor;
//! - `pool`: slot pools for blocks of up to `POOL_MAX_PAGES` data pages; `slots`: how a slot
//!   is opened and closed (guard markers or mprotect);
//! - `bank`: pages of freed big blocks kept for the next ones;
//! - `ring`: the address-space quarantine;
//! - `budget`: the mapping and page budgets;
//! - `hooks`: what the heap above registers at start-up.
//!
//! The pools and the bank are plain data kept under the `LARGE` lock (`large::guarded`).

pub mod bank;
pub mod block;
pub mod budget;
pub mod hooks;
pub mod layout;
pub mod pool;
pub mod ring;
pub mod slots;

#[cfg(test)]
mod tests;

pub use bank::{bankable, put as bank_put};
pub use block::{allocate, init, is_guarded, release, release_all, resize, retire, wants};
pub use hooks::set_hooks;
pub use layout::pooled;
pub use ring::{lock_forever, range as ring_range, reset, unlock_forever};
pub use slots::close_slot;
