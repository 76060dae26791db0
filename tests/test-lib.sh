# tests/test-lib.sh - sourced by every shell test (tests/tNNNN-*.sh).
#
#   . "$ECH_SRC/tests/test-lib.sh"
#   test_expect_success 'what it checks' 'commands...'
#   skip_all_unless_shared models/stories260K.gguf
#   test_done
#
# Prints TAP.  Each test body runs in a subshell inside a scratch directory
# ($TEST_DIR); tools are found on PATH from the build tree.

: "${ECH_BUILD:?ECH_BUILD must point at the build tree}"
: "${ECH_SRC:?ECH_SRC must point at the source tree}"
PATH="$ECH_BUILD/bin:$ECH_BUILD/tests/tools:$PATH"
export PATH
export LC_ALL=C

test_name=$(basename "$0" .sh)
TEST_DIR="$ECH_BUILD/tests/trash/$test_name"
rm -rf "$TEST_DIR"
mkdir -p "$TEST_DIR"
cd "$TEST_DIR" || exit 1

test_count=0
test_failed=0

say() { printf '%s\n' "$*"; }

test_ok_() { test_count=$((test_count + 1)); say "ok $test_count - $1"; }
test_fail_() {
	test_count=$((test_count + 1)); test_failed=$((test_failed + 1))
	say "not ok $test_count - $1"
	shift
	printf '%s\n' "$@" | sed 's/^/#   /'
}

# test_expect_success DESC BODY
test_expect_success() {
	if (eval "$2") >"$TEST_DIR/.out" 2>&1; then
		test_ok_ "$1"
	else
		test_fail_ "$1" "$(tail -n 20 "$TEST_DIR/.out")"
	fi
}

# test_skip DESC REASON
test_skip() {
	test_count=$((test_count + 1))
	say "ok $test_count # SKIP $1 ($2)"
}

# skip_all REASON: a test file with nothing to run reports one skip
skip_all() {
	say "ok 1 # SKIP $1"
	say "1..1"
	cd "$ECH_BUILD" && rm -rf "$TEST_DIR"
	exit 0
}

# shared_path REL: print $ECH_SHARED/REL if it exists, else nothing (status 1)
shared_path() {
	[ -n "$ECH_SHARED" ] && [ -e "$ECH_SHARED/$1" ] && printf '%s\n' "$ECH_SHARED/$1"
}

# expect_exit CODE CMD...: run CMD, succeed if it exits CODE
expect_exit() {
	want=$1; shift
	"$@"
	got=$?
	[ "$got" -eq "$want" ] || { echo "exit $got, expected $want: $*" >&2; return 1; }
}

# python3 for independent readers; tests needing it skip without it
PYTHON3=${PYTHON3:-python3}
have_python() { command -v "$PYTHON3" >/dev/null 2>&1; }

# test_done: print the plan; a passing test leaves no scratch behind
test_done() {
	say "1..$test_count"
	if [ "$test_failed" -eq 0 ]; then
		cd "$ECH_BUILD" && rm -rf "$TEST_DIR"
		return 0
	fi
	return 1
}
