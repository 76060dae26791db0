#!/bin/sh
# ech-template renders byte for byte what Python's jinja2 renders (configured
# as Hugging Face transformers does, tests/tools/chat_render.py), or fails
# with the same message: every template of $ECH_SHARED/templates and the two
# vocab GGUFs that carry one, on every conversation in tests/data/chat/, and
# the interpreter's feature snippets (tests/data/chat/features.txt).
. "$ECH_SRC/tests/test-lib.sh"

# Debian's python3-jinja2 is the reference; fall back to any python3 with jinja2.
PYJINJA=
for p in /usr/bin/python3 "$PYTHON3" python3; do
	if [ -n "$p" ] && "$p" -c 'import jinja2' >/dev/null 2>&1; then PYJINJA=$p; break; fi
done
[ -n "$PYJINJA" ] || skip_all "no python3 with jinja2 (apt-get install python3-jinja2)"
ECH_TEMPLATE=$ECH_BUILD/bin/ech-template
export PYJINJA ECH_TEMPLATE
say "# reference: $PYJINJA, jinja2 $("$PYJINJA" -c 'import jinja2; print(jinja2.__version__)')"

data=$ECH_SRC/tests/data/chat
fixtures=
for f in "$data"/*.messages.json; do fixtures="$fixtures ${f%.messages.json}"; done

# report DESC OUTPUT: one TAP line per template, the summary as a comment
report() {
	grep -v '^templates=' "$2" | grep -v '^same' | sed 's/^/# /'
	grep '^templates=' "$2" | sed 's/^/# /'
}

compare_set() {
	desc=$1; shift
	# shellcheck disable=SC2086
	"$ECH_SRC/tests/tools/chat-compare.sh" "$TEST_DIR/cmp" "$@" >"$TEST_DIR/cmp.log" 2>&1
	rc=$?
	report "$desc" "$TEST_DIR/cmp.log"
	if [ $rc = 0 ]; then test_ok_ "$desc"; else
		test_fail_ "$desc" "$(grep -E '^(DIFF|templates=)' "$TEST_DIR/cmp.log" | head -n 20)"
	fi
}

if [ -n "$ECH_SHARED" ] && [ -d "$ECH_SHARED/templates" ]; then
	# shellcheck disable=SC2086
	compare_set "real templates x conversations identical to jinja2" \
		"$ECH_SHARED"/templates/*.jinja -- $fixtures
	for v in llama3 qwen3; do
		g=$ECH_SHARED/vocab/ggml-vocab-$v.gguf
		[ -f "$g" ] || continue
		# shellcheck disable=SC2086
		compare_set "$v vocab GGUF: its own template, BOS and EOS" "$g" -- $fixtures
	done
else
	test_skip "real templates x conversations identical to jinja2" "ECH_SHARED/templates absent"
fi

mkdir -p "$TEST_DIR/features"
awk -v d="$TEST_DIR/features" '/^#### /{f = d "/" $2 ".jinja"; next} {print > f}' "$data/features.txt"
compare_set "feature snippets identical to jinja2" "$TEST_DIR"/features/*.jinja -- "$data/parallel"

test_expect_success 'a GGUF template, its BOS/EOS, -p and --system' '
	mkgguf syn.gguf &&
	ech-template -m syn.gguf -p "hi there" --system "be brief" >out &&
	printf "be briefhi there" >want && cmp want out
'
if m=$(shared_path models/stories260K.gguf); then
	test_expect_success 'ChatML fallback for a model without a template, with a notice' '
		ech-template -m "$m" -p hi >out 2>err &&
		grep -q "has no chat template; using ChatML" err &&
		printf "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" >want && cmp want out
	'
fi
test_expect_success 'errors: raise_exception message, syntax error, bad JSON' '
	printf "{{ raise_exception(\"no system role\") }}" >raise.jinja &&
	expect_exit 1 ech-template -t raise.jinja -p x 2>err && grep -q "^ech-template: no system role$" err &&
	printf "{%% if %%}" >bad.jinja &&
	expect_exit 1 ech-template -t bad.jinja -p x 2>err && grep -q "line 1" err &&
	printf "[{" >bad.json &&
	expect_exit 1 ech-template -t raise.jinja --messages bad.json 2>err && grep -q "not valid JSON" err &&
	expect_exit 2 ech-template -p x
'
test_done
