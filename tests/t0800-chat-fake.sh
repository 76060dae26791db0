#!/bin/sh
# ech-chat and the client library against tests/tools/fake-openai: what the
# client sends, streaming, tool-call fragments, bad streams, retries, errors.
. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 not installed"
command -v fake-openai >/dev/null 2>&1 || skip_all "tests/tools/fake-openai not built"

# py: run the Python on stdin after a prelude: reqs(F) reads the recorded
# requests of F, ndjson(F) the lines of an NDJSON file, text(F) a file
PRELUDE='import json, sys
def reqs(f): return [json.loads(l) for l in open(f)]
def ndjson(f): return [json.loads(l) for l in open(f) if l.strip()]
def text(f): return open(f).read()'
py() { { printf '%s\n' "$PRELUDE"; cat; } | "$PYTHON3" -; }
now_ms() { "$PYTHON3" -c 'import time; print(int(time.time()*1000))'; }

MODELS='{"json":{"object":"list","data":[{"id":"fake-model","object":"model","owned_by":"me"}]}}'
# chunk DELTA [FINISH]: one chat.completion.chunk for choice 0
chunk() { printf '{"id":"c1","object":"chat.completion.chunk","model":"fake-model","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}' "$1" "${2:-null}"; }
USAGE='{"id":"c1","object":"chat.completion.chunk","model":"fake-model","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}}'
REPLY='{"id":"chatcmpl-1","object":"chat.completion","created":7,"model":"fake-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}'

cat >chat.ndjson <<EOF
$MODELS
{"headers":{"x-request-id":"req_abc"},"json":$REPLY}
EOF
test_expect_success 'non-streamed chat: first listed model, the request as sent, the reply and its request id' '
	fake_start f chat.ndjson &&
	echo hi | ECH_API_KEY=sk-test ech-chat --base-url "$FAKE_URL" --no-stream --json --system "be brief" \
		--temperature 0.5 --max-tokens 7 --seed 42 --stop END >out.ndjson &&
	py <<-\PY
	r = reqs("f.req"); o = ndjson("out.ndjson")
	assert [(x["method"], x["path"]) for x in r] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")], r
	assert r[1]["body"] == {"model": "fake-model", "messages": [{"role": "system", "content": "be brief"},
	    {"role": "user", "content": "hi"}], "temperature": 0.5, "max_tokens": 7, "seed": 42, "stop": ["END"]}, r[1]["body"]
	assert r[1]["headers"]["authorization"] == "Bearer sk-test"
	assert r[1]["headers"]["content-type"] == "application/json"
	f = o[-1]
	assert f["event"] == "final" and f["content"] == "Hello there" and f["finish_reason"] == "stop", f
	assert f["request_id"] == "req_abc" and f["usage"]["total_tokens"] == 7 and f["id"] == "chatcmpl-1", f
	assert [e["event"] for e in o] == ["delta", "usage", "final"], o
	PY
'

cat >stream.ndjson <<EOF
{"sse":[$(chunk '{"role":"assistant","content":""}'),$(chunk '{"content":"Hel"}'),$(chunk '{"content":"lo, "}'),$(chunk '{"content":"wörld"}' '"stop"'),$USAGE,"[DONE]"],"chunk_delay_ms":20}
EOF
test_expect_success 'streamed chat: text printed as it comes, stream and usage requested, model from -m' '
	fake_start f stream.ndjson &&
	echo "tell me" | ech-chat --base-url "$FAKE_URL" -m my-model >out.txt &&
	printf "Hello, wörld\n" >want.txt && cmp out.txt want.txt &&
	py <<-\PY
	r = reqs("f.req")
	assert len(r) == 1 and r[0]["path"] == "/v1/chat/completions", r
	b = r[0]["body"]
	assert b["model"] == "my-model" and b["stream"] is True and b["stream_options"] == {"include_usage": True}, b
	assert r[0]["headers"]["accept"] == "text/event-stream"
	assert "authorization" not in r[0]["headers"]
	PY
'
test_expect_success 'streamed chat --json: delta events, usage, final' '
	fake_start f stream.ndjson &&
	echo "tell me" | ech-chat --base-url "$FAKE_URL" -m m --json >out.ndjson &&
	py <<-\PY
	o = ndjson("out.ndjson")
	assert [e["event"] for e in o] == ["delta"] * 3 + ["usage", "final"], o
	assert "".join(e["content"] for e in o if e["event"] == "delta") == "Hello, wörld"
	assert o[3]["completion_tokens"] == 3 and o[-1]["content"] == "Hello, wörld" and o[-1]["finish_reason"] == "stop"
	PY
'

# two tool calls whose fragments interleave; the id and name come once, the arguments in pieces
cat >tools.ndjson <<EOF
{"sse":[$(chunk '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":""}}]}'),$(chunk '{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}'),$(chunk '{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"ls","arguments":"{\"dir\":"}}]}'),$(chunk '{"tool_calls":[{"index":0,"function":{"arguments":"th\": \"a.txt\"}"}}]}'),$(chunk '{"tool_calls":[{"index":1,"function":{"arguments":" \"/\"}"}}]}'),$(chunk '{}' '"tool_calls"'),"[DONE]"]}
EOF
printf '[{"type":"function","function":{"name":"read_file","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}]\n' >tools.json
test_expect_success 'tool-call fragments are reassembled by index; tools are sent' '
	fake_start f tools.ndjson &&
	echo "read a.txt" | ech-chat --base-url "$FAKE_URL" -m m --json --tools tools.json >out.ndjson &&
	py <<-\PY
	o = ndjson("out.ndjson")
	calls = [e for e in o if e["event"] == "tool_call"]
	assert [(c["index"], c["id"], c["name"], c["arguments"]) for c in calls] == [
	    (0, "call_a", "read_file", "{\"path\": \"a.txt\"}"), (1, "call_b", "ls", "{\"dir\": \"/\"}")], calls
	assert json.loads(calls[0]["arguments"]) == {"path": "a.txt"}
	f = o[-1]
	assert f["finish_reason"] == "tool_calls" and f["content"] is None and len(f["tool_calls"]) == 2, f
	assert reqs("f.req")[0]["body"]["tools"] == json.load(open("tools.json"))
	PY
'

# the framing corner cases: CRLF and CR line ends, lines split across writes,
# comments, multi-line data, an unknown field, event and id fields, a BOM
cat >framing.ndjson <<'EOF'
{"chunks":["\ufeff: keep-alive comment\r\n\r\n","data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n","data: {\"choices\":[{\"ind","ex\":0,\"delta\":{\"content\":\"b\"}}]}\r","\r","event: message\nid: 7\nretry: 1000\nfoo: bar\ndata: {\"choices\":\ndata: [{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n","data:[DONE]\n\n"],"chunk_delay_ms":10}
EOF
cat >>framing.ndjson <<EOF
{"headers":{"content-type":"text/plain"},"sse":[$(chunk '{"content":"sniffed"}' '"stop"'),"[DONE]"]}
{"json":$REPLY}
EOF
test_expect_success 'SSE framing (BOM, comments, CRLF/CR, split lines, multi-line data); wrong content type; JSON for a stream' '
	fake_start f framing.ndjson &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m >out.txt &&
	printf "abc\n" >want.txt && cmp out.txt want.txt &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m >out2.txt &&
	echo sniffed >want2.txt && cmp out2.txt want2.txt &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m --json >out3.ndjson &&
	grep -q "^{\"event\":\"delta\",\"content\":\"Hello there\"}$" out3.ndjson
'

cat >malformed.ndjson <<EOF
{"sse":[$(chunk '{"content":"ok "}'),"{not json"]}
EOF
test_expect_success 'malformed SSE data: a clear error after the text that came, exit 1' '
	fake_start f malformed.ndjson &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m -p x >out.txt 2>err.txt &&
	grep -q "^ech-chat: bad response: stream chunk 2: invalid JSON" err.txt &&
	printf "ok \n" >want.txt && cmp out.txt want.txt
'
cat >nonobject.ndjson <<EOF
{"sse":["[1,2]"]}
{"sse":[$(chunk '{"content":"x"}')]}
{"chunks":[": only a comment\n\n"]}
EOF
test_expect_success 'SSE that is not chunks, or ends without [DONE], is an error' '
	fake_start f nonobject.ndjson &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m -p x 2>err1.txt >/dev/null &&
	grep -q "not a JSON object" err1.txt &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m -p x 2>err2.txt >/dev/null &&
	grep -q "ended before the reply was complete" err2.txt &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m -p x 2>err3.txt >/dev/null &&
	grep -q "without any event" err3.txt
'

cat >instream.ndjson <<EOF
{"headers":{"x-request-id":"req_s"},"sse":[$(chunk '{"content":"so far"}'),{"error":{"message":"the model fell over","type":"server_error","code":"boom"}},"[DONE]"]}
EOF
test_expect_success 'an error object inside the stream: its message, an error event, exit 1, no retry' '
	fake_start f instream.ndjson &&
	echo x | expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m --json >out.ndjson 2>err.txt &&
	grep -q "^ech-chat: server error: the model fell over \[request id req_s\]$" err.txt &&
	py <<-\PY
	o = ndjson("out.ndjson")
	assert o[0] == {"event": "delta", "content": "so far"}, o
	assert o[-1] == {"event": "error", "kind": "server error", "message": "the model fell over", "request_id": "req_s"}, o
	assert len(reqs("f.req")) == 1
	PY
'

cat >ratelimit.ndjson <<EOF
{"status":429,"headers":{"retry-after":"1"},"json":{"error":{"message":"slow down","type":"rate_limit_error"}}}
{"status":503,"headers":{"retry-after-ms":"300"},"json":{"error":{"message":"busy"}}}
{"json":$REPLY}
EOF
test_expect_success '429 with retry-after and 503 with retry-after-ms are waited for, then success' '
	fake_start f ratelimit.ndjson &&
	t0=$(now_ms) &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m --no-stream >out.txt &&
	t1=$(now_ms) &&
	echo "Hello there" >want.txt && cmp out.txt want.txt &&
	test $((t1 - t0)) -ge 1300 && test $((t1 - t0)) -lt 5000 &&
	test "$(wc -l <f.req)" -eq 3
'

when=$(date -u -d "@$(($(date +%s) + 2))" "+%a, %d %b %Y %H:%M:%S GMT" 2>/dev/null)
cat >ratedate.ndjson <<EOF
{"status":429,"headers":{"retry-after":"$when"},"json":{"error":{"message":"later"}}}
{"json":$REPLY}
EOF
test_expect_success 'retry-after as an HTTP-date' '
	test -n "$when" &&
	fake_start f ratedate.ndjson &&
	t0=$(now_ms) &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m --no-stream >out.txt &&
	t1=$(now_ms) &&
	echo "Hello there" >want.txt && cmp out.txt want.txt &&
	test $((t1 - t0)) -ge 900 && test $((t1 - t0)) -lt 4000 && test "$(wc -l <f.req)" -eq 2
'

cat >fail500.ndjson <<EOF
{"status":500,"headers":{"x-request-id":"req_500"},"json":{"error":{"message":"internal trouble","type":"server_error","code":null}},"repeat":3}
EOF
test_expect_success '500 is retried twice with backoff, then fails with the typed error' '
	fake_start f fail500.ndjson &&
	t0=$(now_ms) &&
	echo x | expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m --json >out.ndjson 2>err.txt &&
	t1=$(now_ms) &&
	grep -q "^ech-chat: HTTP 500 (server error): internal trouble \[request id req_500\] (after 3 tries)$" err.txt &&
	test "$(wc -l <f.req)" -eq 3 &&
	test $((t1 - t0)) -ge 1100 &&
	py <<-\PY
	o = ndjson("out.ndjson")
	assert o == [{"event": "error", "kind": "server error", "status": 500, "message": "internal trouble", "request_id": "req_500"}], o
	PY
'
cat >auth.ndjson <<EOF
{"status":401,"json":{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}}
{"status":400,"body":"<html>Bad Request</html>"}
EOF
test_expect_success '401 and 400 are not retried; a non-JSON error body becomes the message' '
	fake_start f auth.ndjson &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" --api-key bad -m m -p x 2>err1.txt &&
	grep -q "^ech-chat: HTTP 401 (authentication): Incorrect API key provided$" err1.txt &&
	expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m -p x 2>err2.txt &&
	grep -q "^ech-chat: HTTP 400 (bad request): <html>Bad Request</html>$" err2.txt &&
	test "$(wc -l <f.req)" -eq 2
'

cat >cut.ndjson <<EOF
{"sse":[$(chunk '{"content":"partial "}'),$(chunk '{"content":"never seen"}')],"cut_after":150,"chunk_delay_ms":50}
{"json":$REPLY}
EOF
test_expect_success 'a stream cut after bytes arrived: clear error, the text so far, no retry' '
	fake_start f cut.ndjson &&
	echo x | expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m >out.txt 2>err.txt &&
	grep -q "^ech-chat: connection error: the stream broke after [0-9]* bytes (not retried)" err.txt &&
	printf "partial \n" >want.txt && cmp out.txt want.txt &&
	test "$(wc -l <f.req)" -eq 1
'
cat >cutjson.ndjson <<EOF
{"json":$REPLY,"cut_after":30}
{"json":$REPLY}
EOF
test_expect_success 'a whole reply cut short is retried' '
	fake_start f cutjson.ndjson &&
	echo x | ech-chat --base-url "$FAKE_URL" -m m --no-stream >out.txt &&
	echo "Hello there" >want.txt && cmp out.txt want.txt &&
	test "$(wc -l <f.req)" -eq 2
'

cat >slow.ndjson <<EOF
{"delay_ms":3000,"json":$REPLY}
{"sse":[$(chunk '{"content":"first "}'),$(chunk '{"content":"late"}' '"stop"'),"[DONE]"],"chunk_delay_ms":2500}
EOF
test_expect_success 'timeouts: a slow reply and a stalled stream fail as timeouts, not retried' '
	fake_start f slow.ndjson &&
	t0=$(now_ms) &&
	echo x | expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m --no-stream --timeout 0.5 2>err1.txt &&
	t1=$(now_ms) &&
	grep -q "^ech-chat: timeout: " err1.txt && test $((t1 - t0)) -lt 2500 &&
	echo x | expect_exit 1 ech-chat --base-url "$FAKE_URL" -m m --timeout 1 >out.txt 2>err2.txt &&
	grep -q "^ech-chat: timeout: no data for 1 s" err2.txt &&
	test "$(wc -l <f.req)" -eq 2
'

test_expect_success 'nothing listening: a connection error after the retries' '
	fake_start f chat.ndjson && port=${FAKE_URL#http://127.0.0.1:} && port=${port%/v1} &&
	kill $FAKE_PID && wait $FAKE_PID 2>/dev/null;
	echo x | expect_exit 1 ech-chat --base-url "http://127.0.0.1:$port/v1" -m m --retries 1 2>err.txt &&
	grep -q "^ech-chat: connection error: .*(after 2 tries)$" err.txt
'

test_expect_success 'usage errors exit 2' '
	expect_exit 2 ech-chat --temperature hot -p x 2>/dev/null &&
	expect_exit 2 ech-chat --max-tokens 0 -p x 2>/dev/null &&
	expect_exit 2 ech-chat -p x file 2>/dev/null &&
	expect_exit 2 ech-chat --bogus 2>/dev/null &&
	expect_exit 1 ech-chat --base-url ftp://x -m m -p x 2>/dev/null &&
	ech-chat --help | grep -q -- --no-stream && ech-chat --version | grep -q echostra
'

# share/examples/chat-client: a tool call, then the answer after the tool result
cat >example.ndjson <<EOF
{"sse":[$(chunk '{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"call_t","type":"function","function":{"name":"current_time","arguments":"{}"}}]}' '"tool_calls"'),"[DONE]"]}
{"sse":[$(chunk '{"content":"It is late."}' '"stop"'),"[DONE]"]}
EOF
test_expect_success 'the example program: tool call, tool result sent back, final answer' '
	test -x "$ECH_BUILD/share/examples/chat-client" &&
	fake_start f example.ndjson &&
	ECH_BASE_URL=$FAKE_URL ECH_MODEL=ex "$ECH_BUILD/share/examples/chat-client" "What time is it?" >out.txt 2>err.txt &&
	echo "It is late." >want.txt && cmp out.txt want.txt &&
	grep -q "the model calls current_time({})" err.txt &&
	py <<-\PY
	r = reqs("f.req")
	assert len(r) == 2, r
	m = r[1]["body"]["messages"]
	assert [x["role"] for x in m] == ["system", "user", "assistant", "tool"], m
	assert m[2]["tool_calls"] == [{"id": "call_t", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}], m[2]
	assert m[3]["tool_call_id"] == "call_t" and m[3]["content"].endswith("Z"), m[3]
	assert r[1]["body"]["model"] == "ex" and r[1]["body"]["tools"][0]["function"]["name"] == "current_time"
	assert r[0]["peer_port"] == r[1]["peer_port"], "one client, one kept-alive connection"
	PY
'

cat >threads.ndjson <<EOF
{"json":$REPLY,"repeat":40}
EOF
test_expect_success 'four threads, a client each, ten requests each' '
	fake_start f threads.ndjson &&
	test "$(ECH_BASE_URL=$FAKE_URL client-threads 4 10)" = ok &&
	test "$(wc -l <f.req)" -eq 40 &&
	test "$("$PYTHON3" -c "import json; print(len({json.loads(l)[\"peer_port\"] for l in open(\"f.req\")}))")" -le 4
'

cat >calls.ndjson <<EOF
{"json":{"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":" upon a","finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}}
{"sse":[{"choices":[{"index":0,"text":" upon"}]},{"choices":[{"index":0,"text":" a","finish_reason":"stop"}]},"[DONE]"]}
{"json":{"object":"list","model":"emb","data":[{"index":1,"embedding":[0.5,-1,2]},{"index":0,"embedding":[1,0.25,0]}],"usage":{"prompt_tokens":2,"total_tokens":2}}}
{"json":{"answer":42}}
{"json":{"object":"list","data":[{"id":"a","owned_by":"x"},{"id":"b"},{"no":"id"}]}}
EOF
test_expect_success 'completions (whole and streamed), embeddings, any JSON call, models: sent and read back' '
	fake_start f calls.ndjson &&
	export ECH_BASE_URL=$FAKE_URL &&
	test "$(client-calls completion)" = " upon a|length|3" &&
	printf "[ upon][ a]<stop>\n upon a|stop|0\n" >want.txt && client-calls completion-stream >got.txt && cmp got.txt want.txt &&
	printf "0: 1 0.25 0\n1: 0.5 -1 2\n" >want.txt && client-calls embeddings >got.txt && cmp got.txt want.txt &&
	test "$(client-calls raw)" = "{\"answer\":42}" &&
	printf "a x\nb -\n" >want.txt && client-calls models >got.txt && cmp got.txt want.txt &&
	py <<-\PY
	r = reqs("f.req")
	assert [(x["method"], x["path"]) for x in r] == [("POST", "/v1/completions")] * 2 + [
	    ("POST", "/v1/embeddings"), ("POST", "/v1/custom"), ("GET", "/v1/models")], r
	assert r[0]["body"] == {"prompt": "Once", "max_tokens": 5, "stop": ["\n"]}, r[0]
	assert r[1]["body"]["stream"] is True
	assert r[2]["body"] == {"model": "emb", "input": ["a", "b"], "encoding_format": "float", "dimensions": 3}, r[2]
	assert r[3]["body"] == {"q": [1, 2]}
	PY
'

test_done
