//! errno: reading, setting, keeping it across our own calls (`ErrnoGuard`), and the name and
//! text of an error number (`strerrorname_np`/`strerrordesc_np`, which neither translate nor
//! allocate).

use core::ffi::{c_char, c_int};

unsafe extern "C" {
    /// glibc 2.32: the errno's name (`ENOENT`), or NULL; neither translates nor allocates.
    fn strerrorname_np(e: c_int) -> *const c_char;
    /// glibc 2.32: the errno's description in English, or NULL; neither translates nor allocates.
    fn strerrordesc_np(e: c_int) -> *const c_char;
}

fn static_c_str(p: *const c_char) -> Option<&'static [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: glibc returns pointers to NUL-terminated strings in its read-only tables.
    unsafe { Some(core::ffi::CStr::from_ptr(p).to_bytes()) }
}

/// `ENOENT` for 2; `E?` for an unknown number.
pub fn errno_name(e: c_int) -> &'static [u8] {
    // SAFETY: no preconditions; returns a static string or NULL.
    static_c_str(unsafe { strerrorname_np(e) }).unwrap_or(b"E?")
}

/// `No such file or directory` for 2; `unknown error` for an unknown number.
pub fn errno_desc(e: c_int) -> &'static [u8] {
    // SAFETY: no preconditions; returns a static string or NULL.
    static_c_str(unsafe { strerrordesc_np(e) }).unwrap_or(b"unknown error")
}

#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub fn set_errno(e: c_int) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = e };
}

/// errno as the program left it, put back once an allocation succeeded: the system calls made on
/// its way (an in-place mremap the kernel refused, a zone size it refused before a smaller one)
/// must not show, as with glibc; a failure keeps its own errno (ENOMEM).
pub struct KeptErrno(c_int);

impl KeptErrno {
    #[inline]
    pub fn new() -> Self {
        KeptErrno(errno())
    }

    /// Puts the program's errno back if the call succeeded (`ok`).
    #[inline]
    pub fn restore_if(self, ok: bool) {
        if ok {
            set_errno(self.0);
        }
    }
}

impl Default for KeptErrno {
    fn default() -> Self {
        Self::new()
    }
}

/// Restores errno when dropped (diagnostics must not change what the program sees).
pub struct ErrnoGuard(c_int);

impl ErrnoGuard {
    pub fn new() -> Self {
        ErrnoGuard(errno())
    }
}

impl Default for ErrnoGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}
