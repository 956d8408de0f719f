//! Unit tests of MALLOC_DEBUG parsing: presets, bad items, warnings, destinations, sizes,
//! signals.

use super::*;

fn p(s: &str) -> (Config, usize) {
    let mut n = 0;
    let r = parse(s.as_bytes(), &mut |_, _| n += 1);
    (r.config, n)
}

#[test]
fn presets_and_overrides() {
    let (c, w) = p("1,quarantine=64m,on_error=continue");
    assert_eq!(w, 0);
    assert!(c.enabled && c.check && c.canary && c.fill);
    assert_eq!(c.quarantine, 64 << 20);
    assert_eq!(c.on_error, OnError::Continue);
    let (c, _) = p("default,nocanary,leaks=all");
    assert!(!c.canary && c.check);
    assert_eq!(c.leaks, 2);
    let (c, _) = p("full");
    assert_eq!(c.guard, Guard::After);
    let (c, _) = p("guard=below,sample=100");
    assert_eq!(c.guard, Guard::Below);
    assert_eq!(c.sample, 100);
    assert!(c.light);
    let (c, _) = p("sample=100,leaks");
    assert!(!c.light);
}

/// `0`, `off` and `none` last are as unset; an item after them asks for debugging again. Light
/// options that decide nothing per call keep the C entry points' fast paths.
#[test]
fn off_presets_and_fast_paths() {
    for s in ["0", "off", "none", "1,0", "full,off,bogus"] {
        let (c, _) = p(s);
        assert!(!c.enabled && c.fast, "{s}");
    }
    let (c, _) = p("0,log=/tmp/x.log");
    assert!(c.enabled && c.cached && !c.fast);
    for s in [
        "sample=100",
        "on_error=continue",
        "report=stderr",
        "guard,sample=10",
    ] {
        let (c, _) = p(s);
        assert!(c.enabled && c.light && c.fast, "{s}");
    }
    for s in ["guard", "fail=nth:3", "1", "leaks", "log=/tmp/x.log"] {
        let (c, _) = p(s);
        assert!(c.enabled && !c.fast, "{s}");
    }
}

/// Debugging that writes no byte of a block and keeps no freed block uses the thread caches;
/// any check, dressing, quarantine or guard keeps them out.
#[test]
fn cached_configurations() {
    for s in [
        "log=/tmp/x.log",
        "leaks",
        "stats",
        "stack=8,ring=100",
        "log=stderr,leaks=all",
    ] {
        let (c, _) = p(s);
        assert!(c.enabled && c.cached, "{s}");
    }
    for s in [
        "1",
        "full",
        "check",
        "canary",
        "fill",
        "quarantine=1m",
        "log=stderr,fill",
    ] {
        let (c, _) = p(s);
        assert!(c.enabled && !c.cached, "{s}");
    }
    for s in [
        "guard",
        "sample=10",
        "log=stderr,guard",
        "leaks,sample=5",
        "check_every=10",
    ] {
        let (c, _) = p(s);
        assert!(!c.cached, "{s}");
    }
    assert!(!p("").0.cached);
}

#[test]
fn bad_items_warn_and_rest_applies() {
    let (c, w) = p("bogus,canary,quarantine=12x,on_error=exit:3,fail=every:50");
    assert_eq!(w, 2);
    assert!(c.canary);
    assert_eq!(c.on_error, OnError::Exit(3));
    assert_eq!(c.fail, Fail::Every(50));
    let (c, w) = p("");
    assert_eq!(w, 0);
    assert!(!c.enabled);
}

#[test]
fn long_item_warning_is_one_bounded_line() {
    let item = [b'x'; 10_000];
    let mut l: Line<2048> = Line::new();
    warning_line(&mut l, &item, OptionError::Unknown);
    let t = l.as_bytes();
    assert!(t.len() < 1024, "{} bytes", t.len());
    assert_eq!(t.last(), Some(&b'\n'));
    assert_eq!(t.iter().filter(|&&b| b == b'\n').count(), 1);
    let s = core::str::from_utf8(t).unwrap();
    assert!(s.contains("…(10000 bytes)': unknown option; valid: 1, default"));
    l.clear();
    warning_line(
        &mut l,
        b"a\nb=1",
        OptionError::Invalid("expects 0/1/yes/no"),
    );
    assert!(
        core::str::from_utf8(l.as_bytes())
            .unwrap()
            .contains("'a?b=1': expects")
    );
}

#[test]
fn destinations() {
    assert_eq!(Dest::parse(b"stderr"), Dest::Stderr);
    assert_eq!(Dest::parse(b"fd:7"), Dest::Fd(Some(7)));
    assert_eq!(Dest::parse(b"fd:x"), Dest::Fd(None));
    assert_eq!(Dest::parse(b"fd:4294967296"), Dest::Fd(None));
    assert_eq!(Dest::parse(b"/tmp/r.%p"), Dest::File(b"/tmp/r.%p"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size(Some(b"4K")), Ok(4096));
    assert_eq!(parse_size(Some(b"1g")), Ok(1 << 30));
    assert!(parse_size(Some(b"m")).is_err());
    assert_eq!(
        parse_fail(Some(b"size:1m")),
        Ok((Fail::Size(1 << 20), None))
    );
    assert_eq!(parse_signal(Some(b"SIGUSR2")), Ok(libc::SIGUSR2));
    assert_eq!(parse_signal(Some(b"12")), Ok(12));
}

#[test]
fn dump_signal_refuses_faults_and_uncatchable() {
    for v in [
        "11", "SEGV", "SIGSEGV", "7", "SIGBUS", "4", "ILL", "8", "FPE", "9", "KILL", "19", "STOP",
        "32", "33",
    ] {
        let e = parse_signal(Some(v.as_bytes())).unwrap_err();
        assert!(e.starts_with("a fault signal"), "{v}: {e}");
    }
    for v in ["0", "65", "SIGNOPE", ""] {
        let e = parse_signal(Some(v.as_bytes())).unwrap_err();
        assert!(e.starts_with("expects a signal"), "{v}: {e}");
    }
    assert_eq!(parse_signal(Some(b"1")), Ok(1));
    assert_eq!(parse_signal(Some(b"34")), Ok(34));
    assert_eq!(parse_signal(Some(b"64")), Ok(64));
    let (c, w) = p("dump_signal=11");
    assert_eq!((c.dump_signal, w), (0, 1));
    let (c, w) = p("dump_signal=USR1,dump_signal=KILL");
    assert_eq!((c.dump_signal, w), (libc::SIGUSR1, 1));
}

#[test]
fn numbers_out_of_range_take_the_nearest_valid_value() {
    let (c, w) = p("quarantine=99999g,stack=100,sample=5000000,ring=99999999");
    assert_eq!(w, 4);
    assert_eq!(c.quarantine, MAX_QUARANTINE);
    assert_eq!(c.stack, MAX_STACK);
    assert_eq!(c.sample, MAX_SAMPLE);
    assert_eq!(c.ring, MAX_RING);
    // Past u64: still a number, out of range.
    let (c, w) = p("quarantine=99999999999999999999999g,hexdump=99999999999999999999");
    assert_eq!(w, 2);
    assert_eq!((c.quarantine, c.hexdump), (MAX_QUARANTINE, MAX_HEXDUMP));
    let (c, w) = p("fail=nth:0,on_error=exit:300");
    assert_eq!(w, 2);
    assert_eq!((c.fail, c.on_error), (Fail::Nth(1), OnError::Exit(255)));
    let (c, w) = p("sample=0,check_every=0,hexdump=all,quarantine=64g,backtrace=64");
    assert_eq!(w, 0);
    assert_eq!((c.sample, c.check_every, c.hexdump), (0, 0, u64::MAX));
    let mut l: Line<512> = Line::new();
    let (_, e) = Range::bytes(0, MAX_QUARANTINE).clamp(u64::MAX, "");
    warning_line(&mut l, b"quarantine=99999g", e.unwrap());
    let s = core::str::from_utf8(l.as_bytes()).unwrap();
    assert!(
        s.ends_with(
            "WARNING: MALLOC_DEBUG: 'quarantine=99999g': out of range (valid: 0-64g); using 64g\n"
        ),
        "{s}"
    );
}

#[test]
fn names_presets_and_keywords_are_case_insensitive() {
    let (c, w) = p("FULL");
    assert_eq!(w, 0);
    assert!(c.check && c.canary && c.guard == Guard::After);
    let (c, w) = p(
        "Default,On_Error=CONTINUE,NOCANARY,Leaks=ALL,Guard=Below,Dump_Signal=sigusr2,HEXDUMP=ALL",
    );
    assert_eq!(w, 0);
    assert!(c.check && !c.canary);
    assert_eq!(
        (c.on_error, c.leaks, c.guard),
        (OnError::Continue, 2, Guard::Below)
    );
    assert_eq!((c.dump_signal, c.hexdump), (libc::SIGUSR2, u64::MAX));
    // Paths keep their case.
    let (c, _) = p("Report=/tmp/Mixed.%p,LOG=/tmp/A.log");
    assert_eq!(c.report.as_bytes(), b"/tmp/Mixed.%p");
    assert_eq!(c.log.as_bytes(), b"/tmp/A.log");
}

/// A relative file path gets the current directory in front; an absolute one, `stderr`,
/// `fd:N` and an unset path stay as they are.
#[test]
fn relative_paths_are_made_absolute() {
    let (mut c, _) = p("log=a/b.%p.log,report=stderr");
    c.log.absolute();
    c.report.absolute();
    let cwd = std::env::current_dir().unwrap();
    let want = format!("{}/a/b.%p.log", cwd.display());
    assert_eq!(c.log.as_bytes(), want.as_bytes());
    assert_eq!(c.report.as_bytes(), b"stderr");
    for v in ["log=/x/y.log", "log=fd:3", "log=stderr", "1"] {
        let (mut c, _) = p(v);
        let before = c.log.as_bytes().to_vec();
        c.log.absolute();
        assert_eq!(c.log.as_bytes(), &before[..], "{v}");
    }
}
