#!/bin/sh
# ech-index / ech-search: NDJSON and .fvecs in, k-NN out, append, delete,
# compact, filters, and bad input that must leave the index as it was.
. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 absent"

# 300 random 16-d vectors with string ids and payloads, 20 queries, and the
# exact top 5 by cosine, computed here in Python (independent of libech)
"$PYTHON3" - <<'PY'
import json, math, random, struct
rnd = random.Random(7)
vecs = [[rnd.uniform(-1, 1) for _ in range(16)] for _ in range(300)]
qs = [[rnd.uniform(-1, 1) for _ in range(16)] for _ in range(20)]
with open("docs.ndjson", "w") as f:
    for i, v in enumerate(vecs):
        f.write(json.dumps({"id": "doc-%d" % i, "embedding": v, "text": "text %d" % i,
                            "source": "dir%d/f%d.txt" % (i % 3, i), "chunk": i % 4}) + "\n")
with open("queries.ndjson", "w") as f:
    for q in qs:
        f.write(json.dumps({"embedding": q}) + "\n")
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
with open("want.txt", "w") as f:
    for q in qs:
        order = sorted(range(300), key=lambda i: -cos(q, vecs[i]))
        f.write(" ".join("doc-%d" % i for i in order[:5]) + "\n")
with open("docs.fvecs", "wb") as f:
    for v in vecs:
        f.write(struct.pack("<i16f", 16, *v))
with open("queries.fvecs", "wb") as f:
    for q in qs:
        f.write(struct.pack("<i16f", 16, *q))
PY

ids() { "$PYTHON3" -c '
import json, sys
for line in sys.stdin:
    print(" ".join(str(r["id"]) for r in json.loads(line)["results"]))'; }

test_expect_success 'build from NDJSON; every query finds the exact top 5 (ef 300)' '
	ech-index -o docs.idx docs.ndjson &&
	ech-search docs.idx -k 5 --ef 300 queries.ndjson >res.ndjson &&
	ids <res.ndjson >got.txt && cmp got.txt want.txt
'
test_expect_success 'results carry query number, score, text, source and chunk' '
	head -n 1 res.ndjson | "$PYTHON3" -c "
import json, sys
r = json.loads(sys.stdin.read())
assert r[\"query\"] == 0 and len(r[\"results\"]) == 5
top = r[\"results\"][0]
assert top[\"text\"] == \"text \" + top[\"id\"][4:] and top[\"source\"].endswith(\".txt\") and \"chunk\" in top
s = [x[\"score\"] for x in r[\"results\"]]
assert s == sorted(s, reverse=True) and -1 <= s[-1] <= s[0] <= 1.0001, s
"
'
test_expect_success '--exact agrees; .fvecs index and queries (by extension and --fvecs on stdin) too' '
	ech-search docs.idx -k 5 --exact <queries.ndjson | ids >exact.txt &&
	cmp exact.txt want.txt &&
	ech-index -o num.idx -t 2 docs.fvecs &&
	ech-search num.idx -k 5 --ef 300 queries.fvecs | ids >num.txt &&
	ech-search num.idx -k 5 --ef 300 --fvecs <queries.fvecs | ids >num2.txt &&
	sed "s/doc-//g" want.txt >wantnum.txt && cmp num.txt wantnum.txt && cmp num2.txt wantnum.txt
'
test_expect_success '--filter source=dir1/ returns only dir1 results, still nearest first' '
	ech-search docs.idx -k 5 --filter source=dir1/ --exact <queries.ndjson >f.ndjson &&
	ech-search docs.idx -k 5 --filter source=dir1/ --ef 300 <queries.ndjson >g.ndjson &&
	"$PYTHON3" -c "
import json
for a, b in zip(open(\"f.ndjson\"), open(\"g.ndjson\")):
    ra, rb = json.loads(a)[\"results\"], json.loads(b)[\"results\"]
    assert len(ra) == 5 and all(r[\"source\"].startswith(\"dir1/\") for r in ra)
    assert [r[\"id\"] for r in ra] == [r[\"id\"] for r in rb]
"
'
test_expect_success '--delete: the id is never returned again; --compact drops it from the file' '
	cp docs.idx d.idx &&
	first=$(head -n 1 want.txt | cut -d" " -f1) &&
	ech-index -o d.idx --delete "$first" &&
	ech-search d.idx -k 5 --ef 300 queries.ndjson | ids >del.txt &&
	! grep -w -- "$first" del.txt &&
	head -n 1 del.txt | grep -q "^$(head -n 1 want.txt | cut -d" " -f2) " &&
	ech-index -o d.idx --compact &&
	test "$(wc -c <d.idx)" -lt "$(wc -c <docs.idx)" &&
	ech-search d.idx -k 5 --ef 300 queries.ndjson | ids | cmp - del.txt
'
test_expect_success '--append adds records that are then found' '
	cp docs.idx a.idx &&
	echo "{\"id\":\"new\",\"embedding\":$(sed -n 1p queries.ndjson | "$PYTHON3" -c "import json,sys; print(json.dumps(json.loads(sys.stdin.read())[\"embedding\"]))"),\"text\":\"fresh\"}" >new.ndjson &&
	ech-index -o a.idx --append new.ndjson &&
	ech-search a.idx -k 1 queries.ndjson | head -n 1 | grep -q "\"id\":\"new\"" &&
	ech-search a.idx -k 1 queries.ndjson | head -n 1 | grep -q "\"text\":\"fresh\""
'
test_expect_success 'bad input fails with a message and leaves the index intact' '
	cp docs.idx keep.idx &&
	echo "{\"id\":\"x\",\"embedding\":[1,2,3]}" | expect_exit 1 ech-index -o keep.idx --append 2>e1 &&
	grep -q "dimension mismatch" e1 &&
	echo "{\"id\":\"doc-3\",\"embedding\":$(sed -n 1p queries.ndjson | cut -d: -f2 | tr -d "}")}" |
		expect_exit 1 ech-index -o keep.idx --append 2>e2 && grep -q "duplicate id \"doc-3\"" e2 &&
	printf "{\"id\":\"y\",\"embedding\":[1,NaN]}\n" | expect_exit 1 ech-index -o keep.idx --append 2>e3 &&
	grep -q "NaN" e3 &&
	printf "{\"id\":1,\"embedding\":[1,2]}\n{\"id\":1,\"embedding\":[2,1]}\n" | expect_exit 1 ech-index -o new.idx 2>e4 &&
	grep -q "duplicate id 1" e4 && ! test -e new.idx &&
	printf "{\"id\":1,\"embedding\":[1,2]}\nnot json\n" | expect_exit 1 ech-index -o new.idx 2>e5 &&
	grep -q "stdin:2: invalid JSON" e5 &&
	expect_exit 1 ech-index -o keep.idx --delete nosuch 2>e6 && grep -q "not in the index" e6 &&
	cmp keep.idx docs.idx && ! ls keep.idx.tmp-* 2>/dev/null
'
test_expect_success 'corrupt and truncated index files are refused' '
	cp docs.idx bad.idx &&
	printf "\\377" | dd of=bad.idx bs=1 seek=5000 conv=notrunc 2>/dev/null &&
	expect_exit 1 ech-search bad.idx <queries.ndjson 2>e1 && grep -q "checksum" e1 &&
	head -c 3000 docs.idx >short.idx &&
	expect_exit 1 ech-search short.idx <queries.ndjson 2>e2 && grep -q "ech-search: short.idx:" e2 &&
	echo hello >text.idx && expect_exit 1 ech-search text.idx <queries.ndjson 2>e3 && grep -q "truncated\|magic" e3 &&
	expect_exit 1 ech-index -o bad.idx --append docs.ndjson 2>e4 && grep -q checksum e4
'
test_expect_success 'a query of the wrong dimension; usage errors' '
	echo "[1,2,3]" | expect_exit 1 ech-search docs.idx 2>e1 && grep -q "dimension mismatch" e1 &&
	expect_exit 2 ech-search 2>/dev/null &&
	expect_exit 2 ech-index docs.ndjson 2>/dev/null &&
	expect_exit 2 ech-index -o x.idx --metric foo docs.ndjson 2>/dev/null &&
	expect_exit 2 ech-index -o docs.idx --append -M 8 docs.ndjson 2>/dev/null &&
	expect_exit 2 ech-search docs.idx --filter nofield 2>/dev/null &&
	ech-index --help | grep -q -- "--ef-construction" && ech-search --version | grep -q ech-search
'
test_done
