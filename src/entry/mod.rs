//! The exported C ABI, the one place where the library's `#[no_mangle]` symbols live: the
//! malloc family (`c`), glibc's extras and `__register_atfork` (`glibc`), the C++ operators
//! (`cxx`), the dump functions (`dump`) and the interposed signal functions (`signal`).
//!
//! Each allocator export is a naked trampoline that copies its return address (the caller in
//! the program) into the next argument register, and the caller's stack and frame pointers
//! (`site::At`) into the two after it, then jumps to the `_impl` function: every event knows its
//! call site at no cost, and a whole stack is unwound from the caller's own frame. The impls are thin: validate, `lifecycle::ensure()`,
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
    (aarch64: $a:ident) => {
        "x1"
    };
    (aarch64: $a:ident $b:ident) => {
        "x2"
    };
    (aarch64: $a:ident $b:ident $c:ident) => {
        "x3"
    };
}

/// The register after the caller's: the caller's stack pointer (`site::At::sp`).
macro_rules! sp_register {
    (x86_64: $a:ident) => {
        "rdx"
    };
    (x86_64: $a:ident $b:ident) => {
        "rcx"
    };
    (x86_64: $a:ident $b:ident $c:ident) => {
        "r8"
    };
    (aarch64: $a:ident) => {
        "x2"
    };
    (aarch64: $a:ident $b:ident) => {
        "x3"
    };
    (aarch64: $a:ident $b:ident $c:ident) => {
        "x4"
    };
}

/// The register after that: the caller's frame pointer (`site::At::fp`).
macro_rules! fp_register {
    (x86_64: $a:ident) => {
        "rcx"
    };
    (x86_64: $a:ident $b:ident) => {
        "r8"
    };
    (x86_64: $a:ident $b:ident $c:ident) => {
        "r9"
    };
    (aarch64: $a:ident) => {
        "x3"
    };
    (aarch64: $a:ident $b:ident) => {
        "x4"
    };
    (aarch64: $a:ident $b:ident $c:ident) => {
        "x5"
    };
}

/// `export!(name(args) -> ret => impl_fn)`: a naked export that passes its return address to
/// `impl_fn` as one argument more (in the register `caller_register!` derives from the
/// argument list), then the caller's frame (`site::At`: its stack pointer once the call
/// returns, and its frame pointer, which is callee-saved and so still the caller's here) as a
/// two-register struct, and jumps there. At most three arguments: six registers in all.
macro_rules! export {
    ($name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => $imp:ident) => {
        #[unsafe(link_section = "ft_hot")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// # Safety
        /// The C contract of the function of the same name.
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            core::arch::naked_asm!(
                concat!("mov ", caller_register!(x86_64: $($arg)*), ", qword ptr [rsp]"),
                concat!("lea ", sp_register!(x86_64: $($arg)*), ", [rsp + 8]"),
                concat!("mov ", fp_register!(x86_64: $($arg)*), ", rbp"),
                "jmp {f}",
                f = sym $imp
            );
            #[cfg(target_arch = "aarch64")]
            core::arch::naked_asm!(
                concat!("mov ", caller_register!(aarch64: $($arg)*), ", x30"),
                concat!("mov ", sp_register!(aarch64: $($arg)*), ", sp"),
                concat!("mov ", fp_register!(aarch64: $($arg)*), ", x29"),
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

// A no_std cdylib built without unwinding still references `rust_eh_personality` (the core
// library's unwind tables name it). It is defined here hidden, never exported: a
// Rust library that exports its own (rustc's driver does) binds its unwind tables to the first
// definition in the process, and a preloaded one would take over every panic of the program
// ("failed to initiate panic"). Ours answers "no handler in this frame, go on unwinding"
// (_URC_CONTINUE_UNWIND).
macro_rules! hidden_personality {
    ($continue_unwind:literal) => {
        core::arch::global_asm!(
            ".pushsection .text.rust_eh_personality,\"ax\",@progbits",
            ".globl rust_eh_personality",
            ".hidden rust_eh_personality",
            ".type rust_eh_personality,@function",
            "rust_eh_personality:",
            $continue_unwind,
            "ret",
            ".size rust_eh_personality, . - rust_eh_personality",
            ".popsection",
        );
    };
}
#[cfg(target_arch = "x86_64")]
hidden_personality!("mov eax, 8");
#[cfg(target_arch = "aarch64")]
hidden_personality!("mov w0, #8");
