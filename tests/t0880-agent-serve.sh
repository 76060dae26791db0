#!/bin/sh
# ech-agent end to end against a real ech-serve: with stories260K (nonsense
# text, but the answer must be what the server gives for the same request),
# and with --replay, where the server's own tool-call parser turns scripted
# model output into tool calls that the agent runs.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
tpl=$(shared_path templates/Qwen-Qwen2.5-7B-Instruct.jinja) || skip_all "ECH_SHARED data absent"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"

serve_start a -m "$model" --chat-template "$tpl" -P 1 -c 512 -t 1 || skip_all "ech-serve did not start"
A=$SERVE_URL
printf "the note says: meet at noon\n" >note.txt
# the model's context is 512 tokens: one small tool keeps the prompt inside it
echo '{"name": "now", "description": "the time", "command": ["date"]}' >now.json
cat >replay.json <<'JSON'
["<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"note.txt\"}}\n</tool_call>", "We meet at noon."]
JSON
serve_start b -m "$qwen3" --replay replay.json -P 1 || skip_all "ech-serve did not start"
B=$SERVE_URL

test_expect_success 'stories260K, --max-turns 1: exit 0 and the answer the server gives for the same request' '
	ech-agent --base-url "$A/v1" --no-builtins --tool now.json --max-turns 1 --temp 0 -n 16 --json "Once upon a time" >ev.ndjson &&
	ech-agent --no-builtins --tool now.json --list-tools </dev/null >tools.ndjson &&
	"$PYTHON3" - "$A" <<-\PY
	import json, sys, urllib.request
	ev = [json.loads(l) for l in open("ev.ndjson")]
	assert [e["type"] for e in ev] == ["message", "usage", "final"], ev
	assert ev[1]["completion_tokens"] <= 16
	tools = [json.loads(l) for l in open("tools.ndjson")]
	body = {"messages": [{"role": "user", "content": "Once upon a time"}], "tools": tools,
	        "temperature": 0, "max_tokens": 16}
	rq = urllib.request.Request(sys.argv[1] + "/v1/chat/completions", json.dumps(body).encode(),
	                            {"Content-Type": "application/json"})
	want = json.load(urllib.request.urlopen(rq))["choices"][0]["message"]["content"]
	assert ev[-1]["content"] == want, (ev[-1]["content"], want)
	PY
'
test_expect_success 'stories260K, plain output: the final answer on stdout, exit 0' '
	ech-agent --base-url "$A/v1" --no-builtins --max-turns 1 --temp 0 -n 8 "Once upon a time" >out &&
	test -s out
'
test_expect_success 'ech-serve --replay: a parsed tool call runs, its result goes back, the final answer comes' '
	ech-agent --base-url "$B/v1" --json "When do we meet?" >ev.ndjson &&
	"$PYTHON3" - <<-\PY
	import json
	ev = [json.loads(l) for l in open("ev.ndjson")]
	types = [e["type"] for e in ev]
	assert types[0] == "message" and "tool_call" in types and types[-1] == "final", types
	call = [e for e in ev if e["type"] == "tool_call"][0]
	assert call["name"] == "read_file" and json.loads(call["arguments"]) == {"path": "note.txt"}, call
	res = [e for e in ev if e["type"] == "tool_result"][0]
	assert res["content"] == "the note says: meet at noon\n" and res["is_error"] is False, res
	assert ev[-1]["content"] == "We meet at noon." and ev[-1]["turns"] == 2, ev[-1]
	PY
'
test_done
