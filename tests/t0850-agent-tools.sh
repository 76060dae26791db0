#!/bin/sh
# ech-agent's tools without a model (--list-tools, --call-tool): tool files,
# built-ins, timeouts, output caps, secrets, bad files and usage errors.
. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 not installed"

mkdir -p tools/sub
cat >tools/echo.json <<'JSON'
{"name": "echo_args", "description": "Print the arguments back",
 "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
 "command": ["cat"]}
JSON
cat >tools/sub/here.sh <<'SH'
#!/bin/sh
cat >/dev/null
echo "dir=$ECH_TOOL_DIR"
SH
chmod +x tools/sub/here.sh
cat >tools/set.json <<'JSON'
[{"name": "here", "command": ["./sub/here.sh"]},
 {"type": "function", "function": {"name": "fails", "description": "exits 3"}, "command": "echo broken >&2; exit 3"},
 {"name": "hangs", "command": ["sleep", "30"], "timeout": 1},
 {"name": "floods", "command": "head -c 100000 /dev/zero | tr '\\0' x"}]
JSON

test_expect_success '--list-tools: built-ins and tool files as OpenAI function tools, NDJSON' '
	ech-agent --tool tools/echo.json --tool tools/set.json --list-tools </dev/null >list.ndjson &&
	"$PYTHON3" - <<-\PY
	import json
	tools = [json.loads(l) for l in open("list.ndjson")]
	assert all(t["type"] == "function" and set(t["function"]) == {"name", "description", "parameters"} for t in tools)
	names = [t["function"]["name"] for t in tools]
	assert names == ["read_file", "list_directory", "echo_args", "here", "fails", "hangs", "floods"], names
	assert tools[2]["function"]["parameters"]["required"] == ["text"]
	assert tools[3]["function"]["parameters"] == {"type": "object", "properties": {}}
	PY
'
test_expect_success 'run_shell only with --allow-shell (no terminal to ask on here); --no-builtins' '
	! ech-agent --list-tools </dev/null | grep -q run_shell &&
	ech-agent --allow-shell --list-tools </dev/null | grep -q "\"name\":\"run_shell\"" &&
	test "$(ech-agent --no-builtins --tool tools/echo.json --list-tools | wc -l)" = 1
'
test_expect_success 'a tool gets its arguments as JSON on stdin; stdout is the result' '
	echo "{\"text\": \"a b  c\"}" | ech-agent --tool tools/echo.json --call-tool echo_args >out &&
	test "$(cat out)" = "{\"text\":\"a b  c\"}"
'
test_expect_success 'a relative command runs from the tool file'"'"'s directory, which it is told' '
	(cd / && ech-agent --tool "$TEST_DIR/tools/set.json" --call-tool here "{}") >out &&
	test "$(cat out)" = "dir=$TEST_DIR/tools"
'
test_expect_success 'a failing tool: exit status and stderr in the result, exit 1' '
	expect_exit 1 ech-agent --tool tools/set.json --call-tool fails "{}" >out &&
	grep -q "^error: the tool failed (exit status 3)" out && grep -q "^broken" out
'
test_expect_success 'a tool that never exits is stopped at its timeout' '
	start=$(date +%s) &&
	expect_exit 1 ech-agent --tool tools/set.json --call-tool hangs "{}" >out &&
	test $(( $(date +%s) - start )) -lt 10 &&
	grep -q "did not finish within 1 s and was stopped" out
'
test_expect_success 'huge output is capped and the cut is said' '
	ech-agent --tool tools/set.json --output-cap 100 --call-tool floods "{}" >out &&
	test "$(head -c 100 out)" = "$(printf "%0100d" 0 | tr 0 x)" &&
	grep -q "^\[output truncated: 99900 more bytes not shown\]$" out && test $(wc -c <out) -lt 200
'
test_expect_success 'bad arguments and unknown tools are results, not crashes' '
	expect_exit 1 ech-agent --tool tools/echo.json --call-tool echo_args "{\"text\": " >out &&
	grep -q "not a JSON object (unexpected end of input)" out &&
	expect_exit 1 ech-agent --tool tools/echo.json --call-tool echo_args "{}" >out &&
	grep -q "needs the argument \"text\"" out &&
	expect_exit 1 ech-agent --call-tool nope "{}" >out && grep -q "no tool named \"nope\"" out
'
test_expect_success 'built-ins: read_file and list_directory' '
	printf "alpha\nbeta\n" >f.txt &&
	test "$(ech-agent --call-tool read_file "{\"path\":\"f.txt\"}")" = "$(printf "alpha\nbeta")" &&
	ech-agent --call-tool list_directory "{\"path\":\"tools\"}" >out &&
	test "$(cat out)" = "$(printf "echo.json\nset.json\nsub/")" &&
	expect_exit 1 ech-agent --call-tool read_file "{\"path\":\"tools\"}" >out && grep -q "use list_directory" out
'
test_expect_success 'secrets from the environment never reach the output (text and --json)' '
	MY_SERVICE_TOKEN=tok-0123456789 ech-agent --allow-shell --call-tool run_shell "{\"command\":\"echo \$MY_SERVICE_TOKEN\"}" >out &&
	grep -q "^\[REDACTED\]$" out && ! grep -q tok-0123456789 out &&
	MY_SERVICE_TOKEN=tok-0123456789 ech-agent --json --allow-shell --call-tool run_shell "{\"command\":\"env\"}" >out.json &&
	! grep -q tok-0123456789 out.json && grep -q "MY_SERVICE_TOKEN=\[REDACTED\]" out.json &&
	"$PYTHON3" -c "import json; d = json.load(open(\"out.json\")); assert d[\"is_error\"] is False and d[\"name\"] == \"run_shell\""
'
test_expect_success 'bad tool files are refused with a reason, exit 1' '
	echo "{\"name\": \"x\", \"command\": [" >bad1.json &&
	expect_exit 1 ech-agent --tool bad1.json --list-tools 2>err && grep -q "^ech-agent: bad1.json: not valid JSON" err &&
	echo "{\"name\": \"x\"}" >bad2.json &&
	expect_exit 1 ech-agent --tool bad2.json --list-tools 2>err && grep -q "has no \"command\"" err &&
	echo "{\"name\": \"read_file\", \"command\": [\"true\"]}" >bad3.json &&
	expect_exit 1 ech-agent --tool bad3.json --list-tools 2>err && grep -q "already is a tool named read_file" err &&
	echo "{\"name\": \"has space\", \"command\": [\"true\"]}" >bad4.json &&
	expect_exit 1 ech-agent --tool bad4.json --list-tools 2>err && grep -q "\"name\" of 1 to 64" err &&
	expect_exit 1 ech-agent --tool missing.json --list-tools 2>err && grep -q "missing.json" err
'
test_expect_success 'bad MCP configurations are refused with a reason, exit 1' '
	echo "{\"servers\": {}}" >m1.json &&
	expect_exit 1 ech-agent --mcp m1.json --list-tools 2>err && grep -q "mcpServers" err &&
	echo "{\"mcpServers\": {\"x\": {\"command\": \"/nonexistent/server\"}}}" >m2.json &&
	expect_exit 1 ech-agent --mcp m2.json --list-tools 2>err && grep -q "server x: cannot run ./nonexistent/server" err &&
	echo "{\"mcpServers\": {\"x\": {\"type\": \"sse\", \"url\": \"http://127.0.0.1:9/sse\"}}}" >m3.json &&
	expect_exit 1 ech-agent --mcp m3.json --list-tools 2>err && grep -q "HTTP+SSE transport is not supported" err &&
	echo "{\"mcpServers\": {\"x\": {\"command\": \"true\", \"disabled\": true}}}" >m4.json &&
	ech-agent --mcp m4.json --list-tools >/dev/null &&
	echo "{\"mcpServers\": {\"x\": {\"command\": \"sh\", \"args\": [\"-c\", \"echo not-json; exit 0\"]}}}" >m5.json &&
	expect_exit 1 ech-agent --mcp m5.json --list-tools 2>err && grep -q "exited (exit status 0)" err &&
	expect_exit 1 ech-agent --mcp-url http://127.0.0.1:9/mcp --list-tools 2>err && grep -q "127.0.0.1:9" err
'
if command -v fake-openai >/dev/null 2>&1; then
	test_expect_success 'Streamable HTTP against a scripted server: headers, session id, JSON and SSE answers, DELETE' '
		cat >mcp.jsonl <<-\JSONL &&
		{"headers": {"mcp-session-id": "sess-1"}, "json": {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake-mcp"}}}}
		{"status": 202, "body": ""}
		{"sse": [{"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello"}}, {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "remote_echo", "inputSchema": {"type": "object"}}]}}]}
		{"json": {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "remote says hi"}]}}}
		{"status": 200, "body": ""}
		JSONL
		fake_start m mcp.jsonl &&
		ech-agent -v --mcp-url "${FAKE_URL%/v1}/mcp" --mcp-header "Authorization: Bearer mcp-secret-42" \
			--call-tool remote_echo "{\"x\": 1}" >out 2>err &&
		test "$(cat out)" = "remote says hi" && grep -q "hello" err && ! grep -q mcp-secret-42 err &&
		"$PYTHON3" - <<-\PY
		import json
		r = [json.loads(l) for l in open("m.req")]
		assert [q["method"] for q in r] == ["POST"] * 4 + ["DELETE"], r
		assert [q["body"].get("method") for q in r[:4]] == ["initialize", "notifications/initialized", "tools/list", "tools/call"]
		assert r[0]["body"]["params"]["protocolVersion"] == "2025-11-25"
		assert all(q["path"] == "/mcp" for q in r)
		assert all(q["headers"]["authorization"] == "Bearer mcp-secret-42" for q in r)
		assert "application/json" in r[0]["headers"]["accept"] and "text/event-stream" in r[0]["headers"]["accept"]
		assert "mcp-session-id" not in r[0]["headers"]
		for q in r[1:]:
		    assert q["headers"]["mcp-session-id"] == "sess-1" and q["headers"]["mcp-protocol-version"] == "2025-06-18", q
		assert r[3]["body"]["params"] == {"name": "remote_echo", "arguments": {"x": 1}}
		PY
	'
else
	test_skip 'Streamable HTTP against a scripted server' 'tests/tools/fake-openai not built'
fi
contrib="$ECH_SRC/contrib/agents/tools"
if command -v jq >/dev/null 2>&1; then
	test_expect_success 'contrib/agents tool files (shell commands around jq, wc and grep)' '
		printf "one two\nthree\n" >w.txt &&
		test "$(ech-agent --no-builtins --tool "$contrib/word-count.json" --call-tool word_count "{\"path\": \"w.txt\"}")" = " 2  3 14 w.txt" &&
		expect_exit 1 ech-agent --no-builtins --tool "$contrib/word-count.json" --call-tool word_count "{\"path\": 3}" >out &&
		grep -q "exit status 2" out &&
		test "$(ech-agent --no-builtins --tool "$contrib/grep.json" --call-tool grep "{\"pattern\": \"th.ee\", \"path\": \"w.txt\"}")" = "2:three" &&
		test "$(ech-agent --no-builtins --tool "$contrib/grep.json" --call-tool grep "{\"pattern\": \"absent\", \"path\": \"w.txt\"}")" = "(no output)"
	'
else
	test_skip 'contrib/agents tool files' 'jq not installed'
fi
test_expect_success 'usage errors exit 2' '
	expect_exit 2 ech-agent </dev/null 2>err && grep -q "no task" err &&
	expect_exit 2 ech-agent --resume x 2>err && grep -q "needs --session" err &&
	touch s.json && expect_exit 2 ech-agent --session s.json x 2>err && grep -q "use --resume\|with --resume" err &&
	expect_exit 2 ech-agent --session none.json --resume x 2>err && grep -q "no session" err &&
	expect_exit 2 ech-agent --max-turns 0 x 2>err &&
	expect_exit 2 ech-agent --tool-timeout x x 2>err &&
	expect_exit 2 ech-agent --bogus 2>err &&
	ech-agent --help | grep -q -- --mcp-url && ech-agent --version | grep -q echostra
'
test_done
