#!/bin/sh
# bench/embed.sh - texts per second of ech-embed and llama.cpp's
# llama-embedding on the same GGUF files and texts, side by side, one run.
#
#   LLAMA_EMBEDDING=/path/to/llama-embedding bench/embed.sh [BUILD_DIR]
#
# Models: $ECH_SHARED/models/ref/mini-bert-F32.gguf and -Q8_0.gguf (mean
# pooling from the model) and $ECH_SHARED/models/stories260K.gguf (a decoder,
# --pooling mean).  Texts: N (default 2000) generated sentences of 4 to 40
# words, one per line, embedded with `ech-embed --lines` and
# `llama-embedding -f` (which also takes one text per line).  Both write
# their vectors to a file (NDJSON; llama-embedding's JSON), use THREADS
# threads (default 2) and run alternately, REPS times (default 3); the best
# wall time counts, model load included.
#
# llama-embedding is llama.cpp's examples/embedding; the golden embeddings
# in $ECH_SHARED/golden were checked against it.  To build it: fetch
# llama.cpp's source, then
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_EXAMPLES=ON
#   cmake --build build --target llama-embedding
# Prints a Markdown table with a ratio column (ech-embed texts/s over
# llama-embedding's).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src}
: "${ECH_SHARED:?set ECH_SHARED}"
reps=${REPS:-3} threads=${THREADS:-2} n=${N:-2000}
ech="$build/bin/ech-embed"
[ -x "$ech" ] || { echo "embed.sh: build $ech first" >&2; exit 1; }
llama=${LLAMA_EMBEDDING:-}
[ -n "$llama" ] && [ -x "$llama" ] || { echo "embed.sh: set LLAMA_EMBEDDING to llama.cpp's llama-embedding" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v n="$n" 'BEGIN {
	srand(7)
	split("the a little big dog cat girl boy ran jumped over under park tree happy sad sun moon said played " \
	      "with and then they saw found house garden ball red blue green time once upon day night friend", w, " ")
	for (i = 0; i < n; i++) {
		k = 4 + int(rand() * 37); s = ""
		for (j = 0; j < k; j++) s = s (j ? " " : "") w[1 + int(rand() * 44)]
		print s "."
	}
}' >"$tmp/texts.txt"

now() { date +%s.%N; }
# best_of CMD...: the best wall time of `reps` runs, in seconds
run_once() { t0=$(now); "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }; t1=$(now); echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }'; }

echo "load: $(uptime | sed 's/.*load average/load average/')"
echo
echo "| model | pooling | texts | threads | ech-embed s | ech-embed texts/s | llama-embedding s | llama-embedding texts/s | ratio |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for spec in ref/mini-bert-F32.gguf:model ref/mini-bert-Q8_0.gguf:model stories260K.gguf:mean; do
	m="$ECH_SHARED/models/${spec%%:*}" pool=${spec#*:}
	[ -f "$m" ] || { echo "| ${spec%%:*} | (missing) | | | | | | | |"; continue; }
	epool= lpool=
	[ "$pool" = model ] || { epool="--pooling $pool"; lpool="--pooling $pool"; }
	be= bl= i=0
	while [ $i -lt "$reps" ]; do
		# shellcheck disable=SC2086
		te=$(run_once "$ech" -m "$m" --lines -t "$threads" $epool "$tmp/texts.txt")
		# shellcheck disable=SC2086
		tl=$(run_once "$llama" -m "$m" -f "$tmp/texts.txt" -t "$threads" $lpool --embd-output-format json)
		be=$(awk -v a="$te" -v b="${be:-1e9}" 'BEGIN { print (a < b ? a : b) }')
		bl=$(awk -v a="$tl" -v b="${bl:-1e9}" 'BEGIN { print (a < b ? a : b) }')
		i=$((i + 1))
	done
	awk -v m="$(basename "$m" .gguf)" -v p="$pool" -v n="$n" -v t="$threads" -v e="$be" -v l="$bl" 'BEGIN {
		printf "| %s | %s | %d | %d | %.3f | %.0f | %.3f | %.0f | %.2f |\n", m, p, n, t, e, n / e, l, n / l, l / e }'
done
