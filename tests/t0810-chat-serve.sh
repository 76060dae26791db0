#!/bin/sh
# ech-chat end to end against a real ech-serve (a tiny model: the text is
# nonsense, the plumbing must be right).
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
tpl=$(shared_path templates/Qwen-Qwen2.5-7B-Instruct.jinja) || skip_all "ECH_SHARED data absent"

j() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

echo sk-one >keys
serve_start a -m "$model" --chat-template "$tpl" -P 2 -c 256 -t 1 --api-key-file keys ||
	skip_all "ech-serve did not start"
URL=$SERVE_URL/v1
export ECH_API_KEY=sk-one

test_expect_success 'streamed, whole and curl agree on the greedy reply' '
	curl -s "$URL/chat/completions" -H "Authorization: Bearer sk-one" \
		-d "{\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":12,\"temperature\":0}" >ref.json &&
	j ref.json "d[\"choices\"][0][\"message\"][\"content\"]" >want.txt &&
	test -s want.txt &&
	echo "Once upon a time" | ech-chat --base-url "$URL" --system "Be kind." --temperature 0 --max-tokens 12 >stream.txt &&
	cmp stream.txt want.txt &&
	echo "Once upon a time" | ECH_BASE_URL=$URL ech-chat --system "Be kind." --temperature 0 --max-tokens 12 --no-stream >whole.txt &&
	cmp whole.txt want.txt
'
test_expect_success '--json: deltas add up to the final content; usage and finish reason from the server' '
	ech-chat --base-url "$URL" -p "Once upon a time" --system "Be kind." --temperature 0 --max-tokens 12 --json >out.ndjson &&
	"$PYTHON3" - <<-\PY
	import json
	ev = [json.loads(l) for l in open("out.ndjson")]
	ref = json.load(open("ref.json"))
	text = "".join(e["content"] for e in ev if e["event"] == "delta")
	fin = ev[-1]
	assert fin["event"] == "final" and fin["content"] == text == ref["choices"][0]["message"]["content"], (fin, text)
	assert fin["finish_reason"] == "length" and fin["model"] == "stories260K", fin
	u = [e for e in ev if e["event"] == "usage"]
	assert len(u) == 1 and u[0]["completion_tokens"] == 12 and u[0]["prompt_tokens"] == ref["usage"]["prompt_tokens"], u
	PY
'
test_expect_success 'a wrong key and a wrong model are typed errors (exit 1, not retried)' '
	expect_exit 1 ech-chat --base-url "$URL" --api-key wrong -p hi 2>err1.txt &&
	grep -q "^ech-chat: .*HTTP 401 (authentication)" err1.txt && ! grep -q tries err1.txt &&
	expect_exit 1 ech-chat --base-url "$URL" -m gpt-4o -p hi 2>err2.txt &&
	grep -q "^ech-chat: HTTP 404 (not found): .*gpt-4o" err2.txt
'
test_expect_success 'the stop string and the seed reach the server' '
	ech-chat --base-url "$URL" -p "Once upon a time" --max-tokens 40 --temperature 0.8 --seed 7 >s1.txt &&
	ech-chat --base-url "$URL" -p "Once upon a time" --max-tokens 40 --temperature 0.8 --seed 7 >s2.txt &&
	cmp s1.txt s2.txt &&
	word=$(tr -s " " "\n" <s1.txt | sed -n 3p) && test -n "$word" &&
	ech-chat --base-url "$URL" -p "Once upon a time" --max-tokens 40 --temperature 0.8 --seed 7 --stop "$word" --json >stop.ndjson &&
	test "$(tail -n 1 stop.ndjson | j /dev/stdin "d[\"finish_reason\"]")" = stop
'
test_done
