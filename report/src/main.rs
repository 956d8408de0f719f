//! ft-malloc-report: reads ft_malloc allocation logs (docs/LOGFORMAT.md).
//!
//! Every command reads the log in one streaming pass with bounded memory (O(live blocks +
//! distinct call stacks)); corrupt lines are reported by number and skipped.

mod commands;
mod flame;
mod launch;
mod parse;
mod plot;
mod reader;
mod replay;
mod stats;
mod symbolize;
mod symbols;
mod synth;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ft-malloc-report",
    version,
    about = "Read ft_malloc allocation logs: summary, leaks, top stacks, block history, heap replay, plots, flame graphs",
    after_help = "Examples:\n  \
        ft-malloc-report summary /tmp/app.log\n  \
        ft-malloc-report leaks /tmp/app.log\n  \
        ft-malloc-report top /tmp/app.log --limit 5\n  \
        ft-malloc-report history /tmp/app.log 0x7f3a20000040\n  \
        ft-malloc-report heap /tmp/app.log --at 1200\n  \
        ft-malloc-report plot /tmp/app.log memory.svg\n  \
        ft-malloc-report flame /tmp/app.log > app.folded\n  \
        ft-malloc-report flame /tmp/app.log heap.svg\n  \
        prog 2>&1 | ft-malloc-report symbolize"
)]
struct Cli {
    /// Print module+offset instead of reading debug info (faster).
    #[arg(long, global = true)]
    no_symbols: bool,
    /// No progress bar (it is shown only on a terminal, for logs over 64 MiB).
    #[arg(long, global = true)]
    no_progress: bool,
    /// Do not print corrupt lines (they are still counted).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print the reading speed on stderr at the end.
    #[arg(long, global = true, hide = true)]
    speed: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Program, duration, calls per function, total and peak bytes (and when), size histogram.
    Summary {
        /// Log file (`-` = standard input).
        log: String,
        /// One line: peak, allocations, live at end (for scripts).
        #[arg(long)]
        brief: bool,
    },
    /// Blocks never freed, grouped by whole allocation stack, largest first.
    ///
    /// Each stack is headed by its site: its first frame outside the C/C++ runtime (libc,
    /// libstdc++, libgcc_s, the loader, libm, libpthread, libpython), the program's own line
    /// that asked for memory. Frames are printed one per line as `function (file:line)`, the
    /// calls inlined at a frame under it as `inlined into caller (file:line)`.
    Leaks {
        log: String,
        /// A few lines: totals and the top stacks (for scripts).
        #[arg(long)]
        brief: bool,
        /// Stacks shown (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Frames shown per stack, innermost first (the calls inlined at a frame are listed
        /// under it and not counted).
        #[arg(long, default_value_t = 8)]
        frames: usize,
    },
    /// The stacks that allocate most: calls, bytes, temporary allocations, largest at the peak.
    ///
    /// Grouped by whole stack; each row is named by its site (the first frame outside the
    /// C/C++ runtime) and numbered [K], and the numbered stacks are listed after the tables.
    Top {
        log: String,
        /// Stacks shown per table.
        #[arg(long, short = 'n', default_value_t = 10)]
        limit: usize,
        /// Only this table.
        #[arg(long, value_enum, default_value_t = TopBy::All)]
        by: TopBy,
        /// Frames shown per stack, innermost first (inlined calls listed under their frame).
        #[arg(long, default_value_t = 8)]
        frames: usize,
    },
    /// Every event that touched the block(s) holding ADDR, in order, each with its stack.
    History {
        log: String,
        /// Address in hex, with or without 0x; any address inside a block works.
        addr: String,
        /// Frames shown per event, innermost first (inlined calls listed under their frame).
        #[arg(long, default_value_t = 8)]
        frames: usize,
    },
    /// The live blocks after event number SEQ (default: the end of the log), by address.
    Heap {
        log: String,
        /// Event number (seq): replay the events up to and including it.
        #[arg(long)]
        at: Option<u64>,
        /// Only `START - END : N bytes` lines and `Total : N bytes`, like show_alloc_mem.
        #[arg(long)]
        plain: bool,
    },
    /// Memory in use over time and the size histogram, as an SVG or PNG file.
    Plot {
        log: String,
        /// Output file: .svg or .png.
        out: String,
        /// Horizontal axis: time, or event number (as memusage without -t).
        #[arg(long, value_enum, default_value_t = plot::XAxis::Time)]
        x: plot::XAxis,
        #[arg(long, default_value_t = 1000)]
        width: u32,
        #[arg(long, default_value_t = 640)]
        height: u32,
    },
    /// Bytes per call stack: collapsed stacks on stdout, or a flame graph into OUT.svg.
    ///
    /// Collapsed stacks are what flamegraph.pl, inferno and speedscope read:
    /// `root;caller;...;leaf BYTES`, one line per stack, outermost frame first. The bytes are
    /// those of the blocks live at the peak of the heap, or with --all those of every
    /// allocation. Frames are function names, the calls inlined at an address expanded into
    /// frames of their own.
    Flame {
        log: String,
        /// Draw the flame graph into this SVG file instead.
        out: Option<String>,
        /// Bytes of every allocation of the run, not the live heap at its peak.
        #[arg(long)]
        all: bool,
    },
    /// Filter: copy stdin to stdout, rewriting `/path/module+0xOFF` into `function (file:line)`.
    ///
    /// The calls inlined at the address follow as `, inlined into caller (file:line)`. The
    /// library's frame lines `#N 0xADDR /path/module+0xOFF name+0xOFF` become
    /// `#N 0xADDR function (file:line)`, each inlined call on a line of its own under it.
    Symbolize {
        /// Write `errors N` and `leaks N` (ft_malloc report lines seen) to this file at the end.
        #[arg(long)]
        counts: Option<String>,
    },
    /// The end of a run of scripts/ft-malloc: what the library announced, its verdict, the
    /// children; exit status 3 when it reported errors, 4 when it was not loaded at all.
    #[command(hide = true)]
    RunSummary {
        /// The announce file (FT_MALLOC_ANNOUNCE).
        #[arg(long)]
        announce: String,
        /// What `symbolize --counts` noted on the program's stderr.
        #[arg(long)]
        counts: Option<String>,
        /// The program's status as the shell has it (128+N: signal N).
        #[arg(long, allow_hyphen_values = true)]
        status: i32,
        /// The launcher's pid (the program's parent).
        #[arg(long)]
        launcher_pid: u32,
        /// The program, as found in PATH (to tell why the library was not loaded into it).
        #[arg(long)]
        program: String,
        /// The program as the command line names it.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        library: String,
        /// check, guard, sample or debug (for the advice after a crash).
        #[arg(long, default_value = "check")]
        mode: String,
        /// Every process in detail.
        #[arg(long)]
        full: bool,
        /// Only say so when the library was not loaded.
        #[arg(long)]
        brief_only: bool,
        /// The command line, as shown in the heading.
        #[arg(long, default_value = "")]
        command: String,
        /// The run was traced (--trace): the logs are listed, or said missing.
        #[arg(long)]
        traced: bool,
        /// Logs kept with --trace.
        #[arg(long)]
        log: Vec<String>,
    },
    /// Read the log and only count its events (to time the parsing alone).
    #[command(hide = true)]
    Count { log: String },
    /// Write a synthetic log (for benchmarks).
    #[command(hide = true)]
    Gen {
        out: String,
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How events name their stack.
        #[arg(long, value_enum, default_value_t = synth::Form::Caller)]
        form: synth::Form,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TopBy {
    All,
    Calls,
    Bytes,
    Temporary,
    Peak,
}

pub struct Global {
    pub symbols: bool,
    pub opts: reader::Options,
    pub speed: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = Global {
        symbols: !cli.no_symbols,
        opts: reader::Options {
            progress: !cli.no_progress,
            warn: !cli.quiet,
        },
        speed: cli.speed,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let r = match cli.cmd {
        Cmd::Summary { log, brief } => commands::summary(&g, &log, brief, &mut out),
        Cmd::Leaks {
            log,
            brief,
            limit,
            frames,
        } => commands::leaks(&g, &log, brief, limit, frames, &mut out),
        Cmd::Top {
            log,
            limit,
            by,
            frames,
        } => commands::top(&g, &log, limit, by, frames, &mut out),
        Cmd::Flame {
            log,
            out: file,
            all,
        } => commands::flame(&g, &log, file.as_deref(), all, &mut out),
        Cmd::History { log, addr, frames } => match parse::parse_addr(&addr) {
            Some(a) => commands::history(&g, &log, a, frames, &mut out),
            None => Err(commands::Error::Usage(format!("not an address: {addr}"))),
        },
        Cmd::Heap { log, at, plain } => commands::heap(&g, &log, at, plain, &mut out),
        Cmd::Plot {
            log,
            out: file,
            x,
            width,
            height,
        } => commands::plot(&g, &log, &file, x, width, height, &mut out),
        Cmd::Symbolize { counts } => {
            symbolize::run(g.symbols, counts.as_deref()).map_err(commands::Error::Io)
        }
        Cmd::RunSummary {
            announce,
            counts,
            status,
            launcher_pid,
            program,
            name,
            library,
            mode,
            full,
            brief_only,
            command,
            traced,
            log,
        } => {
            let quiet = Global {
                symbols: g.symbols,
                opts: reader::Options {
                    progress: false,
                    warn: false,
                },
                speed: false,
            };
            let logs = log
                .into_iter()
                .map(|l| match commands::brief(&quiet, &l) {
                    Ok((pid, line)) => (l, pid, line),
                    Err(e) => (l.clone(), None, format!("{l}: {e}")),
                })
                .collect();
            let o = launch::Options {
                announce: announce.into(),
                counts: counts.map(Into::into),
                status,
                launcher_pid,
                name: if name.is_empty() {
                    program.clone()
                } else {
                    name
                },
                program: program.into(),
                library: library.into(),
                mode,
                full,
                quiet: brief_only,
                command,
                traced,
                logs,
            };
            match launch::run_summary(&o) {
                Ok((text, code)) => {
                    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                    return ExitCode::from(code);
                }
                Err(e) => Err(commands::Error::Io(e)),
            }
        }
        Cmd::Count { log } => commands::count(&g, &log, &mut out),
        Cmd::Gen {
            out: file,
            events,
            seed,
            form,
        } => synth::generate(&file, events, seed, form).map_err(commands::Error::Io),
    };
    let r = r.and_then(|()| out.flush().map_err(commands::Error::Io));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            drop(out);
            eprintln!("ft-malloc-report: {e}");
            ExitCode::from(match e {
                commands::Error::Usage(_) => 2,
                _ => 1,
            })
        }
    }
}
