#!/usr/bin/env python3
"""serve-client.py N_TOKENS ROUNDS "C1 C2 ..." NAME=URL [NAME=URL ...] - aggregate
generation speed of OpenAI-compatible servers, measured side by side.

For each concurrency C, every round runs one burst per server in turn (the
order flips each round, so drift in the machine's load hits both alike): C
streams at once, each asking /v1/completions for exactly N_TOKENS tokens
(ignore_eos).  Before the first burst at each concurrency, each server gets
one burst that is not counted (warm-up).  Prints one JSON line per server and
concurrency: tokens, seconds, tokens/s, mean time to first token."""
import http.client, json, sys, threading, time, urllib.parse

n_tok, rounds = int(sys.argv[1]), int(sys.argv[2])
concs = [int(c) for c in sys.argv[3].split()]
servers = [(a.split("=", 1)[0], urllib.parse.urlparse(a.split("=", 1)[1])) for a in sys.argv[4:]]
PROMPT = "Once upon a time, in a small village by the sea, there lived"


def one(u, out, i, seed):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = {"prompt": PROMPT, "max_tokens": n_tok, "temperature": 0.8, "seed": seed, "ignore_eos": True,
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
    c.close()
    out[i] = (n, first or 0.0)


def burst(u, conc, seed):
    out = [None] * conc
    ts = [threading.Thread(target=one, args=(u, out, i, seed + i)) for i in range(conc)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out, time.time() - t0


for conc in concs:
    acc = {name: [0, 0.0, []] for name, _ in servers}
    for name, u in servers:
        burst(u, conc, 1000)   # warm-up
    for r in range(rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for name, u in order:
            out, wall = burst(u, conc, 100 * r)
            a = acc[name]
            a[0] += sum(o[0] for o in out)
            a[1] += wall
            a[2] += [o[1] for o in out]
    for name, _ in servers:
        tok, wall, ttft = acc[name]
        print(json.dumps({"server": name, "concurrency": conc, "tokens": tok, "seconds": round(wall, 3),
                          "tokens_per_s": round(tok / wall, 2),
                          "ttft_ms_mean": round(1000 * sum(ttft) / len(ttft), 1)}), flush=True)
