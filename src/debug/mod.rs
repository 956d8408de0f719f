//! The debugging policy under the heap: how a block is laid out with debugging on (`layout`),
//! how a new or resized block is dressed (`dress`: canaries, fill, zeroing), how a block is
//! verified (`verify`), the canary and fill bytes (`canary`), the quarantine of freed blocks
//! (`quarantine`), which hands the blocks it evicts back to the heap, and which family
//! mismatches a program's own operator new or delete explains (`wrappers`).
//!
//! Nothing here takes a heap lock or calls the heap: the heap decides when to dress, verify,
//! quarantine and release, and this module says how.

pub mod canary;
pub mod dress;
pub mod layout;
pub mod quarantine;
pub mod verify;
pub mod wrappers;

pub use layout::{LARGE_FILL_MAX, LAYOUT, Layout};
