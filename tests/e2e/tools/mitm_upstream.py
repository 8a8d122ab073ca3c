#!/usr/bin/env python3
"""An HTTPS upstream that records and echoes what it receives, for the MITM
end-to-end tests. Runs inside an upstream namespace.

Every request is appended as one JSON line to --record (method, path,
headers as a list of [name, value], body length). Endpoints:
  /echo          200, body = JSON of the request (all headers), and the
                 Authorization value echoed in the X-Echo-Auth header
  /echo-split    200 chunked: the Authorization value sent one byte per chunk
                 (a secret split across chunk boundaries)
  /echo-gzip     200 with Content-Encoding: gzip of the echo body
  /sse           text/event-stream: 5 events, 300 ms apart, chunked
  /ws            WebSocket echo (RFC 6455, text and binary frames); the 101
                 head echoes the Authorization value in X-Echo-Auth
  /early-hints   a 103 Early Hints head echoing the Authorization value (in
                 Link and X-Echo-Auth), then 200 with a short body
  /echo-trailer  200 chunked, the Authorization value in a trailer field
  /echo-encoded  200 JSON: the Authorization value percent-encoded (both
                 cases), base64 at three alignments (standard and URL-safe),
                 JSON-escaped with ensure_ascii
  /echo-range    the /echo body, honouring "Range: bytes=a-b" with a 206
  /upload        reads the body (Content-Length or chunked); answers its
                 length and SHA-256
  /big/N         N bytes of 'x'
  /close         body delimited by closing the connection
  /status/N      an empty response with status N (204, 304, ...)
"""
import argparse
import base64
import gzip
import hashlib
import http.server
import json
import re
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
record_lock = threading.Lock()


def make_handler(record_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def record(self, body_len):
            line = json.dumps({"method": self.command, "path": self.path,
                               "headers": [[k, v] for k, v in self.headers.items()],
                               "body_len": body_len})
            with record_lock:
                with open(record_path, "a") as f:
                    f.write(line + "\n")

        def read_body(self):
            data = b""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                # Hashed as it arrives: appending to one bytes object is
                # quadratic, which made 20 MB in small chunks take minutes.
                h = hashlib.sha256()
                got = 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunk = self.rfile.read(size)
                    h.update(chunk)
                    got += len(chunk)
                    self.rfile.readline()
                return got, h.hexdigest()
            elif self.headers.get("Content-Length"):
                n = int(self.headers["Content-Length"])
                h = hashlib.sha256()
                got = 0
                while got < n:
                    chunk = self.rfile.read(min(1 << 20, n - got))
                    if not chunk:
                        break
                    h.update(chunk)
                    got += len(chunk)
                return got, h.hexdigest()
            return len(data), hashlib.sha256(data).hexdigest()

        def send_body(self, status, body, ctype="application/json", extra=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def echo_body(self):
            return json.dumps({"method": self.command, "path": self.path,
                               "headers": [[k, v] for k, v in self.headers.items()]}).encode()

        def handle_any(self):
            if self.path.startswith("/upload"):
                n, digest = self.read_body()
                self.record(n)
                self.send_body(200, json.dumps({"length": n, "sha256": digest}).encode())
                return
            n, _ = self.read_body()
            self.record(n)
            auth = self.headers.get("Authorization", "")
            if self.path.startswith("/echo-split"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for b in ("auth=" + auth + ";").encode():
                    self.wfile.write(b"1\r\n" + bytes([b]) + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            elif self.path.startswith("/echo-trailer"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Trailer", "X-Echo-Auth")
                self.end_headers()
                self.wfile.write(b"2\r\nok\r\n0\r\nX-Echo-Auth: " + auth.encode() + b"\r\n\r\n")
            elif self.path.startswith("/echo-encoded"):
                raw = auth.encode()
                forms = {
                    "pct_upper": urllib.parse.quote(auth, safe=""),
                    "pct_lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                        urllib.parse.quote(auth, safe="")),
                    "json": json.dumps(auth),
                }
                for k in range(3):
                    forms["b64_%d" % k] = base64.b64encode(b"x" * k + raw + b"!").decode()
                    forms["b64url_%d" % k] = base64.urlsafe_b64encode(b"y" * k + raw + b"?").decode()
                self.send_body(200, json.dumps(forms).encode())
            elif self.path.startswith("/echo-range"):
                body = self.echo_body()
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes="):
                    a, b = rng[6:].split("-")
                    part = body[int(a):int(b) + 1]
                    self.send_body(206, part, extra={
                        "Content-Range": "bytes %s-%d/%d" % (a, int(a) + len(part) - 1, len(body))})
                else:
                    self.send_body(200, body)
            elif self.path.startswith("/early-hints"):
                self.wfile.write(("HTTP/1.1 103 Early Hints\r\nLink: </s.css?k=%s>; rel=preload\r\n"
                                  "X-Echo-Auth: %s\r\n\r\n" % (auth, auth)).encode())
                self.wfile.flush()
                self.send_body(200, b"hinted")
            elif self.path.startswith("/echo-gzip"):
                self.send_body(200, gzip.compress(self.echo_body()),
                               extra={"Content-Encoding": "gzip"})
            elif self.path.startswith("/echo"):
                self.send_body(200, self.echo_body(), extra={"X-Echo-Auth": auth})
            elif self.path.startswith("/sse"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(5):
                    ev = ("data: event %d at %.3f\n\n" % (i, time.time())).encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                    self.wfile.flush()
                    time.sleep(0.3)
                self.wfile.write(b"0\r\n\r\n")
            elif self.path.startswith("/ws"):
                self.websocket()
            elif self.path.startswith("/big/"):
                n = int(self.path.split("/")[2])
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                block = b"x" * 65536
                left = 0 if self.command == "HEAD" else n
                while left > 0:
                    self.wfile.write(block[:min(left, len(block))])
                    left -= min(left, len(block))
            elif self.path.startswith("/close"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"until close " + auth.encode())
                self.close_connection = True
            elif self.path.startswith("/status/"):
                code = int(self.path.split("/")[2])
                self.send_response(code)
                if code not in (204, 304):
                    self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_body(404, b'{"error":"not found"}')

        def websocket(self):
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            auth = self.headers.get("Authorization", "")
            if auth:
                self.send_header("X-Echo-Auth", auth)
            self.end_headers()
            self.wfile.flush()
            while True:
                hdr = self.rfile.read(2)
                if len(hdr) < 2:
                    return
                op = hdr[0] & 0x0F
                n = hdr[1] & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self.rfile.read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self.rfile.read(8))[0]
                mask = self.rfile.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                if op == 8:
                    self.wfile.write(b"\x88\x00")
                    return
                out = bytes([0x80 | op])
                if len(data) < 126:
                    out += bytes([len(data)])
                elif len(data) < 65536:
                    out += bytes([126]) + struct.pack(">H", len(data))
                else:
                    out += bytes([127]) + struct.pack(">Q", len(data))
                self.wfile.write(out + data)
                self.wfile.flush()

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = handle_any

        def log_message(self, fmt, *args):
            pass

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), which stalls without a resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", action="append", required=True)
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--record", required=True)
    a = p.parse_args()
    ctx = None
    if not a.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    for addr in a.addr:
        cls = Server6 if ":" in addr else Server
        srv = cls((addr, a.port), make_handler(a.record))
        if ctx:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
