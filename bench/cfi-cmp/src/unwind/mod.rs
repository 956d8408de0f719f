//! The library's unwinder files, included by path.
#[path = "../../../../src/unwind/cfi.rs"]
pub mod cfi;
#[path = "../../../../src/unwind/fde.rs"]
pub mod fde;
#[path = "../../../../src/unwind/module.rs"]
pub mod module;
#[path = "../../../../src/unwind/reader.rs"]
pub mod reader;
#[path = "../../../../src/unwind/symbol.rs"]
pub mod symbol;
