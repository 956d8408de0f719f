//! Unit tests of the output files: names, and this process's writer identity.

use super::claim::octal;
use super::name::Name;
use super::writer::{me, proc_start};

#[test]
fn names() {
    let n = Name::absolute(b"/tmp/x.log").unwrap();
    assert_eq!(n.as_bytes(), b"/tmp/x.log");
    assert_eq!(n.c(), b"/tmp/x.log\0");
    assert_eq!(n.suffixed(42, 0).as_bytes(), b"/tmp/x.log.42");
    assert_eq!(n.suffixed(42, 3).as_bytes(), b"/tmp/x.log.42.3");
    assert_eq!(n.dir().c(), b"/tmp\0");
    assert_eq!(Name::absolute(b"/x").unwrap().dir().c(), b"/\0");
    let mut bare = Name::EMPTY;
    bare.push(b"x.log").unwrap();
    assert_eq!(bare.dir().c(), b".\0");
    let rel = Name::absolute(b"a.log").unwrap();
    assert!(rel.as_bytes().starts_with(b"/") && rel.as_bytes().ends_with(b"/a.log"));
    assert_eq!(octal(0o666), *b"0666");
}
#[test]
fn own_start_time() {
    let me = me();
    assert!(me.start > 0);
    assert_eq!(proc_start(me.pid), Ok(me.start));
    assert_eq!(me.boot_len, 36);
}
