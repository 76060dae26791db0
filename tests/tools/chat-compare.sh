#!/bin/sh
# chat-compare.sh - render every template x every conversation with
# ech-template and with the jinja2 reference, and compare the bytes.
#
#   chat-compare.sh ECH_TEMPLATE PYTHON TEMPLATE_DIR FIXTURE_DIR OUTDIR
#
# For each pair prints one line: "same NAME", "same-error NAME" or
# "DIFF NAME" (diffs land in OUTDIR), then a summary line
#   templates=N conversations=N identical=N same_error=N differ=N
# Fixtures: NAME.messages.json, optional NAME.tools.json and NAME.args
# (extra options, one per line).  Both renderers get the same BOS/EOS and
# SOURCE_DATE_EPOCH, so strftime_now agrees.
ech=$1 py=$2 tdir=$3 fdir=$4 out=$5
mkdir -p "$out"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600}
TZ=UTC
export SOURCE_DATE_EPOCH TZ
nt=0 nc=0 same=0 serr=0 diff=0
for t in "$tdir"/*.jinja; do
	nt=$((nt + 1))
	tn=$(basename "$t" .jinja)
	for m in "$fdir"/*.messages.json; do
		c=$(basename "$m" .messages.json)
		[ $nt = 1 ] && nc=$((nc + 1))
		set -- --template "$t" --messages "$m" --bos "<s>" --eos "</s>"
		[ -f "$fdir/$c.tools.json" ] && set -- "$@" --tools "$fdir/$c.tools.json"
		if [ -f "$fdir/$c.args" ]; then
			while IFS= read -r a; do [ -n "$a" ] && set -- "$@" "$a"; done <"$fdir/$c.args"
		fi
		base="$out/$tn.$c"
		"$py" "$(dirname "$0")/chat_render.py" "$@" >"$base.want" 2>"$base.want-err"
		wrc=$?
		"$ech" "$@" >"$base.got" 2>"$base.got-err"
		grc=$?
		if [ $wrc = 0 ] && [ $grc = 0 ] && cmp -s "$base.want" "$base.got"; then
			same=$((same + 1)); echo "same $tn $c"
			rm -f "$base".*
		elif [ $wrc != 0 ] && [ $grc != 0 ] &&
			[ "$(sed -n 's/^error: //p' "$base.want-err")" = "$(sed -n 's/^ech-template: //p' "$base.got-err")" ]; then
			serr=$((serr + 1)); echo "same-error $tn $c: $(sed -n 's/^error: //p' "$base.want-err")"
			rm -f "$base".*
		else
			diff=$((diff + 1)); echo "DIFF $tn $c"
		fi
	done
done
echo "templates=$nt conversations=$nc identical=$same same_error=$serr differ=$diff"
[ $diff = 0 ]
