#!/bin/sh
# ask-files.sh - a question about the files under the current directory,
# answered by a model that may list, read, grep and count them.
#
#   contrib/agents/ask-files.sh "Which source file mentions SIGPIPE most?"
#
# The model is whatever serves $ECH_BASE_URL (default: a local ech-serve on
# port 8080).  The tool files next to this script wrap shell commands; they
# need jq.  Add --json to follow the tool calls as NDJSON events, and
# --session FILE to keep the conversation for a follow-up (--resume).
here=$(cd "$(dirname "$0")" && pwd)
exec ech-agent --max-turns 8 --tool "$here/tools/word-count.json" --tool "$here/tools/grep.json" \
	--system "Answer questions about the files in the current directory. Use the tools to look before you answer; quote file names exactly." \
	"$@"
