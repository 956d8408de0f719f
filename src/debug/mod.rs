//! The debugging policy under the heap: how a block is laid out with debugging on (`layout`),
//! how a new or resized block is dressed (`dress`: canaries, fill, zeroing), how a block is
//! verified (`verify`), the canary and fill bytes (`canary`), and the quarantine of freed
//! blocks (`quarantine`), which hands the blocks it evicts back to the heap.
//!
//! Nothing here takes a heap lock or calls the heap: the heap decides when to dress, verify,
//! quarantine and release, and this module says how.

pub mod canary;
pub mod dress;
pub mod layout;
pub mod quarantine;
pub mod verify;

pub use layout::{LARGE_FILL_MAX, LAYOUT, Layout};
