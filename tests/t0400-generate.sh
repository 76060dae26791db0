#!/bin/sh
# ech-generate: llama.cpp's stories, streaming, JSON events, sampling, errors.
. "$ECH_SRC/tests/test-lib.sh"

model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
golden=$(shared_path golden/stories260K-greedy.json) || skip_all "golden absent"
have_python || skip_all "python3 absent"

"$PYTHON3" -c "
import json
d = json.load(open('$golden'))
for i, c in enumerate(d['cases']):
    open('want%d.txt' % i, 'w').write(c['generated_text'])
    open('prompt%d.txt' % i, 'w').write(c['prompt'])
"

test_expect_success 'greedy "Once upon a time" prints exactly llama.cpp story' '
	ech-generate -m "$model" -p "$(cat prompt0.txt)" --temp 0 -n 64 >out0.txt &&
	cmp out0.txt want0.txt
'
test_expect_success 'greedy "The little dog" too (prompt from stdin)' '
	printf "%s" "$(cat prompt1.txt)" | ech-generate -m "$model" --temp 0 -n 64 >out1.txt &&
	cmp out1.txt want1.txt
'
test_expect_success 'prompt from -f, F32 KV cache, 1 thread, small batches: same story' '
	ech-generate -m "$model" -f prompt0.txt --temp 0 -n 64 --kv-type f32 -t 1 -b 2 >out.txt &&
	cmp out.txt want0.txt
'
test_expect_success '--json streams one event per token, then a summary' '
	ech-generate -m "$model" -p "Once upon a time" --temp 0 -n 20 --json --top-logprobs 3 >ev.ndjson &&
	"$PYTHON3" -c "
import json
lines = [json.loads(l) for l in open(\"ev.ndjson\")]
toks = [l for l in lines if \"token\" in l]
final = lines[-1]
assert len(toks) == 20, len(toks)
assert final[\"done\"] and final[\"completion_tokens\"] == 20 and final[\"prompt_tokens\"] == 5
assert final[\"stop_reason\"] == \"length\"
assert all(len(t[\"top_logprobs\"]) == 3 for t in toks)
assert all(t[\"top_logprobs\"][0][\"token\"] == t[\"token\"] for t in toks)   # greedy
assert all(t[\"logprob\"] <= 0 for t in toks)
text = \"\".join(l.get(\"text\", \"\") for l in lines[:-1])
assert text == open(\"want0.txt\").read()[:len(text)] and len(text) > 40, text
t = final[\"timings\"]
assert t[\"generation_tokens_per_s\"] > 0 and t[\"prompt_ms\"] >= 0
"
'
test_expect_success 'same seed, same text; another seed, other text' '
	ech-generate -m "$model" -p "Once" -n 40 --seed 7 --temp 1 >a.txt &&
	ech-generate -m "$model" -p "Once" -n 40 --seed 7 --temp 1 >b.txt &&
	ech-generate -m "$model" -p "Once" -n 40 --seed 8 --temp 1 >c.txt &&
	cmp a.txt b.txt && ! cmp -s a.txt c.txt
'
test_expect_success '--stop ends before the stop string, which is not printed' '
	ech-generate -m "$model" -p "Once upon a time" --temp 0 -n 64 --stop "Lily" --json >ev.ndjson &&
	"$PYTHON3" -c "
import json
lines = [json.loads(l) for l in open(\"ev.ndjson\")]
text = \"\".join(l.get(\"text\", \"\") for l in lines[:-1])
assert text == \", there was a little girl named \", repr(text)
assert lines[-1][\"stop_reason\"] == \"stop\"
"
'
test_expect_success 'a stop string that never appears changes nothing' '
	ech-generate -m "$model" -p "Once upon a time" --temp 0 -n 64 --stop "zebra!" >out.txt &&
	cmp out.txt want0.txt
'
test_expect_success '-n limits the output; --ignore-eos keeps going' '
	ech-generate -m "$model" -p "Once" --temp 0 -n 5 --json | tail -n 1 | grep -q "\"completion_tokens\":5" &&
	ech-generate -m "$model" -p "Once" --temp 0 -n 300 --ignore-eos --json | tail -n 1 | grep -q "\"completion_tokens\":300"
'
test_expect_success 'a prompt longer than the context is a clear error' '
	expect_exit 1 ech-generate -m "$model" -p "Once upon a time there was" --ctx 4 2>err &&
	grep -q "^ech-generate: the prompt has .* tokens but the context holds 4" err
'
test_expect_success 'generation stops when the context is full' '
	ech-generate -m "$model" -p "Once" --temp 0 -n 100 --ctx 16 --json | tail -n 1 >f &&
	grep -q "\"stop_reason\":\"context\"" f
'
test_expect_success '-v prints timings on stderr' '
	ech-generate -m "$model" -p "Once" -n 8 -v >/dev/null 2>err &&
	grep -q "tok/s" err
'
test_expect_success 'usage errors exit 2' '
	expect_exit 2 ech-generate -p hi 2>err && grep -q "no model" err &&
	expect_exit 2 ech-generate -m "$model" --temp hot -p hi 2>err &&
	expect_exit 2 ech-generate -m "$model" --kv-type q4 -p hi 2>err &&
	expect_exit 2 ech-generate --bogus 2>err
'
test_expect_success 'missing model, vocab-only file, an embedding model: exit 1 with a reason' '
	expect_exit 1 ech-generate -m nope.gguf -p hi 2>err && grep -q "nope.gguf" err &&
	if v=$(shared_path vocab/ggml-vocab-llama-spm.gguf); then
		expect_exit 1 ech-generate -m "$v" -p hi 2>err && grep -q "token_embd.weight" err
	fi &&
	if b=$(shared_path models/ref/mini-bert-F32.gguf); then
		expect_exit 1 ech-generate -m "$b" -p hi 2>err && grep -q "bert is an embedding model (an encoder): it cannot generate" err
	fi
'
test_expect_success 'every reference decoder model and type runs' '
	for f in "$ECH_SHARED"/models/ref/mini-llama-*.gguf "$ECH_SHARED"/models/ref/mini-qwen*.gguf \
	         "$ECH_SHARED"/models/ref/mini-gemma3-*.gguf "$ECH_SHARED"/models/llama-2-tiny-random.gguf \
	         "$ECH_SHARED"/models/tinystories-656k-f32.gguf; do
		ech-generate -m "$f" -p "Once upon a time" --temp 0 -n 8 --json | tail -n 1 |
			grep -q "\"completion_tokens\":8" || { echo "failed: $f"; exit 1; }
	done
'
test_done
