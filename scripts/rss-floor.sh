#!/usr/bin/env bash
# rss-floor.sh - the least peak RSS any guard-page allocator can reach on a program: runs
# CMD on glibc with bench/rss_floor.c preloaded, which tracks the peak of the pages the live
# blocks need when each block ends against a guard page of its own (two blocks cannot share
# a page), and prints it on stderr as "rss-floor: peak live pages N = M MiB".
# Programs that use memalign/posix_memalign are not tracked exactly (those are not wrapped).
# usage: scripts/rss-floor.sh CMD [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so=${TMPDIR:-/tmp}/ft-rss-floor.$$.so
trap 'rm -f "$so"' EXIT
cc -O2 -shared -fPIC -o "$so" "$root/bench/rss_floor.c"
LD_PRELOAD=$so "$@"
