//! The format crate (ft_format) against what the real libft_malloc.so does today: its
//! operations' numbering and names (the order of the library's call counters, the `op` field of
//! its log) and its size-histogram buckets, so that the library can switch to the crate without
//! changing a byte of its output. A C++ program (tests/c/every_op.cc) calls every entry point
//! a known number of times; the library's own counters (show_alloc_mem_ex at exit) and its log
//! must agree with the crate.

mod common;
use common::*;
use ft_format::{HIST_BUCKETS, OP_COUNT, Op, bucket, bucket_range};
use std::collections::BTreeMap;
use std::process::Command;

/// The `Calls : name N name N ..., failed F` block of show_alloc_mem_ex (it may wrap).
fn calls_block(dump: &str) -> Vec<(String, u64)> {
    let start = dump.find("Calls :").expect("no Calls line in the dump");
    let end = start + dump[start..].find(", failed").expect("no failed count");
    let words: Vec<&str> = dump[start + "Calls :".len()..end]
        .split_whitespace()
        .collect();
    words
        .chunks(2)
        .map(|c| (c[0].to_string(), c[1].parse().unwrap()))
        .collect()
}

/// `  LO - HI : N` lines after `Sizes :`.
fn sizes_block(dump: &str) -> Vec<(u64, u64, u64)> {
    let start = dump.find("Sizes :").expect("no Sizes line");
    dump[start..]
        .lines()
        .skip(1)
        .map_while(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [lo, "-", hi, ":", n] => {
                    Some((lo.parse().ok()?, hi.parse().ok()?, n.parse().ok()?))
                }
                ["0", ":", n] => Some((0, 0, n.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn the_library_numbers_names_and_buckets_as_the_format_crate_does() {
    if Command::new("c++").arg("--version").output().is_err() {
        eprintln!("skipped: c++ not installed");
        return;
    }
    let d = tmpdir("format");
    let exe = d.join("every op");
    let st = Command::new("c++")
        .args(["-g", "-O0", "-o"])
        .arg(&exe)
        .arg(c_src("every_op.cc"))
        .status()
        .unwrap();
    assert!(st.success());
    let log = d.join("every.log");
    let r = run_preloaded(&exe, &[], &format!("1,log={},dump_at_exit", log.display()));
    assert_eq!(r.status.code(), Some(0), "{}\n{}", r.stdout, r.stderr);
    let dump = format!("{}{}", r.stdout, r.stderr);
    assert!(dump.lines().any(|l| l == "OK"), "{dump}");

    // 1. The counters, in the library's numbering: the crate's order and names.
    let calls = calls_block(&dump);
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = Op::ALL
        .iter()
        .filter(|op| op.logged())
        .map(|op| op.name())
        .collect();
    assert_eq!(names, want, "{dump}");
    assert_eq!(Op::ALL.len(), OP_COUNT);
    // Each name counts the entry point the program called that often.
    let expect: BTreeMap<Op, u64> = [
        (Op::Calloc, 21),
        (Op::Realloc, 22),
        (Op::Reallocarray, 23),
        (Op::Memalign, 24),
        (Op::PosixMemalign, 25),
        (Op::AlignedAlloc, 26),
        (Op::Valloc, 27),
        (Op::Pvalloc, 28),
        (Op::New, 32),
        (Op::NewArr, 33),
        (Op::Free, 31),
        (Op::Delete, 32),
        (Op::DeleteArr, 33),
    ]
    .into();
    let counted: BTreeMap<Op, u64> = calls
        .iter()
        .map(|(n, c)| (Op::from_name(n.as_bytes()).unwrap(), *c))
        .collect();
    for (op, n) in &expect {
        assert_eq!(counted.get(op), Some(n), "{}: {dump}", op.name());
    }
    assert!(counted[&Op::Malloc] >= 21, "{dump}");

    // 2. The log names every call as the crate does (its one-letter codes), as often as the
    // counters say.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut logged: BTreeMap<Op, u64> = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with("E ")) {
        let code = l.split(' ').nth(4).unwrap();
        let op = Op::from_code(code.as_bytes()[0])
            .filter(|_| code.len() == 1)
            .unwrap_or_else(|| panic!("the format crate does not know op {code:?}"));
        *logged.entry(op).or_default() += 1;
    }
    assert_eq!(logged, counted, "{text}");

    // 3. The histogram: the library's bucket edges are the crate's, and the reader (which uses
    // the crate) counts the same allocations in each.
    let sizes = sizes_block(&dump);
    assert!(sizes.len() >= 5, "{dump}");
    let summary = ok(&["summary", log.to_str().unwrap()]).stdout;
    for (lo, hi, n) in sizes {
        let k = bucket(lo);
        assert!(k < HIST_BUCKETS);
        assert_eq!(
            bucket_range(k),
            (lo, hi),
            "bucket {k} of the library: {lo} - {hi}"
        );
        let range = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}-{hi}")
        };
        let reader = summary
            .lines()
            .find(|l| l.split_whitespace().next() == Some(range.as_str()))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {range} in the reader's histogram:\n{summary}"));
        assert_eq!(reader, n.to_string(), "{range}:\n{summary}\n{dump}");
    }
}
