#!/bin/sh
# ech-serve over curl: endpoints, streaming, errors, limits, auth, CORS, prefix, Unix socket.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
tpl=$(shared_path templates/Qwen-Qwen2.5-7B-Instruct.jinja) || skip_all "ECH_SHARED data absent"

# j FILE EXPR: evaluate a Python expression over the JSON in FILE (as d)
j() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# post PATH BODY [CURL ARGS]: POST JSON, body to out.json, status to stdout
post() { p=$1; b=$2; shift 2; curl -s -o out.json -w '%{http_code}' "$URL$p" -H 'Content-Type: application/json' -d "$b" "$@"; }

serve_start a -m "$model" --chat-template "$tpl" -P 2 -c 256 -t 1 --queue 8 --max-body 65536 --timeout 3 ||
	skip_all "ech-serve did not start"
URL=$SERVE_URL

test_expect_success '/health and /v1/models' '
	curl -sf "$URL/health" >h.json && test "$(j h.json "d[\"status\"]")" = ok &&
	curl -sf "$URL/v1/models" >m.json && test "$(j m.json "d[\"data\"][0][\"id\"]")" = stories260K &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$URL/v1/models/stories260K")" = 200 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$URL/v1/models/gpt-4")" = 404
'
test_expect_success 'chat completion (greedy) equals ech-generate --chat with the same template' '
	test "$(post /v1/chat/completions "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0}")" = 200 &&
	j out.json "d[\"choices\"][0][\"message\"][\"content\"]" >got &&
	test "$(j out.json "d[\"choices\"][0][\"finish_reason\"]")" = length &&
	test "$(j out.json "d[\"usage\"][\"completion_tokens\"]")" = 12 &&
	test "$(j out.json "d[\"object\"]")" = chat.completion &&
	ech-generate -m "$model" --chat -p "Once upon a time" --chat-template "$tpl" --temp 0 -n 12 -t 1 >want 2>/dev/null &&
	echo >>want && cmp got want
'
test_expect_success 'streamed chat: SSE chunks add up to the same text, usage, [DONE]' '
	curl -sN "$URL/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >sse.txt &&
	"$PYTHON3" - <<-\PY
	import json
	lines = [l for l in open("sse.txt").read().split("\n\n") if l]
	assert all(l.startswith("data: ") for l in lines), lines
	assert lines[-1] == "data: [DONE]"
	chunks = [json.loads(l[6:]) for l in lines[:-1]]
	assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
	text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
	fin = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
	assert fin == ["length"], fin
	assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
	assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] > 0   # same prompt as before
	open("stream.txt", "w").write(text + "\n")
	PY
'
test_expect_success 'streamed and non-streamed text agree' '
	post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0}" >/dev/null &&
	j out.json "d[\"choices\"][0][\"message\"][\"content\"]" >ns.txt && cmp ns.txt stream.txt
'
test_expect_success 'completions: string, token ids, several prompts; greedy equals ech-generate' '
	test "$(post /v1/completions "{\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0}")" = 200 &&
	j out.json "d[\"choices\"][0][\"text\"]" >got &&
	ech-generate -m "$model" -p "Once upon a time" --temp 0 -n 16 -t 1 >want 2>/dev/null && echo >>want && cmp got want &&
	test "$(post /v1/completions "{\"prompt\":[\"Once upon a time\",\"The cat\"],\"max_tokens\":4,\"temperature\":0}")" = 200 &&
	test "$(j out.json "len(d[\"choices\"])")" = 2 && test "$(j out.json "d[\"choices\"][1][\"index\"]")" = 1 &&
	test "$(post /v1/completions "{\"prompt\":[1,403,407],\"max_tokens\":4}")" = 200
'
test_expect_success 'sequences batched together give the same greedy text as alone' '
	for k in 1 2; do post /v1/completions "{\"prompt\":\"The dog $k\",\"max_tokens\":24,\"temperature\":0}" >/dev/null &&
		j out.json "d[\"choices\"][0][\"text\"]" >alone$k || return 1; done &&
	for k in 1 2; do curl -s "$URL/v1/completions" -d "{\"prompt\":\"The dog $k\",\"max_tokens\":24,\"temperature\":0}" >b$k.json & done; wait &&
	for k in 1 2; do j b$k.json "d[\"choices\"][0][\"text\"]" >together$k && cmp alone$k together$k || return 1; done
'
test_expect_success 'stop strings end the text before them' '
	post /v1/completions "{\"prompt\":\"Once upon a time\",\"max_tokens\":64,\"temperature\":0,\"stop\":[\"Lily\"]}" >/dev/null &&
	test "$(j out.json "d[\"choices\"][0][\"finish_reason\"]")" = stop &&
	! grep -q Lily out.json
'
test_expect_success 'logprobs: chat top_logprobs and completions logprobs' '
	post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":2}" >/dev/null &&
	test "$(j out.json "len(d[\"choices\"][0][\"logprobs\"][\"content\"])")" = 3 &&
	test "$(j out.json "len(d[\"choices\"][0][\"logprobs\"][\"content\"][0][\"top_logprobs\"])")" = 2 &&
	post /v1/completions "{\"prompt\":\"hi\",\"max_tokens\":3,\"logprobs\":1}" >/dev/null &&
	test "$(j out.json "len(d[\"choices\"][0][\"logprobs\"][\"token_logprobs\"])")" = 3
'
test_expect_success 'a conversation that grows reuses the cached prefix' '
	post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story about a dog\"}],\"max_tokens\":4,\"temperature\":0}" >/dev/null &&
	post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story about a dog\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}],\"max_tokens\":4}" >/dev/null &&
	test "$(j out.json "d[\"usage\"][\"prompt_tokens_details\"][\"cached_tokens\"] > 20")" = True
'
# expect_error STATUS CODE_OR_PARAM PATH BODY [CURL ARGS]
expect_error() {
	st=$1; what=$2; p=$3; b=$4; shift 4
	got=$(post "$p" "$b" "$@")
	[ "$got" = "$st" ] || { echo "status $got, want $st: $(cat out.json)"; return 1; }
	j out.json "d[\"error\"][\"message\"]" >/dev/null &&
	j out.json "(d[\"error\"][\"code\"], d[\"error\"][\"param\"], d[\"error\"][\"type\"])" | grep -q "$what" ||
		{ echo "no $what in: $(cat out.json)"; return 1; }
}
test_expect_success 'bad requests: 400 with OpenAI-shaped errors naming the problem' '
	expect_error 400 invalid_json /v1/chat/completions "{\"messages\": [" &&
	expect_error 400 invalid_json /v1/chat/completions "[1,2]" &&
	expect_error 400 invalid_json /v1/chat/completions "{} trailing" &&
	expect_error 400 invalid_json /v1/chat/completions "" &&
	expect_error 400 temperature /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}" &&
	expect_error 400 top_p /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":7}" &&
	expect_error 400 messages /v1/chat/completions "{\"messages\":\"hello\"}" &&
	expect_error 400 messages /v1/chat/completions "{\"messages\":[]}" &&
	expect_error 400 messages /v1/chat/completions "{\"messages\":[{\"content\":\"x\"}]}" &&
	expect_error 400 stop /v1/completions "{\"prompt\":\"x\",\"stop\":5}" &&
	expect_error 400 n /v1/completions "{\"prompt\":\"x\",\"n\":2}" &&
	expect_error 400 prompt /v1/completions "{\"prompt\":[1,\"x\"]}" &&
	expect_error 400 prompt /v1/completions "{\"prompt\":[999999]}" &&
	expect_error 400 tool_choice /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"sometimes\"}"
'
test_expect_success 'invalid UTF-8 in the body is a 400' '
	printf "{\"prompt\":\"caf\\351\"}" >bad.json &&
	test "$(curl -s -o out.json -w "%{http_code}" "$URL/v1/completions" --data-binary @bad.json)" = 400 &&
	grep -q "UTF-8" out.json
'
test_expect_success 'context overflow is a 400, never a silent truncation' '
	expect_error 400 context_length_exceeded /v1/completions "{\"prompt\":\"x\",\"max_tokens\":100000}" &&
	"$PYTHON3" -c "import json; print(json.dumps({\"prompt\": \"Once upon a time \" * 200}))" >long.json &&
	test "$(curl -s -o out.json -w "%{http_code}" "$URL/v1/completions" --data-binary @long.json)" = 400 &&
	grep -q context_length_exceeded out.json && grep -q "no tokens were dropped" out.json
'
test_expect_success 'unknown fields are ignored; explicit nulls mean unset' '
	test "$(post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"frobnicate\":{\"a\":1},\"temperature\":null,\"user\":\"u1\"}")" = 200
'
test_expect_success 'a developer message counts as the system message (the template knows only system)' '
	for role in developer system; do
		post /v1/chat/completions "{\"messages\":[{\"role\":\"$role\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1}" >/dev/null &&
		j out.json "d[\"usage\"][\"prompt_tokens\"]" >"$role.n" || return 1
	done
	post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1}" >/dev/null &&
	j out.json "d[\"usage\"][\"prompt_tokens\"]" >none.n &&
	cat developer.n system.n none.n && cmp developer.n system.n && ! cmp -s developer.n none.n
'
test_expect_success 'unknown routes 404, wrong methods 405, unknown model 404 (embeddings too)' '
	test "$(curl -s -o out.json -w "%{http_code}" "$URL/v2/everything")" = 404 && grep -q "\"error\"" out.json &&
	test "$(curl -s -o out.json -w "%{http_code}" "$URL/v1/chat/completions")" = 405 &&
	expect_error 404 model_not_found /v1/chat/completions "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" &&
	expect_error 404 model_not_found /v1/embeddings "{\"model\":\"gpt-4o\",\"input\":\"x\"}"
'
test_expect_success 'bodies over --max-body get 413 (Content-Length and chunked), and the server goes on' '
	head -c 10000000 /dev/zero | tr "\\0" a >big.txt &&
	test "$(curl -s -o out.json -w "%{http_code}" "$URL/v1/completions" --data-binary @big.txt)" = 413 &&
	grep -q request_too_large out.json &&
	test "$(curl -s -o out.json -w "%{http_code}" -H "Transfer-Encoding: chunked" "$URL/v1/completions" --data-binary @big.txt)" = 413 &&
	curl -sf "$URL/health" >/dev/null
'
test_expect_success '/tokenize and /detokenize round-trip' '
	post /tokenize "{\"content\":\"Once upon a time\"}" >/dev/null &&
	j out.json "d[\"tokens\"]" >ids && test "$(j out.json "len(d[\"tokens\"])")" -gt 1 &&
	post /detokenize "{\"tokens\":$(cat ids)}" >/dev/null &&
	test "$(j out.json "d[\"content\"]")" = "Once upon a time" &&
	post /tokenize "{\"content\":\"hi\",\"with_pieces\":true,\"add_special\":true}" >/dev/null &&
	test "$(j out.json "d[\"tokens\"][0][\"id\"]")" = 1
'
test_expect_success 'Ollama: /api/tags, /api/chat (NDJSON stream), /api/generate' '
	curl -sf "$URL/api/tags" >t.json && test "$(j t.json "d[\"models\"][0][\"name\"]")" = stories260K:latest &&
	curl -sN "$URL/api/chat" -d "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"options\":{\"num_predict\":5,\"temperature\":0}}" >c.ndjson &&
	"$PYTHON3" -c "
import json
ls = [json.loads(l) for l in open(\"c.ndjson\")]
assert ls[-1][\"done\"] is True and ls[-1][\"eval_count\"] == 5, ls[-1]
assert all(not l[\"done\"] for l in ls[:-1]) and len(ls) >= 2
" &&
	post /api/generate "{\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"num_predict\":4}}" >/dev/null &&
	test "$(j out.json "d[\"done\"]")" = True && test "$(j out.json "d[\"eval_count\"]")" = 4
'
test_expect_success '/metrics is Prometheus text with requests, tokens, queue and slots' '
	curl -sf "$URL/metrics" >m.txt &&
	grep -q "^ech_requests_total{code=\"200\"} [1-9]" m.txt && grep -q "^ech_requests_total{code=\"400\"} [1-9]" m.txt &&
	grep -q "^ech_generated_tokens_total [1-9]" m.txt && grep -q "^ech_slots_total 2$" m.txt &&
	grep -q "^ech_slots_busy 0$" m.txt && grep -q "^ech_queue_depth 0$" m.txt && grep -q "^ech_tokens_per_second " m.txt
'
test_expect_success 'a slowloris client is dropped after --timeout while others are served' '
	"$PYTHON3" - "$SERVE_PORT" <<-\PY
	import socket, sys, time, urllib.request
	port = int(sys.argv[1])
	s = socket.create_connection(("127.0.0.1", port))
	s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
	t0 = time.time()
	# others are served meanwhile
	assert urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5).status == 200
	s.settimeout(10)
	data = s.recv(100)   # the server closes the stalled connection
	assert data == b"" or b"408" in data, data
	assert time.time() - t0 < 8
	PY
'

printf "# keys\nfrom-file\n" >keys.txt
serve_start b -m "$model" --chat-template "$tpl" -P 1 -c 128 -t 1 --api-key s3cret --api-key-file keys.txt \
	--api-prefix /llm --cors http://app.example || true
test_expect_success 'auth: Bearer keys (option and file), 401 otherwise, /health exempt' '
	test -n "$SERVE_URL" && U=$SERVE_URL/llm &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$U/health")" = 200 &&
	test "$(curl -s -o out.json -w "%{http_code}" "$U/v1/models")" = 401 && grep -q invalid_api_key out.json &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer nope" "$U/v1/models")" = 401 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer s3cret" "$U/v1/models")" = 200 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer from-file" "$U/v1/models")" = 200
'
test_expect_success '--api-prefix: routes live under it only' '
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer s3cret" "$SERVE_URL/v1/models")" = 404
'
test_expect_success 'CORS: preflight and the allowed origin only' '
	curl -s -D hdr -o /dev/null -X OPTIONS -H "Origin: http://app.example" "$SERVE_URL/llm/v1/chat/completions" &&
	grep -q "^HTTP/1.1 204" hdr && grep -qi "^Access-Control-Allow-Origin: http://app.example" hdr &&
	grep -qi "^Access-Control-Allow-Headers: .*Authorization" hdr &&
	curl -s -D hdr -o /dev/null -H "Origin: http://evil.example" "$SERVE_URL/llm/health" && ! grep -qi "Access-Control" hdr
'
test_expect_success '--unix PATH serves on a Unix socket' '
	ech-serve -m "$model" -P 1 -c 64 -t 1 --unix "$PWD/s.sock" 2>u.log & pid=$! &&
	i=0; while [ $i -lt 100 ] && ! curl -s --unix-socket "$PWD/s.sock" http://x/health >h.json 2>/dev/null; do sleep 0.1; i=$((i+1)); done;
	grep -q ok h.json; r=$?; kill $pid; wait $pid; test $r = 0 && test ! -e "$PWD/s.sock"
'
test_expect_success 'usage errors exit 2; a missing model exits 1 with a reason' '
	expect_exit 2 ech-serve 2>err && grep -q "no model" err &&
	expect_exit 2 ech-serve -m x --port 99999 2>err &&
	expect_exit 2 ech-serve -m x --bogus 2>err &&
	expect_exit 1 ech-serve -m /nonexistent.gguf --port 0 2>err && grep -q "^ech-serve: " err &&
	ech-serve --help | grep -q -- --parallel && ech-serve --version | grep -q echostra
'
test_done
