#!/bin/sh
# bench/tokenize.sh - tokens per second of libech's tokenizer and llama.cpp's
# on the same 1 MiB of mixed English/code text, same machine, one run.
#
#   bench/tokenize.sh [BUILD_DIR]
#
# Needs $ECH_SHARED/vocab (ggml-vocab-llama3.gguf for the Llama-3 style BPE,
# ggml-vocab-llama-spm.gguf for SentencePiece) and bench/bench-tokenize built
# (`make bench/bench-tokenize` in BUILD_DIR, default: the source tree).
#
# For the llama.cpp column set LLAMA_TEST_TOKENIZER to its test-tokenizer-0
# binary.  That program times exactly the tokenization of a text file (vocab
# load excluded) and writes the ids next to it, so the ids are compared too.
# To get one: fetch llama.cpp's source, then
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=ON
#   cmake --build build --target test-tokenizer-0
# and use build/bin/test-tokenizer-0.  Its load time is estimated as the
# process's wall time minus the tokenization it reports.
#
# Each side runs RUNS times (default 5); the best time counts.  Prints a
# Markdown table.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src}
runs=${RUNS:-5}
: "${ECH_SHARED:?set ECH_SHARED}"
bench="$build/bench/bench-tokenize"
[ -x "$bench" ] || { echo "tokenize.sh: build $bench first (make bench/bench-tokenize)" >&2; exit 1; }
llama=${LLAMA_TEST_TOKENIZER:-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$src/bench/make-corpus.sh" "$tmp/corpus.txt"

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }

echo "| vocab | tokenizer | vocab load (ms) | tokens | tokenize (ms, best of $runs) | tokens/s |"
echo "|---|---|---:|---:|---:|---:|"
for v in llama3:"Llama-3 BPE (llama-bpe)" llama-spm:"SentencePiece (llama-spm)"; do
	name=${v%%:*} label=${v#*:}
	gguf="$ECH_SHARED/vocab/ggml-vocab-$name.gguf"
	[ -f "$gguf" ] || { echo "| $label | (missing $gguf) | | | | |"; continue; }
	set -- $("$bench" "$gguf" "$tmp/corpus.txt" "$runs" "$tmp/$name.ours")
	# load_ms L bytes B tokens T best_ms M tokens_per_s R
	echo "| $label | libech | $2 | $6 | $8 | ${10} |"
	if [ -n "$llama" ]; then
		best= load= n=
		i=0
		while [ $i -lt "$runs" ]; do
			cp "$tmp/corpus.txt" "$tmp/$name.txt"
			t0=$(now_ms)
			ms=$("$llama" "$gguf" "$tmp/$name.txt" 2>&1 | sed -n 's/.*tokenized in \([0-9.]*\) ms.*/\1/p')
			t1=$(now_ms)
			wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
			if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then
				best=$ms
				load=$(awk -v w="$wall" -v t="$ms" 'BEGIN { printf "%.1f", w - t }')
			fi
			i=$((i + 1))
		done
		n=$(wc -l <"$tmp/$name.txt.tokcpp")
		same=differ
		cmp -s "$tmp/$name.txt.tokcpp" "$tmp/$name.ours" && same="same ids"
		rate=$(awk -v n="$n" -v t="$best" 'BEGIN { printf "%.0f", n / (t / 1000) }')
		echo "| $label | llama.cpp test-tokenizer-0 ($same) | ~$load | $n | $best | $rate |"
	fi
done
