#!/bin/sh
# word-count.sh - an ech-agent tool: {"path": FILE} on stdin, `wc` of FILE on stdout.
# Any program that reads JSON on stdin and prints its result is a tool; a
# non-zero exit tells the model the call failed (stderr says why).
path=$(jq -er '.path | strings') || { echo "expected {\"path\": \"FILE\"}" >&2; exit 2; }
exec wc -- "$path"
