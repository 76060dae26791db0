#!/bin/sh
# ech-serve against slow ("slowloris") clients: one address cannot take every
# connection (--max-conn-per-ip), and a body sent a byte at a time is cut
# off at --timeout (silent connections: t0600), while a normal client keeps
# being served.  The slow clients connect from
# 127.0.0.2 (Linux routes all of 127/8 to the loopback), the normal one from
# 127.0.0.1.
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
qwen3=$(shared_path vocab/ggml-vocab-qwen3.gguf) || skip_all "ECH_SHARED data absent"
"$PYTHON3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0))' 2>/dev/null ||
	skip_all "cannot bind 127.0.0.2 here"

echo '["Four."]' >out.json
serve_start a -m "$qwen3" --replay out.json --max-connections 8 --max-conn-per-ip 3 --timeout 3 ||
	skip_all "ech-serve did not start"

test_expect_success '10 slow clients from one address hold 3 connections; a normal request is served meanwhile' '
	"$PYTHON3" - "$SERVE_PORT" <<-\PY
	import json, socket, subprocess, sys, time
	port = int(sys.argv[1])
	def slow():
	    s = socket.socket()
	    s.bind(("127.0.0.2", 0))
	    s.settimeout(2)
	    s.connect(("127.0.0.1", port))
	    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")   # headers never end
	    return s
	def alive(s):
	    s.settimeout(0.05)
	    try:
	        return s.recv(1) != b""   # data would be a reply: not expected
	    except socket.timeout:
	        return True
	    except OSError:
	        return False
	socks = [slow() for _ in range(10)]
	t0 = time.time()
	time.sleep(0.3)
	held = [alive(s) for s in socks]
	# without the per-address limit these 10 would take all 8 connections
	r = subprocess.run(["curl", "-s", "-m", "5", "-o", "reply.json", "-w", "%{http_code}",
	                    "http://127.0.0.1:%d/v1/completions" % port, "-d", json.dumps({"prompt": "x"})],
	                   capture_output=True, text=True)
	print("held", sum(held), "normal request", r.stdout)
	assert sum(held) == 3, held
	assert r.stdout == "200" and json.load(open("reply.json"))["choices"][0]["text"] == "Four."
	# keep the held ones trickling (a header byte a second): the idle timeout
	# does not fire, but they stay within their address limit
	for _ in range(2):
	    for s, h in zip(socks, held):
	        if h:
	            s.sendall(b"X")
	    time.sleep(1)
	for s in socks:
	    s.close()
	PY
'

test_expect_success 'a body sent a byte a second is cut off after --timeout; the server still serves' '
	"$PYTHON3" - "$SERVE_PORT" <<-\PY
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
	t0 = time.time()
	closed = None
	while time.time() - t0 < 10:
	    try:
	        s.sendall(b" ")
	        s.settimeout(0.5)
	        if s.recv(100) == b"":
	            closed = time.time() - t0
	            break
	    except socket.timeout:
	        continue
	    except OSError:
	        closed = time.time() - t0
	        break
	print("closed after", closed)
	assert closed is not None and closed < 7, closed
	PY
	test "$(curl -s -o /dev/null -w "%{http_code}" "$SERVE_URL/health")" = 200
'
test_done
