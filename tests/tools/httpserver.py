#!/usr/bin/env python3
"""httpserver.py - a loopback HTTP server for the ech-pull tests.

    httpserver.py --root DIR --port-file FILE [--log FILE]

Binds 127.0.0.1 on a free port and writes the port number to FILE once it
listens.  Serves the files under DIR with Range support (206 + Content-Range,
416 past the end) and 404 for anything missing.

Hub-like paths:  /OWNER/REPO/resolve/REV/PATH answers 302 to
/cdn/OWNER/REPO/PATH with X-Linked-Etag: "<sha256 of the file>", as the
Hugging Face Hub does for large files; /cdn/... serves DIR/OWNER/REPO/PATH.
Other paths serve DIR/PATH directly.

Switches, as query parameters (kept across the Hub redirect):
    cut=N          send the full Content-Length but close after N body bytes;
                   only the first request for that URL, so a retry succeeds
    norange=1      ignore Range and answer 200 with the whole file
    xetag=wrong    X-Linked-Etag with a wrong digest (xetag=right: the real one
                   also on non-Hub paths; xetag=none: leave it out)
    etag=right|wrong     ETag: "<64 hex>"
    digest=right|wrong   Repr-Digest: sha-256=:<base64>:
    rate=N         send at most about N body bytes a second
    status=N       answer with this status and a short body

Each request is logged to --log as one line: METHOD PATH range=... auth=yes|no
"""
import argparse
import base64
import hashlib
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WRONG_SHA = "0" * 63 + "1"


class State:
    root = "."
    log_path = None
    lock = threading.Lock()
    cut_done = set()
    digests = {}


def file_sha256(path):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    with State.lock:
        if key in State.digests:
            return State.digests[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    with State.lock:
        State.digests[key] = h.hexdigest()
    return h.hexdigest()


def safe_join(root, rel):
    """DIR/rel, or None if rel would leave DIR."""
    parts = [p for p in rel.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return None
    return os.path.join(root, *parts) if parts else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echostra-test/1"

    def log_message(self, fmt, *args):  # keep stderr quiet; we log ourselves
        pass

    def log_request_line(self):
        if not State.log_path:
            return
        line = "%s %s range=%s auth=%s\n" % (
            self.command, self.path, self.headers.get("Range", "-"),
            "yes" if self.headers.get("Authorization") else "no")
        with State.lock, open(State.log_path, "a") as f:
            f.write(line)

    def send_simple(self, code, text, extra=()):
        body = (text + "\n").encode()
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_line()
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = urllib.parse.unquote(url.path)
        if "status" in query:
            code = int(query["status"])
            self.send_simple(code, "status %d as asked" % code)
            return

        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            owner, repo, rev = parts[0], parts[1], parts[3]
            rel = "/".join([owner, repo] + parts[4:])
            local = safe_join(State.root, rel)
            if rev != "main" and local:
                local = safe_join(State.root, "/".join([owner, repo, "@" + rev] + parts[4:]))
                rel = "/".join([owner, repo, "@" + rev] + parts[4:])
            if not local or not os.path.isfile(local):
                self.send_simple(404, "Entry not found")
                return
            headers = [("Location", "/cdn/" + urllib.parse.quote(rel) +
                        ("?" + url.query if url.query else ""))]
            xetag = query.get("xetag", "right")
            if xetag != "none":
                sha = WRONG_SHA if xetag == "wrong" else file_sha256(local)
                headers.append(("X-Linked-Etag", '"%s"' % sha))
            self.send_simple(302, "Found", headers)
            return

        rel = path[len("/cdn/"):] if path.startswith("/cdn/") else path
        local = safe_join(State.root, rel)
        if not local or not os.path.isfile(local):
            self.send_simple(404, "Not Found")
            return
        self.send_file(local, query)

    def send_file(self, local, query):
        size = os.path.getsize(local)
        sha = file_sha256(local)
        start = 0
        status = 200
        rng = self.headers.get("Range")
        if rng and query.get("norange") != "1" and rng.startswith("bytes="):
            first, _, last = rng[len("bytes="):].partition("-")
            start = int(first)
            if start >= size:
                self.send_simple(416, "Range Not Satisfiable",
                                 [("Content-Range", "bytes */%d" % size)])
                return
            if last:   # the client only asks open-ended ranges; keep it simple
                self.send_simple(400, "closed ranges not supported")
                return
            status = 206
        length = size - start

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        if query.get("xetag") in ("right", "wrong"):
            self.send_header("X-Linked-Etag",
                             '"%s"' % (sha if query["xetag"] == "right" else WRONG_SHA))
        if query.get("etag") in ("right", "wrong"):
            self.send_header("ETag", '"%s"' % (sha if query["etag"] == "right" else WRONG_SHA))
        if query.get("digest") in ("right", "wrong"):
            raw = bytes.fromhex(sha if query["digest"] == "right" else WRONG_SHA)
            self.send_header("Repr-Digest", "sha-256=:%s:" % base64.b64encode(raw).decode())
        self.end_headers()
        if self.command == "HEAD":
            return

        cut = None
        if "cut" in query:
            with State.lock:
                if self.path not in State.cut_done:
                    State.cut_done.add(self.path)
                    cut = int(query["cut"])
        rate = int(query.get("rate", "0"))
        piece = min(1 << 16, rate // 10) if rate > 0 else 1 << 16
        with open(local, "rb") as f:
            f.seek(start)
            left = length if cut is None else min(length, cut)
            while left > 0:
                chunk = f.read(min(left, piece))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
                if rate > 0:
                    self.wfile.flush()
                    time.sleep(len(chunk) / rate)
        if cut is not None:
            # Leave the client with fewer bytes than Content-Length promised.
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that hang up early (an aborted transfer) are expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="loopback HTTP server for tests")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    State.root = os.path.abspath(args.root)
    State.log_path = args.log
    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)   # readers never see a half-written port
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
