#!/bin/sh
# ech-inspect on truncated and corrupted real files: exit 1 with a message
# (or 0 when the damage left a valid file), never a crash.  The in-process
# version of this (every header offset, 3000 flips) is in tests/unit/t-gguf.c.
. "$ECH_SRC/tests/test-lib.sh"

src=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
size=$(wc -c <"$src")

# check_run FILE: exit 0, or exit 1 with "ech-inspect: " on stderr; nothing else
check_run() {
	ech-inspect --json "$1" >/dev/null 2>err
	rc=$?
	if [ $rc -eq 1 ]; then grep -q "^ech-inspect: " err || { echo "no message for $1"; return 1; }
	elif [ $rc -ne 0 ]; then echo "exit $rc for $1"; cat err; return 1
	fi
	return 0
}

test_expect_success 'truncations: every 97th byte of the header, a sample of the data' '
	n=0; fails=0
	while [ $n -lt $size ]; do
		head -c $n "$src" >t.gguf
		check_run t.gguf || fails=$((fails + 1))
		ech-inspect t.gguf >/dev/null 2>&1 && { echo "prefix $n accepted"; fails=$((fails + 1)); }
		if [ $n -lt 14176 ]; then n=$((n + 97)); else n=$((n + 65521)); fi
	done
	test $fails -eq 0
'
test_expect_success 'random byte flips (fixed seed)' '
	awk -v seed=42 -v size=14176 "BEGIN { srand(seed); for (i = 0; i < 150; i++) printf \"%d %d\\n\", int(rand() * size), int(rand() * 256) }" >flips &&
	fails=0 &&
	while read off val; do
		cp "$src" f.gguf && chmod u+w f.gguf &&
		printf "$(printf "\\\\%03o" $val)" | dd of=f.gguf bs=1 seek=$off conv=notrunc 2>/dev/null &&
		check_run f.gguf || fails=$((fails + 1))
	done <flips &&
	test $fails -eq 0
'
test_done
