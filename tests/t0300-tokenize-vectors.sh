#!/bin/sh
# t0300-tokenize-vectors: token ids agree with llama.cpp's reference vectors.
#
# $ECH_SHARED/vocab: every X.gguf.inp/.out pair whose vocab is present (and
# the vectors-only pairs whose tokenizer we have under another name), with no
# special tokens added and special-token text read as text, as llama.cpp's
# test-tokenizer-0 does.  tests/data/tok: our own harder strings and random
# bytes, with the ids llama.cpp (c392e509) gave for them, and vocab46-X.out:
# the ids llama.cpp gives for the 46 reference strings with the two vocabs
# that came without vectors (baichuan, gpt-neox).
#
# Decoding the expected ids must give the input back, except where the vocab
# cannot represent it: WordPiece (bert-bge) lowercases, strips accents and
# drops whitespace; falcon has no token for some control bytes (\x0b, \x1c),
# which llama.cpp then drops; phi-3's </s> swallows the spaces after it
# (RSTRIP); and random bytes that are not UTF-8 come back as U+FFFD from
# byte-level BPE, which tokenizes U+FFFD in their place.
. "$ECH_SRC/tests/test-lib.sh"

vocab=$(shared_path vocab) || skip_all "needs \$ECH_SHARED/vocab"
data="$ECH_SRC/tests/data/tok"

# check NAME GGUF INP OUT [FLAGS]: one test; its summary line goes to the TAP log
check() {
	name=$1 gguf=$2 inp=$3 out=$4; shift 4
	summary=$(tokvec "$gguf" "$inp" "$out" "$@" | head -n 1)
	say "# $summary"
	test_expect_success "$name" "tokvec '$gguf' '$inp' '$out' $*"
}

# vectors-only pairs whose tokenizer is in another file (same ids, see README)
other_vocab() {
	case $1 in
	llama-bpe) echo llama3 ;;
	qwen2|deepseek-r1-qwen) echo qwen3 ;;
	esac
}

for inp in "$vocab"/ggml-vocab-*.gguf.inp; do
	base=${inp%.inp}
	name=${base##*/ggml-vocab-}; name=${name%.gguf}
	gguf=$base
	if [ ! -f "$gguf" ]; then
		alt=$(other_vocab "$name")
		if [ -z "$alt" ] || [ ! -f "$vocab/ggml-vocab-$alt.gguf" ]; then
			test_skip "llama.cpp vectors: $name" "no vocab file for it"
			continue
		fi
		gguf="$vocab/ggml-vocab-$alt.gguf"
	fi
	rt=--roundtrip
	[ "$name" = bert-bge ] && rt=
	check "llama.cpp vectors: $name" "$gguf" "$inp" "$base.out" $rt
done

for out in "$data"/hard-*.out "$data"/bytes-*.out "$data"/vocab46-*.out; do
	f=${out##*/}
	case $f in
	hard-special-*) name=${f#hard-special-}; inp="$data/hard.inp"; flags="--parse-special --add-special" ;;
	hard-bert-bge*|hard-falcon*|hard-phi-3*) name=${f#hard-}; inp="$data/hard.inp"; flags= ;;
	hard-*) name=${f#hard-}; inp="$data/hard.inp"; flags=--roundtrip ;;
	bytes-*) name=${f#bytes-}; inp="$data/bytes.inp"; flags= ;;
	vocab46-*) name=${f#vocab46-}; inp="$vocab/ggml-vocab-gpt-2.gguf.inp"; flags=--roundtrip ;;
	esac
	name=${name%.out}
	gguf="$vocab/ggml-vocab-$name.gguf"
	if [ ! -f "$gguf" ]; then
		test_skip "our vectors: $f" "no $gguf"
		continue
	fi
	check "our vectors: $f" "$gguf" "$inp" "$out" $flags
done

# stories260K: SentencePiece's own ids.  Its normaliser collapses runs of
# spaces and drops a leading one (remove_extra_whitespaces); llama.cpp does
# not, and neither do we: for those two strings we expect llama.cpp's ids.
if stories=$(shared_path models/stories260K.gguf) && goldens=$(shared_path models/goldens.json) && have_python; then
	test_expect_success 'stories260K: SentencePiece goldens (llama.cpp ids where whitespace is collapsed)' '
		"$PYTHON3" - "$stories" "$goldens" <<-\PY
		import json, subprocess, sys
		model, goldens = sys.argv[1], sys.argv[2]
		llama_cpp = {" Hello world": [410, 346, 306, 414, 263, 304, 341],
		             "  two  spaces": [410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419]}
		bad = 0
		for case in json.load(open(goldens))["stories260K"]["sentencepiece_encode"]:
		    r = subprocess.run(["ech-tokenize", "-m", model, "--no-special"],
		                       input=case["text"].encode(), capture_output=True, check=True)
		    got = [int(x) for x in r.stdout.split()]
		    want = llama_cpp.get(case["text"], case["ids"])
		    if got != want:
		        print("mismatch", repr(case["text"]), want, got)
		        bad += 1
		sys.exit(bad != 0)
		PY
	'
else
	test_skip 'stories260K goldens' 'needs $ECH_SHARED/models and python3'
fi

test_done
