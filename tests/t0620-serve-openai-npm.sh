#!/bin/sh
# ech-serve with the official `openai` npm client, unchanged: chat (plain and
# streamed), completions, models, errors, auth, and a tool-call round trip.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
command -v node >/dev/null 2>&1 || skip_all "node not installed"
command -v npm >/dev/null 2>&1 || skip_all "npm not installed"
model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
tpl=$(shared_path templates/Qwen-Qwen2.5-7B-Instruct.jinja) || skip_all "ECH_SHARED data absent"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"

echo '{"name": "t", "version": "1.0.0", "private": true}' >package.json
timeout 180 npm install --no-audit --no-fund --silent openai >npm.log 2>&1 || skip_all "npm cannot install openai"

serve_start a -m "$model" --chat-template "$tpl" -P 2 -c 256 -t 1 --api-key k1 || skip_all "ech-serve did not start"
A=$SERVE_URL
cat >tools.json <<'JSON'
["<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "It is sunny in Paris."]
JSON
serve_start b -m "$qwen3" --replay tools.json -P 1 || skip_all "ech-serve did not start"
B=$SERVE_URL

cat >client.mjs <<'JS'
import OpenAI from "openai";
import assert from "node:assert/strict";
const [,, a, b] = process.argv;
const client = new OpenAI({ baseURL: a + "/v1", apiKey: "k1", maxRetries: 0 });
const msgs = [{ role: "user", content: "Once upon a time" }];

const models = await client.models.list();
assert.equal(models.data[0].id, "stories260K");

const r = await client.chat.completions.create({ model: "stories260K", messages: msgs, max_tokens: 10, temperature: 0 });
assert.equal(r.object, "chat.completion");
assert.equal(r.usage.completion_tokens, 10);
const text = r.choices[0].message.content;
assert.ok(text.length > 0);

const stream = await client.chat.completions.create({ model: "stories260K", messages: msgs, max_tokens: 10,
  temperature: 0, stream: true, stream_options: { include_usage: true } });
let s = "", usage = null, n = 0;
for await (const chunk of stream) {
  n++;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length) s += chunk.choices[0].delta.content ?? "";
}
assert.equal(s, text);
assert.equal(usage.completion_tokens, 10);
assert.ok(n >= 3);

const c = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 5 });
assert.equal(c.choices.length, 1);

await assert.rejects(client.chat.completions.create({ model: "stories260K", messages: msgs, temperature: "hot" }),
  (e) => e.status === 400 && /temperature/.test(e.message));
await assert.rejects(client.chat.completions.create({ model: "nope", messages: msgs }), (e) => e.status === 404);
const bad = new OpenAI({ baseURL: a + "/v1", apiKey: "wrong", maxRetries: 0 });
await assert.rejects(bad.models.list(), (e) => e.status === 401);

// tool-call round trip
const tc = new OpenAI({ baseURL: b + "/v1", apiKey: "unused", maxRetries: 0 });
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const conv = [{ role: "user", content: "Weather in Paris?" }];
const t1 = await tc.chat.completions.create({ model: "ggml-vocab-qwen3", messages: conv, tools });
assert.equal(t1.choices[0].finish_reason, "tool_calls");
const call = t1.choices[0].message.tool_calls[0];
assert.equal(call.function.name, "get_weather");
assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
conv.push(t1.choices[0].message);
conv.push({ role: "tool", tool_call_id: call.id, content: "sunny" });
const t2 = await tc.chat.completions.create({ model: "ggml-vocab-qwen3", messages: conv, tools });
assert.equal(t2.choices[0].message.content, "It is sunny in Paris.");
assert.equal(t2.choices[0].finish_reason, "stop");
console.log("all good");
JS

test_expect_success 'the openai npm client works unchanged (chat, stream, completions, models, errors, auth, tools)' '
	timeout 60 node client.mjs "$A" "$B" >node.out 2>&1; rc=$?; cat node.out; test $rc = 0 && grep -q "all good" node.out
'
test_done
