//! The exported C ABI, the one place where the library's `#[no_mangle]` symbols live: the
//! malloc family (`c`), glibc's extras and `__register_atfork` (`glibc`), the C++ operators
//! (`cxx`), the dump functions (`dump`) and the interposed signal functions (`signal`).
//!
//! Each allocator export is a naked trampoline that copies its return address (the caller in
//! the program) into the next argument register and jumps to the `_impl` function, so every
//! event knows its call site at no cost. The impls are thin: validate, `lifecycle::ensure()`,
//! forward to `heap`, log. operator new jumps instead to an assembly routine that a C++ exception
//! can cross (see `cxx`), and `__register_atfork` puts our fork handlers first.

/// The register that receives the caller after `$n` arguments (the next argument register):
/// `caller_register!(x86_64: a b)` is `"rdx"`.
macro_rules! caller_register {
    (x86_64: $a:ident) => {
        "rsi"
    };
    (x86_64: $a:ident $b:ident) => {
        "rdx"
    };
    (x86_64: $a:ident $b:ident $c:ident) => {
        "rcx"
    };
    (x86_64: $a:ident $b:ident $c:ident $d:ident) => {
        "r8"
    };
    (aarch64: $a:ident) => {
        "x1"
    };
    (aarch64: $a:ident $b:ident) => {
        "x2"
    };
    (aarch64: $a:ident $b:ident $c:ident) => {
        "x3"
    };
    (aarch64: $a:ident $b:ident $c:ident $d:ident) => {
        "x4"
    };
}

/// `export!(name(args) -> ret => impl_fn)`: a naked export that passes its return address to
/// `impl_fn` as one argument more (in the register `caller_register!` derives from the
/// argument list) and jumps there.
macro_rules! export {
    ($name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => $imp:ident) => {
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// # Safety
        /// The C contract of the function of the same name.
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            core::arch::naked_asm!(
                concat!("mov ", caller_register!(x86_64: $($arg)*), ", qword ptr [rsp]"),
                "jmp {f}",
                f = sym $imp
            );
            #[cfg(target_arch = "aarch64")]
            core::arch::naked_asm!(
                concat!("mov ", caller_register!(aarch64: $($arg)*), ", x30"),
                "b {f}",
                f = sym $imp
            );
        }
    };
}

mod c;
mod cxx;
mod dump;
mod glibc;
mod signal;

/// A no_std cdylib built without unwinding still references this symbol in dev builds.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
