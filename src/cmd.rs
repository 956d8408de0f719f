//! `show_alloc_mem_ex_cmd`: one command of the dump, for when the whole heap is too much.
//! A bad command or address prints one error line, never a crash. Like the dump, commands take
//! the allocator locks only a bounded number of times and read memory only inside blocks found
//! under those locks.

use crate::block::State;
use crate::dump;
use crate::fmt::{Line, parse_num};
use crate::symbols::{Lookup, Symbolizer};
use crate::sys;
use crate::walk::View;

const HELP: &[u8] = concat!(
    "show_alloc_mem_ex_cmd commands:\n",
    "  hexdump ADDR [LEN]  hexdump -C of the block holding ADDR, from ADDR (default: to the block's end)\n",
    "  block ADDR          the block holding ADDR and its history from the log\n",
    "  log [N]             the last N events of the in-memory log (default 20)\n",
    "  leaks               blocks no pointer in memory reaches now\n",
    "  check               verify every canary and free fill now\n",
    "  stats               live bytes and blocks, peak, calls per function, size histogram\n",
    "  help                this list\n",
)
.as_bytes();

const FD: i32 = 1;

fn say(t: &[u8]) {
    sys::write_all(FD, t);
}

fn error(l: &mut Line<256>) {
    l.c(b'\n');
    say(l.as_bytes());
}

/// Runs one command line.
pub fn run(c: &[u8]) {
    let mut words = c
        .split(|&b| b == b' ' || b == b'\t' || b == b'\n')
        .filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or(b"");
    let a1 = words.next();
    let a2 = words.next();
    let extra = words.next();
    let mut l: Line<256> = Line::new();
    match verb {
        b"help" => say(HELP),
        b"" => {
            l.s(b"error: empty command (try \"help\")");
            error(&mut l);
        }
        b"hexdump" | b"block" => {
            let Some(w) = a1 else {
                l.s(b"error: ").s(verb).s(b" needs an address (0x...)");
                return error(&mut l);
            };
            let Some(addr) = parse_num(w) else {
                l.s(b"error: bad address '").s(w).s(b"'");
                return error(&mut l);
            };
            let len_arg = match (verb, a2) {
                (b"hexdump", Some(w)) => match parse_num(w) {
                    Some(n) => Some(n),
                    None => {
                        l.s(b"error: bad length '").s(w).s(b"'");
                        return error(&mut l);
                    }
                },
                (_, Some(w)) => {
                    l.s(b"error: unexpected argument '").s(w).s(b"'");
                    return error(&mut l);
                }
                _ => None,
            };
            if extra.is_some() {
                l.s(b"error: too many arguments");
                return error(&mut l);
            }
            let addr = addr as usize;
            let v = View::take();
            let Some(info) = v.find(addr).map(|b| b.info()) else {
                let complete = v.complete;
                drop(v);
                if complete {
                    l.s(b"error: ")
                        .x(addr)
                        .s(b" is not inside a block of ft_malloc");
                } else {
                    l.s(b"error: ")
                        .x(addr)
                        .s(b" not found; heap busy (a thread is inside malloc), try again");
                }
                return error(&mut l);
            };
            l.s(b"block ")
                .x(info.user)
                .s(b" - ")
                .x(info.user + info.size)
                .s(b" : ")
                .u(info.size as u64)
                .s(b" bytes, ");
            l.s(crate::report::block_kind(&info)).c(b'\n');
            say(l.as_bytes());
            let mut sym = Symbolizer::new(Lookup::SignalSafe);
            dump::block_detail(&info, FD, Some(&mut sym));
            if verb == b"hexdump" {
                if !crate::walk::readable(&info) {
                    drop(v);
                    l.s(b"error: the block at ")
                        .x(info.user)
                        .s(b" is inaccessible (freed and protected)");
                    return error(&mut l);
                }
                // By default up to the requested end; an explicit LEN may go on into the rest of
                // the slot (tail canary, slack), never past it.
                let req_end = info.user + info.size;
                let avail = info.slot_end.saturating_sub(addr);
                let len = match len_arg {
                    Some(n) => (n as usize).min(avail),
                    None => req_end.saturating_sub(addr),
                };
                if addr < info.slot || avail == 0 {
                    drop(v);
                    l.s(b"error: ")
                        .x(addr)
                        .s(b" is outside the readable part of the block");
                    return error(&mut l);
                }
                // Offsets count from the block's first byte (from the slot's start for an
                // address in the front canary).
                let base = if addr >= info.user {
                    info.user
                } else {
                    info.slot
                };
                if base != info.user {
                    l.clear();
                    l.s(b"(offsets from the slot start ")
                        .x(base)
                        .s(b", before the block)\n");
                    say(l.as_bytes());
                }
                let marked = dump::hexdump(addr, len, FD, addr - base, dump::canary_ranges(&info));
                drop(v);
                if marked {
                    say(dump::CANARY_LEGEND);
                }
            } else {
                drop(v);
                crate::log::block_history(info.user, FD);
            }
        }
        b"log" => {
            let n = match a1 {
                None => 20,
                Some(w) => match parse_num(w) {
                    Some(n) => n as usize,
                    None => {
                        l.s(b"error: bad count '").s(w).s(b"'");
                        return error(&mut l);
                    }
                },
            };
            crate::log::dump_recent(FD, n);
        }
        b"leaks" => {
            let n = crate::leaks::report_at_exit(false, crate::sys::frame_address());
            l.s(b"leaks: ")
                .u(n as u64)
                .s(b" unreachable block(s) (details on the report output)\n");
            say(l.as_bytes());
        }
        b"check" => {
            let (checked, bad, complete) = check_now();
            l.s(b"check: ")
                .u(checked)
                .s(b" blocks verified, ")
                .u(bad)
                .s(if bad == 1 {
                    b" problem" as &[u8]
                } else {
                    b" problems"
                });
            if !complete {
                l.s(b" (heap busy: some arenas skipped)");
            }
            l.c(b'\n');
            say(l.as_bytes());
        }
        b"stats" => {
            let v = View::take();
            let (mut live, mut blocks) = (0u64, 0u64);
            v.each(|b| {
                if b.state == State::Used {
                    live += b.size as u64;
                    blocks += 1;
                }
            });
            let complete = v.complete;
            drop(v);
            dump::print_stats(FD, live, blocks, complete);
        }
        _ => {
            l.s(b"error: unknown command '")
                .s(verb)
                .s(b"' (try \"help\")");
            error(&mut l);
        }
    }
}

/// Verifies every canary and free fill of the blocks we can lock now; prints one line per
/// problem. Returns (blocks checked, problems, all arenas seen).
fn check_now() -> (u64, u64, bool) {
    let v = View::take();
    let (mut n, mut bad) = (0u64, 0u64);
    let mut l: Line<256> = Line::new();
    v.in_order(|b| {
        if !b.readable() {
            return;
        }
        n += 1;
        let Some((info, kind, at)) = crate::check::block(b) else {
            return;
        };
        bad += 1;
        l.clear();
        l.s(b"check: ").s(match kind {
            0 => b"overflow" as &[u8],
            1 => b"underflow",
            _ => b"write after free",
        });
        l.s(b" of block ")
            .x(info.user)
            .s(b" (")
            .u(info.size as u64)
            .s(b" bytes) at ")
            .x(at)
            .c(b'\n');
        say(l.as_bytes());
    });
    (n, bad, v.complete)
}

/// One command of the dump (see `help`).
/// # Safety
/// `cmd` is NULL or a NUL-terminated string.
pub unsafe extern "C" fn show_alloc_mem_ex_cmd(cmd: *const libc::c_char) {
    let _e = sys::ErrnoGuard::new();
    let mut l: Line<256> = Line::new();
    if cmd.is_null() {
        l.s(b"show_alloc_mem_ex_cmd: no command (try \"help\")\n");
        say(l.as_bytes());
        return;
    }
    let mut n = 0;
    // SAFETY: cmd is NUL terminated per the contract; bounded at 256 bytes.
    while n < 256 && unsafe { *cmd.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: n bytes were just read.
    let c = unsafe { core::slice::from_raw_parts(cmd as *const u8, n) };
    run(c);
}
