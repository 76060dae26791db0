#!/bin/sh
# make-corpus.sh OUT [BYTES] - a reproducible mixed English/code text.
#
# Alternates English prose (the licence texts Debian ships in
# /usr/share/common-licenses) with C source (this repository's lib/, minus the
# generated tables), repeating until BYTES (default 1 MiB), cut to exactly
# BYTES.  The same machine and checkout always give the same file.
set -eu
out=$1
bytes=${2:-1048576}
src=$(cd "$(dirname "$0")/.." && pwd)
english=
for f in GPL-3 LGPL-2.1 Apache-2.0 MPL-2.0 Artistic GFDL-1.3; do
	[ -f "/usr/share/common-licenses/$f" ] && english="$english /usr/share/common-licenses/$f"
done
code=$(cd "$src" && ls lib/*/*.c lib/*/*.h bin/*.c | grep -v unicode_tables | sed "s|^|$src/|")
[ -n "$english" ] || { echo "make-corpus.sh: no /usr/share/common-licenses texts" >&2; exit 1; }
tmp=$out.tmp
: >"$tmp"
while [ "$(wc -c <"$tmp")" -lt "$bytes" ]; do
	set -- $code
	for e in $english; do
		cat "$e" >>"$tmp"
		[ $# -gt 0 ] && { cat "$1" >>"$tmp"; shift; }
		[ $# -gt 0 ] && { cat "$1" >>"$tmp"; shift; }
	done
	while [ $# -gt 0 ]; do cat "$1" >>"$tmp"; shift; done
done
head -c "$bytes" "$tmp" >"$out"
rm -f "$tmp"
