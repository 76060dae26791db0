#!/usr/bin/env python3
"""serve-client.py URL CONCURRENCY N_TOKENS [ROUNDS] - aggregate generation speed of an
OpenAI-compatible server: CONCURRENCY streams at once, each asking /v1/completions
for exactly N_TOKENS tokens (ignore_eos), ROUNDS times.  Prints one JSON line."""
import http.client, json, sys, threading, time, urllib.parse

url, conc, n_tok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
u = urllib.parse.urlparse(url)
PROMPT = "Once upon a time, in a small village by the sea, there lived"

def one(out, i):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = {"prompt": PROMPT, "max_tokens": n_tok, "temperature": 0.8, "seed": i, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.time()
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    first, n = None, 0
    for line in r:
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        d = json.loads(line[6:])
        if first is None and d.get("choices") and d["choices"][0].get("text"):
            first = time.time() - t0
        if d.get("usage"):
            n = d["usage"]["completion_tokens"]
    out[i] = (n, first or 0.0, time.time() - t0)

def burst():
    out = [None] * conc
    ts = [threading.Thread(target=one, args=(out, i)) for i in range(conc)]
    t0 = time.time()
    for t in ts: t.start()
    for t in ts: t.join()
    return out, time.time() - t0

burst_ = burst()  # warm-up (not counted)
tok, wall, ttft = 0, 0.0, []
for _ in range(rounds):
    out, w = burst()
    tok += sum(o[0] for o in out)
    wall += w
    ttft += [o[1] for o in out]
print(json.dumps({"concurrency": conc, "tokens": tok, "seconds": round(wall, 3),
                  "tokens_per_s": round(tok / wall, 2), "ttft_ms_mean": round(1000 * sum(ttft) / len(ttft), 1)}))
