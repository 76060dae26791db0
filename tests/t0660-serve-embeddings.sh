#!/bin/sh
# ech-serve /v1/embeddings: OpenAI shape, llama.cpp's golden vectors, base64,
# several inputs, token ids, over-long input, a model that cannot embed.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
bert=$(shared_path models/ref/mini-bert-F32.gguf) || skip_all "ECH_SHARED data absent"
golden=$(shared_path golden/mini-bert-F32.json) || skip_all "golden absent"
stories=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"

j() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
post() { u=$1; b=$2; shift 2; curl -s -o out.json -w '%{http_code}' "$u" -H 'Content-Type: application/json' -d "$b" "$@"; }

serve_start bert -m "$bert" -t 1 || skip_all "ech-serve did not start"
BU=$SERVE_URL
B=$BU/v1/embeddings
serve_start stories -m "$stories" -t 1 -c 256 -P 1 || skip_all "ech-serve did not start"
S=$SERVE_URL
G=
if gemma=$(shared_path models/ref/mini-gemma3-Q8_0.gguf); then
	serve_start gemma -m "$gemma" -t 1 -c 64 -P 1 && G=$SERVE_URL
fi

test_expect_success 'an encoder: the golden sentences in one request, OpenAI shape, usage' '
	"$PYTHON3" -c "
import json
d = json.load(open(\"$golden\"))
json.dump({\"model\": \"mini-bert-F32\", \"input\": [c[\"text\"] for c in d[\"cases\"]]}, open(\"req.json\", \"w\"))
" &&
	test "$(curl -s -o out.json -w "%{http_code}" "$B" -H "Content-Type: application/json" -d @req.json)" = 200 &&
	"$PYTHON3" -c "
import json
d = json.load(open(\"out.json\")); g = json.load(open(\"$golden\"))
assert d[\"object\"] == \"list\" and d[\"model\"] == \"mini-bert-F32\" and len(d[\"data\"]) == 4
for i, (r, c) in enumerate(zip(d[\"data\"], g[\"cases\"])):
    assert r[\"object\"] == \"embedding\" and r[\"index\"] == i
    assert max(abs(a - b) for a, b in zip(r[\"embedding\"], c[\"embedding\"])) <= 1e-4
n = sum(len(c[\"token_ids\"]) for c in g[\"cases\"])
assert d[\"usage\"] == {\"prompt_tokens\": n, \"total_tokens\": n}, d[\"usage\"]
"
'
test_expect_success 'one string equals ech-embed; base64 is the same float32 bytes; token ids work' '
	test "$(post "$B" "{\"input\":\"Hello world\"}")" = 200 && cp out.json f.json &&
	test "$(post "$B" "{\"input\":\"Hello world\",\"encoding_format\":\"base64\"}")" = 200 && cp out.json b.json &&
	test "$(post "$B" "{\"input\":[101,7592,2088,102]}")" = 200 && cp out.json t.json &&
	echo "Hello world" | ech-embed -m "$bert" -t 1 >e.ndjson &&
	"$PYTHON3" -c "
import json, base64, struct
f = json.load(open(\"f.json\"))[\"data\"][0][\"embedding\"]
b = json.load(open(\"b.json\"))[\"data\"][0][\"embedding\"]
t = json.load(open(\"t.json\"))[\"data\"][0][\"embedding\"]
e = json.loads(open(\"e.ndjson\").read())[\"embedding\"]
assert f == e == t and len(f) == 128
v = struct.unpack(\"<128f\", base64.b64decode(b))
assert list(v) == [struct.unpack(\"<f\", struct.pack(\"<f\", x))[0] for x in f]
"
'
test_expect_success 'a decoder (stories260K): mean pooling as llama-embedding computes it' '
	test "$(post "$S/v1/embeddings" "{\"input\":[\"Once upon a time\",\"Hello\"]}")" = 200 &&
	"$PYTHON3" -c "
import json
d = json.load(open(\"out.json\"))[\"data\"]
ref = json.load(open(\"$ECH_SRC/tests/data/embed/stories260K-mean.json\"))[\"data\"]
for got, want in zip(d, (ref[0], ref[2])):
    assert max(abs(a - b) for a, b in zip(got[\"embedding\"], want[\"embedding\"])) <= 1e-5
"
'
test_expect_success 'over-long input: 400 context_length_exceeded, naming the input' '
	"$PYTHON3" -c "
import json
json.dump({\"input\": [\"short\", \"word \" * 600]}, open(\"long.json\", \"w\"))
" &&
	test "$(curl -s -o out.json -w "%{http_code}" "$B" -d @long.json)" = 400 &&
	test "$(j out.json "d[\"error\"][\"code\"]")" = context_length_exceeded &&
	j out.json "d[\"error\"][\"message\"]" | grep "input\[1\] has 60[0-9] tokens, more than the model.s context of 512"
'
test_expect_success 'bad input: 400 with the parameter named' '
	test "$(post "$B" "{}")" = 400 && test "$(j out.json "d[\"error\"][\"param\"]")" = input &&
	test "$(post "$B" "{\"input\":[]}")" = 400 &&
	test "$(post "$B" "{\"input\":\"\"}")" = 400 &&
	test "$(post "$B" "{\"input\":42}")" = 400 &&
	test "$(post "$B" "{\"input\":[\"a\",7]}")" = 400 &&
	test "$(post "$B" "{\"input\":[[1,2],[99999999]]}")" = 400 && j out.json "d[\"error\"][\"message\"]" | grep "input\[1\]\[0\]" &&
	test "$(post "$B" "{\"input\":\"a\",\"encoding_format\":\"hex\"}")" = 400 &&
	test "$(post "$B" "{\"input\":\"a\",\"dimensions\":64}")" = 400 &&
	test "$(post "$B" "{\"input\":\"a\"")" = 400 &&
	test "$(post "$B" "{\"model\":\"text-embedding-3-small\",\"input\":\"a\"}")" = 404 &&
	j out.json "d[\"error\"][\"message\"]" | grep "this server serves .mini-bert-F32."
'
test_expect_success 'an encoder cannot generate: 400 naming /v1/embeddings' '
	test "$(post "$BU/v1/completions" "{\"prompt\":\"hi\"}")" = 400 &&
	j out.json "d[\"error\"][\"message\"]" | grep "mini-bert-F32 (bert) is an embedding model" &&
	test "$(post "$BU/v1/chat/completions" "{\"messages\":[]}")" = 400 &&
	curl -sf "$BU/metrics" >/dev/null && curl -sf "$BU/health" >/dev/null
'
if [ -n "$G" ]; then
	test_expect_success 'a model that cannot embed (gemma3): 400, clear message' '
		test "$(post "$G/v1/embeddings" "{\"input\":\"hi\"}")" = 400 &&
		j out.json "d[\"error\"][\"message\"]" | grep "gemma3 cannot make embeddings"
	'
else
	test_skip 'a model that cannot embed (gemma3)' 'mini-gemma3 absent'
fi
test_done
