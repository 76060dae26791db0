#!/bin/sh
# ech-generate --chat / --messages / --tools / --chat-template / --print-prompt.
. "$ECH_SRC/tests/test-lib.sh"

llama3=$(shared_path vocab/ggml-vocab-llama3.gguf) || skip_all "ECH_SHARED data absent"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"
stories=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"

cat >convo.json <<'JSON'
[{"role": "system", "content": "You are terse."},
 {"role": "user", "content": "What is 2+2?"},
 {"role": "assistant", "content": "",
  "tool_calls": [{"id": "c1", "type": "function",
                  "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 2}"}}]},
 {"role": "tool", "tool_call_id": "c1", "content": "4"}]
JSON
cat >tools.json <<'JSON'
[{"type": "function", "function": {"name": "add", "description": "Add two numbers",
  "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                 "required": ["a", "b"]}}}]
JSON

test_expect_success '--chat --print-prompt renders the GGUF template exactly (vocab-only file)' '
	ech-generate -m "$llama3" --chat -p "Write a haiku about pipes" --system "Be brief." --print-prompt >out &&
	printf "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWrite a haiku about pipes<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" >want &&
	cmp out want
'
test_expect_success '--print-prompt equals ech-template for a whole conversation with tools' '
	ech-generate -m "$qwen3" --messages convo.json --tools tools.json --print-prompt >a &&
	ech-template -m "$qwen3" --messages convo.json --tools tools.json >b &&
	cmp a b && grep -q "<tool_call>" a && grep -q "\"name\": \"add\"" a
'
test_expect_success '--chat-template overrides the model template' '
	printf "{%% for m in messages %%}[{{ m.role }}] {{ m.content }}\n{%% endfor %%}{%% if add_generation_prompt %%}[assistant] {%% endif %%}" >t.jinja &&
	ech-generate -m "$qwen3" --chat -p hello --chat-template t.jinja --print-prompt >out &&
	printf "[user] hello\n[assistant] " >want && cmp out want
'
test_expect_success 'a model without a template falls back to ChatML, with a notice' '
	ech-generate -m "$stories" --chat -p hi --print-prompt >out 2>err &&
	grep -q "using ChatML" err && grep -q "<|im_start|>user" out
'
test_expect_success '--chat generates (stdin prompt)' '
	echo "Once upon a time" | ech-generate -m "$stories" --chat --temp 0 -n 16 --json 2>/dev/null | tail -n 1 >f &&
	grep -q "\"completion_tokens\":16" f
'
test_expect_success 'template errors are reported (jinja2 raise_exception)' '
	printf "{{ raise_exception(\"no system messages, please\") }}" >bad.jinja &&
	expect_exit 1 ech-generate -m "$qwen3" --chat -p hi --chat-template bad.jinja --print-prompt 2>err &&
	grep -q "no system messages, please" err
'
test_expect_success 'bad conversation files are clear errors' '
	echo "{not json" >bad.json &&
	expect_exit 1 ech-generate -m "$qwen3" --messages bad.json --print-prompt 2>err && grep -q "not valid JSON" err &&
	echo "{}" >obj.json &&
	expect_exit 1 ech-generate -m "$qwen3" --messages obj.json --print-prompt 2>err && grep -q "must be a JSON array" err
'
test_expect_success 'chat options without --chat are usage errors' '
	expect_exit 2 ech-generate -m "$qwen3" -p hi --print-prompt 2>err &&
	expect_exit 2 ech-generate -m "$qwen3" --messages convo.json -p hi 2>err
'
test_done
