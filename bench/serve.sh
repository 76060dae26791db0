#!/bin/sh
# bench/serve.sh MODEL [THREADS] - aggregate tokens/s of ech-serve and llama-server
# with the same model, threads and --parallel, at 1, 4 and 8 concurrent streams.
#
#   LLAMA_SERVER  the peer (default /tmp/llama.cpp-u/build/bin/llama-server)
#   PARALLEL      slots on both servers (default 8)
#   CTX           positions per slot (default 512)
#   N_TOKENS      tokens per request (default 128)
#   CONCURRENCY   list of stream counts (default "1 4 8")
#   ROUNDS        measured bursts per server and concurrency (default 3)
#
# Both servers run at once and take turns (bench/serve-client.py alternates
# bursts, flipping the order each round), so a change in the machine's load
# during the run hits both.  Prints the load (uptime) before and after, and
# a Markdown table (for bench/RESULTS.md): each server's aggregate tokens/s,
# the ratio, each server's scaling against its own single stream, and mean
# time to first token.  Goal: ech-serve >= llama-server at each concurrency,
# and at 4 streams at least 2.5x its own single-stream aggregate.
set -eu
model=${1:?usage: bench/serve.sh MODEL [THREADS]}
threads=${2:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
LLAMA_SERVER=${LLAMA_SERVER:-/tmp/llama.cpp-u/build/bin/llama-server}
PARALLEL=${PARALLEL:-8}
CTX=${CTX:-512}
N_TOKENS=${N_TOKENS:-128}
CONCURRENCY=${CONCURRENCY:-"1 4 8"}
ROUNDS=${ROUNDS:-3}
ECH_SERVE=${ECH_SERVE:-$top/bin/ech-serve}
[ -x "$ECH_SERVE" ] || { echo "bench/serve.sh: build ech-serve first (make)" >&2; exit 1; }
[ -x "$LLAMA_SERVER" ] || { echo "bench/serve.sh: no llama-server at $LLAMA_SERVER (set LLAMA_SERVER)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
wait_up() { i=0; until curl -sf -o /dev/null "http://127.0.0.1:$1/health"; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "bench/serve.sh: server on $1 did not start" >&2; exit 1; }; sleep 0.2; done; }

pe=$(free_port)
"$ECH_SERVE" -m "$model" -t "$threads" -P "$PARALLEL" -c "$CTX" --port "$pe" 2>"$tmp/ech.log" & pids="$pids $!"
pl=$(free_port)
# llama-server's -c is the total over all slots
"$LLAMA_SERVER" -m "$model" -t "$threads" -np "$PARALLEL" -c $((CTX * PARALLEL)) --port "$pl" \
	--no-webui >"$tmp/llama.log" 2>&1 & pids="$pids $!"
wait_up "$pe"
wait_up "$pl"

echo "before: $(uptime)"
python3 "$here/serve-client.py" "$N_TOKENS" "$ROUNDS" "$CONCURRENCY" \
	"ech=http://127.0.0.1:$pe" "llama=http://127.0.0.1:$pl" >"$tmp/runs.jsonl"
echo "after:  $(uptime)"
echo

python3 - "$tmp/runs.jsonl" "$model" "$threads" "$PARALLEL" "$N_TOKENS" "$ROUNDS" <<'PY'
import json, os, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
e = [r for r in runs if r["server"] == "ech"]
l = [r for r in runs if r["server"] == "llama"]
print("model %s, %s threads, --parallel %s, %s tokens per request, %s alternating rounds" %
      (os.path.basename(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]))
print()
print("| streams | ech-serve tok/s | llama-server tok/s | ratio | ech scaling | llama scaling | ech TTFT ms | llama TTFT ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for a, b in zip(e, l):
    print("| %d | %.1f | %.1f | %.2f | %.2fx | %.2fx | %.0f | %.0f |" % (a["concurrency"], a["tokens_per_s"], b["tokens_per_s"],
          a["tokens_per_s"] / b["tokens_per_s"], a["tokens_per_s"] / e[0]["tokens_per_s"],
          b["tokens_per_s"] / l[0]["tokens_per_s"], a["ttft_ms_mean"], b["ttft_ms_mean"]))
PY
