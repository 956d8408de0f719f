//! `show_alloc_mem_ex_cmd`: one command of the dump, for when the whole heap is too much.
//! A bad command or address prints one error line, never a crash.

use crate::fmt::{parse_num, Line};
use crate::heap;

const HELP: &[u8] = b"show_alloc_mem_ex_cmd commands:\n\
  hexdump ADDR [LEN]  hexdump of the block holding ADDR, from ADDR (default: to the block's end)\n\
  block ADDR          the block holding ADDR and its history from the log\n\
  log [N]             the last N events of the in-memory log (default 20)\n\
  leaks               unreachable blocks now\n\
  check               verify every canary and free fill now\n\
  stats               live bytes and blocks, peak, calls\n\
  help                this list\n";

fn say(t: &[u8]) {
    crate::sys::write_all(1, t);
}

pub fn run(c: &[u8]) {
    let mut words = c.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or(b"");
    let a1 = words.next();
    let a2 = words.next();
    let mut l: Line<256> = Line::new();
    match verb {
        b"help" | b"" => say(HELP),
        b"hexdump" | b"block" => {
            let Some(addr) = a1.and_then(parse_num) else {
                l.s(b"error: ").s(verb).s(b" needs an address (0x...)\n");
                return say(l.as_bytes());
            };
            let addr = addr as usize;
            let v = crate::dump::HeapView::take();
            let Some(info) = heap::find(addr) else {
                drop(v);
                l.s(b"error: ").x(addr).s(b" is not inside a block of ft_malloc\n");
                return say(l.as_bytes());
            };
            if info.state != crate::block::USED || addr < info.user || addr >= info.user + info.size.max(1) {
                drop(v);
                l.s(b"error: ").x(addr).s(b" is not inside a live block (state ").u(info.state as u64).s(b")\n");
                return say(l.as_bytes());
            }
            l.s(b"block ").x(info.user).s(b" - ").x(info.user + info.size).s(b" : ").u(info.size as u64);
            l.s(b" bytes, ").s(crate::report::zone_name(info.kind)).s(b", allocated by ").s(info.origin.call_name());
            if info.dbg.alloc_seq != 0 {
                l.s(b"() at #").u(info.dbg.alloc_seq).s(b" tid ").u(info.dbg.alloc_tid as u64).s(b" caller ").x(info.dbg.alloc_caller);
            } else {
                l.s(b"()");
            }
            l.c(b'\n');
            say(l.as_bytes());
            if verb == b"hexdump" {
                let end = info.user + info.size;
                let len = a2.and_then(parse_num).map(|n| n as usize).unwrap_or(end - addr).min(end - addr);
                crate::dump::hexdump(addr, len, 1);
                drop(v);
            } else {
                drop(v);
                crate::log::block_history(info.user, 1);
            }
        }
        b"log" => {
            let n = a1.and_then(parse_num).unwrap_or(20) as usize;
            crate::log::dump_recent(1, n);
        }
        b"leaks" => {
            crate::leaks::report_at_exit(false);
        }
        b"check" => {
            let n = crate::check::check_all(true);
            l.s(b"check: ").u(n as u64).s(if n == 0 { b" problems\n" as &[u8] } else { b" problem(s) found\n" });
            say(l.as_bytes());
            if n > 0 {
                crate::check::check_all(false);
            }
        }
        b"stats" => {
            let (live, blocks, mapped) = heap::totals();
            l.s(b"live ").u(live as u64).s(b" bytes in ").u(blocks as u64).s(b" blocks, mapped ").u(mapped as u64);
            l.s(b" bytes, peak ").u(crate::stats::PEAK.load(core::sync::atomic::Ordering::Relaxed) as u64).s(b" bytes\n");
            say(l.as_bytes());
        }
        _ => {
            l.s(b"error: unknown command '").s(verb).s(b"' (try \"help\")\n");
            say(l.as_bytes());
        }
    }
}
