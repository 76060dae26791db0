#!/bin/sh
# tests/run.sh - run the test suite and print one summary line at the end.
#
#   tests/run.sh UNIT_TEST... -- SHELL_TEST...
#
# Every test prints TAP.  Each "ok" counts as passed, "not ok" as failed and
# "ok ... # SKIP" as skipped; a test whose plan does not match what it ran, or
# that exits non-zero without a failing line, counts one extra failure.
# Logs of each test land in $ECH_BUILD/tests/logs/.  The last line printed is
#   N passed, N failed, N skipped
# and the exit status is 0 only when nothing failed.
#
# ECH_TEST_JOBS (default: the number of CPUs) tests run at a time.

: "${ECH_BUILD:=$(pwd)}"
: "${ECH_SRC:=$(cd "$(dirname "$0")/.." && pwd)}"
export ECH_BUILD ECH_SRC
# tests run in scratch directories: make a relative ECH_SHARED absolute
if [ -n "${ECH_SHARED:-}" ]; then
	case $ECH_SHARED in
	/*) ;;
	*) ECH_SHARED=$(cd "$ECH_SHARED" 2>/dev/null && pwd) || ECH_SHARED= ;;
	esac
	export ECH_SHARED
fi
logdir="$ECH_BUILD/tests/logs"
mkdir -p "$logdir"
rm -f "$logdir"/*.log "$logdir"/*.res

units=
shells=
seen_sep=0
for arg in "$@"; do
	if [ "$arg" = "--" ]; then seen_sep=1; continue; fi
	if [ $seen_sep = 0 ]; then units="$units $arg"; else shells="$shells $arg"; fi
done

jobs=${ECH_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}

# run_one NAME CMD...: run a test, store its log and a result line "pass fail skip"
run_one() {
	name=$1; shift
	log="$logdir/$name.log"
	"$@" >"$log" 2>&1 </dev/null
	rc=$?
	awk -v rc="$rc" '
		/^ok / { if ($0 ~ /# *SKIP/) s++; else p++; n++ }
		/^not ok / { if ($0 ~ /# *TODO/) p++; else f++; n++ }
		/^1\.\.[0-9]+/ { split($0, a, "\\.\\."); plan = a[2] + 0; hasplan = 1 }
		/^Bail out!/ { bail = 1 }
		END {
			if (!hasplan || plan != n || bail || (rc != 0 && f == 0)) f++
			printf "%d %d %d\n", p, f, s
		}' "$log" >"$logdir/$name.res"
}

list=
for u in $units; do list="$list unit:$u"; done
for s in $shells; do list="$list sh:$s"; done

running=0
for item in $list; do
	kind=${item%%:*}
	path=${item#*:}
	name=$(basename "$path" .sh)
	if [ "$kind" = unit ]; then
		run_one "$name" "$ECH_BUILD/$path" &
	else
		run_one "$name" ${SHELL:-/bin/sh} "$path" &
	fi
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then wait; running=0; fi
done
wait

tp=0; tf=0; ts=0
for item in $list; do
	path=${item#*:}
	name=$(basename "$path" .sh)
	set -- $(cat "$logdir/$name.res")
	p=$1; f=$2; s=$3
	tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name: $p passed, $f failed, $s skipped"
		grep -E '^(not ok|#)' "$logdir/$name.log" | head -n 40 | sed 's/^/    /'
	else
		echo "ok   $name: $p passed, $s skipped"
	fi
done
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ]
