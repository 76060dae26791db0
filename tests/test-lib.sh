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
	serve_stop_all
	fake_stop_all
	say "1..$test_count"
	if [ "$test_failed" -eq 0 ]; then
		cd "$ECH_BUILD" && rm -rf "$TEST_DIR"
		return 0
	fi
	return 1
}

# ---- ech-serve helpers ------------------------------------------------------
# serve_start NAME ARGS...: start `ech-serve --port 0 ARGS...` in the
# background (stderr in NAME.log), wait until /health answers, and set
# SERVE_PORT and SERVE_URL.  Every server started is killed by serve_stop_all,
# which also runs at exit.  Call it at the top level of a test file, not
# inside test_expect_success (whose body runs in a subshell).
SERVE_PIDS=
serve_stop_all() {
	for p in $SERVE_PIDS; do kill "$p" 2>/dev/null; done
	for p in $SERVE_PIDS; do wait "$p" 2>/dev/null; done
	SERVE_PIDS=
}
trap 'serve_stop_all' EXIT
trap 'serve_stop_all; exit 1' INT TERM
serve_start() {
	name=$1; shift
	ech-serve --port 0 "$@" 2>"$TEST_DIR/$name.log" &
	SERVE_PID=$!
	SERVE_PIDS="$SERVE_PIDS $SERVE_PID"
	SERVE_PORT=
	i=0
	while [ $i -lt 300 ]; do
		SERVE_PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$TEST_DIR/$name.log")
		[ -n "$SERVE_PORT" ] && curl -s -o /dev/null "http://127.0.0.1:$SERVE_PORT/health" && break
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$TEST_DIR/$name.log" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$SERVE_PORT" ] || return 1
	SERVE_URL="http://127.0.0.1:$SERVE_PORT"
}
have_curl() { command -v curl >/dev/null 2>&1; }

# ---- fake OpenAI endpoint (tests/tools/fake-openai) ----------------------------
# fake_start NAME SCRIPT [ARGS...]: start fake-openai replaying SCRIPT (see the
# comment at the top of tests/tools/fake-openai.c), recording the requests it
# gets in NAME.req (one JSON line each); set FAKE_URL (the /v1 base URL) and
# FAKE_PID.  Inside a test body (a subshell) the server is stopped when that
# subshell exits; at the top level, at exit (or by fake_stop_all).
FAKE_PIDS=
TEST_LIB_PID=$(exec sh -c 'echo $PPID')
fake_stop_all() {
	for p in $FAKE_PIDS; do kill "$p" 2>/dev/null; done
	for p in $FAKE_PIDS; do wait "$p" 2>/dev/null; done
	FAKE_PIDS=
}
fake_start() {
	name=$1; script=$2; shift 2
	: >"$TEST_DIR/$name.req"
	rm -f "$TEST_DIR/$name.log"   # an old log would be read before the new one is opened
	me=$(exec sh -c 'echo $PPID')
	# a subshell inherits its parent's list: it must not stop the parent's servers
	[ "$FAKE_PIDS_OF" = "$me" ] || { FAKE_PIDS=; FAKE_PIDS_OF=$me; }
	fake-openai --script "$script" --record "$TEST_DIR/$name.req" "$@" 2>"$TEST_DIR/$name.log" &
	FAKE_PID=$!
	FAKE_PIDS="$FAKE_PIDS $FAKE_PID"
	# stop it when this (sub)shell exits; the top level also stops the servers
	if [ "$me" = "$TEST_LIB_PID" ]; then
		trap 'fake_stop_all; serve_stop_all' EXIT
	else
		trap 'fake_stop_all' EXIT
	fi
	FAKE_URL=
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$TEST_DIR/$name.log" 2>/dev/null)
		[ -n "$port" ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || { cat "$TEST_DIR/$name.log" >&2; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
	[ -n "$port" ] || return 1
	FAKE_URL="http://127.0.0.1:$port/v1"
}
