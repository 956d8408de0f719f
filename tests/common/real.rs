//! Real programs run under the library, their normal output checked. Each check takes extra
//! environment variables (e.g. `MALLOC_DEBUG`) so other test files can rerun the suite in a
//! debugging mode; it returns `None` when the tool is not installed (after printing
//! `skipped: <tool> not installed`), else the run's output, after asserting the exit status and
//! the program's own output.

use super::{Output, Run, fresh_dir, require};

/// One real-program check: the extra environment, and returns `None` when skipped.
pub type Check = fn(&[(&str, &str)]) -> Option<Output>;

/// Every check of this module, by name.
pub const ALL: &[(&str, Check)] = &[
    ("bash_string_loop", bash_string_loop),
    ("python_dicts_lists", python_dicts_lists),
    ("python_threads", python_threads),
    ("perl_hash_200k", perl_hash_200k),
    ("git_init_commit_log", git_init_commit_log),
    ("gcc_compile_and_run", gcc_compile_and_run),
    ("clang_cxx_compile_and_run", clang_cxx_compile_and_run),
    ("rustc_compile_and_run", rustc_compile_and_run),
    ("sort_100k_lines", sort_100k_lines),
    ("sqlite3_10k_rows", sqlite3_10k_rows),
    ("systemd_analyze_table", systemd_analyze_table),
];

/// Runs every check with `MALLOC_DEBUG` set to `debug` (or unset). With debugging off, also
/// asserts that the library printed nothing (no `ft_malloc[` line on stderr).
pub fn run_real_suite(debug: Option<&str>) {
    let envs: Vec<(&str, &str)> = debug.map(|d| ("MALLOC_DEBUG", d)).into_iter().collect();
    for (name, check) in ALL {
        println!("== {name} (MALLOC_DEBUG={debug:?})");
        if let Some(out) = check(&envs)
            && debug.is_none()
        {
            assert_no_library_output(name, &out);
        }
    }
}

/// Asserts that stderr holds no line of ours (`ft_malloc[<pid>]...`).
#[track_caller]
pub fn assert_no_library_output(name: &str, out: &Output) {
    let ours: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(super::WARNING_PREFIX))
        .collect();
    assert!(
        ours.is_empty(),
        "{name}: the library reported something:\n{}",
        out.describe()
    );
}

/// A fresh directory for one call of a check: one test binary runs a check in several modes at
/// once.
fn call_dir(tool: &str) -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    fresh_dir(&format!("{tool}.{n}"))
}

#[track_caller]
fn assert_ok(name: &str, out: &Output) {
    assert!(out.success(), "{name} failed: {}", out.describe());
}

/// bash: a loop appending numbers to a string, an associative array and a regex match
/// (`[[ =~ ]]` calls regcomp, which calls malloc(0)).
pub fn bash_string_loop(envs: &[(&str, &str)]) -> Option<Output> {
    let bash = require("bash")?;
    let script = r#"
        x=
        for ((i = 1; i <= 20000; i++)); do x="$x$i"; done
        declare -A h
        for ((i = 0; i < 5000; i++)); do h[k$i]=$i; done
        [[ $x =~ ^(12)+3.*20000$ ]] && echo match
        echo "${#x} ${#h[@]} ${h[k4999]}"
    "#;
    let out = Run::new(bash).args(["-c", script]).envs(envs).go();
    assert_ok("bash", &out);
    let len: usize = (1..=20000).map(|i: u32| i.to_string().len()).sum();
    assert_eq!(
        out.stdout,
        format!("match\n{len} 5000 4999\n"),
        "{}",
        out.describe()
    );
    Some(out)
}

/// python3 with PYTHONMALLOC=malloc: dicts, lists, json and sorting.
pub fn python_dicts_lists(envs: &[(&str, &str)]) -> Option<Output> {
    let python = require("python3")?;
    let script = r#"
import json
d = {str(i): [i, str(i) * 3, {"v": i}] for i in range(200000)}
s = json.dumps(d)
e = json.loads(s)
words = sorted(str(i * 7919 % 100003) for i in range(100000))
print(len(e), sum(v[0] for v in e.values()), words[0], words[-1], len(s) > 0)
"#;
    let out = Run::new(python)
        .args(["-c", script])
        .env("PYTHONMALLOC", "malloc")
        .envs(envs)
        .go();
    assert_ok("python3", &out);
    let mut words: Vec<String> = (0..100000u64)
        .map(|i| (i * 7919 % 100003).to_string())
        .collect();
    words.sort();
    let want = format!(
        "200000 19999900000 {} {} True\n",
        words[0],
        words[words.len() - 1]
    );
    assert_eq!(out.stdout, want, "{}", out.describe());
    Some(out)
}

/// python3 with PYTHONMALLOC=malloc: 8 threads building and exchanging objects through a queue.
pub fn python_threads(envs: &[(&str, &str)]) -> Option<Output> {
    let python = require("python3")?;
    let script = r#"
import threading, queue
q = queue.Queue(maxsize=1000)
results = []
lock = threading.Lock()
def producer(k):
    for i in range(20000):
        q.put({"k": k, "i": i, "data": [i] * (i % 50), "s": "x" * (i % 300)})
def consumer():
    total = 0
    while True:
        item = q.get()
        if item is None:
            break
        total += item["i"] + len(item["data"]) + len(item["s"])
    with lock:
        results.append(total)
ps = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
cs = [threading.Thread(target=consumer) for _ in range(4)]
for t in ps + cs: t.start()
for t in ps: t.join()
for _ in cs: q.put(None)
for t in cs: t.join()
print(sum(results))
"#;
    let out = Run::new(python)
        .args(["-c", script])
        .env("PYTHONMALLOC", "malloc")
        .envs(envs)
        .go();
    assert_ok("python3 threads", &out);
    let per_producer: u64 = (0..20000u64).map(|i| i + i % 50 + i % 300).sum();
    assert_eq!(
        out.stdout,
        format!("{}\n", 4 * per_producer),
        "{}",
        out.describe()
    );
    Some(out)
}

/// perl: a hash of 200k keys.
pub fn perl_hash_200k(envs: &[(&str, &str)]) -> Option<Output> {
    let perl = require("perl")?;
    let script = r#"my %h; $h{"k$_"} = $_ for 1..200000; my $s = 0; $s += $h{"k$_"} for 1..200000;
        delete $h{"k$_"} for 1..100000; print scalar(keys %h), " $s\n";"#;
    let out = Run::new(perl).args(["-e", script]).envs(envs).go();
    assert_ok("perl", &out);
    assert_eq!(out.stdout, "100000 20000100000\n", "{}", out.describe());
    Some(out)
}

/// git: init, add, commit, log in a temporary repository with a temporary HOME.
pub fn git_init_commit_log(envs: &[(&str, &str)]) -> Option<Output> {
    let git = require("git")?;
    let dir = call_dir("git");
    let home = dir.join("home");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    for i in 0..200 {
        std::fs::write(
            repo.join("sub").join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    let g = |args: &[&str]| {
        let out = Run::new(&git)
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .cwd(&repo)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .envs(envs)
            .go();
        assert_ok(&format!("git {args:?}"), &out);
        out
    };
    g(&["init", "-q"]);
    g(&["add", "."]);
    g(&["commit", "-q", "-m", "first commit"]);
    std::fs::write(repo.join("sub").join("f0.txt"), "changed\n").unwrap();
    g(&["commit", "-q", "-a", "-m", "second commit"]);
    let log = g(&["log", "--format=%s"]);
    assert_eq!(
        log.stdout,
        "second commit\nfirst commit\n",
        "{}",
        log.describe()
    );
    let files = g(&["ls-files"]);
    assert_eq!(files.stdout.lines().count(), 200, "{}", files.describe());
    let status = g(&["status", "--porcelain"]);
    assert_eq!(status.stdout, "", "{}", status.describe());
    let _ = std::fs::remove_dir_all(&dir);
    Some(log)
}

/// A compiler (`tool` with `flags`) under the library builds `source` (written as `file`); the
/// program then runs without the library and must print `expect`.
fn compile_and_run(
    envs: &[(&str, &str)],
    tool: &str,
    flags: &[&str],
    file: &str,
    source: &str,
    expect: &str,
) -> Option<Output> {
    let compiler = require(tool)?;
    let dir = call_dir(tool);
    let src = dir.join(file);
    std::fs::write(&src, source).unwrap();
    let exe = dir.join("prog");
    let out = Run::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .envs(envs)
        .go();
    assert_ok(tool, &out);
    let run = Run::new(&exe).no_preload().go();
    assert!(run.success(), "compiled program failed: {}", run.describe());
    assert_eq!(run.stdout, expect);
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}

/// gcc (cc1, as, ld under the library) compiles a small C file; the program runs without it.
pub fn gcc_compile_and_run(envs: &[(&str, &str)]) -> Option<Output> {
    let s: i64 = (0..100).map(|i| i * i).sum();
    compile_and_run(
        envs,
        "gcc",
        &["-O2", "-Wall"],
        "prog.c",
        "#include <stdio.h>\n#include <stdlib.h>\nstruct s { int a; double b; };\n\
         static int cmp(const void *x, const void *y) { return *(const int *)x - *(const int *)y; }\n\
         int main(void) { int v[100]; for (int i = 0; i < 100; i++) v[i] = (i * 37) % 100;\n\
         qsort(v, 100, sizeof v[0], cmp); long s = 0; for (int i = 0; i < 100; i++) s += v[i] * i;\n\
         printf(\"%d %d %ld\\n\", v[0], v[99], s); return 0; }\n",
        &format!("0 99 {s}\n"),
    )
}

/// clang++ (LLVM's C++ allocators, which rely on `operator new`'s 16-byte alignment) compiling
/// a C++ program with standard containers, which then runs without the library.
pub fn clang_cxx_compile_and_run(envs: &[(&str, &str)]) -> Option<Output> {
    let s: usize = (0..1000).map(|i: usize| (i % 97).to_string().len()).sum();
    compile_and_run(
        envs,
        "clang++",
        &["-O1"],
        "prog.cc",
        "#include <iostream>\n#include <map>\n#include <string>\n#include <vector>\n\
         int main() { std::map<std::string, std::vector<int>> m;\n\
         for (int i = 0; i < 1000; i++) m[std::to_string(i % 97)].push_back(i);\n\
         long s = 0; for (auto &kv : m) s += kv.first.size() * kv.second.size();\n\
         std::cout << m.size() << ' ' << s << std::endl; }\n",
        &format!("97 {s}\n"),
    )
}

/// rustc compiling and linking a Rust program: Rust's standard library (hash tables that need
/// malloc's 16-byte alignment), LLVM with its own operator new around malloc, and the linker,
/// which deletes what that operator new made. The program then runs without the library.
/// rustc's executable links an allocator of its own as malloc (jemalloc): with debugging on,
/// the library says so at start, and at exit that nothing was checked in that process. Those two
/// lines are asserted and taken out of the output the callers look at (the compiled program and
/// the linker's processes are checked as usual).
pub fn rustc_compile_and_run(envs: &[(&str, &str)]) -> Option<Output> {
    let mut out = rustc_run(envs)?;
    let own = |l: &str| l.contains("]: WARNING: malloc is defined by ") && l.contains("rustc");
    let n = out.stderr.lines().filter(|l| own(l)).count();
    assert!(n == 0 || n == 2, "rustc: {}", out.describe());
    out.stderr = out
        .stderr
        .lines()
        .filter(|l| !own(l))
        .map(|l| format!("{l}\n"))
        .collect();
    Some(out)
}

fn rustc_run(envs: &[(&str, &str)]) -> Option<Output> {
    compile_and_run(
        envs,
        "rustc",
        &["-O"],
        "prog.rs",
        "use std::collections::HashMap;\n\
         fn main() { let mut m: HashMap<u32, Vec<String>> = HashMap::new();\n\
         for i in 0..1000u32 { m.entry(i % 97).or_default().push(i.to_string()); }\n\
         let n: usize = m.values().map(|v| v.len()).sum();\n\
         println!(\"{} {}\", m.len(), n); }\n",
        "97 1000\n",
    )
}

/// systemd-analyze capability: a table whose cells systemd keeps in an array grown to the
/// array's usable size (`malloc_usable_size`) before realloc; same output as without the
/// library.
pub fn systemd_analyze_table(envs: &[(&str, &str)]) -> Option<Output> {
    let analyze = require("systemd-analyze")?;
    let out = Run::new(&analyze)
        .arg("capability")
        .env("SYSTEMD_COLORS", "0")
        .envs(envs)
        .go();
    assert_ok("systemd-analyze", &out);
    let reference = Run::new(&analyze)
        .arg("capability")
        .env("SYSTEMD_COLORS", "0")
        .no_preload()
        .go();
    assert!(
        reference.success(),
        "reference systemd-analyze failed: {}",
        reference.describe()
    );
    assert!(out.stdout.contains("cap_chown"), "{}", out.describe());
    assert!(
        out.stdout == reference.stdout,
        "systemd-analyze output differs from the one without the library"
    );
    Some(out)
}

/// sort of a 100k-line file: same output as sort without the library.
pub fn sort_100k_lines(envs: &[(&str, &str)]) -> Option<Output> {
    let sort = require("sort")?;
    let dir = call_dir("sort");
    let file = dir.join("lines.txt");
    let mut x: u64 = 12345;
    let mut text = String::new();
    for i in 0..100_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!(
            "{:016x} line {i} {}\n",
            x,
            "w".repeat((x >> 58) as usize)
        ));
    }
    std::fs::write(&file, text).unwrap();
    let out = Run::new(&sort)
        .arg(&file)
        .env("LC_ALL", "C")
        .envs(envs)
        .go();
    assert_ok("sort", &out);
    let reference = Run::new(&sort)
        .arg(&file)
        .env("LC_ALL", "C")
        .no_preload()
        .go();
    assert!(
        reference.success(),
        "reference sort failed: {}",
        reference.describe()
    );
    assert_eq!(out.stdout.lines().count(), 100_000);
    assert!(
        out.stdout == reference.stdout,
        "sort output differs from the one without the library"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}

/// sqlite3: create a table, insert 10k rows in a transaction, aggregate.
pub fn sqlite3_10k_rows(envs: &[(&str, &str)]) -> Option<Output> {
    let sqlite = require("sqlite3")?;
    let dir = call_dir("sqlite3");
    let mut sql = String::from(
        "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\nCREATE INDEX tb ON t(b);\nBEGIN;\n",
    );
    for i in 1..=10_000 {
        sql.push_str(&format!(
            "INSERT INTO t VALUES({i}, 'text {i} {}');\n",
            "z".repeat(i % 40)
        ));
    }
    sql.push_str("COMMIT;\nSELECT count(*), sum(a), sum(length(b)) FROM t;\n");
    sql.push_str("SELECT count(*) FROM t WHERE b LIKE 'text 99%';\n");
    let out = Run::new(sqlite)
        .arg(dir.join("test.db"))
        .stdin(sql)
        .envs(envs)
        .go();
    assert_ok("sqlite3", &out);
    let len: usize = (1..=10_000)
        .map(|i: usize| format!("text {i} ").len() + i % 40)
        .sum();
    // 99, 990..999, 9900..9999
    assert_eq!(
        out.stdout,
        format!("10000|50005000|{len}\n111\n"),
        "{}",
        out.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}
