#!/bin/sh
# chat-template.sh - render time of a 20-message conversation with the
# Llama 3.1 template: libech (bench/chat-template) and Python's jinja2
# (configured as tests/tools/chat_render.py, which is how transformers does
# it) on the same input; checks both prompts are identical, prints a table.
#
#   make bench/chat-template && bench/chat-template.sh [TEMPLATE] [N_MESSAGES]
top=$(cd "$(dirname "$0")/.." && pwd)
tpl=${1:-${ECH_SHARED:-$top/../shared}/templates/meta-llama-Llama-3.1-8B-Instruct.jinja}
n=${2:-20}
py=/usr/bin/python3
"$py" -c 'import jinja2' 2>/dev/null || py=python3
c=$("$top/bench/chat-template" "$tpl" "$n" 20000) || exit 1
tmp=${TMPDIR:-/tmp}/chat-bench.$$
PYTHONPATH="$top/tests/tools" "$py" - "$tpl" "$n" "$tmp" >"$tmp" <<'PY'
import sys, time
import chat_render as cr
from jinja2.sandbox import ImmutableSandboxedEnvironment
import jinja2
tpl, n = sys.argv[1], int(sys.argv[2])
msgs = []
for i in range(n):
    if i == 0:
        role, text = "system", "You are a helpful assistant. Answer briefly and precisely."
    elif i % 2:
        role, text = "user", ("Question %d: how do Unix pipes pass data between two processes, "
                              "and what happens when the reader is slower than the writer?" % i)
    else:
        role, text = "assistant", ("Answer %d: the kernel keeps a buffer (64 KiB on Linux); the writer "
                                   "blocks when it is full and resumes as the reader drains it." % i)
    msgs.append({"role": role, "content": text})
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[cr.GenerationBlock, jinja2.ext.loopcontrols])
env.filters["tojson"] = cr.tojson
env.globals["raise_exception"] = cr.raise_exception
env.globals["strftime_now"] = cr.strftime_now
src = open(tpl, encoding="utf-8").read()
t0 = time.perf_counter()
for _ in range(20):
    t = env.from_string(src)
compile_us = (time.perf_counter() - t0) / 20 * 1e6
kw = dict(messages=msgs, add_generation_prompt=True, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
best, total, iters = 1e30, 0.0, 2000
for _ in range(iters):
    a = time.perf_counter()
    out = t.render(**kw)
    d = (time.perf_counter() - a) * 1e6
    total += d
    best = min(best, d)
import json
json.dump(msgs, open(sys.argv[3] + ".json", "w"))
open(sys.argv[3] + ".want", "wb").write(out.encode())
print("compile_us=%.1f render_mean_us=%.2f render_best_us=%.2f prompt_bytes=%d" % (compile_us, total / iters, best, len(out.encode())))
PY
p=$(cat "$tmp")
"$top/bin/ech-template" -t "$tpl" --messages "$tmp.json" --bos "<|begin_of_text|>" --eos "<|eot_id|>" >"$tmp.got" &&
	cmp -s "$tmp.want" "$tmp.got" || { echo "chat-template.sh: the two prompts differ" >&2; exit 1; }
rm -f "$tmp" "$tmp.json" "$tmp.want" "$tmp.got"
get() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
printf '| renderer | compile (µs) | render mean (µs) | render best (µs) | prompt bytes |\n'
printf '|---|---:|---:|---:|---:|\n'
printf '| libech ech_chat_render | %s | %s | %s | %s |\n' "$(get "$c" compile_us)" "$(get "$c" render_mean_us)" "$(get "$c" render_best_us)" "$(get "$c" prompt_bytes)"
printf '| Python jinja2 %s | %s | %s | %s | %s |\n' "$("$py" -c 'import jinja2; print(jinja2.__version__)')" "$(get "$p" compile_us)" "$(get "$p" render_mean_us)" "$(get "$p" render_best_us)" "$(get "$p" prompt_bytes)"
