#!/bin/sh
# bench/generate.sh - ech-generate's engine against llama.cpp, side by side.
#
#   LLAMA_BENCH=/path/to/llama-bench bench/generate.sh [ROUNDS]
#   (REPS=N repetitions per run, default 3; MODELS="tinyllama:Q4_0 ..." a subset)
#
# Builds random-weight models at real sizes with bench/mkmodel (TinyLlama-1.1B
# shapes in F16, Q8_0, Q4_0, Q4_K_M, and a 110M-parameter Q4_0 model) into
# $ECH_BENCH_MODELS (default /tmp/echostra-bench), then for every model and for
# 1 and 2 threads runs, alternating, ROUNDS times (default 2):
#   bench/bench-generate -p 512 -n 128 (ours)  and  llama-bench -p 512 -n 128
# (both: F16 KV cache, same threads, 3 repetitions each).  Prints prompt
# processing (pp512) and generation (tg128) tokens/s, their ratio, peak RSS of
# each process, and the decode roofline: weight bytes per token / measured read
# bandwidth.  llama-bench is llama.cpp's own benchmark, built from its public
# source outside this tree (cmake --build build --target llama-bench).
# Time to first token from a cold start: the wall time of one process that
# loads the model, reads a 4-token prompt and prints one token
# (bin/ech-generate -n 1 against llama.cpp's llama-completion -n 1, built the
# same way; LLAMA_COMPLETION, default next to llama-bench), median of 3, with
# the page cache dropped before each run when we may (root), else warm.
# Needs: make bench/mkmodel bench/bench-generate; python3; /usr/bin/time.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
LLAMA_BENCH=${LLAMA_BENCH:?set LLAMA_BENCH to a llama-bench binary}
dir=${ECH_BENCH_MODELS:-/tmp/echostra-bench}
vocab=${ECH_SHARED:-$top/../shared}/vocab/ggml-vocab-llama-spm.gguf
mkdir -p "$dir"
models=${MODELS:-tinyllama:F16 tinyllama:Q8_0 tinyllama:Q4_0 tinyllama:Q4_K_M 110m:Q4_0}
reps=${REPS:-3}
for spec in $models; do
	f="$dir/${spec%%:*}-${spec#*:}.gguf"
	[ -f "$f" ] || "$top/bench/mkmodel" --preset "${spec%%:*}" --type "${spec#*:}" --vocab "$vocab" -o "$f"
done
out=$(mktemp -d)
cold=warm
if [ -w /proc/sys/vm/drop_caches ]; then cold=cold; fi
drop() { if [ $cold = cold ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }
for t in 1 2; do "$top/bench/bench-generate" --bandwidth -t $t >"$out/bw$t.json"; done
for spec in $models; do
	f="$dir/${spec%%:*}-${spec#*:}.gguf"
	name="${spec%%:*}-${spec#*:}"
	# Decode speed depends on how the page cache holds the file: read in
	# (by either program, Linux 6.18 here) it is kept in 2 MiB folios
	# that both then map with 2 MiB pages; left over from mkmodel's write
	# it is in 4 KiB pages, and decode is 20-30 % slower for both.
	# Starting every model from a cold cache makes the runs repeatable.
	drop
	for t in 1 2; do
		r=0
		while [ $r -lt "$rounds" ]; do
			/usr/bin/time -f '{"peak_rss_kib":%M}' -o "$out/$name.$t.$r.ech.rss" \
				"$top/bench/bench-generate" -m "$f" -p 512 -n 128 -t $t -r "$reps" >"$out/$name.$t.$r.ech.json"
			/usr/bin/time -f '{"peak_rss_kib":%M}' -o "$out/$name.$t.$r.llama.rss" \
				"$LLAMA_BENCH" -m "$f" -p 512 -n 128 -t $t -r "$reps" -o json >"$out/$name.$t.$r.llama.json" 2>/dev/null
			r=$((r + 1))
		done
	done
done
LLAMA_COMPLETION=${LLAMA_COMPLETION:-$(dirname "$LLAMA_BENCH")/llama-completion}
secs() { # wall seconds of a command, output discarded
	python3 -c 'import subprocess as s, sys, time
t = time.time(); s.run(sys.argv[1:], stdin=s.DEVNULL, stdout=s.DEVNULL, stderr=s.DEVNULL)
print(f"{time.time() - t:.4f}")' "$@"
}
if [ -x "$LLAMA_COMPLETION" ]; then
	for spec in $models; do
		f="$dir/${spec%%:*}-${spec#*:}.gguf"
		name="${spec%%:*}-${spec#*:}"
		for t in 1 2; do
			for r in 1 2 3; do
				drop; secs "$top/bin/ech-generate" -m "$f" -p "Once upon a time" -n 1 --temp 0 -t $t >>"$out/$name.$t.ttft.ech"
				drop; secs "$LLAMA_COMPLETION" -m "$f" -p "Once upon a time" -n 1 --temp 0 -t $t -no-cnv --no-warmup >>"$out/$name.$t.ttft.llama"
			done
		done
	done
fi
echo "$cold" >"$out/cold"
python3 - "$out" "$rounds" "$models" <<'PY'
import glob, json, os, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
names = [m.replace(":", "-") for m in sys.argv[3].split()]
bw = {t: json.load(open(f"{out}/bw{t}.json"))["bandwidth_gb_s"] for t in (1, 2)}
print(f"read bandwidth: {bw[1]:.1f} GB/s (1 thread), {bw[2]:.1f} GB/s (2 threads)\n")
print("| model | threads | test | echostra t/s | llama.cpp t/s | ratio | ech RSS MiB | llama.cpp RSS MiB | decode roofline (ech % / llama % of bandwidth limit) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---|")
for name in names:
    for t in (1, 2):
        ech = {"pp512": [], "tg128": []}; lla = {"pp512": [], "tg128": []}; wb = 0
        rss_e, rss_l = [], []
        for r in range(rounds):
            base = f"{out}/{name}.{t}.{r}"
            for line in open(base + ".ech.json"):
                d = json.loads(line)
                if "test" in d:
                    ech[d["test"]].append(d["tokens_per_s"]); wb = d["weight_bytes"]
            for d in json.load(open(base + ".llama.json")):
                key = f"pp{d['n_prompt']}" if d["n_prompt"] else f"tg{d['n_gen']}"
                lla[key].append(d["avg_ts"])
            rss_e.append(json.load(open(base + ".ech.rss"))["peak_rss_kib"])
            rss_l.append(json.load(open(base + ".llama.rss"))["peak_rss_kib"])
        for test in ("pp512", "tg128"):
            e, l = statistics.mean(ech[test]), statistics.mean(lla[test])
            roof = ""
            if test == "tg128" and wb:
                limit = bw[t] * 1e9 / wb
                roof = f"limit {limit:.1f} t/s: {100*e/limit:.0f}% / {100*l/limit:.0f}%"
            print(f"| {name} | {t} | {test} | {e:.2f} | {l:.2f} | {e/l:.2f} | {max(rss_e)/1024:.0f} | {max(rss_l)/1024:.0f} | {roof} |")
        tf = f"{out}/{name}.{t}.ttft"
        if os.path.exists(tf + ".ech") and os.path.exists(tf + ".llama"):
            e = statistics.median(float(x) for x in open(tf + ".ech"))
            l = statistics.median(float(x) for x in open(tf + ".llama"))
            kind = open(f"{out}/cold").read().strip()
            print(f"| {name} | {t} | first token ({kind} start), s | {e:.3f} | {l:.3f} | {l/e:.2f} | | | |")
PY
echo
echo "ratio: echostra / llama.cpp for tokens/s; llama.cpp / echostra for first-token seconds (above 1: we are faster)"
rm -rf "$out"
