#!/bin/sh
# ech-serve tool calls (Hermes and Llama 3 syntax), cancellation, queue bound,
# graceful shutdown.  The model's outputs are fixed with --replay over
# vocabulary-only GGUFs whose templates know tools.  Request k gets output k.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"
llama3=$(shared_path vocab/ggml-vocab-llama3.gguf) || skip_all "ECH_SHARED data absent"
l31=$(shared_path templates/meta-llama-Llama-3.1-8B-Instruct.jinja) || skip_all "ECH_SHARED data absent"

j() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
TOOLS='"tools":[{"type":"function","function":{"name":"add","description":"Add two numbers","parameters":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}}}]'

cat >hermes.json <<'JSON'
["Let me add.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 1}}\n</tool_call>",
 "The answer is 4.",
 "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2,\n</tool_call>",
 "Let me add.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 1}}\n</tool_call>",
 "Four.",
 "<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2}}</tool_call>"]
JSON
serve_start hermes -m "$qwen3" --replay hermes.json -P 1 || skip_all "ech-serve did not start"
H=$SERVE_URL

test_expect_success 'the server detects Hermes-style tools in the Qwen 3 template' '
	grep -q "tools: hermes" hermes.log
'
test_expect_success 'Hermes: message.tool_calls with ids, content kept, finish_reason tool_calls' '
	curl -s "$H/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >r.json &&
	"$PYTHON3" - <<-\PY
	import json
	d = json.load(open("r.json"))
	c = d["choices"][0]
	assert c["finish_reason"] == "tool_calls", c
	calls = c["message"]["tool_calls"]
	assert len(calls) == 2 and calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
	assert calls[0]["id"] != calls[1]["id"]
	assert calls[0]["function"]["name"] == "add"
	assert json.loads(calls[0]["function"]["arguments"]) == {"a": 2, "b": 2}
	assert json.loads(calls[1]["function"]["arguments"]) == {"a": 1, "b": 1}
	assert c["message"]["content"] == "Let me add.", c["message"]
	PY
'
test_expect_success 'a tool result renders back into the template (round trip), plain answer follows' '
	curl -s "$H/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":2}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"4\"}],$TOOLS}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"message\"][\"content\"]")" = "The answer is 4." &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = stop
'
test_expect_success 'a malformed call stays content' '
	curl -s "$H/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = stop &&
	j r.json "d[\"choices\"][0][\"message\"][\"content\"]" | grep -q "<tool_call>"
'
test_expect_success 'Hermes streamed: content deltas, then delta.tool_calls fragments keyed by index' '
	curl -sN "$H/v1/chat/completions" -d "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >s.txt &&
	"$PYTHON3" - <<-\PY
	import json
	ev = [l[6:] for l in open("s.txt").read().split("\n\n") if l]
	assert ev[-1] == "[DONE]"
	chunks = [json.loads(e) for e in ev[:-1]]
	content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
	assert content.strip() == "Let me add.", repr(content)
	calls = {}
	for c in chunks:
	    for f in c["choices"][0]["delta"].get("tool_calls") or []:
	        e = calls.setdefault(f["index"], {"id": None, "name": "", "args": ""})
	        if f.get("id"): e["id"] = f["id"]
	        fn = f.get("function") or {}
	        e["name"] += fn.get("name") or ""
	        e["args"] += fn.get("arguments") or ""
	assert sorted(calls) == [0, 1], calls
	assert calls[0]["name"] == "add" and json.loads(calls[0]["args"]) == {"a": 2, "b": 2}
	assert calls[1]["id"].startswith("call_")
	assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
	PY
'
test_expect_success 'tool_choice none: no tools in the prompt, text stays text' '
	curl -s "$H/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS,\"tool_choice\":\"none\"}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = stop
'
test_expect_success 'Ollama /api/chat returns tool_calls with object arguments' '
	curl -s "$H/api/chat" -d "{\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >r.json &&
	test "$(j r.json "d[\"message\"][\"tool_calls\"][0][\"function\"][\"arguments\"][\"a\"]")" = 2
'

# tool_choice "required" / a named function: the server writes the call's
# opener into the assistant turn, so these outputs are continuations of it.
cat >forced.json <<'JSON'
["Four.",
 "add\", \"arguments\": {\"a\": 2, \"b\": 2}}\n</tool_call>",
 "{\"a\": 3, \"b\": 4}}\n</tool_call>",
 "{\"a\": 5, \"b\": 6}}\n</tool_call>",
 "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 1}}\n</tool_call>"]
JSON
serve_start forced -m "$qwen3" --replay forced.json -P 1 || true
F=$SERVE_URL
ntok() { curl -s "$F/tokenize" -d "$1" | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)["tokens"]))'; }
ASK='"messages":[{"role":"user","content":"2+2?"}]'
test_expect_success 'tool_choice required: the reply opens a call (prompt ends with the opener), parsed with it' '
	curl -s "$F/v1/chat/completions" -d "{$ASK,$TOOLS}" >auto.json &&
	curl -s "$F/v1/chat/completions" -d "{$ASK,$TOOLS,\"tool_choice\":\"required\"}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = tool_calls &&
	test "$(j r.json "d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"name\"]")" = add &&
	test "$(j r.json "json.loads(d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"arguments\"])")" = "{'"'"'a'"'"': 2, '"'"'b'"'"': 2}" &&
	test "$(j r.json "d[\"choices\"][0][\"message\"][\"content\"]")" = None &&
	opener=$(ntok "{\"content\":\"<tool_call>\\n{\\\"name\\\": \\\"\"}") &&
	test $(( $(j r.json "d[\"usage\"][\"prompt_tokens\"]") - $(j auto.json "d[\"usage\"][\"prompt_tokens\"]") )) = "$opener"
'
test_expect_success 'tool_choice naming a function: the opener carries the name up to the arguments' '
	curl -s "$F/v1/chat/completions" -d "{$ASK,$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"name\"]")" = add &&
	test "$(j r.json "json.loads(d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"arguments\"])[\"b\"]")" = 4 &&
	opener=$(ntok "{\"content\":\"<tool_call>\\n{\\\"name\\\": \\\"add\\\", \\\"arguments\\\": \"}") &&
	test $(( $(j r.json "d[\"usage\"][\"prompt_tokens\"]") - $(j auto.json "d[\"usage\"][\"prompt_tokens\"]") )) = "$opener"
'
test_expect_success 'a forced call streams as delta.tool_calls, no opener text leaks into content' '
	curl -sN "$F/v1/chat/completions" -d "{\"stream\":true,$ASK,$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}}" >s.txt &&
	"$PYTHON3" - <<-\PY
	import json
	ev = [json.loads(l[6:]) for l in open("s.txt").read().split("\n\n") if l and l != "data: [DONE]"]
	assert "".join(e["choices"][0]["delta"].get("content") or "" for e in ev) == "", ev
	args = "".join((f.get("function") or {}).get("arguments") or "" for e in ev for f in e["choices"][0]["delta"].get("tool_calls") or [])
	assert json.loads(args) == {"a": 5, "b": 6}, args
	assert ev[-1]["choices"][0]["finish_reason"] == "tool_calls"
	PY
'
test_expect_success 'tool_choice none: a call the model writes anyway stays text' '
	curl -s "$F/v1/chat/completions" -d "{$ASK,$TOOLS,\"tool_choice\":\"none\"}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = stop &&
	test "$(j r.json "\"tool_calls\" in d[\"choices\"][0][\"message\"]")" = False &&
	j r.json "d[\"choices\"][0][\"message\"][\"content\"]" | grep -q "<tool_call>"
'
test_expect_success 'tool_choice naming a function that is not in tools: 400' '
	code=$(curl -s -o r.json -w "%{http_code}" "$F/v1/chat/completions" -d "{$ASK,$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"mul\"}}}") &&
	test "$code" = 400 && grep -q mul r.json
'

cat >llama.json <<'JSON'
["{\"name\": \"add\", \"parameters\": {\"a\": 2, \"b\": 2}}", "Four.",
 "add\", \"parameters\": {\"a\": 7, \"b\": 8}}"]
JSON
serve_start llama -m "$llama3" --chat-template "$l31" --replay llama.json -P 1 || true
L=$SERVE_URL
test_expect_success 'Llama 3.1: JSON tool calls parsed, plain text left alone' '
	grep -q "tools: llama3" llama.log &&
	curl -s "$L/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = tool_calls &&
	test "$(j r.json "json.loads(d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"arguments\"])[\"b\"]")" = 2 &&
	curl -sN "$L/v1/chat/completions" -d "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS}" >s.txt &&
	"$PYTHON3" -c "
import json
ev = [json.loads(l[6:]) for l in open(\"s.txt\").read().split(\"\n\n\") if l and l != \"data: [DONE]\"]
assert \"\".join(e[\"choices\"][0][\"delta\"].get(\"content\") or \"\" for e in ev) == \"Four.\"
assert ev[-1][\"choices\"][0][\"finish_reason\"] == \"stop\"
"
'

test_expect_success 'Llama 3.1, tool_choice required: the JSON opener is prefilled' '
	curl -s "$L/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],$TOOLS,\"tool_choice\":\"required\"}" >r.json &&
	test "$(j r.json "d[\"choices\"][0][\"finish_reason\"]")" = tool_calls &&
	test "$(j r.json "json.loads(d[\"choices\"][0][\"message\"][\"tool_calls\"][0][\"function\"][\"arguments\"])[\"b\"]")" = 8
'

# A slow replayed model: 40 ms a token, 200 tokens.
"$PYTHON3" -c 'import json; print(json.dumps([" tick" * 200]))' >slow.json
serve_start slow -m "$qwen3" --replay slow.json --replay-delay 40 -P 1 --queue 1 --shutdown-grace 10 || true
S=$SERVE_URL
S_PID=$SERVE_PID
metric() { curl -s "$S/metrics" | sed -n "s/^$1 //p"; }
test_expect_success 'a client that disconnects cancels its generation within a step; the slot is freed' '
	curl -sN --max-time 0.5 "$S/v1/completions" -d "{\"prompt\":\"x\",\"stream\":true}" >/dev/null;
	sleep 0.3 &&
	test "$(metric ech_generations_canceled_total)" = 1 && test "$(metric ech_slots_busy)" = 0 &&
	test "$(metric ech_generated_tokens_total)" -lt 40
'
test_expect_success 'a non-streamed request is canceled too when its client goes away' '
	curl -s --max-time 0.5 "$S/v1/completions" -d "{\"prompt\":\"x\"}" >/dev/null;
	sleep 0.3 && test "$(metric ech_generations_canceled_total)" = 2 && test "$(metric ech_slots_busy)" = 0
'
test_expect_success 'beyond --queue, requests get 503 with Retry-After' '
	curl -s --max-time 3 "$S/v1/completions" -d "{\"prompt\":\"x\"}" >/dev/null & a=$!
	sleep 0.2; curl -s --max-time 3 "$S/v1/completions" -d "{\"prompt\":\"x\"}" >/dev/null & b=$!
	sleep 0.2; curl -s -D hdr -o out.json -w "%{http_code}" "$S/v1/completions" -d "{\"prompt\":\"x\"}" >code;
	wait $a $b; test "$(cat code)" = 503 && grep -q queue_full out.json && grep -qi "^Retry-After:" hdr
'
test_expect_success 'SIGTERM: the request in flight finishes, new ones are refused, exit 0' '
	ech-serve -m "$qwen3" --replay slow.json --replay-delay 40 -P 1 --port 0 2>term.log & pid=$!
	i=0; port=; while [ $i -lt 100 ] && [ -z "$port" ]; do sleep 0.1; i=$((i+1));
		port=$(sed -n "s/.*127.0.0.1:\([0-9]*\).*/\1/p" term.log); done;
	curl -sN "http://127.0.0.1:$port/v1/completions" -d "{\"prompt\":\"x\",\"max_tokens\":30,\"stream\":true}" >inflight.txt & c=$!
	i=0; while [ $i -lt 100 ] && ! curl -s "http://127.0.0.1:$port/metrics" | grep -q "^ech_slots_busy 1"; do sleep 0.05; i=$((i+1)); done;
	kill -TERM $pid && sleep 0.2 &&
	code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/health");
	wait $c; wait $pid; rc=$?;
	cat term.log inflight.txt; echo "rc=$rc health=$code";
	test $rc = 0 && test "$code" != 200 && grep -q "\"finish_reason\":\"length\"" inflight.txt &&
	tail -n 2 inflight.txt | grep -q DONE && grep -q "shutting down" term.log
'
test_done
