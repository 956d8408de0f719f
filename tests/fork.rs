//! fork with fork handlers of other libraries: ours must be registered first — our prepare
//! handler (which takes every heap lock) runs after theirs, which may allocate, and our
//! parent/child handlers before theirs — even when a library's constructor registers before our
//! constructor runs; and the registrations we pass on keep their library's handle.

mod common;

use common::{Output, Run, c_dir, cc, compile, fresh_dir};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `MALLOC_DEBUG` values (None = unset); `LOG` is replaced by a file of the test's directory.
const MODES: &[Option<&str>] = &[None, Some("1"), Some("full"), Some("log=LOG.%p")];

/// Builds `tests/c/atfork_allocating_lib.c` as a shared library in `dir`.
fn atfork_lib(dir: &Path) -> PathBuf {
    let so = dir.join("libatfork_allocating_lib.so");
    let src = c_dir().join("atfork_allocating_lib.c");
    cc(&["-shared", "-fPIC", src.to_str().unwrap()], &so);
    so
}

fn run_in_modes(exe: &Path, args: &[&str], dir: &Path) -> Vec<(Option<&'static str>, Output)> {
    let mut outs = Vec::new();
    for &mode in MODES {
        let mut r = Run::new(exe).args(args).timeout(Duration::from_secs(60));
        if let Some(m) = mode {
            r = r.env(
                "MALLOC_DEBUG",
                m.replace("LOG", dir.join("fork.log").to_str().unwrap()),
            );
        }
        outs.push((mode, r.go()));
    }
    outs
}

/// The library's constructor registers allocating handlers before our constructor runs (the
/// loader runs the program's libraries' constructors before a preloaded library's); forks from a
/// thread while 4 threads allocate must all complete (a hang is the harness's timeout).
#[test]
fn fork_with_allocating_handlers_of_a_linked_library() {
    let dir = fresh_dir("fork_atfork_lib");
    atfork_lib(&dir);
    let exe = dir.join("fork_with_allocating_handlers");
    let src = c_dir().join("fork_with_allocating_handlers.c");
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    cc(
        &[
            src.to_str().unwrap(),
            "-L",
            dir.to_str().unwrap(),
            "-latfork_allocating_lib",
            &rpath,
        ],
        &exe,
    );
    Run::new(&exe).no_preload().go().assert_ok_clean();
    for (mode, o) in run_in_modes(&exe, &[], &dir) {
        assert!(o.success(), "mode {mode:?}: {}", o.describe());
        assert_eq!(o.stdout, "OK\n", "mode {mode:?}: {}", o.describe());
        assert_eq!(o.stderr, "", "mode {mode:?}: {}", o.describe());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Handlers registered by a dlopen'ed library are dropped by glibc at its dlclose (by the
/// handle our interposed registration passes on); a later fork must not call into it.
#[test]
fn fork_after_dlclose_of_a_library_with_handlers() {
    let dir = fresh_dir("fork_dlclose");
    let so = atfork_lib(&dir);
    let exe = compile("fork_after_dlclose");
    for (mode, o) in run_in_modes(&exe, &[so.to_str().unwrap()], &dir) {
        assert!(o.success(), "mode {mode:?}: {}", o.describe());
        assert_eq!(o.stdout, "OK\n", "mode {mode:?}: {}", o.describe());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two copies of the library in one process (a program linked against one build, another
/// preloaded): each finds glibc's `__register_atfork` behind the other instead of calling the
/// other's for ever, and the program's malloc, show_alloc_mem and fork work.
#[test]
fn two_copies_of_the_library_in_one_process() {
    let dir = fresh_dir("fork_two_copies");
    let linked = dir.join("libft_malloc.so");
    std::fs::copy(common::lib(), &linked).expect("copy the library");
    let exe = dir.join("two_copies");
    let src = c_dir().join("fork_two_copies.c");
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    cc(
        &[
            src.to_str().unwrap(),
            "-L",
            dir.to_str().unwrap(),
            "-lft_malloc",
            &rpath,
        ],
        &exe,
    );
    for &mode in MODES {
        // cargo's LD_LIBRARY_PATH would load the preloaded copy again for the link.
        let mut r = Run::new(&exe).env_remove("LD_LIBRARY_PATH");
        if let Some(m) = mode {
            r = r.env(
                "MALLOC_DEBUG",
                m.replace("LOG", dir.join("two.log").to_str().unwrap()),
            );
        }
        let o = r.go();
        assert!(o.success(), "mode {mode:?}: {}", o.describe());
        assert!(
            o.stdout.ends_with("child 0\nOK\n"),
            "mode {mode:?}: {}",
            o.describe()
        );
        assert!(
            o.stdout.contains(" : 42 bytes\n"),
            "mode {mode:?}: {}",
            o.describe()
        );
    }
}
