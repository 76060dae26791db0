#!/bin/sh
# chat-compare.sh - render chat templates with ech-template and with the
# jinja2 reference (chat_render.py) and compare the bytes.
#
#   chat-compare.sh OUTDIR TEMPLATE... -- FIXTURE...
#
# TEMPLATE is a .jinja file or a .gguf (its own template, BOS and EOS);
# FIXTURE is a path prefix: PREFIX.messages.json, optional PREFIX.tools.json
# and PREFIX.args (more options, one per line).  $ECH_TEMPLATE is the tool,
# $PYJINJA a python3 with jinja2.  Prints for every pair one line:
#   same TEMPLATE FIXTURE | same-error TEMPLATE FIXTURE: MESSAGE | DIFF TEMPLATE FIXTURE
# (a DIFF leaves .want/.got files in OUTDIR), then the summary line
#   templates=N conversations=N identical=N same_error=N differ=N
: "${ECH_TEMPLATE:=ech-template}" "${PYJINJA:=python3}"
out=$1; shift
mkdir -p "$out"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600}
TZ=UTC
export SOURCE_DATE_EPOCH TZ
templates= fixtures= seen=0
for a in "$@"; do
	if [ "$a" = "--" ]; then seen=1; continue; fi
	if [ $seen = 0 ]; then templates="$templates $a"; else fixtures="$fixtures $a"; fi
done
tab=$(printf '\t')
jobs="$out/jobs"
: >"$jobs"
# args_for TEMPLATE FIXTURE: the shared options, one per line
args_for() {
	case $1 in
	*.gguf) printf '%s\n' --gguf "$1" ;;
	*) printf '%s\n' --template "$1" --bos "<s>" --eos "</s>" ;;
	esac
	printf '%s\n' --messages "$2.messages.json"
	[ -f "$2.tools.json" ] && printf '%s\n' --tools "$2.tools.json"
	[ -f "$2.args" ] && grep -v '^$' "$2.args"
	return 0
}
nt=0 nc=0
for t in $templates; do
	nt=$((nt + 1)); nc=0
	for f in $fixtures; do
		nc=$((nc + 1))
		tn=$(basename "$t"); fn=$(basename "$f")
		args_for "$t" "$f" | { printf '%s' "$out/$tn.$fn"; while IFS= read -r l; do printf '\t%s' "$l"; done; echo; } >>"$jobs"
	done
done
"$PYJINJA" "$(dirname "$0")/chat_render.py" --batch "$jobs" || exit 2
same=0 serr=0 diff=0
while IFS= read -r line; do
	prefix=${line%%"$tab"*}
	rest=${line#*"$tab"}
	# rebuild the argument list for ech-template (-m for a model)
	set --
	oldifs=$IFS; IFS=$tab
	for a in $rest; do
		case $a in --gguf) a=-m ;; esac
		set -- "$@" "$a"
	done
	IFS=$oldifs
	"$ECH_TEMPLATE" "$@" >"$prefix.got" 2>"$prefix.got-err"
	grc=$?
	wrc=$(cat "$prefix.want-rc")
	name=$(basename "$prefix")
	if [ "$wrc" = 0 ] && [ $grc = 0 ] && cmp -s "$prefix.want" "$prefix.got"; then
		same=$((same + 1)); echo "same $name"
		rm -f "$prefix".*
	elif [ "$wrc" != 0 ] && [ $grc != 0 ] &&
		[ "$(sed -n 's/^error: //p' "$prefix.want-err")" = "$(sed -n 's/^ech-template: //p' "$prefix.got-err")" ]; then
		serr=$((serr + 1)); echo "same-error $name: $(sed -n 's/^error: //p' "$prefix.want-err")"
		rm -f "$prefix".*
	else
		diff=$((diff + 1)); echo "DIFF $name"
	fi
done <"$jobs"
echo "templates=$nt conversations=$nc identical=$same same_error=$serr differ=$diff"
[ $diff = 0 ]
