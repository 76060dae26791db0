#!/bin/sh
# ech-inspect: options, output formats, stdin, errors (on synthetic files).
. "$ECH_SRC/tests/test-lib.sh"

test_expect_success 'make synthetic files' '
	mkgguf syn.gguf && mkgguf --vocab vocab.gguf && mkgguf --align 64 a64.gguf
'
test_expect_success '--help prints usage and exits 0' '
	ech-inspect --help >out && grep -q "^Usage: ech-inspect" out && grep -q -- "--sha256" out
'
test_expect_success '--version' '
	ech-inspect --version | grep -q "^ech-inspect (echostra) [0-9]"
'
test_expect_success 'unknown option is a usage error (exit 2)' '
	expect_exit 2 ech-inspect --bogus syn.gguf 2>err && grep -q "^ech-inspect: unknown option" err
'
test_expect_success 'missing file fails with exit 1 and a message' '
	expect_exit 1 ech-inspect nope.gguf 2>err && grep -q "^ech-inspect: nope.gguf: No such file" err
'
test_expect_success 'a non-GGUF file is refused' '
	echo hello >t.txt && expect_exit 1 ech-inspect t.txt 2>err && grep -q "not a GGUF file" err
'
test_expect_success 'human summary names the main facts' '
	ech-inspect syn.gguf >out &&
	grep -q "architecture *llama" out && grep -q "file type *Q4_K_M (15)" out &&
	grep -q "context length *4096" out && grep -q "heads *8 (2 kv)" out &&
	grep -q "vocabulary *40 tokens, tokenizer llama" out && grep -q "chat template *yes" out &&
	grep -q "bits per weight" out && grep -q "^metadata (" out && grep -q "^tensors (33)" out
'
test_expect_success 'human mode abbreviates long arrays' '
	ech-inspect syn.gguf >out && grep "tokenizer.ggml.tokens" out | grep -q "\.\.\.\] (40 items)"
'
test_expect_success '--full does not abbreviate' '
	ech-inspect --full --metadata syn.gguf >out && grep "tokenizer.ggml.tokens" out | grep -q "tok39\"\]$"
'
test_expect_success 'tensor table shows type, shape, offset, bytes' '
	ech-inspect --tensors syn.gguf >out &&
	grep -q "blk.0.Q4_K.weight *Q4_K *512 x 3 .* 864$" out && ! grep -q "^metadata" out
'
test_expect_success '--key prints one value, scriptable' '
	test "$(ech-inspect --key general.architecture syn.gguf)" = llama &&
	test "$(ech-inspect --key test.u64 syn.gguf)" = 18446744073709551615 &&
	test "$(ech-inspect --key test.i64 syn.gguf)" = -9223372036854775808 &&
	test "$(ech-inspect --key test.bool syn.gguf)" = true &&
	test "$(ech-inspect --key llama.rope.freq_base syn.gguf)" = 500000 &&
	test "$(ech-inspect --key tokenizer.ggml.tokens syn.gguf | wc -l)" = 40 &&
	test "$(ech-inspect --key test.arr_i32 syn.gguf | tr "\n" " ")" = "1 -2 3 -4 5 " &&
	test "$(ech-inspect --key test.nested syn.gguf)" = "[[1,2],[3]]"
'
test_expect_success '--key with --json prints JSON' '
	test "$(ech-inspect --json --key test.arr_f32 syn.gguf)" = "[0.5,-1.25,1e-10]"
'
test_expect_success 'missing --key fails' '
	expect_exit 1 ech-inspect --key no.such.key syn.gguf 2>err && grep -q "no metadata key" err
'
test_expect_success '--json is one valid document with everything' '
	ech-inspect --json syn.gguf >out.json && test "$(wc -l <out.json)" = 1 &&
	"$PYTHON3" -c "
import json,sys
d=json.load(open(\"out.json\"))
assert d[\"tensor_count\"]==33 and len(d[\"tensors\"])==33
assert d[\"summary\"][\"architecture\"]==\"llama\" and d[\"summary\"][\"file_type_name\"]==\"Q4_K_M\"
m={e[\"key\"]:e for e in d[\"metadata\"]}
assert m[\"general.name\"][\"value\"]==\"synthetic \\\"test\\\" model\\n\\u2713\"
assert m[\"test.nested_deep\"][\"value\"]==[[[\"deep\"]]]
assert m[\"test.u8\"][\"value\"]==200 and m[\"test.f64\"][\"value\"]==3.141592653589793
"
'
test_expect_success '--json abbreviates arrays unless --full' '
	ech-inspect --json vocab.gguf | grep -q "\"truncated\":true" &&
	! ech-inspect --json --full vocab.gguf | grep -q "\"truncated\""
'
test_expect_success '--sha256 matches sha256sum' '
	want=$(sha256sum syn.gguf | cut -d" " -f1) &&
	ech-inspect --sha256 syn.gguf | grep -q "sha256 *$want" &&
	ech-inspect --json --sha256 syn.gguf | grep -q "\"sha256\":\"$want\""
'
test_expect_success 'several files give NDJSON' '
	ech-inspect --json syn.gguf vocab.gguf a64.gguf >out && test "$(wc -l <out)" = 3
'
test_expect_success 'one bad file among several: others printed, exit 1' '
	expect_exit 1 ech-inspect --json syn.gguf missing.gguf vocab.gguf >out 2>err &&
	test "$(wc -l <out)" = 2 && grep -q missing.gguf err
'
test_expect_success 'GGUF on stdin (redirect and pipe)' '
	ech-inspect --key general.architecture <syn.gguf >out && test "$(cat out)" = llama &&
	cat syn.gguf | ech-inspect --json >out && grep -q "\"path\":\"<stdin>\"" out
'
test_expect_success 'a list of paths on stdin' '
	printf "syn.gguf\nvocab.gguf\n" | ech-inspect --json >out && test "$(wc -l <out)" = 2
'
test_expect_success 'alignment 64 is honoured' '
	test "$(ech-inspect --key general.alignment a64.gguf)" = 64 &&
	ech-inspect a64.gguf | grep -q "alignment 64"
'
test_expect_success 'vocab-only file (no tensors)' '
	ech-inspect vocab.gguf >out && grep -q "0 tensors" out
'
test_done
