#!/bin/sh
# The ech-agent loop against the scripted fake OpenAI endpoint: tool calls
# and their results in the conversation, bad arguments, hanging and flooding
# tools, unknown tools, --max-turns, --json events, sessions (resume after an
# error and after a kill mid-tool), secrets.
. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 not installed"
command -v fake-openai >/dev/null 2>&1 || skip_all "tests/tools/fake-openai not built"

# mkscript FILE STEP...: a fake-openai script, one chat completion per step:
#   call:NAME:ARGS[;NAME:ARGS...]   tool calls (ARGS is the raw arguments text)
#   text:CONTENT                    a final answer
mkscript() {
	"$PYTHON3" - "$@" <<-\PY
	import json, sys
	out = open(sys.argv[1], "w")
	for n, step in enumerate(sys.argv[2:]):
	    kind, _, rest = step.partition(":")
	    if kind == "call":
	        calls = []
	        for i, c in enumerate(rest.split(";")):
	            name, _, args = c.partition(":")
	            calls.append({"id": "call_%d_%d" % (n, i), "type": "function",
	                          "function": {"name": name, "arguments": args}})
	        msg, fin = {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
	    else:
	        msg, fin = {"role": "assistant", "content": rest}, "stop"
	    body = {"id": "c%d" % n, "object": "chat.completion", "model": "fake", "choices": [
	        {"index": 0, "message": msg, "finish_reason": fin}],
	        "usage": {"prompt_tokens": 10 + n, "completion_tokens": 5, "total_tokens": 15 + n}}
	    out.write(json.dumps({"json": body}) + "\n")
	PY
}
# req NAME EXPR: evaluate a Python expression over the requests fake NAME got (as r, a list)
req() { "$PYTHON3" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(eval(sys.argv[2]))' "$1.req" "$2"; }

q="'"
printf "the secret word is plum\n" >note.txt
cat >tools.json <<'JSON'
[{"name": "hang", "description": "never ends", "command": ["sleep", "60"]},
 {"name": "flood", "description": "too much", "command": "head -c 3000000 /dev/zero | tr '\\0' y"},
 {"name": "slow", "description": "takes a while", "command": ["sleep", "2"]}]
JSON

test_expect_success 'a tool call, its result in the next request, the final answer on stdout' '
	mkscript s1.jsonl "call:read_file:{\"path\": \"note.txt\"}" "text:The word is plum." &&
	fake_start f1 s1.jsonl &&
	ech-agent --base-url "$FAKE_URL" -m fake --system "be brief" "What is the word in note.txt?" >out &&
	test "$(cat out)" = "The word is plum." &&
	test "$(req f1 "len(r)")" = 2 &&
	test "$(req f1 "r[0][\"path\"]")" = /v1/chat/completions &&
	test "$(req f1 "[m[\"role\"] for m in r[0][\"body\"][\"messages\"]]")" = "[${q}system${q}, ${q}user${q}]" &&
	test "$(req f1 "r[0][\"body\"][\"model\"]")" = fake &&
	test "$(req f1 "sorted(t[\"function\"][\"name\"] for t in r[0][\"body\"][\"tools\"])")" = "[${q}list_directory${q}, ${q}read_file${q}]" &&
	test "$(req f1 "r[1][\"body\"][\"messages\"][3]")" = "{${q}role${q}: ${q}tool${q}, ${q}tool_call_id${q}: ${q}call_0_0${q}, ${q}content${q}: ${q}the secret word is plum\\n${q}}" &&
	test "$(req f1 "r[1][\"body\"][\"messages\"][2][\"tool_calls\"][0][\"function\"][\"name\"]")" = read_file
'
test_expect_success '--json: message, usage, tool_call, tool_result and final events in order' '
	mkscript s2.jsonl "call:read_file:{\"path\": \"note.txt\"};list_directory:{}" "text:done" &&
	fake_start f2 s2.jsonl &&
	ech-agent --base-url "$FAKE_URL" --json "look around" >ev.ndjson &&
	"$PYTHON3" - <<-\PY
	import json
	ev = [json.loads(l) for l in open("ev.ndjson")]
	assert [e["type"] for e in ev] == ["message", "usage", "tool_call", "tool_result", "tool_call", "tool_result",
	                                    "message", "usage", "final"], [e["type"] for e in ev]
	assert ev[0]["tool_calls"][1] == {"id": "call_0_1", "name": "list_directory", "arguments": "{}"}
	assert ev[1] == {"type": "usage", "turn": 1, "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
	assert ev[3]["content"] == "the secret word is plum\n" and ev[3]["is_error"] is False
	assert "note.txt" in ev[5]["content"].split("\n")
	assert ev[-1] == {"type": "final", "turns": 2, "content": "done"}
	PY
'
test_expect_success 'invalid JSON arguments and an unknown tool: error results, and the loop goes on' '
	mkscript s3.jsonl "call:read_file:{\"path\": \"note.t" "call:frobnicate:{}" "text:ok then" &&
	fake_start f3 s3.jsonl &&
	ech-agent --base-url "$FAKE_URL" "try" >out && test "$(cat out)" = "ok then" &&
	req f3 "r[1][\"body\"][\"messages\"][-1][\"content\"]" | grep -q "^error: the arguments for read_file are not a JSON object" &&
	req f3 "r[2][\"body\"][\"messages\"][-1][\"content\"]" | grep -q "^error: there is no tool named \"frobnicate\""
'
test_expect_success 'a tool that never exits times out; huge output is capped; the loop goes on' '
	mkscript s4.jsonl "call:hang:{}" "call:flood:{}" "text:survived" &&
	fake_start f4 s4.jsonl &&
	start=$(date +%s) &&
	ech-agent --base-url "$FAKE_URL" --tool tools.json --tool-timeout 1 --output-cap 2000 "go" >out &&
	test $(( $(date +%s) - start )) -lt 15 && test "$(cat out)" = survived &&
	req f4 "r[1][\"body\"][\"messages\"][-1][\"content\"]" | grep -q "did not finish within 1 s" &&
	test "$(req f4 "len(r[2][\"body\"][\"messages\"][-1][\"content\"]) < 2100")" = True &&
	req f4 "r[2][\"body\"][\"messages\"][-1][\"content\"]" | grep -q "output truncated: 2998000 more bytes"
'
test_expect_success '--max-turns: stops with exit 1 after N model calls' '
	mkscript s5.jsonl "call:list_directory:{}" "call:list_directory:{}" "call:list_directory:{}" "text:never" &&
	fake_start f5 s5.jsonl &&
	expect_exit 1 ech-agent --base-url "$FAKE_URL" --max-turns 2 "loop" >out 2>err &&
	grep -q "no final answer after 2 model calls" err && test ! -s out && test "$(req f5 "len(r)")" = 2
'
test_expect_success 'a model error fails the run (exit 1, the server'"'"'s message); the session resumes after it' '
	mkscript s6.jsonl "call:read_file:{\"path\": \"note.txt\"}" &&
	echo "{\"status\": 400, \"json\": {\"error\": {\"message\": \"context too long\", \"type\": \"invalid_request_error\"}}}" >>s6.jsonl &&
	fake_start f6 s6.jsonl &&
	expect_exit 1 ech-agent --base-url "$FAKE_URL" --session s.json "what is the word?" 2>err &&
	grep -q "context too long" err &&
	test "$("$PYTHON3" -c "import json; print([m[\"role\"] for m in json.load(open(\"s.json\"))[\"messages\"]])")" = "[${q}user${q}, ${q}assistant${q}, ${q}tool${q}]" &&
	mkscript s7.jsonl "text:plum" "text:second answer" &&
	fake_start f7 s7.jsonl &&
	ech-agent --base-url "$FAKE_URL" --session s.json --resume >out </dev/null && test "$(cat out)" = plum &&
	test "$(req f7 "len(r[0][\"body\"][\"messages\"])")" = 3 &&
	ech-agent --base-url "$FAKE_URL" --session s.json --resume >out </dev/null && test "$(cat out)" = plum &&
	test "$(req f7 "len(r)")" = 1 &&
	ech-agent --base-url "$FAKE_URL" --session s.json --resume "and again?" >out && test "$(cat out)" = "second answer" &&
	test "$(req f7 "[m[\"role\"] for m in r[1][\"body\"][\"messages\"]]")" = "[${q}user${q}, ${q}assistant${q}, ${q}tool${q}, ${q}assistant${q}, ${q}user${q}]"
'
test_expect_success 'killed mid-tool: the checkpoint has the call; --resume runs it and goes on' '
	mkscript s8.jsonl "call:slow:{};read_file:{\"path\": \"note.txt\"}" &&
	fake_start f8 s8.jsonl &&
	ech-agent --base-url "$FAKE_URL" --tool tools.json --session k.json "slowly" >/dev/null 2>&1 & pid=$! &&
	i=0; while [ $i -lt 100 ] && ! grep -q tool_calls k.json 2>/dev/null; do sleep 0.1; i=$((i + 1)); done &&
	kill -9 $pid && wait $pid; ls k.json.tmp.* 2>/dev/null; ! ls k.json.tmp.* >/dev/null 2>&1 &&
	test "$("$PYTHON3" -c "import json; print(json.load(open(\"k.json\"))[\"messages\"][-1][\"role\"])")" = assistant &&
	mkscript s9.jsonl "text:resumed" &&
	fake_start f9 s9.jsonl &&
	ech-agent --base-url "$FAKE_URL" --tool tools.json --session k.json --resume >out </dev/null &&
	test "$(cat out)" = resumed &&
	test "$(req f9 "[m[\"role\"] for m in r[0][\"body\"][\"messages\"]]")" = "[${q}user${q}, ${q}assistant${q}, ${q}tool${q}, ${q}tool${q}]" &&
	test "$(req f9 "r[0][\"body\"][\"messages\"][-1][\"content\"]")" = "the secret word is plum" &&
	test "$(req f9 "r[0][\"body\"][\"messages\"][-2][\"content\"]")" = "(no output)"
'
test_expect_success 'secrets: an API key and secret variables reach neither the events nor the model' '
	mkscript s10.jsonl "call:read_file:{\"path\": \"env.txt\"}" "text:ok" &&
	fake_start f10 s10.jsonl &&
	printf "key=sk-test-0123456789 db=hunter2hunter2\n" >env.txt &&
	DB_PASSWORD=hunter2hunter2 ech-agent --base-url "$FAKE_URL" --api-key sk-test-0123456789 --json "read env.txt" >ev.ndjson &&
	! grep -q "sk-test-0123456789\|hunter2hunter2" ev.ndjson && grep -q "key=\[REDACTED\] db=\[REDACTED\]" ev.ndjson &&
	test "$(req f10 "r[0][\"headers\"][\"authorization\"]")" = "Bearer sk-test-0123456789" &&
	test "$(req f10 "r[1][\"body\"][\"messages\"][-1][\"content\"]")" = "key=[REDACTED] db=[REDACTED]"
'
test_expect_success 'the task on stdin' '
	mkscript s11.jsonl "text:from stdin" &&
	fake_start f11 s11.jsonl &&
	echo "a task on stdin" | ech-agent --base-url "$FAKE_URL" >out && test "$(cat out)" = "from stdin" &&
	test "$(req f11 "r[0][\"body\"][\"messages\"][0][\"content\"]")" = "a task on stdin"
'
if command -v script >/dev/null 2>&1; then
	test_expect_success 'run_shell on a terminal without --allow-shell: each command asked for, y runs it, n does not' '
		mkscript s13.jsonl "call:run_shell:{\"command\": \"echo yes >ran.txt\"};run_shell:{\"command\": \"echo no >denied.txt\"}" "text:all done" &&
		fake_start f13 s13.jsonl &&
		printf "y\nn\n" | script -qec "ech-agent --base-url $FAKE_URL \"do it\"" /dev/null >tty.out &&
		grep -q "Allow? \[y/N\]" tty.out && grep -q "all done" tty.out &&
		test "$(cat ran.txt)" = yes && test ! -e denied.txt &&
		test "$(req f13 "r[1][\"body\"][\"messages\"][-1][\"content\"]")" = "error: the user did not allow this command to run"
	'
else
	test_skip 'run_shell approval on a terminal' 'script(1) not installed'
fi
if command -v jq >/dev/null 2>&1 && command -v ech-chat >/dev/null 2>&1; then
	test_expect_success 'contrib/agents/chat-loop.sh: a conversation file grows by one exchange per line' '
		mkscript s12.jsonl "text:first reply" "text:second reply" &&
		fake_start f12 s12.jsonl &&
		printf "hello\nand more\n" | ECH_BASE_URL="$FAKE_URL" ECH_MODEL=fake sh "$ECH_SRC/contrib/agents/chat-loop.sh" conv.json >out 2>/dev/null &&
		test "$(cat out)" = "$(printf "first reply\nsecond reply")" &&
		test "$(jq -c "[.[].role]" conv.json)" = "[\"system\",\"user\",\"assistant\",\"user\",\"assistant\"]" &&
		test "$(req f12 "[m[\"content\"] for m in r[1][\"body\"][\"messages\"][1:]]")" = "[${q}hello${q}, ${q}first reply${q}, ${q}and more${q}]"
	'
else
	test_skip 'contrib/agents/chat-loop.sh' 'jq or ech-chat missing'
fi
test_done
