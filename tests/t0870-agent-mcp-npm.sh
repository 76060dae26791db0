#!/bin/sh
# ech-agent with real MCP servers from npm: the official
# @modelcontextprotocol/server-filesystem and tests/data/agent/mcp-server.mjs
# (written with the official @modelcontextprotocol/sdk), over stdio and
# Streamable HTTP (SSE and JSON answers): tools listed across pages, calls,
# error results, non-text content, timeouts with cancellation, stderr kept
# out of stdout, a server killed mid-call, and MCP tools in the agent loop.
# The npm install is cached in $ECH_BUILD/tests/cache/mcp-npm.
. "$ECH_SRC/tests/test-lib.sh"

have_python || skip_all "python3 not installed"
command -v node >/dev/null 2>&1 || skip_all "node not installed"
command -v npm >/dev/null 2>&1 || skip_all "npm not installed"

cache="$ECH_BUILD/tests/cache/mcp-npm"
mods="$cache/node_modules/@modelcontextprotocol"
if ! [ -f "$mods/sdk/package.json" ] || ! [ -x "$cache/node_modules/.bin/mcp-server-filesystem" ]; then
	mkdir -p "$cache" &&
	echo '{"name": "ech-mcp-test", "version": "1.0.0", "private": true}' >"$cache/package.json" &&
	timeout 300 npm install --prefix "$cache" --no-audit --no-fund --silent \
		@modelcontextprotocol/server-filesystem @modelcontextprotocol/sdk >npm.log 2>&1 ||
		skip_all "npm cannot install @modelcontextprotocol/server-filesystem and @modelcontextprotocol/sdk"
fi
# ES modules find packages from their own directory, not NODE_PATH: run our server from the cache
cp "$ECH_SRC/tests/data/agent/mcp-server.mjs" "$cache/" || skip_all "cannot write $cache"
server="$cache/mcp-server.mjs"

mkdir -p files/sub && printf "hello from a file\n" >files/a.txt
cat >mcp.json <<JSON
{"mcpServers": {
  "fs": {"command": "$cache/node_modules/.bin/mcp-server-filesystem", "args": ["$TEST_DIR/files"]},
  "t": {"command": "node", "args": ["$server"], "env": {"T_SERVICE_TOKEN": "tok-abcdef-123456", "T_PLAIN": "plain"}}
}}
JSON
echo "{\"mcpServers\": {\"fs\": {\"command\": \"$cache/node_modules/.bin/mcp-server-filesystem\", \"args\": [\"$TEST_DIR/files\"]}}}" >fs.json
cat >t.json <<JSON
{"mcpServers": {"t": {"command": "node", "args": ["$server"], "env": {"T_SERVICE_TOKEN": "tok-abcdef-123456", "T_PLAIN": "plain"}}}}
JSON

test_expect_success 'tools from two stdio servers, all pages, names namespaced where they collide' '
	ech-agent --mcp mcp.json --list-tools >list.ndjson 2>err &&
	"$PYTHON3" - <<-\PY
	import json
	names = [json.loads(l)["function"]["name"] for l in open("list.ndjson")]
	# our server lists its 8 tools two per page; all must arrive
	for n in ["echo", "add", "slow", "fail", "crash", "picture", "getenv", "shout"]:
	    assert n in names, (n, names)
	assert "read_text_file" in names and "list_allowed_directories" in names, names
	# the filesystem server'"'"'s list_directory and read_file collide with our built-ins
	assert "fs__list_directory" in names and "fs__read_file" in names, names
	assert names[:2] == ["read_file", "list_directory"], names
	PY
	test ! -s err
'
test_expect_success 'server-filesystem: a call, and an error result for a path outside its directory' '
	ech-agent --mcp fs.json --call-tool read_text_file "{\"path\": \"$TEST_DIR/files/a.txt\"}" >out &&
	test "$(cat out)" = "hello from a file" &&
	expect_exit 1 ech-agent --mcp fs.json --call-tool read_text_file "{\"path\": \"/etc/hostname\"}" >out &&
	grep -q "^error: .*denied" out
'
test_expect_success 'server stderr goes to --mcp-log (secrets replaced) or the log with -v, never to stdout' '
	ech-agent --mcp t.json --mcp-log mcp.log --call-tool shout "{\"text\": \"LOUD\"}" >out 2>err &&
	test "$(cat out)" = shouted && grep -q "^shout: LOUD$" mcp.log && ! grep -q LOUD err &&
	ech-agent --mcp t.json --mcp-log mcp.log --call-tool shout "{\"text\": \"tok-abcdef-123456\"}" >out &&
	grep -q "^shout: \[REDACTED\]$" mcp.log && ! grep -q tok-abcdef-123456 mcp.log &&
	ech-agent -v --mcp t.json --call-tool shout "{\"text\": \"LOUD\"}" >out 2>err &&
	test "$(cat out)" = shouted && grep -q "^ech-agent: mcp t: shout: LOUD$" err
'
test_expect_success 'a call past its timeout: a clean error, and the server is told (notifications/cancelled)' '
	start=$(date +%s) &&
	expect_exit 1 ech-agent --mcp t.json --mcp-log cancel.log --tool-timeout 1 --call-tool slow "{\"ms\": 30000}" >out &&
	test $(( $(date +%s) - start )) -lt 10 &&
	grep -q "did not answer tools/call within 1000 ms" out &&
	grep -q "^slow: cancelled$" cancel.log
'
test_expect_success 'the server exits mid-call, or is killed mid-call: a clean error, no hang' '
	expect_exit 1 ech-agent --mcp t.json --call-tool crash >out </dev/null &&
	grep -q "exited (exit status 3) during tools/call" out &&
	: >kill.log && rm -f rc &&
	{ (ech-agent --mcp t.json --mcp-log kill.log --call-tool slow "{\"ms\": 60000}" >out 2>&1; echo $? >rc) & } &&
	i=0 && while [ $i -lt 100 ] && ! grep -q "pid [0-9]" kill.log; do sleep 0.1; i=$((i + 1)); done &&
	sleep 0.5 && kill -9 $(sed -n "s/.*(pid \([0-9]*\)).*/\1/p" kill.log) &&
	i=0 && while [ $i -lt 100 ] && ! test -s rc; do sleep 0.1; i=$((i + 1)); done &&
	test "$(cat rc)" = 1 && grep -q "exited (killed by signal 9" out
'
test_expect_success 'sdk server in the agent loop (fake model): results, isError, image content, env, secrets' '
	command -v fake-openai >/dev/null || { echo "fake-openai not built"; return 1; } &&
	"$PYTHON3" - <<-\PY &&
	import json
	def call(i, name, args):
	    return {"id": "c%d" % i, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
	calls = [call(1, "echo", {"text": "via mcp"}), call(2, "add", {"a": 2, "b": 40}), call(3, "fail", {}),
	         call(4, "picture", {}), call(5, "getenv", {"name": "T_PLAIN"}), call(6, "getenv", {"name": "T_SERVICE_TOKEN"})]
	with open("loop.jsonl", "w") as f:
	    for msg in [{"role": "assistant", "content": None, "tool_calls": calls}, {"role": "assistant", "content": "fine"}]:
	        f.write(json.dumps({"json": {"id": "x", "object": "chat.completion",
	                                     "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}}) + "\n")
	PY
	fake_start fl loop.jsonl &&
	ech-agent -vv --base-url "$FAKE_URL" --mcp t.json --json "use the tools" >ev.ndjson 2>err &&
	! grep -q tok-abcdef-123456 ev.ndjson err fl.req &&
	"$PYTHON3" - <<-\PY
	import json
	r = [json.loads(l) for l in open("fl.req")]
	assert "echo" in [t["function"]["name"] for t in r[0]["body"]["tools"]]
	got = {m["tool_call_id"]: m["content"] for m in r[1]["body"]["messages"] if m["role"] == "tool"}
	assert got == {"c1": "via mcp", "c2": "42", "c3": "error: it failed on purpose",
	               "c4": "a red dot:\n[image: image/png, about 300 bytes]", "c5": "plain", "c6": "[REDACTED]"}, got
	ev = [json.loads(l) for l in open("ev.ndjson")]
	errs = {e["id"]: e["is_error"] for e in ev if e["type"] == "tool_result"}
	assert errs == {"c1": False, "c2": False, "c3": True, "c4": False, "c5": False, "c6": False}, errs
	assert ev[-1] == {"type": "final", "turns": 2, "content": "fine"}
	PY
'

# Streamable HTTP: our server answering with SSE streams, then with plain JSON
http_start() {
	node "$server" --http "$@" >http.out 2>http.err &
	HTTP_PID=$!
	i=0; while [ $i -lt 100 ] && ! grep -q "^listening" http.out; do sleep 0.1; i=$((i + 1)); done
	HTTP_URL="http://127.0.0.1:$(sed -n "s/^listening //p" http.out)/mcp"
}
for mode in sse json; do
	test_expect_success "Streamable HTTP ($mode answers): tools, calls, isError, timeout with cancellation, server gone" '
		if [ $mode = json ]; then http_start --json; else http_start; fi &&
		ech-agent --no-builtins --mcp-url "$HTTP_URL" --list-tools >list.ndjson && test $(wc -l <list.ndjson) = 8 &&
		test "$(ech-agent --mcp-url "$HTTP_URL" --call-tool add "{\"a\": 1, \"b\": 2}")" = 3 &&
		expect_exit 1 ech-agent --mcp-url "$HTTP_URL" --call-tool fail >out </dev/null && grep -q "it failed on purpose" out &&
		expect_exit 1 ech-agent --mcp-url "$HTTP_URL" --tool-timeout 1 --call-tool slow "{\"ms\": 30000}" >out &&
		grep -q "did not answer tools/call within 1000 ms" out &&
		i=0; while [ $i -lt 30 ] && ! grep -q "slow: cancelled" http.err; do sleep 0.1; i=$((i + 1)); done;
		grep -q "slow: cancelled" http.err &&
		kill $HTTP_PID && wait $HTTP_PID;
		expect_exit 1 ech-agent --mcp-url "$HTTP_URL" --call-tool add "{}" >out 2>err &&
		grep -q "^ech-agent: the MCP server .*Couldn.t connect\|^ech-agent: the MCP server .*onnection refused" err
	'
done
test_done
