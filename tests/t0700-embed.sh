#!/bin/sh
# ech-embed: llama.cpp's golden embeddings through the tool, input modes,
# chunking, truncation, .fvecs, errors.
. "$ECH_SRC/tests/test-lib.sh"

bert=$(shared_path models/ref/mini-bert-F32.gguf) || skip_all "ECH_SHARED data absent"
golden=$(shared_path golden/mini-bert-F32.json) || skip_all "golden absent"
stories=$(shared_path models/stories260K.gguf) || skip_all "stories260K absent"
have_python || skip_all "python3 absent"

"$PYTHON3" -c "
import json
d = json.load(open('$golden'))
open('sentences.txt', 'w').write(''.join(c['text'] + '\n' for c in d['cases']))
for i, c in enumerate(d['cases']):
    open('s%d.txt' % i, 'w').write(c['text'] + '\n')
"
# compare.py OUT: every record's embedding is the golden one of its text
cat >compare.py <<PY
import json, sys
gold = {c['text']: c['embedding'] for c in json.load(open('$golden'))['cases']}
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == int(sys.argv[2]), len(recs)
for r in recs:
    g = gold[r['text']]
    d = max(abs(a - b) for a, b in zip(r['embedding'], g))
    assert len(r['embedding']) == len(g) and d <= 1e-4, (r['text'], d)
PY

test_expect_success 'a query on stdin in a pipe: one record, llama.cpp golden embedding' '
	echo "Hello world" | ech-embed -m "$bert" >q.ndjson &&
	"$PYTHON3" compare.py q.ndjson 1 &&
	"$PYTHON3" -c "
import json
r = json.loads(open(\"q.ndjson\").read())
assert r[\"id\"] == 0 and r[\"source\"] == \"-\" and r[\"chunk\"] == 0 and r[\"text\"] == \"Hello world\", r
"
'
test_expect_success '--lines: one record per line, blank lines skipped, ids and line numbers' '
	{ sed -n 1,2p sentences.txt; echo; echo "   "; sed -n 3,4p sentences.txt; } >lines.txt &&
	ech-embed -m "$bert" --lines -t 2 <lines.txt >l.ndjson &&
	"$PYTHON3" compare.py l.ndjson 4 &&
	"$PYTHON3" -c "
import json
rs = [json.loads(l) for l in open(\"l.ndjson\")]
assert [r[\"id\"] for r in rs] == [0, 1, 2, 3] and [r[\"line\"] for r in rs] == [1, 2, 5, 6], rs
"
'
test_expect_success 'files: one text each, the source named, --start-id' '
	ech-embed -m "$bert" --start-id 10 s0.txt s1.txt s2.txt s3.txt >f.ndjson &&
	"$PYTHON3" compare.py f.ndjson 4 &&
	"$PYTHON3" -c "
import json
rs = [json.loads(l) for l in open(\"f.ndjson\")]
assert [r[\"source\"] for r in rs] == [\"s%d.txt\" % i for i in range(4)], rs
assert [r[\"id\"] for r in rs] == [10, 11, 12, 13]
"
'
test_expect_success '--no-normalize, --pooling cls: other vectors, --no-text drops the text' '
	echo "Hello world" | ech-embed -m "$bert" --no-normalize --pooling cls --no-text >raw.ndjson &&
	"$PYTHON3" -c "
import json, math
r = json.loads(open(\"raw.ndjson\").read())
assert \"text\" not in r
n = math.sqrt(sum(x * x for x in r[\"embedding\"]))
assert abs(n - 1) > 1e-3, n
"
'
test_expect_success '--binary writes .fvecs: the same floats as NDJSON' '
	ech-embed -m "$bert" --lines --binary <sentences.txt >v.fvecs &&
	ech-embed -m "$bert" --lines <sentences.txt >v.ndjson &&
	"$PYTHON3" -c "
import json, struct
b = open(\"v.fvecs\", \"rb\").read()
rs = [json.loads(l) for l in open(\"v.ndjson\")]
assert len(b) == 4 * (4 * (1 + 128)), len(b)
for i, r in enumerate(rs):
    off = i * 4 * 129
    assert struct.unpack_from(\"<i\", b, off)[0] == 128
    f32 = [struct.unpack(\"<f\", struct.pack(\"<f\", x))[0] for x in r[\"embedding\"]]
    assert list(struct.unpack_from(\"<128f\", b, off + 4)) == f32
"
'
# a text of about 1400 tokens: more than mini-bert's 512
"$PYTHON3" -c "
import random
random.seed(1)
w = 'the quick brown fox jumps over lazy dog naive cafe owners like tokens'.split()
open('long.txt', 'w').write(' '.join(random.choice(w) for _ in range(1400)) + '\n')
"
test_expect_success 'a text longer than the context is refused with a clear message, nothing printed' '
	expect_exit 1 ech-embed -m "$bert" long.txt >out 2>err &&
	test ! -s out &&
	grep "^ech-embed: long.txt: 1[0-9][0-9][0-9] tokens, more than the model.s context of 512; use --chunk" err
'
test_expect_success '--truncate embeds its start, marked truncated' '
	ech-embed -m "$bert" --truncate long.txt >t.ndjson &&
	"$PYTHON3" -c "
import json
rs = [json.loads(l) for l in open(\"t.ndjson\")]
assert len(rs) == 1 and rs[0][\"truncated\"] is True
t = rs[0][\"text\"]
assert open(\"long.txt\").read().startswith(t) and 1500 < len(t) < 3000, len(t)
"
'
test_expect_success '--chunk 100 --overlap 20: chunks in order that cover the text and overlap' '
	ech-embed -m "$bert" --chunk 100 --overlap 20 long.txt >c.ndjson &&
	ech-tokenize -m "$bert" --help >/dev/null &&
	"$PYTHON3" -c "
import json
rs = [json.loads(l) for l in open(\"c.ndjson\")]
text = open(\"long.txt\").read()
assert [r[\"chunk\"] for r in rs] == list(range(len(rs))) and 15 <= len(rs) <= 25, len(rs)
pos = [text.find(r[\"text\"]) for r in rs]
assert all(p >= 0 for p in pos) and pos == sorted(pos) and pos[0] == 0
assert text.rstrip().endswith(rs[-1][\"text\"])
assert all(pos[i + 1] < pos[i] + len(rs[i][\"text\"]) for i in range(len(rs) - 1))   # overlap
"
'
test_expect_success 'a decoder model (stories260K, mean and last pooling)' '
	echo "Once upon a time" | ech-embed -m "$stories" --pooling mean >m.ndjson &&
	echo "Once upon a time" | ech-embed -m "$stories" --pooling last >l.ndjson &&
	"$PYTHON3" -c "
import json
for f, p in ((\"m.ndjson\", \"mean\"), (\"l.ndjson\", \"last\")):
    ref = json.load(open(\"$ECH_SRC/tests/data/embed/stories260K-%s.json\" % p))[\"data\"][0][\"embedding\"]
    r = json.loads(open(f).read())
    assert max(abs(a - b) for a, b in zip(r[\"embedding\"], ref)) <= 1e-5, p
"
'
test_expect_success 'errors: no model, bad options, a model that cannot embed, a missing file' '
	expect_exit 2 ech-embed </dev/null 2>e1 && grep "no model given" e1 &&
	expect_exit 2 ech-embed -m "$bert" --pooling max </dev/null 2>e2 && grep "pooling" e2 &&
	expect_exit 2 ech-embed -m "$bert" --chunk 10 --overlap 10 </dev/null 2>e3 &&
	expect_exit 2 ech-embed -m "$bert" --overlap 3 </dev/null 2>e4 &&
	if g=$(shared_path models/ref/mini-gemma3-Q8_0.gguf); then
		echo hi | expect_exit 1 ech-embed -m "$g" 2>e5 && grep "gemma3 cannot make embeddings" e5
	fi &&
	expect_exit 1 ech-embed -m "$bert" no-such-file s0.txt >o6 2>e6 && grep "^ech-embed: .*no-such-file" e6 &&
	test "$(wc -l <o6)" = 1 &&
	expect_exit 1 ech-embed -m no-such-model.gguf </dev/null 2>e7 && grep "^ech-embed: " e7
'
test_expect_success 'the pipeline: ech-embed | ech-index, then a query through ech-embed | ech-search' '
	ech-embed -m "$bert" --lines sentences.txt | ech-index -o docs.idx &&
	sed -n 3p sentences.txt | ech-embed -m "$bert" | ech-search docs.idx -k 2 >hits.ndjson &&
	"$PYTHON3" -c "
import json
r = json.loads(open(\"hits.ndjson\").read())[\"results\"]
want = open(\"sentences.txt\").read().split(\"\\n\")[2]
assert r[0][\"text\"] == want and r[0][\"id\"] == 2 and abs(r[0][\"score\"] - 1) < 1e-5, r
"
'
test_expect_success 'ech-search -m embeds text queries itself: the same hits as the pipe' '
	sed -n 3p sentences.txt | ech-search docs.idx -m "$bert" -k 2 >hits-m.ndjson &&
	"$PYTHON3" -c "
import json
a = json.loads(open(\"hits.ndjson\").read())
b = json.loads(open(\"hits-m.ndjson\").read())
want = open(\"sentences.txt\").read().split(\"\\n\")[2]
assert b[\"query_text\"] == want, b
assert [h[\"id\"] for h in a[\"results\"]] == [h[\"id\"] for h in b[\"results\"]], (a, b)
assert all(abs(x[\"score\"] - y[\"score\"]) < 1e-6 for x, y in zip(a[\"results\"], b[\"results\"])), (a, b)
" &&
	expect_exit 1 ech-search docs.idx -m "$stories" </dev/null 2>e8 && grep "dimension mismatch" e8 &&
	expect_exit 2 ech-search docs.idx -m "$bert" --fvecs </dev/null
'
test_expect_success '--help and --version' '
	ech-embed --help | grep -- "--chunk" && ech-embed --version | grep "^ech-embed (echostra)"
'
test_done
