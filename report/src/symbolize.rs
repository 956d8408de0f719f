//! `symbolize`: a stream filter for the program's stderr.
//!
//! Copies stdin to stdout byte for byte, except that tokens `/path/to/module+0xOFFSET` (how the
//! library prints code addresses in its reports) whose module file exists become
//! `function (file:line)`, followed by `, inlined into caller (file:line)` for each call
//! inlined there. The library's frame lines
//!
//! ```text
//! ft_malloc[PID]:     #N 0xADDR /path/module+0xOFF symbol+0xOFF
//! ```
//!
//! keep their prefix, number and address, and get `function (file:line)` in place of the
//! module and symbol; each frame the call was inlined into follows on a line of its own, under
//! the same prefix and indented past `#N `: `inlined into caller (file:line)`. A frame line
//! whose module has no line information for the address stays as it is.
//!
//! Lines are written as soon as they are complete; a partial line (a prompt, a progress bar)
//! is written out after 50 ms without more input, so nothing is held back. Non-UTF-8 bytes pass
//! through unchanged.

use crate::symbols::Symbolizer;
use rustc_hash::FxHashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

pub struct Rewriter {
    sym: Symbolizer,
    exists: FxHashMap<Vec<u8>, bool>,
    /// ERROR reports seen (their first lines; `ERROR SUMMARY` lines are not reports).
    pub errors: u64,
    /// LEAK lines seen (one per leaking site).
    pub leaks: u64,
    /// What the launcher's summary needs, per process (see `notes`).
    notes: Vec<String>,
    leak_lines: FxHashMap<u32, usize>,
}

/// LEAK lines kept per process for the launcher's summary (the rest are only counted).
const LEAK_LINES_KEPT: usize = 10;

fn is_token_start(line: &[u8], i: usize) -> bool {
    i == 0
        || matches!(
            line[i - 1],
            b' ' | b'\t' | b'(' | b'[' | b'{' | b'<' | b'\'' | b'"' | b'=' | b':' | b','
        )
}

impl Rewriter {
    pub fn new(symbols: bool) -> Self {
        let mut sym = Symbolizer::new();
        sym.disabled = !symbols;
        Rewriter {
            sym,
            exists: FxHashMap::default(),
            errors: 0,
            leaks: 0,
            notes: Vec::new(),
            leak_lines: FxHashMap::default(),
        }
    }

    fn file_exists(&mut self, p: &[u8]) -> bool {
        if let Some(&e) = self.exists.get(p) {
            return e;
        }
        use std::os::unix::ffi::OsStrExt;
        let e = std::path::Path::new(std::ffi::OsStr::from_bytes(p)).is_file();
        self.exists.insert(p.to_vec(), e);
        e
    }

    /// Notes what the launcher's summary takes from the program's stderr, one record a line:
    /// `error PID` (an ERROR report's first line), `error_summary PID N`, `leak PID TEXT`,
    /// `leak_summary PID TEXT`, `leak_skipped PID REASON`, `abort PID` (the library aborted after a
    /// report), `ldso TEXT` (the dynamic loader refused to preload a library).
    fn count(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // ft_malloc[PID]: ERROR: ...   /   ft_malloc[PID]: LEAK: ...  (after whatever the
        // program left on the line without ending it)
        let at = memchr::memmem::find(line, b"ft_malloc[").unwrap_or(0);
        if let Some(rest) = line[at..].strip_prefix(b"ft_malloc[")
            && let Some(k) = memchr::memchr(b']', rest)
            && let Ok(pid) = std::str::from_utf8(&rest[..k]).unwrap_or("").parse::<u32>()
        {
            let r = &rest[k + 1..];
            let text = |p: &[u8]| String::from_utf8_lossy(&r[p.len()..]).into_owned();
            if let Some(n) = r.strip_prefix(b": ERROR SUMMARY: ") {
                let n: String = n
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .map(|&b| b as char)
                    .collect();
                self.notes.push(format!("error_summary {pid} {n}"));
            } else if r.starts_with(b": ERROR") {
                self.errors += 1;
                self.notes.push(format!("error {pid}"));
            } else if r.starts_with(b": LEAK: ") {
                self.leaks += 1;
                let kept = self.leak_lines.entry(pid).or_insert(0);
                if *kept < LEAK_LINES_KEPT {
                    *kept += 1;
                    self.notes.push(format!("leak {pid} {}", text(b": LEAK: ")));
                }
            } else if r.starts_with(b": LEAK SUMMARY: ") {
                self.notes
                    .push(format!("leak_summary {pid} {}", text(b": LEAK SUMMARY: ")));
            } else if r.starts_with(b": leak summary: ") {
                self.notes
                    .push(format!("leak_summary {pid} {}", text(b": leak summary: ")));
            } else if r.starts_with(b": WARNING: leak check skipped: ") {
                self.notes.push(format!(
                    "leak_skipped {pid} {}",
                    text(b": WARNING: leak check skipped: ")
                ));
            } else if r.starts_with(b": aborting") {
                self.notes.push(format!("abort {pid}"));
            }
        } else if memchr::memmem::find(line, b"ld.so: object '").is_some()
            && memchr::memmem::find(line, b"LD_PRELOAD").is_some()
        {
            self.notes
                .push(format!("ldso {}", String::from_utf8_lossy(line)));
        }
    }

    /// Rewrite one line (any terminator included) into `out`.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if !self.frame_line(line, out) {
            self.rewrite(line, out);
        }
        // Counted as shown: LEAK lines keep their `function (file:line)`. (A frame line may
        // have become several: the first one stands for it.)
        let shown = &out[start..];
        let first = match memchr::memchr(b'\n', shown) {
            Some(k) => shown[..k + 1].to_vec(),
            None => shown.to_vec(),
        };
        self.count(&first);
    }

    /// A frame line of a report (`ft_malloc[PID]:  #N 0xADDR /path/module+0xOFF[ sym+0xOFF]`)
    /// whose module exists: written to `out` with its frames (true), or false when `line` is
    /// not one.
    fn frame_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        let body_len = line.len()
            - if line.ends_with(b"\r\n") {
                2
            } else {
                usize::from(line.ends_with(b"\n"))
            };
        let (body, term) = line.split_at(body_len);
        let Some(at) = memchr::memmem::find(body, b"ft_malloc[") else {
            return false;
        };
        let mut i = at + b"ft_malloc[".len();
        let digits = |b: &[u8], mut i: usize, hex: bool| {
            let s = i;
            while i < b.len()
                && (if hex {
                    b[i].is_ascii_hexdigit()
                } else {
                    b[i].is_ascii_digit()
                })
            {
                i += 1;
            }
            (i > s).then_some(i)
        };
        let Some(j) = digits(body, i, false) else {
            return false;
        };
        i = j;
        if !body[i..].starts_with(b"]:") {
            return false;
        }
        i += 2;
        let spaces = i;
        while i < body.len() && body[i] == b' ' {
            i += 1;
        }
        if i == spaces || body.get(i) != Some(&b'#') {
            return false;
        }
        let hash = i;
        let Some(j) = digits(body, i + 1, false) else {
            return false;
        };
        i = j;
        if !body[i..].starts_with(b" 0x") {
            return false;
        }
        let Some(j) = digits(body, i + 3, true) else {
            return false;
        };
        let number_len = i + 1 - hash;
        i = j;
        if body.get(i) != Some(&b' ') || body.get(i + 1) != Some(&b'/') {
            return false;
        }
        let head = &body[..i + 1];
        let rest = &body[i + 1..];
        // The module: the first `+0xHEX` (ending the line or followed by a space) whose path
        // before it is a file.
        let mut from = 0;
        let found = loop {
            let Some(k) = memchr::memmem::find(&rest[from..], b"+0x") else {
                break None;
            };
            let plus = from + k;
            from = plus + 3;
            let Some(he) = digits(rest, plus + 3, true) else {
                continue;
            };
            if he - (plus + 3) > 16 || (he < rest.len() && rest[he] != b' ') {
                continue;
            }
            if self.file_exists(&rest[..plus]) {
                break Some((plus, he));
            }
        };
        let Some((plus, he)) = found else {
            return false;
        };
        let Ok(path) = std::str::from_utf8(&rest[..plus]) else {
            return false;
        };
        let Ok(off) =
            u64::from_str_radix(std::str::from_utf8(&rest[plus + 3..he]).unwrap_or(""), 16)
        else {
            return false;
        };
        let chain = match self.sym.lookup_chain(path, off, true) {
            Some(c) if c.has_line() => c,
            _ => {
                out.extend_from_slice(line);
                return true;
            }
        };
        // The library's own name of the function (`sym+0xOFF`), for a line without one.
        let lib_name = {
            let t = rest[he..].trim_ascii_start();
            let t = match memchr::memmem::rfind(t, b"+0x") {
                Some(k) => &t[..k],
                None => t,
            };
            String::from_utf8_lossy(t).into_owned()
        };
        for k in 0..chain.len() {
            let mut text = chain.text(k);
            if k == 0 && !lib_name.is_empty() && text.starts_with("?? (") {
                text = format!("{lib_name}{}", &text[2..]);
            }
            if k == 0 {
                out.extend_from_slice(head);
            } else {
                out.extend_from_slice(&body[at..hash]);
                out.extend(std::iter::repeat_n(b' ', number_len));
                out.extend_from_slice(b"inlined into ");
            }
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(if term.is_empty() && k + 1 < chain.len() {
                b"\n"
            } else {
                term
            });
        }
        true
    }

    fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let mut copied = 0;
        let mut from = 0;
        while let Some(k) = memchr::memmem::find(&line[from..], b"+0x") {
            let plus = from + k;
            let hs = plus + 3;
            let mut he = hs;
            while he < line.len() && line[he].is_ascii_hexdigit() && he - hs < 16 {
                he += 1;
            }
            from = plus + 3;
            if he == hs
                || (he < line.len() && (line[he].is_ascii_alphanumeric() || line[he] == b'_'))
            {
                continue;
            }
            // Candidate module paths, nearest first: a '/' at a token start before the '+'.
            let lo = plus.saturating_sub(4096).max(copied);
            let mut i = plus;
            let mut found = None;
            while i > lo {
                i -= 1;
                if line[i] == b'/' && is_token_start(line, i) {
                    let path = &line[i..plus];
                    if path.contains(&b'\n') {
                        break;
                    }
                    if self.file_exists(path) {
                        found = Some(i);
                        break;
                    }
                }
            }
            let Some(start) = found else { continue };
            let Ok(path) = std::str::from_utf8(&line[start..plus]) else {
                continue;
            };
            let off =
                u64::from_str_radix(std::str::from_utf8(&line[hs..he]).unwrap(), 16).unwrap_or(0);
            if let Some(chain) = self.sym.lookup_chain(path, off, true) {
                out.extend_from_slice(&line[copied..start]);
                for k in 0..chain.len() {
                    if k > 0 {
                        out.extend_from_slice(b", inlined into ");
                    }
                    out.extend_from_slice(chain.text(k).as_bytes());
                }
                copied = he;
                // The library's own name after it (`module+0xOFF sym+0xOFF`, as dumps name a
                // caller) says less than the function found: dropped, unless none was.
                if chain.len() > 0 && !chain.text(0).starts_with("??") {
                    copied += library_name_len(&line[he..]);
                }
            }
            from = copied.max(he);
        }
        out.extend_from_slice(&line[copied..]);
    }
}

/// Length of ` sym+0xOFF` (a symbol name, `+0x`, hex digits, then the end or a non-name byte)
/// at the start of `t`; 0 when `t` does not start with one.
fn library_name_len(t: &[u8]) -> usize {
    let name = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$' | b'@');
    if t.first() != Some(&b' ') {
        return 0;
    }
    let mut i = 1;
    while i < t.len() && name(t[i]) {
        i += 1;
    }
    if i == 1 || !t[i..].starts_with(b"+0x") {
        return 0;
    }
    let hs = i + 3;
    let mut he = hs;
    while he < t.len() && t[he].is_ascii_hexdigit() {
        he += 1;
    }
    if he == hs || (he < t.len() && name(t[he])) {
        return 0;
    }
    he
}

pub fn run(symbols: bool, counts: Option<&str>) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    let mut rw = Rewriter::new(symbols);
    let mut pending: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    let mut out_ok = true;
    let mut ends_with_newline = true;
    loop {
        let msg = if pending.is_empty() {
            rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(Duration::from_millis(50))
        };
        match msg {
            Ok(chunk) => {
                pending.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(k) = memchr::memchr(b'\n', &pending[start..]) {
                    rw.line(&pending[start..start + k + 1], &mut out);
                    start += k + 1;
                }
                pending.drain(..start);
                // A line that never ends (no newline for 1 MiB): pass it on as it is.
                if pending.len() > 1 << 20 {
                    rw.line(&pending, &mut out);
                    pending.clear();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                rw.line(&pending, &mut out);
                pending.clear();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if !pending.is_empty() {
                    rw.line(&pending, &mut out);
                    pending.clear();
                }
                if let Some(&last) = out.last() {
                    ends_with_newline = last == b'\n';
                }
                if out_ok {
                    let _ = so.write_all(&out).and_then(|()| so.flush());
                }
                break;
            }
        }
        if let Some(&last) = out.last() {
            ends_with_newline = last == b'\n';
        }
        if !out.is_empty() {
            // Keep draining stdin even if stdout is gone, so the program never gets SIGPIPE.
            if out_ok && so.write_all(&out).and_then(|()| so.flush()).is_err() {
                out_ok = false;
            }
            out.clear();
        }
    }
    if let Some(p) = counts {
        let mut text = format!(
            "errors {}\nleaks {}\nnewline {}\n",
            rw.errors,
            rw.leaks,
            u8::from(ends_with_newline)
        );
        for n in &rw.notes {
            text.push_str(n);
            text.push('\n');
        }
        std::fs::write(p, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_after_a_module_offset() {
        assert_eq!(library_name_len(b" main+0x12, canary ok"), 10);
        assert_eq!(library_name_len(b" _ZN3foo3barEv+0xa0"), 19);
        assert_eq!(library_name_len(b" main+0x12zz"), 0);
        assert_eq!(library_name_len(b", thread 7"), 0);
        assert_eq!(library_name_len(b" +0x10"), 0);
        assert_eq!(library_name_len(b""), 0);
    }

    #[test]
    fn passthrough() {
        let mut rw = Rewriter::new(true);
        let mut out = Vec::new();
        let l = b"x+0x10 /nonexistent/file+0x1169 and \xff bytes\n";
        rw.line(l, &mut out);
        assert_eq!(out, l);
        out.clear();
        rw.line(b"ft_malloc[42]: ERROR: double free of 0x1\n", &mut out);
        rw.line(b"ft_malloc[42]:   allocated by malloc()\n", &mut out);
        rw.line(
            b"no newline at the endft_malloc[42]: LEAK: 13 bytes\n",
            &mut out,
        );
        rw.line(b"ft_malloc[42]: LEAK SUMMARY: 13 bytes\n", &mut out);
        rw.line(b"ft_malloc[42]: ERROR SUMMARY: 3 error(s)\n", &mut out);
        rw.line(
            b"ERROR: ld.so: object '/x/lib.so' from LD_PRELOAD cannot be preloaded (wrong ELF class: ELFCLASS64): ignored.\n",
            &mut out,
        );
        assert_eq!((rw.errors, rw.leaks), (1, 1));
        assert_eq!(
            rw.notes,
            [
                "error 42",
                "leak 42 13 bytes",
                "leak_summary 42 13 bytes",
                "error_summary 42 3",
                "ldso ERROR: ld.so: object '/x/lib.so' from LD_PRELOAD cannot be preloaded (wrong ELF class: ELFCLASS64): ignored."
            ]
        );
    }
}
