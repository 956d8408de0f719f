#!/usr/bin/env bash
# bench-unwind.sh - cost of whole call stacks, per frame: ft_malloc's unwinder against glibc's
# backtrace() and libgcc's _Unwind_Backtrace, warm (every return address seen before) and cold
# (a return address seen for the first time). bench/unwind.c is built -O2 -fomit-frame-pointer.
#
# usage: scripts/bench-unwind.sh [--reps N] [--depth D] [--calls N] [--lib PATH] [--gimli]
#   --reps N    runs of each measurement; the minimum is reported (default 5)
#   --depth D   recursion depth below main where the calls are made (default 32)
#   --calls N   operations per warm run (default 200000)
#   --lib PATH  the library (default target/release/libft_malloc.so, built if missing)
#   --gimli     also compare the library's CFI reader with gimli's (bench/cfi-cmp): rows of
#               ~4300 addresses of libc and of the comparison binary must agree; ns per row
#               from scratch; .text of a no_std cdylib holding either reader
#
# ft_malloc: MALLOC_DEBUG=ring=4096,stack=16 against stack=1; one operation is
# malloc(32) + free, two events of 16 frames each, so
#   warm ns/frame = (t[stack=16] - t[stack=1]) / 32
#   cold ns/frame = warm ns/frame + the first pass's extra cost over the second, per operation
#                   (each of 4096 distinct functions calls the operation once per pass; its
#                   call site is the one frame of the stack not seen before), less the same
#                   difference at stack=1 (first-touch costs that are not the unwinder's)
# glibc/libgcc: one operation is one 16-frame backtrace, ns/frame = t / 16; they keep no rule
# per address, so every frame costs the same.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/bench-bin
REPS=5 DEPTH=32 CALLS=200000 LIB="" GIMLI=0

while [ $# -gt 0 ]; do
	case "$1" in
	--reps) REPS=$2; shift ;;
	--depth) DEPTH=$2; shift ;;
	--calls) CALLS=$2; shift ;;
	--lib) LIB=$2; shift ;;
	--gimli) GIMLI=1 ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "bench-unwind.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$LIB" ]; then
	LIB=$ROOT/target/release/libft_malloc.so
	[ -f "$LIB" ] || (cd "$ROOT" && cargo build --release --lib -q) || exit 1
fi
mkdir -p "$BIN"
cc -O2 -fomit-frame-pointer -g -o "$BIN/unwind" "$ROOT/bench/unwind.c" || exit 1
B=$BIN/unwind

# min over REPS of field NAME= in the output of a command
minof() {
	local name=$1; shift
	for _ in $(seq "$REPS"); do "$@" | tr ' ' '\n' | sed -n "s/^$name=//p"; done | sort -g | head -1
}
ft() { LD_PRELOAD=$LIB MALLOC_DEBUG=ring=4096,stack=$1 "${@:2}"; }

w1=$(minof ns_per_op ft 1 "$B" warm malloc "$DEPTH" "$CALLS")
w16=$(minof ns_per_op ft 16 "$B" warm malloc "$DEPTH" "$CALLS")
c1a=$(minof pass1_ns_per_op ft 1 "$B" cold malloc "$DEPTH")
c1b=$(minof pass2_ns_per_op ft 1 "$B" cold malloc "$DEPTH")
c16a=$(minof pass1_ns_per_op ft 16 "$B" cold malloc "$DEPTH")
c16b=$(minof pass2_ns_per_op ft 16 "$B" cold malloc "$DEPTH")
gw=$(minof ns_per_op "$B" warm glibc "$DEPTH" $((CALLS / 10)))
lw=$(minof ns_per_op "$B" warm libgcc "$DEPTH" $((CALLS / 10)))

awk -v w1="$w1" -v w16="$w16" -v c1a="$c1a" -v c1b="$c1b" -v c16a="$c16a" -v c16b="$c16b" \
	-v gw="$gw" -v lw="$lw" -v d="$DEPTH" -v r="$REPS" 'BEGIN {
	warm = (w16 - w1) / 32
	cold = warm + ((c16a - c16b) - (c1a - c1b))
	printf "depth %d, min of %d runs; ns per frame (16-frame stacks)\n\n", d, r
	printf "| unwinder | warm ns/frame | cold ns/frame | ns per 16-frame stack (warm) |\n"
	printf "|---|---|---|---|\n"
	printf "| ft_malloc (stack=16 %.0f vs stack=1 %.0f ns per malloc+free) | %.1f | %.1f | %.0f |\n", w16, w1, warm, cold, warm * 16
	printf "| glibc backtrace() | %.1f | (no cache: as warm) | %.0f |\n", gw / 16, gw
	printf "| libgcc _Unwind_Backtrace | %.1f | (no cache: as warm) | %.0f |\n", lw / 16, lw
}'

if [ "$GIMLI" = 1 ]; then
	CMP=$ROOT/bench/cfi-cmp
	export CARGO_TARGET_DIR=$ROOT/target/cfi-cmp
	echo
	(cd "$CMP" && cargo build --release -q --example bench --features mine,gimli) || exit 1
	"$CARGO_TARGET_DIR/release/examples/bench"
	echo
	echo "| no_std cdylib | .text bytes |"
	echo "|---|---|"
	for f in nostd nostd,mine nostd,gimli; do
		(cd "$CMP" && cargo build --release -q --lib --features "$f") || exit 1
		t=$(size -A "$CARGO_TARGET_DIR/release/libcmp.so" | awk '$1 == ".text" { print $2 }')
		echo "| $f | $t |"
	done
fi
