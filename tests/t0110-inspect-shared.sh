#!/bin/sh
# ech-inspect --json agrees with an independent reader (tests/tools/gguf_check.py)
# on every GGUF in $ECH_SHARED; the v1 file gets a clear error.
. "$ECH_SRC/tests/test-lib.sh"

[ -n "$ECH_SHARED" ] && [ -d "$ECH_SHARED/models" ] || skip_all "ECH_SHARED data absent"
have_python || skip_all "python3 absent"

for f in "$ECH_SHARED"/models/*.gguf "$ECH_SHARED"/models/ref/*.gguf "$ECH_SHARED"/vocab/*.gguf; do
	[ -f "$f" ] || continue
	name=${f#"$ECH_SHARED"/}
	case $f in
	*.v1.gguf)
		test_expect_success "$name: GGUF v1 refused clearly" '
			expect_exit 1 ech-inspect "$f" 2>err && grep -q "GGUF version 1 is not supported" err
		'
		continue ;;
	esac
	test_expect_success "$name: matches an independent reading" '
		ech-inspect --json --full "$f" >out.json &&
		"$PYTHON3" "$ECH_SRC/tests/tools/gguf_check.py" "$f" out.json &&
		ech-inspect "$f" >out.txt && grep -q "^tensors (" out.txt
	'
done
test_done
