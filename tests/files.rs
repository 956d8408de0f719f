//! The log and report files must never harm a correct program (docs/LOGFORMAT.md, "Which file
//! a process writes"): programs that run other programs keep every process's records (bash,
//! make, git, an exec in place, a fork child, reports of an exec'd child); the library never
//! writes into the program's own files after the program closes every descriptor; a full disk or
//! a file size limit stops the log with one warning instead of SIGBUS; short-lived threads do not
//! fill the file with reserved space; a normal exit leaves plain text; files planted by somebody
//! else are refused; unusable destinations get one clear warning.
mod common;

use common::{Output, Run, compile, fresh_dir, lib, require, run};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One image's header block and events in a log file.
#[derive(Debug, Default)]
struct Image {
    header: BTreeMap<String, String>,
    /// (op, size) of every `E` record.
    events: Vec<(String, u64)>,
}

impl Image {
    fn key(&self, k: &str) -> &str {
        self.header
            .get(k)
            .unwrap_or_else(|| panic!("no `# {k}` in {:?}", self.header))
    }
    fn pid(&self) -> u64 {
        self.key("pid").parse().unwrap()
    }
    fn has(&self, op: &str, size: u64) -> bool {
        self.events.iter().any(|(o, s)| o == op && *s == size)
    }
}

/// Parses a text log strictly: no NUL byte, a newline at the end, and every line a header
/// line, a module record, a stack record, a valid event or a blank line (filler); every stack an
/// event names (`@ID`) is defined by a stack record of the file. One `Image` per header block
/// (an exec in place appends one).
#[track_caller]
fn parse_log(path: &Path) -> Vec<Image> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.display();
    assert!(!bytes.contains(&0), "{name}: NUL bytes in the log");
    assert!(bytes.ends_with(b"\n"), "{name}: the last record is cut");
    let text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("{name}: not UTF-8"));
    let mut images: Vec<Image> = vec![];
    let mut named = std::collections::HashSet::new();
    let mut defined = std::collections::HashSet::new();
    for (no, line) in text.lines().enumerate() {
        let bad = || panic!("{name}:{}: bad line {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if line == "# ft_malloc log v2" {
            images.push(Image::default());
            continue;
        }
        let Some(img) = images.last_mut() else {
            panic!("{name}: does not start with a header: {line:?}")
        };
        if let Some(h) = line.strip_prefix("# ") {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            img.header.entry(k.to_string()).or_insert(v.to_string());
        } else if let Some(m) = line.strip_prefix("M 0x") {
            if m.split_once(' ')
                .is_none_or(|(b, p)| u64::from_str_radix(b, 16).is_err() || !p.starts_with('/'))
            {
                bad();
            }
        } else if let Some(e) = line.strip_prefix("E ") {
            let Some(e) = common::event::parse(e) else {
                bad()
            };
            if let Some(id) = e.stack_id() {
                named.insert(id.to_string());
            }
            img.events.push((e.op.name().to_string(), e.size));
        } else if let Some(st) = line.strip_prefix("S ") {
            let Some((id, frames)) = st.split_once(' ') else {
                bad()
            };
            if id.parse::<u32>().is_err()
                || !frames.split(',').all(|s| {
                    s.strip_prefix("0x")
                        .is_some_and(|h| u64::from_str_radix(h, 16).is_ok())
                })
            {
                bad();
            }
            defined.insert(id.to_string());
        } else {
            bad();
        }
    }
    assert!(!images.is_empty(), "{name}: empty log");
    let undefined: Vec<&String> = named.difference(&defined).collect();
    assert!(
        undefined.is_empty(),
        "{name}: stacks named but not defined: {undefined:?}"
    );
    images
}

/// The files of `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// Checks the log files of a run whose log path was `dir/base` without `%p`: `base` and
/// `base.PID` only; each parses, every header block of `base.PID` names PID, every process has
/// its own file. Returns pid -> images.
#[track_caller]
fn check_run_logs(dir: &Path, base: &str) -> BTreeMap<u64, Vec<Image>> {
    let mut by_pid = BTreeMap::new();
    for f in files_in(dir) {
        let name = file_name(&f);
        if !name.starts_with(base) {
            continue;
        }
        let images = parse_log(&f);
        let pid = images[0].pid();
        for img in &images {
            assert_eq!(img.pid(), pid, "{name}: header blocks of different pids");
        }
        if name != base {
            assert_eq!(
                name,
                format!("{base}.{pid}"),
                "file named after another pid"
            );
        }
        assert!(
            by_pid.insert(pid, images).is_none(),
            "pid {pid} has two files"
        );
    }
    by_pid
}

/// Lines of stderr that are our warnings.
fn warnings(o: &Output) -> Vec<String> {
    o.warning_lines().iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------ programs running programs

/// A shell loop of children: each used to open the log with O_TRUNC, and bash then died of
/// SIGBUS at its next store into its mapped chunk. Every process now keeps its own file: the
/// shell's `x.log`, each child's `x.log.PID` with the fork child's block and the exec'd
/// program's block.
#[test]
fn bash_children_keep_their_logs() {
    let Some(bash) = require("bash") else { return };
    let dir = fresh_dir("files_bash_children");
    let spec = format!("log={}/x.log", dir.display());
    let o = Run::new(bash)
        .arg("-c")
        .arg("for i in 1 2 3; do /bin/true; done; echo survived")
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_success();
    assert_eq!(o.stdout, "survived\n", "{}", o.describe());
    assert!(warnings(&o).is_empty(), "{}", o.describe());
    let logs = check_run_logs(&dir, "x.log");
    assert_eq!(logs.len(), 4, "bash and 3 children: {:?}", files_in(&dir));
    let bash_log = parse_log(&dir.join("x.log"));
    assert!(bash_log[0].key("program").ends_with("bash"));
    assert!(
        bash_log[0].events.len() > 100,
        "bash's own events are all there"
    );
    for (pid, images) in &logs {
        if *pid == bash_log[0].pid() {
            continue;
        }
        assert_eq!(images.len(), 2, "fork child, then /bin/true: {images:?}");
        assert!(images[0].header.contains_key("forked_from"));
        assert!(images[1].key("program").ends_with("true"), "{images:?}");
    }
}

/// make runs a shell per rule (and the shells run cat): every process's file parses.
#[test]
fn make_children_keep_their_logs() {
    let Some(make) = require("make") else { return };
    let dir = fresh_dir("files_make_children");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        work.join("Makefile"),
        "all: c\n\t@echo done\na:\n\t@sh -c 'echo a > a'\nb:\n\t@cat Makefile > b\nc: a b\n\t@cat a b > c\n",
    )
    .unwrap();
    let logs_dir = dir.join("logs");
    std::fs::create_dir(&logs_dir).unwrap();
    let spec = format!("log={}/m.log", logs_dir.display());
    let o = Run::new(make)
        .arg("-s")
        .cwd(&work)
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_success();
    assert_eq!(o.stdout, "done\n", "{}", o.describe());
    let logs = check_run_logs(&logs_dir, "m.log");
    assert!(logs.len() >= 4, "make and its children: {logs:?}");
    let programs: Vec<&str> = logs.values().flatten().map(|i| i.key("program")).collect();
    assert!(
        programs.iter().any(|p| p.ends_with("/make")),
        "{programs:?}"
    );
    assert!(programs.iter().any(|p| p.ends_with("/cat")), "{programs:?}");
    for images in logs.values() {
        assert!(images.iter().any(|i| !i.events.is_empty()), "{images:?}");
    }
}

/// git gc runs git subcommands (and used to die of SIGBUS the same way).
#[test]
fn git_gc_children_keep_their_logs() {
    let Some(git) = require("git") else { return };
    let dir = fresh_dir("files_git_gc");
    let repo = dir.join("repo");
    let g = |args: &[&str]| {
        let o = Run::new(&git)
            .no_preload()
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .cwd(&repo)
            .go();
        o.assert_success();
    };
    std::fs::create_dir(&repo).unwrap();
    g(&["init", "-q"]);
    for i in 0..5 {
        std::fs::write(repo.join(format!("f{i}")), format!("{i}\n")).unwrap();
        g(&["add", "."]);
        g(&["commit", "-qm", &format!("c{i}")]);
    }
    let logs_dir = dir.join("logs");
    std::fs::create_dir(&logs_dir).unwrap();
    let spec = format!("log={}/g.log", logs_dir.display());
    let o = Run::new(&git)
        .args(["gc", "-q"])
        .cwd(&repo)
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_success();
    let logs = check_run_logs(&logs_dir, "g.log");
    assert!(logs.len() >= 2, "git gc and its children: {logs:?}");
}

/// An exec in place (same pid) appends its header block and records after its former image's:
/// image 1 logged 111, image 2 logged 222 (with `%p` the exec used to truncate the file).
#[test]
fn exec_in_place_appends() {
    for pattern in ["e.%p.log", "e.log"] {
        let dir = fresh_dir("files_exec_in_place");
        let spec = format!("log={}/{pattern}", dir.display());
        let o = run("log_exec_self", &[], &[("MALLOC_DEBUG", &spec)]);
        o.assert_ok_clean();
        let files = files_in(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let images = parse_log(&files[0]);
        assert_eq!(images.len(), 2, "two header blocks: {images:?}");
        assert_eq!(images[0].pid(), images[1].pid());
        assert_eq!(images[0].key("started"), images[1].key("started"));
        assert!(images[0].has("malloc", 111) && images[0].has("free", 111));
        assert!(images[1].has("malloc", 222) && images[1].has("free", 222));
        assert!(!images[1].has("malloc", 111));
    }
}

/// A fork child without `%p` in the path logs to PATH.PID (it used to log nothing).
#[test]
fn fork_child_without_pid_pattern_logs_to_its_own_file() {
    let dir = fresh_dir("files_fork_child");
    let spec = format!("log={}/f.log", dir.display());
    let o = run("log_fork", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    let child: u64 = o.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    let logs = check_run_logs(&dir, "f.log");
    assert_eq!(logs.len(), 2, "{:?}", files_in(&dir));
    let parent = &parse_log(&dir.join("f.log"))[0];
    assert!(parent.has("malloc", 11) && parent.has("malloc", 33));
    assert!(!parent.has("malloc", 22));
    let c = &parse_log(&dir.join(format!("f.log.{child}")))[0];
    assert_eq!(c.pid(), child);
    assert_eq!(c.key("forked_from"), parent.pid().to_string());
    assert!(c.has("malloc", 22) && c.has("malloc", 44));
    assert!(!c.has("malloc", 11) && !c.has("malloc", 33));
}

/// report=PATH: the parent reports (24 bytes), runs an exec'd child that reports (40), and
/// reports again (56). The child used to truncate the parent's report file.
#[test]
fn reports_of_an_exec_child_stay_whole() {
    let dir = fresh_dir("files_report_exec_child");
    let spec = format!("1,on_error=continue,report={}/r.txt", dir.display());
    let o = run("report_exec_child", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    assert_eq!(o.stderr, "", "{}", o.describe());
    let child: u64 = o.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    let parent_text = std::fs::read(dir.join("r.txt")).unwrap();
    let child_text = std::fs::read(dir.join(format!("r.txt.{child}"))).unwrap();
    assert_eq!(files_in(&dir).len(), 2, "{:?}", files_in(&dir));
    for t in [&parent_text, &child_text] {
        assert!(!t.contains(&0), "NUL bytes in a report file");
    }
    let errors = |t: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(t)
            .lines()
            .filter(|l| l.contains("]: ERROR: double free"))
            .map(|l| l.split("(TINY, ").nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        errors(&parent_text),
        ["24 bytes) in free()", "56 bytes) in free()"],
        "{}",
        String::from_utf8_lossy(&parent_text)
    );
    assert_eq!(errors(&child_text), ["40 bytes) in free()"]);
}

/// report=PATH and an exec in place: the new image appends its reports to the file its former
/// image wrote (same pid, changed since the process started).
#[test]
fn reports_of_an_exec_in_place_are_appended() {
    let dir = fresh_dir("files_report_exec_self");
    let spec = format!("1,on_error=continue,report={}/r.txt", dir.display());
    let o = run("report_exec_self", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    assert_eq!(o.stdout, "OK\n", "{}", o.describe());
    assert_eq!(files_in(&dir).len(), 1, "{:?}", files_in(&dir));
    let text = std::fs::read_to_string(dir.join("r.txt")).unwrap();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("]: ERROR: double free"))
        .collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(errors[0].ends_with("(TINY, 24 bytes) in free()"), "{text}");
    assert!(errors[1].ends_with("(TINY, 40 bytes) in free()"), "{text}");
}

/// log= and report= naming the same path (and an exec in place): the log keeps PATH, the reports
/// go to PATH.PID, neither is written into the other.
#[test]
fn log_and_report_on_one_path_stay_apart() {
    let dir = fresh_dir("files_same_path");
    let path = dir.join("same");
    let spec = format!("1,on_error=continue,log={p},report={p}", p = path.display());
    let o = run("report_exec_self", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    let images = parse_log(&path);
    assert_eq!(images.len(), 2, "both images' log blocks");
    let pid = images[0].pid();
    let reports = std::fs::read_to_string(dir.join(format!("same.{pid}"))).unwrap();
    let errors = reports
        .lines()
        .filter(|l| l.contains("]: ERROR: double free"))
        .count();
    assert_eq!(errors, 2, "{reports}");
    assert_eq!(files_in(&dir).len(), 2, "{:?}", files_in(&dir));
}

// ------------------------------------------------------------------ which file

/// Our process's start time (clock ticks since boot) and the boot id, as the library writes
/// them in `# started`.
fn started_line() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    let ticks = after.split_whitespace().nth(19).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    format!("{ticks} {}", boot.trim())
}

/// A log of an earlier run (its writer is gone, nobody holds it) is replaced.
#[test]
fn stale_log_is_replaced() {
    let dir = fresh_dir("files_stale");
    let path = dir.join("s.log");
    // The pid of a process that has ended.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(
        &path,
        format!("# ft_malloc log v2\n# pid {pid}\n# started 5 x\nE 1 1 - m 10 987654 0x1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Last changed an hour ago: before the program started.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let spec = format!("log={}", path.display());
    let o = run("log_sequence", &[], &[("MALLOC_DEBUG", &spec)]);
    o.assert_success();
    assert_eq!(files_in(&dir).len(), 1, "{:?}", files_in(&dir));
    let images = parse_log(&path);
    assert_eq!(images.len(), 1);
    assert!(
        !images[0].has("malloc", 987654),
        "the stale records are gone"
    );
    assert!(images[0].key("program").contains("log_sequence"));
}

/// A log held by a live process (LOCK_SH), or written by one (even without the lock, as during
/// its exec), is left alone: the program writes PATH.PID.
#[test]
fn log_of_a_live_process_is_left_alone() {
    for locked in [true, false] {
        let dir = fresh_dir("files_live_writer");
        let path = dir.join("l.log");
        let content = format!(
            "# ft_malloc log v2\n# pid {}\n# started {}\nE 1 1 - m 10 424242 0x1\n",
            std::process::id(),
            started_line()
        );
        std::fs::write(&path, &content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let held = std::fs::File::open(&path).unwrap();
        if locked {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own.
            assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_SH) }, 0);
        }
        let spec = format!("log={}", path.display());
        let o = run("log_sequence", &[], &[("MALLOC_DEBUG", &spec)]);
        o.assert_success();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "locked={locked}: the live process's file was touched"
        );
        let files = files_in(&dir);
        assert_eq!(files.len(), 2, "{files:?}");
        let images = parse_log(&files[1]);
        assert!(file_name(&files[1]).starts_with("l.log."));
        assert!(images[0].key("program").contains("log_sequence"));
        drop(held);
    }
}

/// A daemon (fork, the first process exits, the child closes every descriptor) runs a program
/// after its parent is gone: PATH, written by the exited first process, is still the run's (the
/// daemon lives) and must not be taken as stale, neither by the fork child (which may claim
/// its file after its parent has exited) nor by the grandchild. A few rounds: the first race
/// depends on timing.
#[test]
fn daemon_children_leave_the_first_log_alone() {
    for round in 0..8 {
        daemon_round(round);
    }
}

fn daemon_round(round: u32) {
    let Some(bash) = require("bash") else { return };
    let dir = fresh_dir(&format!("files_daemon_{round}"));
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let script = format!(
        "LD_PRELOAD={lib} {prog} {dir}; for i in $(seq 500); do [ -e {dir}/done ] && exit 0; sleep 0.02; done; exit 1",
        lib = lib().display(),
        prog = compile("log_daemon_children").display(),
        dir = dir.display(),
    );
    let o = Run::new(bash)
        .no_preload()
        .args(["-c", &script])
        .env("MALLOC_DEBUG", format!("log={}/d.log", logs.display()))
        .go();
    o.assert_success();
    let done = std::fs::read_to_string(dir.join("done")).unwrap();
    let pids: Vec<u64> = done
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let by_pid = check_run_logs(&logs, "d.log");
    assert_eq!(by_pid.len(), 3, "{:?}", files_in(&logs));
    let first = &parse_log(&logs.join("d.log"))[0];
    assert_eq!(first.pid(), pids[0]);
    assert!(
        first.has("malloc", 11),
        "the first process's records are intact"
    );
    let child = &by_pid[&pids[1]][0];
    assert!(child.has("malloc", 22));
    assert_eq!(child.key("forked_from"), pids[0].to_string());
    assert!(by_pid[&pids[2]].iter().any(|i| i.has("malloc", 33)));
}

// ------------------------------------------------------------------ the program's descriptors

/// A program closes every descriptor above 2 (a close loop; close_range) and opens its data
/// file, which gets the log's old number: our records used to go into it. The data stays 20
/// bytes, and the log goes on (opened again by name: the last block, 777777 bytes, is logged).
#[test]
fn closed_log_descriptor_never_reaches_the_program_file() {
    for mode in ["loop", "range"] {
        let dir = fresh_dir("files_close_log");
        let data = dir.join("data");
        let spec = format!("log={}/c.log", dir.display());
        let o = run(
            "close_all_then_write",
            &[data.to_str().unwrap(), mode, "200000"],
            &[("MALLOC_DEBUG", &spec)],
        );
        o.assert_ok_clean();
        assert_eq!(
            std::fs::read(&data).unwrap(),
            b"data of the program\n",
            "{mode}: the program's file was written to"
        );
        let images = parse_log(&dir.join("c.log"));
        assert!(images[0].has("malloc", 777777), "{mode}: the log stopped");
    }
}

/// The same with report=PATH: the report of a double free lands in our report file, not in
/// the program's data file.
#[test]
fn closed_report_descriptor_never_reaches_the_program_file() {
    let dir = fresh_dir("files_close_report");
    let data = dir.join("data");
    let spec = format!("1,on_error=continue,report={}/r.txt", dir.display());
    // The first report opens the file: a warm-up error makes it open before the close.
    let o = run(
        "close_all_then_write",
        &[data.to_str().unwrap(), "range", "1000", "error"],
        &[("MALLOC_DEBUG", &spec)],
    );
    o.assert_success();
    assert_eq!(std::fs::read(&data).unwrap(), b"data of the program\n");
    let report = std::fs::read_to_string(dir.join("r.txt")).unwrap();
    assert!(
        report.contains("]: ERROR: double free of 0x"),
        "{report}\n{}",
        o.describe()
    );
}

/// The saved copy of stderr (used when fd 2 is closed) is checked before use: the program
/// closed it and put its data file on its number.
#[test]
fn saved_stderr_is_checked_before_use() {
    let dir = fresh_dir("files_saved_stderr");
    let data = dir.join("data");
    let o = run(
        "close_stderr_dup_high",
        &[data.to_str().unwrap()],
        &[("MALLOC_DEBUG", "1,on_error=continue")],
    );
    o.assert_success();
    assert_eq!(
        std::fs::read(&data).unwrap(),
        b"data of the program\n",
        "a report went into the program's file"
    );
}

// ------------------------------------------------------------------ space

/// RLIMIT_FSIZE (SIGXFSZ ignored): the log stops with one warning, the program goes on, and
/// what was written is plain text.
#[test]
fn file_size_limit_stops_the_log_with_one_warning() {
    for format in ["text", "mtrace"] {
        let dir = fresh_dir("files_fsize");
        let path = dir.join("x.log");
        let spec = format!("log={},log_format={format}", path.display());
        let o = run(
            "log_churn",
            &["200000", "1", "limit"],
            &[("MALLOC_DEBUG", &spec)],
        );
        o.assert_success();
        assert_eq!(o.stdout, "OK\n");
        let w = warnings(&o);
        assert_eq!(w.len(), 1, "{format}: {}", o.describe());
        assert!(
            w[0].ends_with(&format!(
                "]: WARNING: log: '{}' cannot grow (EFBIG: File too large); logging stops, the program goes on",
                path.display()
            )),
            "{}",
            w[0]
        );
        assert!(std::fs::metadata(&path).unwrap().len() <= 256 << 10);
        if format == "text" {
            parse_log(&path);
        } else {
            assert!(!std::fs::read(&path).unwrap().contains(&0));
        }
    }
}

/// A full file system (a 1 MiB tmpfs, mounted in a mount namespace of our own: needs root):
/// one warning, no SIGBUS, in both formats.
#[test]
fn full_file_system_stops_the_log_with_one_warning() {
    let Some(unshare) = require("unshare") else {
        return;
    };
    let dir = fresh_dir("files_tmpfs");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let probe = Run::new(&unshare)
        .no_preload()
        .arg("-m")
        .arg("sh")
        .arg("-c")
        .arg(format!("mount -t tmpfs -o size=1m tmpfs {}", mnt.display()))
        .go();
    if !probe.success() {
        println!("skipped: cannot mount a tmpfs: {}", probe.stderr);
        return;
    }
    let prog = compile("log_churn");
    for format in ["text", "mtrace"] {
        let log = mnt.join("x.log");
        let script = format!(
            "mount -t tmpfs -o size=1m tmpfs {mnt} && LD_PRELOAD={lib} MALLOC_DEBUG=log={log},log_format={format} {prog} 200000 1 join; echo status $?; tr -d '\\n' < {log} | wc -c; tr -cd '\\000' < {log} | wc -c",
            mnt = mnt.display(),
            lib = lib().display(),
            log = log.display(),
            prog = prog.display(),
        );
        let o = Run::new(&unshare)
            .no_preload()
            .args(["-m", "sh", "-c", &script])
            .go();
        let out: Vec<&str> = o.stdout.lines().collect();
        assert_eq!(out.first(), Some(&"OK"), "{format}: {}", o.describe());
        assert_eq!(out.get(1), Some(&"status 0"), "{format}: {}", o.describe());
        assert!(
            out.get(2)
                .is_some_and(|n| n.parse::<u64>().unwrap() > 100_000),
            "{format}: the log holds what fitted: {}",
            o.describe()
        );
        assert_eq!(
            out.get(3),
            Some(&"0"),
            "{format}: NUL bytes: {}",
            o.describe()
        );
        let w = warnings(&o);
        assert_eq!(w.len(), 1, "{format}: {}", o.describe());
        assert!(
            w[0].contains("cannot grow (ENOSPC: No space left on device); logging stops"),
            "{}",
            w[0]
        );
    }
}

/// Bytes of the non-blank lines of a file.
fn content_bytes(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.len() + 1)
        .sum()
}

/// Thousands of short-lived threads: the file holds their records, not reserved chunks (it
/// used to be 97% NUL bytes). Threads that log more get chunks of their own; the file stays
/// within a small factor of its content.
#[test]
fn short_lived_threads_leave_no_reserved_space() {
    let dir = fresh_dir("files_short_threads");
    let path = dir.join("t.log");
    let spec = format!("log={}", path.display());
    let o = run(
        "threads_short_lived",
        &["2000", "8"],
        &[("MALLOC_DEBUG", &spec)],
    );
    o.assert_ok_clean();
    let images = parse_log(&path);
    let mallocs = images[0]
        .events
        .iter()
        .filter(|(op, _)| op == "malloc")
        .count();
    assert!(mallocs >= 16000, "every thread's events: {mallocs}");
    let bytes = std::fs::read(&path).unwrap();
    let content = content_bytes(&bytes);
    assert!(
        bytes.len() <= content + content / 4,
        "file {} bytes for {content} bytes of records",
        bytes.len()
    );
    // 16 threads logging 3000 pairs each (own chunks), joined.
    let o = run(
        "log_churn",
        &["3000", "16", "join"],
        &[("MALLOC_DEBUG", &spec)],
    );
    o.assert_ok_clean();
    parse_log(&path);
    let bytes = std::fs::read(&path).unwrap();
    let content = content_bytes(&bytes);
    assert!(
        bytes.len() <= 2 * content,
        "file {} bytes for {content} bytes of records",
        bytes.len()
    );
}

/// At a normal exit the log is plain text (no NUL byte, every line a record): one thread; four
/// threads joined; four threads still allocating when main returns.
#[test]
fn normal_exit_leaves_plain_text() {
    // (Threads killed at exit in the middle of a record are what the running case checks:
    // it runs a few times.)
    let running = ["100000", "4", "running"];
    for args in [
        ["300000", "0", "join"],
        ["100000", "4", "join"],
        running,
        running,
        running,
        running,
        running,
    ] {
        let dir = fresh_dir("files_plain_text");
        let path = dir.join("p.log");
        let spec = format!("log={}", path.display());
        let o = run("log_churn", &args, &[("MALLOC_DEBUG", &spec)]);
        o.assert_ok_clean();
        let images = parse_log(&path);
        let frees = images[0]
            .events
            .iter()
            .filter(|(op, _)| op == "free")
            .count();
        if args[2] == "join" {
            let threads: usize = args[1].parse::<usize>().unwrap().max(1);
            assert!(
                frees >= threads * args[0].parse::<usize>().unwrap(),
                "{frees}"
            );
        }
    }
}

/// sqlite3 (single-threaded) used to leave NUL bytes at every chunk boundary.
#[test]
fn sqlite3_log_is_plain_text() {
    let Some(sqlite3) = require("sqlite3") else {
        return;
    };
    let dir = fresh_dir("files_sqlite3");
    let path = dir.join("sq.log");
    let o = Run::new(sqlite3)
        .stdin(
            "create table t(a, b);\n\
             with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000)\n\
             insert into t select x, hex(randomblob(20)) from c;\n\
             select count(*), sum(length(b)) from t;\n",
        )
        .env("MALLOC_DEBUG", format!("log={}", path.display()))
        .go();
    o.assert_success();
    assert_eq!(o.stdout, "20000|800000\n");
    let images = parse_log(&path);
    assert!(images[0].events.len() > 100_000);
}

// ------------------------------------------------------------------ planted files

/// A file somebody else planted at the path is refused with one warning and left as it was:
/// owned by another user (even mode 666), a FIFO (it let its owner read the log), writable by
/// group or others, a second hard link, a symbolic link; the same for report=.
#[test]
fn planted_files_are_refused() {
    let dir = fresh_dir("files_planted");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    type Plant = fn(&Path);
    let cases: Vec<(&str, Plant, &str)> = vec![
        (
            "other user",
            |p| {
                std::fs::write(p, "planted\n").unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
                std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
            },
            "(owned by uid 65534, not by this process's uid 0)",
        ),
        (
            "fifo",
            |p| {
                let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
                // SAFETY: a NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
            },
            "(a FIFO, not a regular file)",
        ),
        (
            "group writable",
            |p| {
                std::fs::write(p, "planted\n").unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o620)).unwrap();
            },
            "(writable by group or others (mode 0620))",
        ),
        (
            "hard link",
            |p| {
                let other = p.with_extension("other");
                std::fs::write(&other, "planted\n").unwrap();
                std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
                std::fs::hard_link(&other, p).unwrap();
            },
            "(it has 2 hard links)",
        ),
        (
            "symlink",
            |p| {
                let other = p.with_extension("other");
                std::fs::write(&other, "planted\n").unwrap();
                std::os::unix::fs::symlink(&other, p).unwrap();
            },
            "(a symbolic link, not a regular file)",
        ),
    ];
    for (what, plant, why) in cases {
        if what == "other user" && !root {
            println!("skipped: {what} (needs root for chown)");
            continue;
        }
        for report in [false, true] {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("planted");
            plant(&path);
            let before = std::fs::symlink_metadata(&path).unwrap();
            let (spec, prog, kind, then) = if report {
                (
                    format!("1,on_error=continue,report={}", path.display()),
                    "report_exec_child",
                    "report",
                    "reports go to stderr",
                )
            } else {
                (
                    format!("log={}", path.display()),
                    "log_sequence",
                    "log",
                    "no log",
                )
            };
            let o = Run::new(compile(prog))
                .env("MALLOC_DEBUG", &spec)
                .timeout(std::time::Duration::from_secs(30))
                .go();
            o.assert_success();
            let w = warnings(&o);
            let want = format!(
                "]: WARNING: {kind}: not using '{}' {why}; {then}",
                path.display()
            );
            assert!(
                !w.is_empty() && w.iter().all(|l| l.ends_with(&want)),
                "{what}, {kind}: want ...{want}\n{}",
                o.describe()
            );
            let after = std::fs::symlink_metadata(&path).unwrap();
            assert_eq!(
                (after.len(), after.mode(), after.uid()),
                (before.len(), before.mode(), before.uid()),
                "{what}, {kind}: the planted file changed"
            );
            if before.file_type().is_file() {
                assert_eq!(std::fs::read(&path).unwrap(), b"planted\n", "{what}");
            }
            if report {
                assert!(
                    o.stderr.contains("]: ERROR: double free of 0x"),
                    "{}",
                    o.describe()
                );
            }
        }
    }
}

/// A file we create is ours alone: mode 0600, even under a permissive umask.
#[test]
fn new_files_are_private() {
    let dir = fresh_dir("files_private");
    let Some(sh) = require("sh") else { return };
    let log = dir.join("n.log");
    let o = Run::new(sh)
        .no_preload()
        .arg("-c")
        .arg(format!(
            "umask 0; LD_PRELOAD={} exec {}",
            lib().display(),
            compile("log_sequence").display()
        ))
        .env("MALLOC_DEBUG", format!("log={}", log.display()))
        .go();
    o.assert_success();
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
}

// ------------------------------------------------------------------ messages

/// Each unusable destination gets one WARNING line that says what and why, errors by name and
/// text, never a bare errno number; the program goes on.
#[test]
fn unusable_destinations_get_one_clear_warning() {
    let dir = fresh_dir("files_messages");
    let missing = dir.join("no/such/dir/x.log");
    let cases: Vec<(String, &str, String)> = vec![
        (
            "log=/dev/full".into(),
            "log_sequence",
            "]: WARNING: log: not using '/dev/full' (a character device, not a regular file); no log".into(),
        ),
        (
            "log=fd:77".into(),
            "log_sequence",
            "]: WARNING: log: cannot use fd:77 (EBADF: Bad file descriptor); no log".into(),
        ),
        (
            format!("log={}", missing.display()),
            "log_sequence",
            format!(
                "]: WARNING: log: cannot create '{}' (ENOENT: No such file or directory); no log",
                missing.display()
            ),
        ),
        (
            "1,report=fd:77".into(),
            "log_sequence",
            "]: WARNING: report: cannot use fd:77 (EBADF: Bad file descriptor); reports go to stderr".into(),
        ),
        (
            format!("1,on_error=continue,report={}", missing.display()),
            "report_exec_child",
            format!(
                "]: WARNING: report: cannot create '{}' (ENOENT: No such file or directory); reports go to stderr",
                missing.display()
            ),
        ),
    ];
    for (debug, prog, want) in cases {
        let o = run(prog, &[], &[("MALLOC_DEBUG", &debug)]);
        o.assert_success();
        let w = warnings(&o);
        // report_exec_child runs a second process: one warning each.
        let processes = if prog == "report_exec_child" { 2 } else { 1 };
        assert_eq!(w.len(), processes, "{debug}: {}", o.describe());
        assert!(
            w.iter().all(|l| l.ends_with(&want)),
            "{debug}: want ...{want}\n{}",
            o.describe()
        );
        assert!(!o.stderr.contains("(errno "), "{}", o.describe());
    }
    // log=fd:N on /dev/full: the first write fails, one warning, the program goes on.
    let Some(bash) = require("bash") else { return };
    let o = Run::new(bash)
        .no_preload()
        .arg("-c")
        .arg(format!(
            "exec 5>/dev/full; LD_PRELOAD={} exec {}",
            lib().display(),
            compile("log_sequence").display()
        ))
        .env("MALLOC_DEBUG", "log=fd:5")
        .go();
    o.assert_success();
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(
        w[0].ends_with(
            "]: WARNING: log: fd:5 cannot be written (ENOSPC: No space left on device); logging stops, the program goes on"
        ),
        "{}",
        w[0]
    );
}

/// `log=fd:N` into a pipe whose reader stops early (`| head`): the write that finds no reader
/// raises no SIGPIPE in the program (whose default action would end it, for a write of ours):
/// one warning, the log stops, the program goes on to its end.
#[test]
fn a_log_pipe_whose_reader_left_ends_the_log_not_the_program() {
    let Some(bash) = require("bash") else { return };
    let o = Run::new(bash)
        .no_preload()
        .arg("-c")
        .arg(format!(
            "exec 4>&1; {{ LD_PRELOAD={} {} 5>&1 1>&4; echo \"rc=$?\" >&4; }} | head -c 64 >/dev/null",
            lib().display(),
            compile("log_many").display()
        ))
        .env("MALLOC_DEBUG", "log=fd:5")
        .go();
    assert_eq!(o.stdout, "survived\nrc=0\n", "{}", o.describe());
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(
        w[0].ends_with(
            "]: WARNING: log: fd:5 cannot be written (EPIPE: Broken pipe); logging stops, the program goes on"
        ),
        "{}",
        w[0]
    );
}

/// Somebody else truncates the log while it is mapped (a user's `> file`): the library must not
/// die of SIGBUS. Needs the fault handler to call `log::bus_fault` first for SIGBUS.
#[test]
fn log_truncated_by_another_program() {
    let dir = fresh_dir("files_truncated");
    let path = dir.join("t.log");
    let spec = format!("1,log={}", path.display());
    let o = run(
        "log_truncated_under_us",
        &[path.to_str().unwrap()],
        &[("MALLOC_DEBUG", &spec)],
    );
    o.assert_success();
    assert_eq!(o.stdout, "OK\n");
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(w[0].contains("the log file was truncated by another program"));
    assert!(!std::fs::read(&path).unwrap().contains(&0));
}

/// Relative `log=` and `report=` paths name files of the directory the program started in,
/// also for a child forked after the program changed directory: the log there (the child's
/// under PATH.PID), the child's report too, nothing in the other directory.
#[test]
fn relative_paths_keep_the_starting_directory() {
    let start = fresh_dir("files_cwd_start");
    let elsewhere = fresh_dir("files_cwd_elsewhere");
    let o = Run::new(compile("chdir_fork"))
        .arg(&elsewhere)
        .cwd(&start)
        .env(
            "MALLOC_DEBUG",
            "1,on_error=continue,log=r.log,report=rep.%p.txt",
        )
        .go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "done\n", "{}", o.describe());
    assert_eq!(files_in(&elsewhere), Vec::<PathBuf>::new());
    let names: Vec<String> = files_in(&start).iter().map(|f| file_name(f)).collect();
    assert!(names.iter().any(|n| n == "r.log"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("r.log.")), "{names:?}");
    let reports: Vec<&String> = names.iter().filter(|n| n.starts_with("rep.")).collect();
    assert_eq!(reports.len(), 1, "{names:?}");
    let text = std::fs::read_to_string(start.join(reports[0])).unwrap();
    assert!(text.contains("ERROR: double free of "), "{text}");
}

/// A program started with fd 2 closed opens its own file, which gets fd 2: no report or warning of
/// ours goes into that file (it would corrupt the program's data); with `on_error=continue` the
/// program goes on, its file holding its two lines alone.
#[test]
fn nothing_of_ours_goes_into_a_file_that_took_fd_2() {
    let Some(bash) = require("bash") else { return };
    let dir = fresh_dir("files_fd2");
    let data = dir.join("data.txt");
    for debug in ["", "1,on_error=continue", "1,on_error=continue,log=stderr"] {
        let o = Run::new(&bash)
            .no_preload()
            .arg("-c")
            .arg(format!(
                "exec 2>&-; LD_PRELOAD={} exec {} {}",
                lib().display(),
                compile("stderr_closed").display(),
                data.display()
            ))
            .env("MALLOC_DEBUG", debug)
            .go();
        assert_eq!(o.status, Some(0), "[{debug}] {}", o.describe());
        assert_eq!(o.stdout, "first\nlast\n", "[{debug}] {}", o.describe());
    }
}

/// A program that redirects its stderr to a file of its own: the report still goes to the stderr
/// it was started with (as valgrind's do), and the file holds the program's line alone.
#[test]
fn reports_go_to_the_stderr_the_program_started_with() {
    let dir = fresh_dir("files_fd2_redirected");
    let file = dir.join("own.txt");
    let o = Run::new(compile("stderr_redirected"))
        .arg(&file)
        .env("MALLOC_DEBUG", "1,on_error=continue")
        .go();
    assert_eq!(o.status, Some(0), "{}", o.describe());
    assert_eq!(o.stdout, "done\n", "{}", o.describe());
    assert!(
        o.stderr
            .lines()
            .next()
            .is_some_and(|l| l.contains("]: ERROR: double free of 0x")),
        "{}",
        o.describe()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "program line\n");
}

/// The real programs of the suite (bash, python3 with threads, perl, git, gcc with its
/// cc1/as/ld children, clang++, rustc, sort, sqlite3) under `log=` without `%p`: each runs as
/// usual, and every process's file (the first process's PATH, the others' PATH.PID) parses
/// whole.
#[test]
fn real_programs_keep_every_process_log() {
    for (name, check) in common::real::ALL {
        let dir = fresh_dir(&format!("files_real_{name}"));
        let spec = format!("log={}/r.log", dir.display());
        let Some(o) = check(&[("MALLOC_DEBUG", &spec)]) else {
            continue;
        };
        assert!(warnings(&o).is_empty(), "{name}: {}", o.describe());
        let logs = check_run_logs(&dir, "r.log");
        assert!(!logs.is_empty(), "{name}: no log");
        assert_eq!(
            logs.len(),
            files_in(&dir).len(),
            "{name}: files not named PATH or PATH.PID: {:?}",
            files_in(&dir)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// python3: threads, a child started with subprocess (vfork + exec: no fork handler runs) and
/// one with os.fork: every process has its file.
#[test]
fn python_children_keep_their_logs() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = fresh_dir("files_python");
    let spec = format!("log={}/py.log", dir.display());
    let script = "import os, subprocess, threading\n\
        def work():\n    x = [str(i) for i in range(20000)]\n\
        ts = [threading.Thread(target=work) for _ in range(4)]\n\
        [t.start() for t in ts]\n[t.join() for t in ts]\n\
        subprocess.run(['true'], check=True)\n\
        pid = os.fork()\n\
        if pid == 0:\n    x = [str(i) for i in range(1000)]\n    os._exit(0)\n\
        os.waitpid(pid, 0)\nprint('OK')\n";
    let o = Run::new(python)
        .args(["-c", script])
        .env("MALLOC_DEBUG", &spec)
        .go();
    o.assert_success();
    assert_eq!(o.stdout, "OK\n", "{}", o.describe());
    let logs = check_run_logs(&dir, "py.log");
    let programs: Vec<&str> = logs.values().flatten().map(|i| i.key("program")).collect();
    assert!(
        programs.iter().any(|p| p.ends_with("/true")),
        "{programs:?}"
    );
    assert!(
        logs.values()
            .any(|imgs| imgs[0].header.contains_key("forked_from")),
        "the os.fork child's file"
    );
}
