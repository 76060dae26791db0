#!/bin/sh
# A real nginx with contrib/nginx/echostra.conf in front of two ech-serve
# backends: streams arrive incrementally, load is spread over both.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || skip_all "nginx not installed"
[ -n "$NGINX" ] || skip_all "nginx not installed"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"

# a slow replayed model: 20 tokens, 50 ms each
"$PYTHON3" -c 'import json; print(json.dumps([" tick" * 20]))' >slow.json
serve_start b1 -m "$qwen3" --replay slow.json --replay-delay 50 -P 2 --max-conn-per-ip 0 || skip_all "ech-serve did not start"
P1=$SERVE_PORT
serve_start b2 -m "$qwen3" --replay slow.json --replay-delay 50 -P 2 --max-conn-per-ip 0 || skip_all "ech-serve did not start"
P2=$SERVE_PORT
NP=$("$PYTHON3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

mkdir -p tmp
sed -e "s/127.0.0.1:8080/127.0.0.1:$P1/" -e "s/127.0.0.1:8081/127.0.0.1:$P2/" \
    -e "s/listen 80;/listen 127.0.0.1:$NP;/" "$ECH_SRC/contrib/nginx/echostra.conf" >echostra.conf
user=
[ "$(id -u)" = 0 ] && user="user root;"
cat >nginx.conf <<EOF2
$user
worker_processes 1;
pid $TEST_DIR/nginx.pid;
error_log $TEST_DIR/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $TEST_DIR/tmp/body;
    proxy_temp_path $TEST_DIR/tmp/proxy;
    fastcgi_temp_path $TEST_DIR/tmp/fastcgi;
    include $TEST_DIR/echostra.conf;
}
EOF2
"$NGINX" -t -p "$TEST_DIR" -c "$TEST_DIR/nginx.conf" >nginx-t.log 2>&1 || { cat nginx-t.log; skip_all "nginx cannot run here"; }
"$NGINX" -p "$TEST_DIR" -c "$TEST_DIR/nginx.conf" -g "daemon off;" 2>>error.log &
NGINX_PID=$!
SERVE_PIDS="$SERVE_PIDS $NGINX_PID"
N=http://127.0.0.1:$NP
i=0; while [ $i -lt 50 ] && ! curl -s -o /dev/null "$N/health"; do sleep 0.1; i=$((i+1)); done

test_expect_success 'requests pass through nginx' '
	curl -sf "$N/health" | grep -q ok &&
	curl -sf "$N/v1/models" | grep -q ggml-vocab-qwen3
'
test_expect_success 'a stream arrives incrementally through nginx (first chunk long before the last)' '
	"$PYTHON3" - "$NP" <<-\PY
	import http.client, json, sys, time
	c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
	t0 = time.time()
	c.request("POST", "/v1/chat/completions", json.dumps({"stream": True, "messages": [{"role": "user", "content": "x"}]}),
	          {"Content-Type": "application/json"})
	r = c.getresponse()
	assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
	times = []
	while True:
	    line = r.fp.readline()
	    if not line:
	        break
	    if line.startswith(b"data: ") and b"\"content\":\" tick\"" in line:
	        times.append(time.time() - t0)
	    if line.startswith(b"data: [DONE]"):
	        break
	assert len(times) >= 10, times
	# 20 tokens at 50 ms: the first comes early, the last about a second later
	assert times[0] < 0.5 and times[-1] - times[0] > 0.5, times
	PY
'
test_expect_success 'concurrent load is spread over both backends (least_conn)' '
	for k in 1 2 3 4 5 6; do curl -s -o /dev/null "$N/v1/completions" -d "{\"prompt\":\"x\"}" & done; wait &&
	g1=$(curl -s "http://127.0.0.1:$P1/metrics" | sed -n "s/^ech_generations_total //p") &&
	g2=$(curl -s "http://127.0.0.1:$P2/metrics" | sed -n "s/^ech_generations_total //p") &&
	echo "backend 1: $g1, backend 2: $g2" && test "$g1" -ge 2 && test "$g2" -ge 2
'
test_expect_success 'errors keep their status and body through nginx' '
	test "$(curl -s -o out.json -w "%{http_code}" "$N/v1/chat/completions" -d "{bad")" = 400 && grep -q invalid_json out.json
'
test_done
