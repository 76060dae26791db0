#!/bin/sh
# The whole GloVe set through the tools: ech-index builds 100k x 100 from
# .fvecs with 2 threads, ech-search answers the 1,000 queries, and recall@10
# against the set's exact ground truth must reach 0.95 at efSearch 128
# (a correctness floor for the graph, not a speed test).
. "$ECH_SRC/tests/test-lib.sh"

glove=$(shared_path ann/glove6b-100d-100k) || skip_all "\$ECH_SHARED/ann/glove6b-100d-100k absent"
have_python || skip_all "python3 absent"

recall() { # recall@10 of ech-search's NDJSON (stdin) against gt_cosine.ivecs
	"$PYTHON3" -c '
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
k = struct.unpack_from("<i", raw)[0]
gt = [struct.unpack_from("<%di" % k, raw, 4 + i * 4 * (k + 1))[:10] for i in range(len(raw) // (4 * (k + 1)))]
hit = n = 0
for line in sys.stdin:
    r = json.loads(line)
    got = [x["id"] for x in r["results"]]
    assert len(got) == 10, got
    hit += len(set(got) & set(gt[r["query"]]))
    n += 1
assert n == len(gt), (n, len(gt))
print("%.4f" % (hit / (10.0 * n)))' "$glove/gt_cosine.ivecs"
}

test_expect_success 'build the full GloVe set (100k x 100, cosine, 2 threads)' '
	ech-index -o glove.idx --metric cosine -t 2 "$glove/base.fvecs" &&
	test -s glove.idx
'
test_expect_success 'recall@10 >= 0.95 at efSearch 128 over the 1,000 queries' '
	ech-search glove.idx -k 10 --ef 128 "$glove/query.fvecs" | recall >r128 &&
	echo "# recall@10 at ef 128: $(cat r128)" &&
	"$PYTHON3" -c "import sys; sys.exit(0 if float(open(\"r128\").read()) >= 0.95 else 1)"
'
test_expect_success 'efSearch 10 loses recall (the floor above depends on ef)' '
	ech-search glove.idx -k 10 --ef 10 "$glove/query.fvecs" | recall >r10 &&
	echo "# recall@10 at ef 10: $(cat r10)" &&
	"$PYTHON3" -c "import sys; sys.exit(0 if float(open(\"r10\").read()) < float(open(\"r128\").read()) else 1)"
'
test_done
