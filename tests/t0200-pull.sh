#!/bin/sh
# t0200-pull.sh - ech-pull against a loopback HTTP server (tests/tools/
# httpserver.py): downloads, resume, digests, errors, the Hub layout, the
# cache, usage errors and refused references.

. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 not found"

# A 3 MiB payload from a fixed seed, so a cut lands mid-file every time.
mkdir -p root/o/r/@v2 models
"$PYTHON3" -c '
import random, sys
random.seed(200)
open(sys.argv[1], "wb").write(random.randbytes(3 * 1024 * 1024 + 123))
open(sys.argv[2], "wb").write(random.randbytes(100000))
' root/o/r/m.gguf root/o/r/@v2/m.gguf || exit 1
cp root/o/r/m.gguf root/plain.gguf

sha256_of() {
	"$PYTHON3" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}
size_of() { if [ -e "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

"$PYTHON3" "$ECH_SRC/tests/tools/httpserver.py" --root root --port-file port \
	--log requests.log 2>server.err &
server_pid=$!
trap 'kill $server_pid 2>/dev/null' EXIT
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -s port ]; then
	echo "Bail out! the test HTTP server did not start"
	exit 1
fi
PORT=$(cat port)
BASE="http://127.0.0.1:$PORT"
MODELS="$(cd -P models && pwd)"
ECH_MODELS=$MODELS
ECH_HF_ENDPOINT=$BASE
export ECH_MODELS ECH_HF_ENDPOINT BASE PORT MODELS
unset HF_TOKEN XDG_CACHE_HOME
SHA=$(sha256_of root/plain.gguf)
SIZE=$(size_of root/plain.gguf)
CACHE="$MODELS/127.0.0.1:$PORT"

test_expect_success 'download a URL into the cache, print only its path' '
	ech-pull "$BASE/plain.gguf" >out 2>err &&
	test "$(cat out)" = "$CACHE/plain.gguf" &&
	cmp root/plain.gguf "$CACHE/plain.gguf" &&
	test ! -e "$CACHE/plain.gguf.part" &&
	test ! -s err
'

test_expect_success 'a cut transfer keeps its .part file; the next run resumes it' '
	expect_exit 1 ech-pull "$BASE/plain.gguf?cut=1000000" -o cut.gguf 2>err &&
	grep "^ech-pull: .*plain.gguf?cut=1000000: " err &&
	test ! -e cut.gguf &&
	test "$(size_of cut.gguf.part)" = 1000000 &&
	ech-pull "$BASE/plain.gguf?cut=1000000" -o cut.gguf >out &&
	test "$(cat out)" = "$(pwd -P)/cut.gguf" &&
	grep "GET /plain.gguf?cut=1000000 range=bytes=1000000- " requests.log &&
	cmp root/plain.gguf cut.gguf &&
	test ! -e cut.gguf.part
'

test_expect_success 'a server that ignores Range (200) makes the download start over' '
	expect_exit 1 ech-pull "$BASE/plain.gguf?cut=700000&norange=1" -o norange.gguf 2>err &&
	test "$(size_of norange.gguf.part)" = 700000 &&
	ech-pull "$BASE/plain.gguf?cut=700000&norange=1" -o norange.gguf &&
	grep "cut=700000&norange=1 range=bytes=700000- " requests.log &&
	cmp root/plain.gguf norange.gguf
'

test_expect_success 'a .part file that is already whole (416) is verified and kept' '
	cp root/plain.gguf whole.gguf.part &&
	ech-pull "$BASE/plain.gguf?xetag=right&whole" -o whole.gguf &&
	grep "xetag=right&whole range=bytes=$SIZE- " requests.log &&
	cmp root/plain.gguf whole.gguf
'

test_expect_success 'a .part file longer than the file is discarded and fetched again' '
	cp root/plain.gguf long.gguf.part && echo garbage >>long.gguf.part &&
	ech-pull "$BASE/plain.gguf?long" -o long.gguf &&
	cmp root/plain.gguf long.gguf && test ! -e long.gguf.part
'

test_expect_success 'a wrong X-Linked-Etag rejects the file and leaves nothing' '
	expect_exit 1 ech-pull "$BASE/plain.gguf?xetag=wrong" -o bad.gguf 2>err &&
	grep "SHA-256 mismatch" err && grep "X-Linked-Etag" err &&
	test ! -e bad.gguf && test ! -e bad.gguf.part
'

test_expect_success 'a wrong digest on the Hub redirect is caught too' '
	expect_exit 1 ech-pull "$BASE/o/r/resolve/main/m.gguf?xetag=wrong" -o badhub.gguf 2>err &&
	grep "SHA-256 mismatch" err &&
	test ! -e badhub.gguf && test ! -e badhub.gguf.part
'

test_expect_success 'a resumed download with a wrong digest is discarded' '
	expect_exit 1 ech-pull "$BASE/plain.gguf?cut=500000&xetag=wrong" -o badres.gguf &&
	test -e badres.gguf.part &&
	expect_exit 1 ech-pull "$BASE/plain.gguf?cut=500000&xetag=wrong" -o badres.gguf &&
	test ! -e badres.gguf && test ! -e badres.gguf.part
'

test_expect_success 'ETag and Repr-Digest digests are checked' '
	ech-pull "$BASE/plain.gguf?etag=right" -o etag.gguf &&
	ech-pull "$BASE/plain.gguf?digest=right" -o digest.gguf &&
	cmp root/plain.gguf etag.gguf && cmp root/plain.gguf digest.gguf &&
	expect_exit 1 ech-pull "$BASE/plain.gguf?etag=wrong" -o etagbad.gguf 2>err &&
	grep "ETag" err &&
	expect_exit 1 ech-pull "$BASE/plain.gguf?digest=wrong" -o digestbad.gguf 2>err &&
	grep "Digest" err &&
	test ! -e etagbad.gguf && test ! -e digestbad.gguf.part
'

test_expect_success '--sha256 accepts the right digest (either case) and rejects a wrong one' '
	upper=$(printf %s "$SHA" | tr a-f A-F) &&
	ech-pull --sha256 "$upper" "$BASE/plain.gguf?pin" -o pinned.gguf &&
	cmp root/plain.gguf pinned.gguf &&
	expect_exit 1 ech-pull --sha256 "$(printf "%064d" 7)" "$BASE/plain.gguf?pin" -o pinbad.gguf 2>err &&
	grep "SHA-256 mismatch" err && grep -- "--sha256" err &&
	test ! -e pinbad.gguf && test ! -e pinbad.gguf.part
'

test_expect_success 'HTTP 404 fails with a clear message and leaves no file' '
	expect_exit 1 ech-pull "$BASE/missing.gguf" -o missing.gguf 2>err &&
	grep "^ech-pull: $BASE/missing.gguf: HTTP 404 Not Found$" err &&
	test ! -e missing.gguf && test ! -e missing.gguf.part &&
	expect_exit 1 ech-pull "$BASE/plain.gguf?status=500" -o s500.gguf 2>err &&
	grep "HTTP 500" err
'

test_expect_success 'hf: references go through ECH_HF_ENDPOINT into the cache layout' '
	ech-pull hf:o/r/m.gguf >out 2>err &&
	test "$(cat out)" = "$MODELS/hf/o/r/m.gguf" &&
	cmp root/o/r/m.gguf "$MODELS/hf/o/r/m.gguf" &&
	grep "GET /o/r/resolve/main/m.gguf range=- auth=no" requests.log &&
	grep "GET /cdn/o/r/m.gguf " requests.log
'

test_expect_success 'hf: --revision picks the revision; a missing file is a 404' '
	ech-pull --revision v2 hf:o/r/m.gguf -o rev.gguf &&
	cmp root/o/r/@v2/m.gguf rev.gguf &&
	grep "GET /o/r/resolve/v2/m.gguf " requests.log &&
	expect_exit 1 ech-pull hf:o/r/nothere.gguf 2>err &&
	grep "HTTP 404" err &&
	test ! -e "$MODELS/hf/o/r/nothere.gguf.part"
'

test_expect_success 'HF_TOKEN goes to the Hub endpoint only' '
	HF_TOKEN=hf_secret ech-pull hf:o/r/m.gguf --force -o tok.gguf &&
	grep "GET /o/r/resolve/main/m.gguf range=- auth=yes" requests.log &&
	HF_TOKEN=hf_secret ech-pull "$BASE/plain.gguf?tokentest" -o tok2.gguf &&
	grep "GET /plain.gguf?tokentest range=- auth=no" requests.log
'

test_expect_success '-o creates missing directories' '
	ech-pull -q "$BASE/plain.gguf" -o deep/er/x.gguf >out &&
	test "$(cat out)" = "$(pwd -P)/deep/er/x.gguf" && cmp root/plain.gguf deep/er/x.gguf
'

test_expect_success 'SIGINT keeps the .part file and exits 1; the next run resumes' '
	ech-pull "$BASE/plain.gguf?rate=400000" -o slow.gguf 2>err &
	pid=$! && n=0 &&
	while [ "$(size_of slow.gguf.part)" -lt 100000 ] && [ $n -lt 100 ]; do
		sleep 0.1; n=$((n + 1))
	done &&
	kill -INT $pid && { wait $pid; rc=$?; } && test $rc = 1 &&
	grep "interrupted" err &&
	test -s slow.gguf.part && test ! -e slow.gguf &&
	ech-pull "$BASE/plain.gguf" -o slow.gguf &&
	grep "GET /plain.gguf range=bytes=[1-9][0-9]*- " requests.log &&
	cmp root/plain.gguf slow.gguf
'

test_expect_success 'a local file is accepted and printed as an absolute path' '
	ech-pull root/plain.gguf >out &&
	test "$(cat out)" = "$(pwd -P)/root/plain.gguf" &&
	ech-pull --sha256 "$SHA" root/plain.gguf &&
	expect_exit 1 ech-pull no/such/file.gguf 2>err &&
	grep "no such file" err
'

test_expect_success 'usage errors exit 2' '
	expect_exit 2 ech-pull &&
	expect_exit 2 ech-pull a b &&
	expect_exit 2 ech-pull --bogus hf:o/r/m.gguf &&
	expect_exit 2 ech-pull --sha256 1234 hf:o/r/m.gguf &&
	expect_exit 2 ech-pull -o models hf:o/r/m.gguf &&
	expect_exit 2 ech-pull -o 2>err && grep "needs an argument" err &&
	ech-pull --help >out && grep "^Usage: ech-pull" out &&
	ech-pull --version >out && grep "^ech-pull (echostra)" out
'

test_expect_success 'path traversal and malformed references are refused' '
	lines=$(wc -l <requests.log) &&
	expect_exit 2 ech-pull "hf:o/r/../../../../escape.gguf" 2>err &&
	grep "refused" err &&
	expect_exit 2 ech-pull "hf:../../x/m.gguf" &&
	expect_exit 2 ech-pull "hf:/o/r/m.gguf" &&
	expect_exit 2 ech-pull "hf:o//r/m.gguf" &&
	expect_exit 2 ech-pull "hf:o/r/m.gguf" --revision ../main &&
	expect_exit 2 ech-pull "$(printf "hf:o/r/a\001b.gguf")" &&
	expect_exit 2 ech-pull "$BASE/dir/%2e%2e" &&
	expect_exit 2 ech-pull "$BASE/" &&
	test "$(wc -l <requests.log)" = "$lines" &&
	test ! -e "$MODELS/escape.gguf" && test ! -e escape.gguf
'

# From here on, no server: what is cached must still be found.
kill $server_pid 2>/dev/null
wait $server_pid 2>/dev/null

test_expect_success 'a cached file is printed without any download' '
	ech-pull hf:o/r/m.gguf >out &&
	test "$(cat out)" = "$MODELS/hf/o/r/m.gguf" &&
	ech-pull --sha256 "$(sha256_of root/o/r/m.gguf)" hf:o/r/m.gguf &&
	expect_exit 1 ech-pull --sha256 "$(printf "%064d" 7)" hf:o/r/m.gguf 2>err &&
	grep -- "--force" err &&
	ech-pull "$BASE/plain.gguf" >out && test "$(cat out)" = "$CACHE/plain.gguf"
'

test_expect_success '--force downloads again (and fails with no server)' '
	expect_exit 1 ech-pull --force hf:o/r/m.gguf 2>err &&
	grep "^ech-pull: $BASE/o/r/resolve/main/m.gguf: " err &&
	cmp root/o/r/m.gguf "$MODELS/hf/o/r/m.gguf"
'

test_done
