#!/bin/sh
# ech-serve under load: 16 concurrent clients x 20 requests (mixed streamed and
# plain, some hanging up early), in two rounds.  No 5xx, no leaked slots, RSS
# stable.  (The sanitizer build of the suite runs this under ASan.)
. "$ECH_SRC/tests/test-lib.sh"

have_curl || skip_all "curl not installed"
have_python || skip_all "python3 not installed"
model=$(shared_path models/stories260K.gguf) || skip_all "ECH_SHARED data absent"
tpl=$(shared_path templates/Qwen-Qwen2.5-7B-Instruct.jinja) || skip_all "ECH_SHARED data absent"

serve_start a -m "$model" --chat-template "$tpl" -P 4 -c 512 -t 1 --queue 64 || skip_all "ech-serve did not start"

test_expect_success '16 clients x 20 requests: no 5xx, slots back to idle, RSS stable' '
	"$PYTHON3" - "$SERVE_PORT" "$SERVE_PID" "${ECH_SAN_CFLAGS:-}" <<-\PY
	import http.client, json, sys, threading, time
	port, pid = int(sys.argv[1]), int(sys.argv[2])
	# ASan keeps freed memory in quarantine, so RSS says nothing there;
	# LeakSanitizer checks the server at exit instead (see below)
	sanitized = bool(sys.argv[3].strip())
	def rss():
	    for l in open("/proc/%d/status" % pid):
	        if l.startswith("VmRSS:"):
	            return int(l.split()[1])
	codes, errors = {}, []
	lock = threading.Lock()
	def client(k, rnd):
	    for i in range(10):
	        n = k * 10 + i
	        stream = n % 2 == 0
	        hangup = n % 5 == 0
	        chat = n % 3 != 0
	        body = {"max_tokens": 16 if not hangup else 200, "stream": stream, "seed": n}
	        if chat:
	            body["messages"] = [{"role": "user", "content": "Tell me story number %d" % (n % 7)}]
	            path = "/v1/chat/completions"
	        else:
	            body["prompt"] = "Once upon a time %d" % n
	            path = "/v1/completions"
	        try:
	            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
	            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
	            if hangup and not stream:
	                # hang up while the reply is being generated
	                c.sock.close()
	                c.close()
	                with lock:
	                    codes["hangup"] = codes.get("hangup", 0) + 1
	                continue
	            r = c.getresponse()
	            if hangup and r.status == 200:
	                r.fp.readline()   # the first event, then hang up
	                c.sock.close()
	                c.close()
	            else:
	                data = r.read()
	                if r.status != 200:
	                    errors.append("%d: %s" % (r.status, data[:200]))
	                if r.status == 200 and stream:
	                    assert data.rstrip().endswith(b"data: [DONE]"), data[-100:]
	                elif r.status == 200:
	                    json.loads(data)
	                c.close()
	            with lock:
	                codes[r.status] = codes.get(r.status, 0) + 1
	        except Exception as e:
	            with lock:
	                errors.append(repr(e))
	def round_(rnd):
	    ts = [threading.Thread(target=client, args=(k, rnd)) for k in range(16)]
	    for t in ts: t.start()
	    for t in ts: t.join()
	def metrics():
	    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
	    c.request("GET", "/metrics")
	    m = {}
	    for l in c.getresponse().read().decode().splitlines():
	        if l and not l.startswith("#"):
	            k, v = l.rsplit(" ", 1)
	            m[k] = float(v)
	    return m
	def idle():
	    for _ in range(50):
	        m = metrics()
	        if m["ech_slots_busy"] == 0 and m["ech_queue_depth"] == 0 and m["ech_requests_in_flight"] == 1:
	            return m
	        time.sleep(0.1)
	    raise AssertionError("not idle: %r" % m)
	round_(1); idle(); r1 = rss()   # warm-up: caches and thread stacks settle
	round_(2); m = idle(); r2 = rss()
	print("codes", codes, "errors", errors[:3], "rss", r1, r2, "canceled", m["ech_generations_canceled_total"])
	assert not errors, errors[:5]
	assert sum(codes.values()) == 320 and set(codes) <= {200, "hangup"}, codes
	assert m["ech_generations_canceled_total"] > 0
	assert sanitized or r2 < r1 * 1.25 + 8192, (r1, r2)
	PY
'
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"; stop_rc=$?; SERVE_PIDS=
test_expect_success 'the server then stops cleanly: exit 0, no sanitizer or leak reports' '
	cat a.log; test "$stop_rc" = 0 && ! grep -q Sanitizer a.log
'
test_done
