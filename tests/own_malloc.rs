//! A program whose own malloc comes ahead of ours (defined in the executable): the functions
//! its allocator lacks are handed on to the C library's, which calls the program's allocator,
//! so a block of one allocator never reaches the other; with debugging on, a warning says at
//! start that the allocations go elsewhere, and one at exit that nothing was checked. A malloc
//! that passes its calls on to ours (dlsym RTLD_NEXT) is checked.

mod common;

use common::{Run, compile, mask_report as mask};

#[test]
fn the_programs_own_allocator_gets_what_glibc_would_give_it() {
    let exe = compile("own_malloc");
    for debug in ["", "1", "full"] {
        let o = Run::new(&exe).arg("own").env("MALLOC_DEBUG", debug).go();
        assert_eq!(o.status, Some(0), "{debug}: {}", o.describe());
        assert_eq!(
            o.stdout,
            "arena: strdup yes, reallocarray yes\n",
            "{debug}: {}",
            o.describe()
        );
        let want = if debug.is_empty() {
            String::new()
        } else {
            let by = format!(
                "ft_malloc[PID]: WARNING: malloc is defined by {}",
                exe.display()
            );
            format!(
                "{by} ahead of ft_malloc: the program's allocations go there, and only those it \
                 passes on to ft_malloc are checked\n{by} ahead of ft_malloc, and no allocation \
                 came here: nothing was checked\n"
            )
        };
        assert_eq!(mask(&o.stderr), want, "{debug}: {}", o.describe());
    }
}

#[test]
fn a_malloc_that_passes_its_calls_on_is_checked() {
    let exe = compile("own_malloc");
    let o = Run::new(&exe)
        .arg("wrap")
        .env("MALLOC_DEBUG", "1,on_error=continue")
        .go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "wrapped\n", "{}", o.describe());
    let err = mask(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("ft_malloc[PID]: WARNING: malloc is defined by ")
            && lines[0].ends_with(" are checked"),
        "{}",
        o.describe()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ft_malloc[PID]: ERROR: double free of ")),
        "{}",
        o.describe()
    );
    assert!(!err.contains("nothing was checked"), "{}", o.describe());
}
