//! Symbolization from the binaries' debug info: a C program compiled with `cc -g`.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// leak.c compiled with -g into a directory whose name has a space.
fn leak_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let exe = dir.join("leak prog");
    cc(&c_src("leak.c"), &exe, &[]);
    exe
}

#[test]
fn nm_address_to_function_file_line() {
    let d = tmpdir("sym-nm");
    let exe = leak_binary(&d);
    let f = nm(&exe, "make_name");
    let line = line_of(&c_src("leak.c"), "static char *make_name");
    let base = 0x5555_5555_4000u64;
    // A return address one byte into make_name: the lookup at A-1 is its first instruction.
    let log = format!(
        "{HEADER}M 0x{base:x} {}\nM 0x7f0000000000 /nonexistent/libc.so.6\nE 1 10 1 malloc 0x0 0x1000 13 0 0x{:x},0x7f0000001234\n",
        exe.display(),
        base + f + 1
    );
    let p = write(&d, "sym.log", log.as_bytes());
    let out = ok(&["leaks", p.to_str().unwrap()]).stdout;
    let want = format!("    at make_name ({}:{line})", c_src("leak.c").display());
    assert!(out.contains(&want), "want {want} in\n{out}");
    // No file for the second frame: module+offset.
    assert!(
        out.contains("    by /nonexistent/libc.so.6+0x1234"),
        "{out}"
    );
    // --no-symbols: module+offset everywhere.
    let raw = ok(&["--no-symbols", "leaks", p.to_str().unwrap()]).stdout;
    assert!(
        raw.contains(&format!("    at {}+0x{:x}", exe.display(), f + 1)),
        "{raw}"
    );
}

#[test]
fn stripped_binary_falls_back_to_symbol_then_offset() {
    let d = tmpdir("sym-nodebug");
    let exe = d.join("nodebug");
    let st = Command::new("cc")
        .args(["-O0", "-o"])
        .arg(&exe)
        .arg(c_src("leak.c"))
        .status()
        .unwrap();
    assert!(st.success());
    let f = nm(&exe, "make_name");
    let log = format!(
        "{HEADER}M 0x1000000 {}\nE 1 10 1 malloc 0x0 0x1000 13 0 0x{:x}\n",
        exe.display(),
        0x1000000 + f + 4
    );
    let p = write(&d, "s.log", log.as_bytes());
    let out = ok(&["leaks", p.to_str().unwrap()]).stdout;
    // No line table: the symbol table still names the function.
    assert!(
        out.contains(&format!(
            "    at make_name ({}+0x{:x})",
            exe.display(),
            f + 4
        )),
        "{out}"
    );
}

/// The program's own log, written by a preloaded stand-in of the library (real return
/// addresses, real load base): the planted leak is reported at its file:line, and the history
/// of the block freed at FREED-LINE lists its malloc and its free.
#[test]
fn real_addresses_from_a_preloaded_logger() {
    let d = tmpdir("sym-real");
    let exe = leak_binary(&d);
    // LD_PRELOAD splits on spaces: the library goes in a directory without one.
    let fake = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake_ftmalloc_sym.so");
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&fake)
        .arg(c_src("fake_ftmalloc.c"))
        .status()
        .unwrap();
    assert!(st.success());
    let log = d.join("run.log");
    let o = Command::new(&exe)
        .arg("4")
        .env("LD_PRELOAD", &fake)
        .env("MALLOC_DEBUG", format!("1,log={}", log.display()))
        .output()
        .unwrap();
    assert!(o.status.success());
    let src = c_src("leak.c");
    let leak_line = line_of(&src, "LEAK-LINE");
    let freed_line = line_of(&src, "FREED-LINE");
    let out = ok(&["leaks", log.to_str().unwrap()]).stdout;
    assert!(
        out.contains("52 bytes in 4 blocks (13 bytes each)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("at make_name ({}:{leak_line})", src.display())),
        "{out}"
    );
    // The first block's history: find the address of the 1000-byte block from heap's replay.
    let text = std::fs::read_to_string(&log).unwrap();
    let ev = text
        .lines()
        .find(|l| l.contains(" malloc ") && l.split(' ').nth(7) == Some("1000"))
        .unwrap();
    let addr = ev.split(' ').nth(6).unwrap();
    let h = ok(&["history", log.to_str().unwrap(), addr]).stdout;
    let evs: Vec<&str> = h.lines().filter(|l| l.starts_with('#')).collect();
    assert!(evs.len() >= 2, "{h}");
    assert!(evs[0].contains(&format!("malloc(1000) = {addr}")), "{h}");
    assert!(
        evs[1].contains(&format!("free({addr}) of")) && evs[1].contains("block freed"),
        "{h}"
    );
    assert!(
        h.contains(&format!("at main ({}:{freed_line})", src.display())),
        "{h}"
    );
    assert!(
        h.contains(&format!("at main ({}:{})", src.display(), freed_line + 1)),
        "{h}"
    );
}

/// The stderr filter: rewrites module+offset tokens (also in paths with spaces), leaves
/// everything else byte for byte, and does not hold back a line without a newline.
#[test]
fn symbolize_filter() {
    let d = tmpdir("sym-filter");
    let exe = leak_binary(&d);
    let f = nm(&exe, "make_name");
    let line = line_of(&c_src("leak.c"), "static char *make_name");
    let mut child = Command::new(BIN)
        .args(["symbolize", "--counts"])
        .arg(d.join("counts"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut b) {
            if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // A prompt without newline comes out without waiting for more input.
    stdin.write_all(b"prompt> ").unwrap();
    stdin.flush().unwrap();
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("partial line held back");
    assert_eq!(got, b"prompt> ");
    let input = format!(
        "\nft_malloc[7]: ERROR: double free of 0x1234 (TINY, 24 bytes) in free()\n\
         ft_malloc[7]:   allocated by malloc() at #12 from {}+0x{:x}\n\
         \x20\x20used, 24 bytes requested, 32 usable, #1 malloc() thread 7 from {}+0x{:x} make_name+0x1, canary ok\n\
         plain text \u{e9} \\x and +0x10 and /nonexistent/x+0x10\n",
        exe.display(),
        f + 1,
        exe.display(),
        f + 1
    );
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.write_all(b"\xff\xfe raw bytes\n").unwrap();
    drop(stdin);
    let mut all = got;
    while let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        all.extend(chunk);
    }
    assert!(child.wait().unwrap().success());
    let text = String::from_utf8_lossy(&all);
    let want = format!(
        "ft_malloc[7]:   allocated by malloc() at #12 from make_name ({}:{line})\n",
        c_src("leak.c").display()
    );
    assert!(text.contains(&want), "want {want} in\n{text}");
    // A dump's caller (`module+0xOFF function+0xOFF`): the library's name gives way to the
    // function and line found.
    let want = format!(
        "  used, 24 bytes requested, 32 usable, #1 malloc() thread 7 from make_name ({}:{line}), canary ok\n",
        c_src("leak.c").display()
    );
    assert!(text.contains(&want), "want {want} in\n{text}");
    assert!(
        text.contains("plain text \u{e9} \\x and +0x10 and /nonexistent/x+0x10\n"),
        "{text}"
    );
    assert!(all.ends_with(b"\xff\xfe raw bytes\n"));
    assert_eq!(
        std::fs::read_to_string(d.join("counts")).unwrap(),
        "errors 1\nleaks 0\nnewline 1\nerror 7\n"
    );
}
