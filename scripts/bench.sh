#!/usr/bin/env bash
# bench.sh - ft_malloc against glibc (and optional peers) on our own workloads.
#
# Runs every workload under every allocator column in ONE run, interleaved
# (for each workload: rep 1 of every column, rep 2 of every column, ...), and
# prints a markdown table of the median wall time and peak RSS per column with
# the ratio to glibc, a geometric-mean row, and the ft_malloc grading
# scenario in minor page faults.
#
# usage: scripts/bench.sh [options]
#   --reps N            repetitions per workload and column (default 3)
#   --quick             reduced scale for a smoke run (under a minute)
#   --lib PATH          our library (default target/release/libft_malloc.so,
#                       built with `cargo build --release` if missing)
#   --no-lib            no ft_malloc column at all (glibc and peers only)
#   --mode NAME=VALUE   extra ft_malloc column "ft:NAME" run with
#                       MALLOC_DEBUG=VALUE (repeatable), e.g.
#                       --mode debug=1 --mode guard=guard
#                       --mode trace=log=/tmp/ftm.%p.log
#                       The plain column (MALLOC_DEBUG unset) is always there.
#   --peers LIST        extra columns, comma-separated, any of
#                       efence,duma,valgrind,jemalloc,mimalloc,heaptrack
#                       (a peer that is not installed is noted and skipped;
#                       valgrind runs only the C workloads, at reduced scale,
#                       in extra rows named NAME@small; efence runs with
#                       EF_ALLOW_MALLOC_0=1, as real programs call malloc(0))
#   --workloads LIST    subset, comma-separated, of: churn,mixed,xthread,
#                       bigblock,realloc,grade,bash,python,perl,sort,git,gcc,
#                       sqlite (default: all)
#   --timeout S         per-run limit in seconds (default 30; 5 with --quick);
#                       a run that hits it shows as ">S" and that column is
#                       not run again on that workload
#   --out FILE.md       also write the report to FILE.md
#   --unwind            also measure the cost of whole call stacks per unwound
#                       frame, warm and cold (scripts/bench-unwind.sh with
#                       --reps N and --lib PATH), as a table after the report
#   -h, --help          this text
#
# Wall time is measured around the run (microseconds, bash EPOCHREALTIME);
# peak RSS (%M) and minor faults (%R) come from GNU time (/usr/bin/time).
# Each workload prints a "checksum=" line; it must be the same under every
# allocator, and a difference is reported loudly (exit status 1), as is an ft
# column whose run fails (a timeout is shown as ">S" but is not a failure). Workloads are bench/*.c (built with cc -O2 into
# target/bench-bin/) and the scripts beside them.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BIN=$ROOT/target/bench-bin

REPS=3 QUICK=0 TIMEOUT="" OUT="" LIB="" NOLIB=0 PEERS="" ONLY="" UNWIND=0
MODE_NAMES=() MODE_VALUES=()

die() { echo "bench.sh: $*" >&2; exit 2; }
log() { echo "[bench] $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--reps) [ $# -ge 2 ] || die "--reps needs a value"; REPS=$2; shift ;;
	--quick) QUICK=1 ;;
	--lib) [ $# -ge 2 ] || die "--lib needs a path"; LIB=$2; shift ;;
	--no-lib) NOLIB=1 ;;
	--mode)
		[ $# -ge 2 ] || die "--mode needs NAME=VALUE"
		case "$2" in *=*) ;; *) die "--mode wants NAME=MALLOC_DEBUG_VALUE, got '$2'" ;; esac
		[ -n "${2%%=*}" ] || die "--mode: empty NAME in '$2'"
		MODE_NAMES+=("${2%%=*}"); MODE_VALUES+=("${2#*=}"); shift ;;
	--peers) [ $# -ge 2 ] || die "--peers needs a list"; PEERS=$2; shift ;;
	--workloads) [ $# -ge 2 ] || die "--workloads needs a list"; ONLY=$2; shift ;;
	--timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT=$2; shift ;;
	--out) [ $# -ge 2 ] || die "--out needs a file"; OUT=$2; shift ;;
	--unwind) UNWIND=1 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive integer"
[ -n "$TIMEOUT" ] || { [ "$QUICK" = 1 ] && TIMEOUT=5 || TIMEOUT=30; }
[[ $TIMEOUT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--timeout wants seconds"
[ "$NOLIB" = 1 ] && [ ${#MODE_NAMES[@]} -gt 0 ] && die "--mode needs our library (drop --no-lib)"
[ "$NOLIB" = 1 ] && [ "$UNWIND" = 1 ] && die "--unwind needs our library (drop --no-lib)"

NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

# ------------------------------------------------------------------ tools
[ -x /usr/bin/time ] && /usr/bin/time -f '%e' true 2>/dev/null >/dev/null ||
	die "GNU time (/usr/bin/time) is needed: apt-get install time"
have timeout || die "timeout (coreutils) is needed"
CC=${CC:-cc}
have "$CC" || die "a C compiler ($CC) is needed: apt-get install gcc"

# ------------------------------------------------------------------ our library
if [ "$NOLIB" = 0 ]; then
	if [ -z "$LIB" ]; then
		LIB=$ROOT/target/release/libft_malloc.so
		if [ ! -f "$LIB" ]; then
			log "building $LIB (cargo build --release)"
			(cd "$ROOT" && cargo build --release >&2) || die "cargo build --release failed (use --no-lib to bench glibc and peers only)"
		fi
	fi
	[ -f "$LIB" ] || die "library not found: $LIB (use --no-lib to bench glibc and peers only)"
	LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
fi

# ------------------------------------------------------------------ columns
# kind: none (glibc), preload, valgrind, heaptrack
COLS=() ; declare -A C_KIND C_LIB C_DBG C_FT C_ENV
add_col() { COLS+=("$1"); C_KIND[$1]=$2; C_LIB[$1]=${3:-}; C_DBG[$1]=${4:-}; C_FT[$1]=${5:-0}; C_ENV[$1]=${6:-}; }
add_col glibc none
if [ "$NOLIB" = 0 ]; then
	add_col ft preload "$LIB" "" 1
	for i in "${!MODE_NAMES[@]}"; do
		add_col "ft:${MODE_NAMES[$i]}" preload "$LIB" "${MODE_VALUES[$i]}" 1
	done
fi
ldlib() { # path of the first x86-64 (or any) entry ldconfig knows for a soname
	ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { print $NF; exit }'
}
firstfile() { local f; for f in "$@"; do [ -n "$f" ] && [ -f "$f" ] && { echo "$f"; return; }; done; }
IFS=, read -r -a PEER_LIST <<<"$PEERS"
for p in "${PEER_LIST[@]}"; do
	case "$p" in
	"") ;;
	efence)
		f=$(firstfile /usr/lib/libefence.so "$(ldlib libefence.so.0)" "$(ldlib libefence.so)")
		# real programs call malloc(0), which efence otherwise aborts on
		[ -n "$f" ] && { add_col efence preload "$f" "" 0 EF_ALLOW_MALLOC_0=1; note "efence runs with EF_ALLOW_MALLOC_0=1"; } || note "efence: not installed, skipped (apt-get install electric-fence)" ;;
	duma)
		f=$(firstfile "$(ldlib libduma.so.0)" /usr/lib/libduma.so.0 "$(ldlib libduma.so)" /usr/lib/libduma.so)
		[ -n "$f" ] && add_col duma preload "$f" || note "duma: not installed, skipped (apt-get install duma)" ;;
	jemalloc)
		f=$(firstfile "$(ldlib libjemalloc.so.2)" "$(ldlib libjemalloc.so)")
		[ -n "$f" ] && add_col jemalloc preload "$f" || note "jemalloc: not installed, skipped (apt-get install libjemalloc2)" ;;
	mimalloc)
		f=$(firstfile "$(ldlib libmimalloc.so.2)" "$(ldlib libmimalloc.so)")
		[ -n "$f" ] && add_col mimalloc preload "$f" || note "mimalloc: not installed, skipped (apt-get install libmimalloc2.0)" ;;
	valgrind)
		have valgrind && add_col valgrind valgrind || note "valgrind: not installed, skipped (apt-get install valgrind)" ;;
	heaptrack)
		have heaptrack && add_col heaptrack heaptrack || note "heaptrack: not installed, skipped (apt-get install heaptrack)" ;;
	*) note "unknown peer '$p' ignored (known: efence,duma,valgrind,jemalloc,mimalloc,heaptrack)" ;;
	esac
done
HAVE_VG=0; [ -n "${C_KIND[valgrind]:-}" ] && HAVE_VG=1

# ------------------------------------------------------------------ workloads
C_WL=(churn mixed xthread bigblock realloc)
ALL_WL=(churn mixed xthread bigblock realloc grade bash python perl sort git gcc sqlite)
declare -A WANT
if [ -n "$ONLY" ]; then
	IFS=, read -r -a sel <<<"$ONLY"
	for w in "${sel[@]}"; do
		[ -z "$w" ] && continue
		[[ " ${ALL_WL[*]} " == *" $w "* ]] || die "unknown workload '$w' (known: ${ALL_WL[*]})"
		WANT[$w]=1
	done
else
	for w in "${ALL_WL[@]}"; do WANT[$w]=1; done
fi

# scale per workload: full, quick, small (small = valgrind rows)
declare -A SCALE=(
	[churn]="10000000 1000000 300000"
	[mixed]="2000000 200000 60000"
	[xthread]="1000 100 40"
	[bigblock]="10000 1000 300"
	[realloc]="3000000 300000 100000"
	[bash]="20000 3000"
	[python]="100000 15000"
	[perl]="150000 25000"
	[sort]="200000 50000"
	[git]="15 4"
	[gcc]="40 8"
	[sqlite]="50000 8000"
)
scale_of() { # NAME full|quick|small
	local -a s; read -r -a s <<<"${SCALE[$1]}"
	case $2 in full) echo "${s[0]}" ;; quick) echo "${s[1]}" ;; small) echo "${s[2]:-${s[1]}}" ;; esac
}
MAIN_SCALE=full; [ "$QUICK" = 1 ] && MAIN_SCALE=quick

PY=""
if [ -n "${WANT[python]:-}" ]; then
	# the real interpreter, not a version-manager shim script
	for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
		[ -n "$p" ] && [ -x "$p" ] || continue
		PY=$("$p" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$PY" ] && break
		PY=""
	done
	[ -n "$PY" ] || { note "python: python3 not found, skipped"; unset 'WANT[python]'; }
fi
for pair in perl:perl sort:sort git:git gcc:gcc sqlite:sqlite3; do
	w=${pair%%:*} prog=${pair#*:}
	[ -n "${WANT[$w]:-}" ] || continue
	have "$prog" || { note "$w: $prog not installed, skipped (apt-get install $prog)"; unset "WANT[$w]"; }
done

# ------------------------------------------------------------------ build
mkdir -p "$BIN/data" || die "cannot create $BIN"
build() { # NAME
	local src=$BENCH/$1.c out=$BIN/$1
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$BENCH/bench.h" -nt "$out" ]; then
		"$CC" -O2 -Wall -pthread -o "$out" "$src" || die "compiling $src failed"
	fi
}
for w in "${C_WL[@]}" grade gen; do build "$w"; done
# the launcher: static if the toolchain can, else dynamic
if [ ! -x "$BIN/with" ] || [ "$BENCH/with.c" -nt "$BIN/with" ]; then
	"$CC" -O2 -static -o "$BIN/with" "$BENCH/with.c" 2>/dev/null ||
		"$CC" -O2 -o "$BIN/with" "$BENCH/with.c" || die "compiling $BENCH/with.c failed"
fi

DATA=$BIN/data
gen_data() { # KIND N FILE
	[ -s "$3" ] && [ "$3" -nt "$BIN/gen" ] && return 0
	"$BIN/gen" "$1" "$2" >"$3.tmp" && mv "$3.tmp" "$3" || die "generating $3 failed"
}
need_lines=0
[ -n "${WANT[sort]:-}" ] && need_lines=1
[ -n "${WANT[git]:-}" ] && need_lines=1
[ "$need_lines" = 1 ] && gen_data lines "$(scale_of sort "$MAIN_SCALE")" "$DATA/lines-$(scale_of sort "$MAIN_SCALE").txt"
[ -n "${WANT[gcc]:-}" ] && gen_data csrc "$(scale_of gcc "$MAIN_SCALE")" "$DATA/src-$(scale_of gcc "$MAIN_SCALE").c"
[ -n "${WANT[sqlite]:-}" ] && gen_data sql "$(scale_of sqlite "$MAIN_SCALE")" "$DATA/rows-$(scale_of sqlite "$MAIN_SCALE").sql"

# wl_cmd NAME SCALE: sets CMD (argv), WENV (extra env) and POST (a command
# run in the run's folder after it, whose output may carry the checksum)
wl_cmd() {
	local n; CMD=() WENV=() POST=""
	case $1 in
	grade) CMD=("$BIN/grade" "$2"); return ;;
	esac
	n=$(scale_of "$1" "$2")
	case $1 in
	churn|mixed|xthread|bigblock|realloc) CMD=("$BIN/$1" "$n") ;;
	bash) CMD=(bash "$BENCH/strings.bash" "$n") ;;
	python) CMD=("$PY" "$BENCH/dictlist.py" "$n"); WENV=(PYTHONMALLOC=malloc) ;;
	perl) CMD=(perl "$BENCH/hash.pl" "$n") ;;
	sort) CMD=(sort -k2,2 -k1,1 -o out.txt "$DATA/lines-$n.txt"); POST='echo "checksum=$(cksum <out.txt | tr " " -)"' ;;
	git) CMD=(bash "$BENCH/git.sh" "$n" "$DATA/lines-$(scale_of sort "$2").txt") ;;
	gcc) CMD=(gcc -O2 -c -o out.o "$DATA/src-$n.c"); POST='echo "checksum=$(cksum <out.o | tr " " -)"' ;;
	sqlite) CMD=(sqlite3 -batch -init /dev/null :memory:); WENV=(); STDIN=$DATA/rows-$n.sql ;;
	esac
}

# rows: "label workload scale"
ROWS=()
for w in "${C_WL[@]}" bash python perl sort git gcc sqlite; do
	[ -n "${WANT[$w]:-}" ] && ROWS+=("$w $w $MAIN_SCALE")
done
if [ "$HAVE_VG" = 1 ]; then
	for w in "${C_WL[@]}"; do
		[ -n "${WANT[$w]:-}" ] && ROWS+=("$w@small $w small")
	done
	note "valgrind runs only the C workloads, at reduced scale (rows NAME@small, run under every column)"
fi
GRADE_ROWS=()
[ -n "${WANT[grade]:-}" ] && GRADE_ROWS=("grade-empty grade 0" "grade-malloc grade 1" "grade-free grade 2")

applies() { # COL ROWLABEL WORKLOAD
	[ "${C_KIND[$1]}" != valgrind ] && return 0
	[[ $2 == *@small ]] || [ "$3" = grade ]
}

# ------------------------------------------------------------------ running
TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/ftm-bench.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$TMPROOT"' EXIT
trap 'exit 130' INT TERM

# run_one COL WORKLOAD SCALE -> R_ST (ok|timeout|fail:RC) R_T R_M R_R R_CK
run_one() {
	local col=$1 dir pre rc t0 t1 line
	STDIN=/dev/null
	wl_cmd "$2" "$3"
	dir=$(mktemp -d "$TMPROOT/run.XXXXXX")
	pre=("$BIN/with" -u LD_PRELOAD -u MALLOC_DEBUG "${WENV[@]}")
	if [ "${C_KIND[$col]}" = preload ]; then
		pre+=("LD_PRELOAD=${C_LIB[$col]}")
		[ -n "${C_DBG[$col]}" ] && pre+=("MALLOC_DEBUG=${C_DBG[$col]}")
	fi
	[ -n "${C_ENV[$col]}" ] && pre+=(${C_ENV[$col]})
	pre+=(--)
	case ${C_KIND[$col]} in
	valgrind) pre+=(valgrind --quiet --leak-check=no) ;;
	heaptrack) pre+=(heaptrack -o "$dir/heaptrack") ;;
	esac
	cd "$dir" || die "cd $dir"
	t0=$EPOCHREALTIME
	# Only the workload runs under the allocator: timeout and GNU time do
	# not, and "with" (static, a few dozen page faults, the same for every
	# column) sets the environment and execs the workload.
	timeout -k 2 "$TIMEOUT" /usr/bin/time -f '%e %M %R' -o "$dir/.time" \
		"${pre[@]}" "${CMD[@]}" <"$STDIN" >"$dir/.out" 2>"$dir/.err"
	rc=$?
	t1=$EPOCHREALTIME
	R_T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	line=$(tail -n1 "$dir/.time" 2>/dev/null)
	read -r _ R_M R_R <<<"$line"
	[[ ${R_M:-} =~ ^[0-9]+$ ]] || R_M=""
	[[ ${R_R:-} =~ ^[0-9]+$ ]] || R_R=""
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		R_ST=timeout
	elif [ "$rc" != 0 ]; then
		R_ST=fail:$rc
		log "  $col on $2 exited with status $rc; stderr tail:"
		tail -n5 "$dir/.err" | sed 's/^/      /' >&2
	else
		R_ST=ok
	fi
	[ -n "$POST" ] && [ "$R_ST" = ok ] && (eval "$POST") >>"$dir/.out" 2>/dev/null
	R_CK=$(grep -o 'checksum=[^ ]*' "$dir/.out" | tail -n1)
	R_CK=${R_CK#checksum=}
	if [ "$R_ST" = ok ] && [ -z "$R_CK" ]; then
		R_ST=fail:nocksum
		log "  $col on $2 printed no checksum; stdout tail:"
		tail -n3 "$dir/.out" | sed 's/^/      /' >&2
	fi
	cd "$ROOT" || true
	rm -rf "$dir"
}

declare -A T M F ST CK REF REFCOL
MISMATCH=() FTFAIL=()
run_row() { # LABEL WORKLOAD SCALE
	local label=$1 wl=$2 scale=$3 r col key
	for ((r = 1; r <= REPS; r++)); do
		for col in "${COLS[@]}"; do
			applies "$col" "$label" "$wl" || continue
			key="$label|$col"
			case ${ST[$key]:-} in timeout|fail*) continue ;; esac
			run_one "$col" "$wl" "$scale"
			if [ "$R_ST" = ok ]; then
				T[$key]+="$R_T " M[$key]+="$R_M " F[$key]+="$R_R "
				ST[$key]=ok
				if [ -z "${REF[$label]:-}" ]; then
					REF[$label]=$R_CK REFCOL[$label]=$col
				elif [ "$R_CK" != "${REF[$label]}" ] && [ -z "${CK[$key]:-}" ]; then
					CK[$key]=bad
					MISMATCH+=("$label: $col printed checksum $R_CK, expected ${REF[$label]} (as under ${REFCOL[$label]})")
					log "!!! CHECKSUM MISMATCH on $label under $col: $R_CK != ${REF[$label]}"
				fi
			else
				ST[$key]=$R_ST
				[ "${C_FT[$col]}" = 1 ] && [ "$R_ST" != timeout ] && FTFAIL+=("$label: $col failed, status ${R_ST#fail:}")
			fi
		done
	done
}

median() { # numbers... -> median (empty if none)
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ncols=${#COLS[@]}
log "columns: ${COLS[*]}; reps $REPS; timeout ${TIMEOUT}s; scale $MAIN_SCALE"
start=$EPOCHREALTIME
for row in "${ROWS[@]}" "${GRADE_ROWS[@]}"; do
	read -r label wl scale <<<"$row"
	log "$label ..."
	run_row "$label" "$wl" "$scale"
done
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ------------------------------------------------------------------ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1fM", k / 1024 }'; }
cell() { # KEY -> sets CT CM (text) and VT VM (numbers, empty if none)
	local key=$1 st=${ST[$1]:-}
	VT="" VM=""
	case $st in
	ok)
		# shellcheck disable=SC2086
		VT=$(median ${T[$key]}); VM=$(median ${M[$key]})
		CT=$VT CM=$(mib "$VM") ;;
	timeout) CT=">$TIMEOUT" CM="-" ;;
	fail:*) CT="FAIL(${st#fail:})" CM="-" ;;
	*) CT="-" CM="-" ;;
	esac
	[ "${CK[$key]:-}" = bad ] && { CT="$CT **CHECKSUM!**"; VT="" VM=""; }
	return 0
}

report() {
	local row label wl scale col key gt gm hdr sep line
	echo "## ft_malloc benchmark"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
	[ "$NOLIB" = 0 ] && echo "- library: \`${LIB#"$ROOT"/}\`"
	for i in "${!MODE_NAMES[@]}"; do echo "- column ft:${MODE_NAMES[$i]}: MALLOC_DEBUG=${MODE_VALUES[$i]}"; done
	echo "- scale: $MAIN_SCALE; median of $REPS interleaved reps; timeout ${TIMEOUT}s per run; took ${elapsed}s"
	echo "- wall time in seconds, peak RSS in MiB; (×R) = ratio to glibc on the same row, lower is better"
	echo
	hdr="| workload |" sep="|---|"
	for col in "${COLS[@]}"; do hdr+=" $col s | $col RSS |"; sep+="---:|---:|"; done
	echo "$hdr"; echo "$sep"
	declare -A LT LM NT NM
	for row in "${ROWS[@]}"; do
		read -r label wl scale <<<"$row"
		line="| $label |"
		cell "$label|glibc"; gt=$VT gm=$VM
		for col in "${COLS[@]}"; do
			if ! applies "$col" "$label" "$wl"; then line+=" - | - |"; continue; fi
			cell "$label|$col"
			if [ "$col" != glibc ] && [ -n "$VT" ] && [ -n "$gt" ]; then
				local rt rm
				rt=$(ratio "$VT" "$gt") rm=$(ratio "$VM" "$gm")
				line+=" $CT (×$rt) | $CM (×$rm) |"
				[ -n "$rt" ] && { LT[$col]=$(awk -v s="${LT[$col]:-0}" -v r="$rt" 'BEGIN { print s + log(r) }'); NT[$col]=$((${NT[$col]:-0} + 1)); }
				[ -n "$rm" ] && { LM[$col]=$(awk -v s="${LM[$col]:-0}" -v r="$rm" 'BEGIN { print s + log(r) }'); NM[$col]=$((${NM[$col]:-0} + 1)); }
			else
				line+=" $CT | $CM |"
			fi
		done
		echo "$line"
	done
	line="| **geometric mean** |"
	for col in "${COLS[@]}"; do
		if [ "$col" = glibc ]; then line+=" 1 | 1 |"; continue; fi
		if [ -n "${NT[$col]:-}" ]; then
			line+=" **×$(awk -v s="${LT[$col]}" -v n="${NT[$col]}" 'BEGIN { printf "%.2f", exp(s / n) }')** (${NT[$col]}) |"
			line+=" **×$(awk -v s="${LM[$col]}" -v n="${NM[$col]}" 'BEGIN { printf "%.2f", exp(s / n) }')** (${NM[$col]}) |"
		else
			line+=" - | - |"
		fi
	done
	echo "$line"
	echo
	echo "Geometric means are over the rows where both the column and glibc finished (count in parentheses)."
	if [ ${#GRADE_ROWS[@]} -gt 0 ]; then
		echo
		echo "### Grading scenario: minor page faults (GNU time %R, median)"
		echo
		hdr="| program |" sep="|---|"
		for col in "${COLS[@]}"; do hdr+=" $col |"; sep+="---:|"; done
		echo "$hdr"; echo "$sep"
		declare -A FV
		local names=("empty program" "1024 × malloc(1024), write 1st byte" "same, free after each")
		local i=0
		for row in "${GRADE_ROWS[@]}"; do
			read -r label wl scale <<<"$row"
			line="| ${names[$i]} |"
			for col in "${COLS[@]}"; do
				key="$label|$col"
				if [ "${ST[$key]:-}" = ok ]; then
					# shellcheck disable=SC2086
					FV[$label|$col]=$(median ${F[$key]})
					line+=" ${FV[$label|$col]}$([ "${CK[$key]:-}" = bad ] && echo ' **CHECKSUM!**') |"
				else
					cell "$key"; line+=" $CT |"
				fi
			done
			echo "$line"
			i=$((i + 1))
		done
		local what lim d
		for what in "grade-malloc 272 malloc − empty (target ≤ 272)" "grade-free 3 free − empty (target ≤ 3)"; do
			read -r label lim rest <<<"$what"
			line="| **${what#* * }** |"
			for col in "${COLS[@]}"; do
				if [ -n "${FV[$label|$col]:-}" ] && [ -n "${FV[grade-empty|$col]:-}" ]; then
					d=$(( ${FV[$label|$col]%.*} - ${FV[grade-empty|$col]%.*} ))
					if [ "${C_FT[$col]}" = 1 ]; then
						[ "$d" -le "$lim" ] && line+=" $d ✓ |" || line+=" **$d ✗** |"
					else
						line+=" $d |"
					fi
				else
					line+=" - |"
				fi
			done
			echo "$line"
		done
	fi
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Notes:"
		for n in "${NOTES[@]}"; do echo "- $n"; done
	fi
	if [ ${#FTFAIL[@]} -gt 0 ]; then
		echo
		echo "**ft_malloc runs that failed:**"
		for n in "${FTFAIL[@]}"; do echo "- $n"; done
	fi
	if [ ${#MISMATCH[@]} -gt 0 ]; then
		echo
		echo "**!!! CHECKSUM MISMATCH — an allocator returned memory that lost its contents !!!**"
		for n in "${MISMATCH[@]}"; do echo "- $n"; done
	fi
}

# Cost of whole call stacks: ns per unwound frame, warm and cold.
unwind_report() {
	echo
	echo "## Whole call stacks: cost per unwound frame"
	echo
	echo "\`scripts/bench-unwind.sh --reps $REPS --lib $LIB\`"
	echo
	"$ROOT/scripts/bench-unwind.sh" --reps "$REPS" --lib "$LIB"
}

full_report() {
	report
	[ "$UNWIND" = 1 ] && unwind_report
	true
}

if [ -n "$OUT" ]; then
	full_report | tee "$OUT"
else
	full_report
fi
[ ${#MISMATCH[@]} -eq 0 ] && [ ${#FTFAIL[@]} -eq 0 ]
