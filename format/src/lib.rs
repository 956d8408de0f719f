//! What ft_malloc (the preloaded library) and the programs that read its output (the log
//! reader `ft-malloc-report`, the launcher `scripts/ft-malloc`) must agree on, in one place:
//!
//! - the operations of the malloc family: their numbering, names and count ([`Op`]);
//! - the size histogram: the bucket of a requested size and the range of a bucket ([`bucket`]);
//! - the record tags of the text log (stack records and references included) and of its
//!   mtrace variant ([`log`], [`mtrace`], docs/LOGFORMAT.md);
//! - which modules are the C/C++ runtime, skipped when a report names a stack's site
//!   ([`runtime`]);
//! - the announce file through which the library tells the launcher which processes it was
//!   loaded into and its verdict at exit ([`announce`]).
//!
//! `no_std`, no dependencies, nothing allocates: the library links it as it is. A change here
//! changes both sides at once; a reader that matches on [`Op`] without a wildcard stops
//! compiling when an operation is added.
#![cfg_attr(not(test), no_std)]

/// An entry point of the malloc family: stored as a block's origin, counted per call, named in
/// log events. The numbering is the library's (`Op as u8` indexes its per-call counters).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Op {
    Malloc = 0,
    Calloc,
    Realloc,
    Reallocarray,
    Memalign,
    PosixMemalign,
    AlignedAlloc,
    Valloc,
    Pvalloc,
    New,
    NewArr,
    Free,
    Delete,
    DeleteArr,
    /// `malloc_usable_size`: counted by the library, never written to a log.
    UsableSize,
}

/// Number of operations (`Op as usize < OP_COUNT`).
pub const OP_COUNT: usize = 15;

/// Operation names, indexed by `Op as usize`: the `op` field of a log's `E` record.
pub const OP_NAMES: [&str; OP_COUNT] = [
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "memalign",
    "posix_memalign",
    "aligned_alloc",
    "valloc",
    "pvalloc",
    "new",
    "new[]",
    "free",
    "delete",
    "delete[]",
    "malloc_usable_size",
];

/// One-letter codes of the operations, indexed by `Op as usize`: the `op` field of a log's
/// `E` record from format v2 on (v1 wrote [`OP_NAMES`]).
pub const OP_CODES: [u8; OP_COUNT] = *b"mcrRapAvPnNfdDu";

/// Longest name in [`OP_NAMES`] (the library pads names to a fixed block).
pub const OP_NAME_MAX: usize = 18;

const _: () = {
    let mut i = 0;
    while i < OP_COUNT {
        assert!(OP_NAMES[i].len() <= OP_NAME_MAX);
        assert!(Op::ALL[i] as usize == i);
        let mut j = 0;
        while j < i {
            assert!(OP_CODES[i] != OP_CODES[j]);
            j += 1;
        }
        i += 1;
    }
};

impl Op {
    /// Every operation, in numbering order.
    pub const ALL: [Op; OP_COUNT] = [
        Op::Malloc,
        Op::Calloc,
        Op::Realloc,
        Op::Reallocarray,
        Op::Memalign,
        Op::PosixMemalign,
        Op::AlignedAlloc,
        Op::Valloc,
        Op::Pvalloc,
        Op::New,
        Op::NewArr,
        Op::Free,
        Op::Delete,
        Op::DeleteArr,
        Op::UsableSize,
    ];

    /// The name in the log (`malloc`, `new[]`, ...).
    pub const fn name(self) -> &'static str {
        OP_NAMES[self as usize]
    }

    /// The name as a C++ programmer reads it in a report (`operator new`).
    pub const fn call_name(self) -> &'static str {
        match self {
            Op::New => "operator new",
            Op::NewArr => "operator new[]",
            Op::Delete => "operator delete",
            Op::DeleteArr => "operator delete[]",
            _ => self.name(),
        }
    }

    /// The operation numbered `v`, if any.
    pub const fn from_u8(v: u8) -> Option<Op> {
        if (v as usize) < OP_COUNT {
            Some(Op::ALL[v as usize])
        } else {
            None
        }
    }

    /// The operation named `b` in a log record, if any. Only the logged operations are
    /// recognised (`malloc_usable_size` is never logged).
    #[inline]
    pub fn from_name(b: &[u8]) -> Option<Op> {
        // Dispatch on the length, then compare with constants of that length (a couple of
        // integer compares, no memcmp call): the reader calls this once per event.
        Some(match b.len() {
            3 if b == b"new" => Op::New,
            4 if b == b"free" => Op::Free,
            5 if b == b"new[]" => Op::NewArr,
            6 => match b {
                b"malloc" => Op::Malloc,
                b"calloc" => Op::Calloc,
                b"valloc" => Op::Valloc,
                b"delete" => Op::Delete,
                _ => return None,
            },
            7 => match b {
                b"realloc" => Op::Realloc,
                b"pvalloc" => Op::Pvalloc,
                _ => return None,
            },
            8 => match b {
                b"memalign" => Op::Memalign,
                b"delete[]" => Op::DeleteArr,
                _ => return None,
            },
            12 if b == b"reallocarray" => Op::Reallocarray,
            13 if b == b"aligned_alloc" => Op::AlignedAlloc,
            14 if b == b"posix_memalign" => Op::PosixMemalign,
            _ => return None,
        })
    }

    /// The one-letter code in a v2 log record.
    pub const fn code(self) -> u8 {
        OP_CODES[self as usize]
    }

    /// The operation of one-letter code `c` in a v2 log record, if any (only the logged
    /// operations).
    #[inline]
    pub fn from_code(c: u8) -> Option<Op> {
        let i = OP_CODES.iter().position(|&k| k == c)?;
        Some(Op::ALL[i]).filter(|op| op.logged())
    }

    /// Which pointers a v2 `E` record of this operation carries: `(in, out)`. A free names
    /// the block it ends, an allocation the block it returns, a realloc both.
    pub const fn pointers(self) -> (bool, bool) {
        (self.is_free() || self.is_realloc(), !self.is_free())
    }

    /// Written to the log as an `E` record (every operation but `malloc_usable_size`).
    pub const fn logged(self) -> bool {
        !matches!(self, Op::UsableSize)
    }

    /// free, delete, delete[]: end the block passed in.
    pub const fn is_free(self) -> bool {
        matches!(self, Op::Free | Op::Delete | Op::DeleteArr)
    }

    /// realloc, reallocarray: end the block passed in (if any) and return another.
    pub const fn is_realloc(self) -> bool {
        matches!(self, Op::Realloc | Op::Reallocarray)
    }

    /// Takes an alignment (the `align` field of its records is meaningful).
    pub const fn is_aligned(self) -> bool {
        matches!(
            self,
            Op::Memalign | Op::PosixMemalign | Op::AlignedAlloc | Op::Valloc | Op::Pvalloc
        )
    }

    /// operator new and new[]: a v2 `E` record has an `<align>` field only when the program
    /// asked for one (the aligned forms, `std::align_val_t`): it is never 0 and starts with a
    /// digit other than 0, where the field after it (`0x...` or `@...`) does not.
    pub const fn may_align(self) -> bool {
        matches!(self, Op::New | Op::NewArr)
    }

    /// Returns a new block (counted in the size histogram): every operation but the frees and
    /// `malloc_usable_size`.
    pub const fn allocates(self) -> bool {
        !self.is_free() && self.logged()
    }
}

// ------------------------------------------------------------------ size histogram

/// Buckets of the size histogram: 0 for size 0, `k` for sizes in `[2^(k-1), 2^k)`, the last
/// one open-ended.
pub const HIST_BUCKETS: usize = 48;

/// The histogram bucket of a requested size.
#[inline]
pub const fn bucket(size: u64) -> usize {
    let k = (u64::BITS - size.leading_zeros()) as usize;
    if k < HIST_BUCKETS {
        k
    } else {
        HIST_BUCKETS - 1
    }
}

/// The sizes of bucket `k`, both ends included (the last bucket ends at `u64::MAX`).
pub const fn bucket_range(k: usize) -> (u64, u64) {
    if k == 0 {
        (0, 0)
    } else if k >= HIST_BUCKETS - 1 {
        (1 << (HIST_BUCKETS - 2), u64::MAX)
    } else {
        (1 << (k - 1), (1 << k) - 1)
    }
}

// ------------------------------------------------------------------ the text log

/// The text log (docs/LOGFORMAT.md): one record per line, the first byte says which.
pub mod log {
    /// First line of every log this library writes.
    pub const MAGIC: &str = "# ft_malloc log v2";
    /// First line of a log of the first version (full op names, `0x` pointers, times in
    /// nanoseconds, every field on every record), which readers still read.
    pub const MAGIC_V1: &str = "# ft_malloc log v1";
    /// The start of [`MAGIC`] common to every version (`# ft_malloc log v3` would be a
    /// version this reader does not know).
    pub const MAGIC_PREFIX: &str = "# ft_malloc log v";
    /// `# key value`: a header line.
    pub const HEADER: u8 = b'#';
    /// `M <base> <path>`: a loaded module.
    pub const MODULE: u8 = b'M';
    /// An event. Format v2: `E <seq> <t_us> <tid> <op> <pointers> <size> [<align>] <where>`,
    /// where `<tid>` is [`MAIN_TID`] for the thread whose id is the process id, `<op>` a
    /// one-letter code ([`OP_CODES`]), `<pointers>` the pointer passed in and/or the one
    /// returned ([`Op::pointers`](super::Op::pointers)), lowercase hex without `0x` (`0`:
    /// NULL), and `<align>` present only for an operation that takes one
    /// ([`Op::is_aligned`](super::Op::is_aligned)), or for an aligned operator new
    /// ([`Op::may_align`](super::Op::may_align)). Format v1:
    /// `E <seq> <t_ns> <tid> <op> <in> <out> <size> <align> <where>`, op names, `0x` pointers.
    /// `<where>` is one of the three forms below (the last field of the record):
    /// - `<caller>`: one frame (`stack=1`, the default without debugging);
    /// - `<caller>,<frame>[,<frame>...]`: a frame list, innermost first (older logs,
    ///   `backtrace=N`);
    /// - `@<id>`: a reference to the stack that an [`STACK`] record of the same file defines
    ///   (`stack=N` with N > 1), written before or after this record.
    pub const EVENT: u8 = b'E';
    /// The `<tid>` of a v2 `E` record made by the thread whose id is the process id (the
    /// header's `pid`).
    pub const MAIN_TID: u8 = b'-';
    /// Nanoseconds per unit of a v2 `E` record's time (microseconds since `start_ns`).
    pub const T_UNIT_NS: u64 = 1000;
    /// `S <id> <frame>[,<frame>...]`: the frames of stack `<id>` (decimal, process-local),
    /// innermost first, each hex with `0x`; frame 0 is the return address into the code that
    /// called the allocator (the `<caller>` of the one-frame form), and no frame of the
    /// library itself is in it. Written once per log file, the first time the process logs an
    /// event with that stack; lines of different threads are in chunk order, so this record
    /// may come after `E` records naming the id: readers resolve ids at the end.
    pub const STACK: u8 = b'S';
    /// Fields of an `S` record after the tag.
    pub const STACK_FIELDS: usize = 2;
    /// First byte of the `<where>` field of an `E` record that names a stack by id:
    /// `@<id>`, the id decimal (a `u32`), as the `S` record writes it.
    pub const STACK_REF: u8 = b'@';
    /// Separates the frames of a frame list (`E` records of the list form, `S` records).
    pub const FRAME_SEP: u8 = b',';

    /// Header keys (`# key value`).
    pub mod key {
        pub const PROGRAM: &str = "program";
        pub const PID: &str = "pid";
        pub const PPID: &str = "ppid";
        pub const FORKED_FROM: &str = "forked_from";
        pub const PAGE_SIZE: &str = "page_size";
        pub const START_NS: &str = "start_ns";
        pub const DEBUG: &str = "debug";
    }
}

/// glibc's mtrace records, which the library writes with `log_format=mtrace` (glibc's
/// malloc/mtrace-impl.c; read by glibc's `mtrace` script).
pub mod mtrace {
    /// First line.
    pub const START: &str = "= Start";
    /// Last line (glibc writes it at muntrace, the library at exit).
    pub const END: &str = "= End";
    /// `@ <where> <record>`: the caller, then the record.
    pub const AT: u8 = b'@';
    /// `+ ADDR SIZE`: an allocation (`+ (nil) SIZE` when it failed).
    pub const ALLOC: u8 = b'+';
    /// `- ADDR`: a free.
    pub const FREE: u8 = b'-';
    /// `< OLD`: a realloc releases OLD ...
    pub const REALLOC_OLD: u8 = b'<';
    /// `> NEW SIZE`: ... and returns NEW.
    pub const REALLOC_NEW: u8 = b'>';
    /// `! OLD SIZE`: a failed realloc (OLD stays).
    pub const REALLOC_FAILED: u8 = b'!';
    /// How a failed allocation's address is written.
    pub const NIL: &str = "(nil)";
    /// The other tool that reads these logs.
    pub const READER: &str = "glibc's `mtrace PROGRAM LOG` (Debian package libc-devtools)";
}

// ------------------------------------------------------------------ runtime modules

/// Which modules are "runtime": the C and C++ runtimes, the loader and the Python interpreter
/// library, whose frames sit between the program and malloc (`strdup`, `operator new`,
/// `std::vector` growth, `PyMem_Malloc`). A report names the first frame of a stack outside
/// them as the site: the program's own line that asked for memory. The library's headlines and
/// the reader's must pick the same frame, so the rule lives here.
///
/// Pure functions of the path's last component; matching is exact on the stem (`libc.so.6`
/// and `libc-2.31.so` are libc, `libcrypto.so.3` and `libc-client.so` are not).
pub mod runtime {
    /// The runtime a module belongs to.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Runtime {
        Libc,
        Libstdcxx,
        LibgccS,
        Loader,
        Libm,
        Libpthread,
        Python,
    }

    /// The last component of a path.
    fn base(path: &[u8]) -> &[u8] {
        match path.iter().rposition(|&c| c == b'/') {
            Some(i) => &path[i + 1..],
            None => path,
        }
    }

    /// True when `name` is `stem` followed by `.so` or `-<digit>` (old glibc: `libc-2.31.so`).
    fn stem_is(name: &[u8], stem: &[u8]) -> bool {
        if name.len() < stem.len() || &name[..stem.len()] != stem {
            return false;
        }
        match &name[stem.len()..] {
            [b'.', b's', b'o', ..] => true,
            [b'-', d, ..] => d.is_ascii_digit(),
            _ => false,
        }
    }

    /// The runtime that `path` (a module path) is, or None for a module of the program.
    pub fn runtime(path: &[u8]) -> Option<Runtime> {
        let b = base(path);
        if stem_is(b, b"libc") {
            Some(Runtime::Libc)
        } else if stem_is(b, b"libstdc++") {
            Some(Runtime::Libstdcxx)
        } else if stem_is(b, b"libgcc_s") {
            Some(Runtime::LibgccS)
        } else if b.starts_with(b"ld-linux") || stem_is(b, b"ld") {
            Some(Runtime::Loader)
        } else if stem_is(b, b"libm") {
            Some(Runtime::Libm)
        } else if stem_is(b, b"libpthread") {
            Some(Runtime::Libpthread)
        } else if b.starts_with(b"libpython") {
            Some(Runtime::Python)
        } else {
            None
        }
    }

    /// True when frames of `path` are runtime frames.
    pub fn is_runtime(path: &[u8]) -> bool {
        runtime(path).is_some()
    }
}

// ------------------------------------------------------------------ the announce file

/// The announce file: how the library tells the launcher which processes it was loaded into
/// and, at exit, its verdict.
///
/// The launcher creates the file (first line [`MAGIC`]) and puts its absolute path in the
/// environment variable [`ENV`]. A process that loads the library, outside secure-execution
/// mode, appends one line at start, one in a forked child, and one at a normal exit. Each line
/// is one `write(2)` on a descriptor opened with `O_WRONLY|O_APPEND|O_CLOEXEC|O_NOFOLLOW`
/// (never `O_CREAT`) and closed right after, so lines of different processes never mix and no
/// descriptor stays open for the program to close or inherit. Fields are `key=value` tokens
/// separated by one space; paths escape the bytes `\`, space and every byte below 0x21 or
/// equal to 0x7f as `\xHH`.
///
/// ```text
/// # ft_malloc announce v1
/// start pid=4242 ppid=4200 debug=1 exe=/usr/bin/python3.11 parent=/usr/bin/bash
/// fork pid=4243 ppid=4242
/// exit pid=4243 errors=0 leak_check=on peak=1048576
/// exit pid=4242 errors=3 leak_check=on leaked=48/2 reachable=4096/1 peak=2097152
/// ```
///
/// - `start`: the library was initialised in this process image (after an `exec`, the same pid
///   starts again with its new `exe`). `debug` is 1 when `MALLOC_DEBUG` turned debugging on;
///   `parent` is the parent's executable as seen at start (empty when unreadable).
/// - `fork`: a child forked by a process that has the library (`fork(2)`; `vfork` and
///   `posix_spawn` children write nothing until they `exec`).
/// - `exit`: the process ended through `exit()` (not `_exit`, a signal or `abort`): `errors`
///   is the number of errors the library detected in this process (since the fork, for a
///   forked child), as its `ERROR SUMMARY` counts them; `leak_check` is `off` (not asked
///   for), `on` or `skipped` (asked for, but the heap stayed busy); `leaked` and `reachable`
///   are `bytes/blocks` of the leak check's unreachable and still-reachable blocks, when the
///   check has handed its totals over; `peak` is the peak of live bytes when debugging
///   tracked it; `bypassed` is the object whose own malloc took the program's allocations
///   ahead of the library's, when none came to the library (nothing was checked). Readers
///   ignore keys they do not know.
pub mod announce {
    /// The environment variable holding the announce file's absolute path.
    pub const ENV: &str = "FT_MALLOC_ANNOUNCE";
    /// First line of the file (written by the launcher).
    pub const MAGIC: &str = "# ft_malloc announce v1";
    pub const START: &str = "start";
    pub const FORK: &str = "fork";
    pub const EXIT: &str = "exit";
    /// Keys of the `key=value` fields.
    pub mod key {
        pub const PID: &str = "pid";
        pub const PPID: &str = "ppid";
        pub const DEBUG: &str = "debug";
        pub const EXE: &str = "exe";
        pub const PARENT: &str = "parent";
        pub const ERRORS: &str = "errors";
        pub const LEAK_CHECK: &str = "leak_check";
        pub const LEAKED: &str = "leaked";
        pub const REACHABLE: &str = "reachable";
        pub const PEAK: &str = "peak";
        pub const BYPASSED: &str = "bypassed";
    }
    /// Values of `leak_check`.
    pub const LEAK_CHECK_OFF: &str = "off";
    pub const LEAK_CHECK_ON: &str = "on";
    pub const LEAK_CHECK_SKIPPED: &str = "skipped";
    /// Longest line the library writes (paths are cut to fit).
    pub const MAX_LINE: usize = 1024;

    /// Whether byte `b` of a path is written as `\xHH`.
    pub const fn escaped(b: u8) -> bool {
        b <= b' ' || b == 0x7f || b == b'\\'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_u8(op as u8), Some(op));
            if op.logged() {
                assert_eq!(Op::from_name(op.name().as_bytes()), Some(op));
            } else {
                assert_eq!(Op::from_name(op.name().as_bytes()), None);
            }
        }
        assert_eq!(Op::from_u8(OP_COUNT as u8), None);
        assert_eq!(Op::from_name(b"mallocx"), None);
        assert_eq!(Op::from_name(b""), None);
        assert_eq!(OP_NAMES.iter().map(|n| n.len()).max(), Some(OP_NAME_MAX));
        for op in Op::ALL {
            let want = if op.logged() { Some(op) } else { None };
            assert_eq!(Op::from_code(op.code()), want);
        }
        assert_eq!(Op::from_code(b'x'), None);
        assert_eq!(Op::Free.pointers(), (true, false));
        assert_eq!(Op::Realloc.pointers(), (true, true));
        assert_eq!(Op::Memalign.pointers(), (false, true));
    }

    #[test]
    fn runtime_modules() {
        use runtime::{Runtime, is_runtime, runtime};
        let table: &[(&[u8], Option<Runtime>)] = &[
            (b"/lib/x86_64-linux-gnu/libc.so.6", Some(Runtime::Libc)),
            (b"/lib/x86_64-linux-gnu/libc-2.31.so", Some(Runtime::Libc)),
            (b"libc.so.6", Some(Runtime::Libc)),
            (b"/usr/lib/libc.so", Some(Runtime::Libc)),
            (
                b"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
                Some(Runtime::Libstdcxx),
            ),
            (
                b"/lib/x86_64-linux-gnu/libgcc_s.so.1",
                Some(Runtime::LibgccS),
            ),
            (b"/lib64/ld-linux-x86-64.so.2", Some(Runtime::Loader)),
            (b"/lib/x86_64-linux-gnu/ld-2.31.so", Some(Runtime::Loader)),
            (b"/lib/x86_64-linux-gnu/libm.so.6", Some(Runtime::Libm)),
            (
                b"/lib/x86_64-linux-gnu/libpthread.so.0",
                Some(Runtime::Libpthread),
            ),
            (
                b"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
                Some(Runtime::Python),
            ),
            (b"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", None),
            (b"/usr/lib/libc-client.so.2007e", None),
            (b"/usr/bin/ld-wrapper", None),
            (b"/usr/lib/x86_64-linux-gnu/libmagic.so.1", None),
            (b"/usr/lib/libstdc++fs.a", None),
            (b"/home/u/libc/prog", None),
            (b"/tmp/libft_malloc.so", None),
            (b"/usr/bin/python3.11", None),
            (b"linux-vdso.so.1", None),
            (b"", None),
        ];
        for (path, want) in table {
            assert_eq!(runtime(path), *want, "{}", String::from_utf8_lossy(path));
            assert_eq!(is_runtime(path), want.is_some());
        }
    }

    #[test]
    fn buckets_cover_every_size_once() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(24), 5);
        assert_eq!(bucket(u64::MAX), HIST_BUCKETS - 1);
        let mut next = 0u64;
        for k in 0..HIST_BUCKETS {
            let (lo, hi) = bucket_range(k);
            assert_eq!(lo, next, "bucket {k}");
            assert!(hi >= lo);
            assert_eq!(bucket(lo), k);
            assert_eq!(bucket(hi), k);
            next = hi.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }
}
