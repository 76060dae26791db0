#!/bin/sh
# t0301-tokenize-tool: ech-tokenize's options, output formats and exit codes.
. "$ECH_SRC/tests/test-lib.sh"

spm=$(shared_path vocab/ggml-vocab-llama-spm.gguf) || skip_all "needs \$ECH_SHARED/vocab"
l3=$(shared_path vocab/ggml-vocab-llama3.gguf)
bert=$(shared_path vocab/ggml-vocab-bert-bge.gguf)

test_expect_success '--help lists the options and exits 0' '
	ech-tokenize --help >out &&
	grep -q -- --parse-special out && grep -q -- --decode out && grep -q -- --lines out
'

test_expect_success 'no model is a usage error (exit 2)' '
	echo hi | expect_exit 2 ech-tokenize 2>err &&
	grep -q "ech-tokenize: " err
'

test_expect_success 'an unknown option is a usage error (exit 2)' '
	echo hi | expect_exit 2 ech-tokenize -m "$spm" --frobnicate 2>/dev/null
'

test_expect_success 'a missing model file fails (exit 1)' '
	echo hi | expect_exit 1 ech-tokenize -m nonexistent.gguf 2>err &&
	grep -q "^ech-tokenize: " err
'

test_expect_success 'a GGUF without a vocabulary fails (exit 1)' '
	printf "GGUF\003\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000" >empty.gguf &&
	printf hi | expect_exit 1 ech-tokenize -m empty.gguf 2>err &&
	grep -q "^ech-tokenize: " err
'

test_expect_success 'ids on one line, BOS added as the vocab says' '
	printf "Hello world" | ech-tokenize -m "$spm" >out &&
	echo "1 15043 3186" >want && cmp want out
'

test_expect_success '--no-special adds no BOS' '
	printf "Hello world" | ech-tokenize -m "$spm" --no-special >out &&
	echo "15043 3186" >want && cmp want out
'

test_expect_success 'stdin is taken byte for byte (echo adds a newline token)' '
	echo "Hello world" | ech-tokenize -m "$spm" --no-special >out &&
	echo "15043 3186 13" >want && cmp want out
'

test_expect_success '--count' '
	printf "Hello world" | ech-tokenize -m "$spm" --count >out &&
	echo 3 >want && cmp want out
'

test_expect_success '--lines: one record per line' '
	printf "Hello world\n\nHello\n" | ech-tokenize -m "$spm" --no-special --lines >out &&
	printf "15043 3186\n\n15043\n" >want && cmp want out
'

test_expect_success '--json gives text, ids and pieces' '
	printf "Hello world" | ech-tokenize -m "$spm" --json >out &&
	echo "{\"text\":\"Hello world\",\"ids\":[1,15043,3186],\"pieces\":[\"<s>\",\" Hello\",\" world\"]}" >want &&
	cmp want out
'

test_expect_success '--decode turns ids back into the exact text' '
	printf "  two\tspaces  and caf\303\251\n" >in &&
	ech-tokenize -m "$spm" <in | ech-tokenize -m "$spm" --decode >back &&
	cmp in back
'

test_expect_success '--decode accepts a JSON array, --render-special shows control tokens' '
	echo "[1, 15043, 3186, 2]" | ech-tokenize -m "$spm" --decode --render-special >out &&
	printf "<s>Hello world</s>" >want && cmp want out
'

test_expect_success '--decode of an id outside the vocab fails (exit 1)' '
	echo "1 99999" | expect_exit 1 ech-tokenize -m "$spm" --decode 2>err &&
	grep -q "not in the vocabulary" err
'

test_expect_success '--decode of something that is not an id fails (exit 1)' '
	echo "1 two" | expect_exit 1 ech-tokenize -m "$spm" --decode 2>err
'

if [ -n "$l3" ]; then
	test_expect_success 'special-token text is plain text by default' '
		printf "<|eot_id|>" | ech-tokenize -m "$l3" --no-special >out &&
		echo "27 91 68 354 851 91 29" >want && cmp want out
	'
	test_expect_success '--parse-special reads it as the token' '
		printf "<|eot_id|>" | ech-tokenize -m "$l3" --no-special --parse-special >out &&
		echo 128009 >want && cmp want out
	'
	test_expect_success 'Llama 3 adds BOS (128000)' '
		printf "Hi" | ech-tokenize -m "$l3" >out &&
		echo "128000 13347" >want && cmp want out
	'
else
	test_skip 'llama3 special tokens' 'no llama3 vocab'
fi

if [ -n "$bert" ]; then
	test_expect_success 'WordPiece adds CLS and SEP, decodes with ## joins' '
		printf "Hello, unaffable world" | ech-tokenize -m "$bert" >out &&
		echo "101 7592 1010 14477 20961 3468 2088 102" >want && cmp want out &&
		ech-tokenize -m "$bert" --decode <out >text &&
		printf "hello , unaffable world" >want && cmp want text
	'
fi

test_done
