#!/bin/sh
# chat-loop.sh - a conversation kept in a JSON file, one ech-chat call per turn;
# the smallest agent loop there is, with no tools: read a line, append it as a
# user message, ask the model, append its answer, repeat.
#
#   contrib/agents/chat-loop.sh [CONVERSATION.json]      (needs jq)
#
# The model is $ECH_MODEL (else the server's first) at $ECH_BASE_URL.  The
# conversation survives between runs: start the script again with the same
# file to go on where you left off.  Empty line or end of input to stop.
conv=${1:-conversation.json}
[ -s "$conv" ] || echo '[{"role": "system", "content": "You are a helpful assistant. Be brief."}]' >"$conv"
while printf '> ' >&2 && IFS= read -r line && [ -n "$line" ]; do
	jq --arg c "$line" '. + [{"role": "user", "content": $c}]' "$conv" >"$conv.tmp" && mv "$conv.tmp" "$conv" || exit 1
	reply=$(ech-chat --messages "$conv" --no-stream) || { echo "chat-loop: the model did not answer" >&2; exit 1; }
	printf '%s\n' "$reply"
	jq --arg c "$reply" '. + [{"role": "assistant", "content": $c}]' "$conv" >"$conv.tmp" && mv "$conv.tmp" "$conv" || exit 1
done
