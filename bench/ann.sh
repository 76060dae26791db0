#!/bin/sh
# bench/ann.sh - libech's HNSW against hnswlib (Debian libhnswlib-dev, C++,
# -O3 -march=native) and FAISS IndexHNSWFlat (Debian libfaiss-dev), side by
# side in one run: same data, M, efConstruction and threads.
#
#   ECH_SHARED=/path/to/shared bench/ann.sh          (from the build tree)
#
# Sets: GloVe 100k x 100 (cosine, $ECH_SHARED/ann/glove6b-100d-100k) and a
# synthetic 100k x 128 uniform [0,1) set (L2, seed 1234, made here by
# bench/ann-bench --synth with brute-force ground truth).  For each set and
# thread count (ANN_THREADS, default "1 2") the three programs run in turn;
# each builds, saves, reloads and sweeps efSearch 10..320 with one thread.
# QPS is per second of thread CPU time (the machine is shared); build times
# are wall clock.  The recall/QPS table comes from the one-thread builds.
# Each efSearch point is the best of ANN_REPS passes (default 7).
# ANN_KEEP=1 keeps the index files in ANN_WORK; a later run with ANN_REUSE=1
# sweeps the kept indexes again without building (build times print as -1).
# Needs: apt-get install libhnswlib-dev libfaiss-dev.
set -e
B=${ECH_BUILD:-$(pwd)}
M=${ANN_M:-16}
EFC=${ANN_EFC:-200}
THREADS=${ANN_THREADS:-1 2}
WORK=${ANN_WORK:-$(mktemp -d /tmp/ech-ann.XXXXXX)}
mkdir -p "$WORK"
(cd "$B" && make -s bench/ann-bench bench/hnswlib-bench bench/faiss-bench) >&2
PROGS="ech:$B/bench/ann-bench hnswlib:$B/bench/hnswlib-bench faiss:$B/bench/faiss-bench"

sets=
g=${ECH_SHARED:+$ECH_SHARED/ann/glove6b-100d-100k}
if [ -n "$g" ] && [ -f "$g/base.fvecs" ]; then
	sets="glove100k:$g:gt_cosine.ivecs:cosine"
else
	echo "ann.sh: \$ECH_SHARED/ann/glove6b-100d-100k absent: GloVe skipped" >&2
fi
if [ ! -f "$WORK/synth/gt_l2.ivecs" ]; then
	mkdir -p "$WORK/synth"
	"$B/bench/ann-bench" --synth "$WORK/synth" 100000 128 1000 1234
fi
sets="$sets synth100k:$WORK/synth:gt_l2.ivecs:l2"

echo "# $(uname -n), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
echo "# load before: $(uptime | sed 's/.*load/load/')"
echo "# M=$M efConstruction=$EFC threads: $THREADS"
for s in $sets; do
	name=${s%%:*}; rest=${s#*:}; dir=${rest%%:*}; rest=${rest#*:}; gt=${rest%%:*}; metric=${rest#*:}
	for t in $THREADS; do
		for p in $PROGS; do
			lib=${p%%:*}; prog=${p#*:}
			"$prog" "$dir/base.fvecs" "$dir/query.fvecs" "$dir/$gt" "$metric" "$M" "$EFC" "$t" \
				"$WORK/$name.$lib.idx" >"$WORK/$name.$lib.t$t.out"
			[ "${ANN_KEEP:-0}" = 1 ] || rm -f "$WORK/$name.$lib.idx"
		done
	done
	echo
	echo "## $name ($metric)"
	echo
	printf '| library |'; for t in $THREADS; do printf ' build %s thr (s) |' "$t"; done
	printf ' index file (MiB) | load (ms) |\n|---|'; for t in $THREADS; do printf -- '---:|'; done; printf -- '---:|---:|\n'
	t1=${THREADS%% *}
	for p in $PROGS; do
		lib=${p%%:*}
		printf '| %s |' "$lib"
		for t in $THREADS; do printf ' %s |' "$(awk '/^build_s/ {print $2}' "$WORK/$name.$lib.t$t.out")"; done
		awk '/^size_bytes/ {printf " %.1f |", $2 / 1048576} /^load_s/ {printf " %.1f |\n", $2 * 1000}' "$WORK/$name.$lib.t$t1.out"
	done
	echo
	echo "| efSearch | ech recall | ech QPS | hnswlib recall | hnswlib QPS | faiss recall | faiss QPS | ech / hnswlib QPS |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk '/^ef / {r[FILENAME, $2] = $4; q[FILENAME, $2] = $6; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
	     END { for (i = 0; i < n; i++) { e = order[i]
	           printf "| %s | %s | %s | %s | %s | %s | %s | %.2f |\n", e, r[A, e], q[A, e], r[H, e], q[H, e], r[F, e], q[F, e], q[A, e] / q[H, e] } }' \
		A="$WORK/$name.ech.t$t1.out" H="$WORK/$name.hnswlib.t$t1.out" F="$WORK/$name.faiss.t$t1.out" \
		"$WORK/$name.ech.t$t1.out" "$WORK/$name.hnswlib.t$t1.out" "$WORK/$name.faiss.t$t1.out"
done
echo
echo "# load after: $(uptime | sed 's/.*load/load/')"
echo "# raw outputs in $WORK"
