#!/usr/bin/env python3
"""A real upstream for end-to-end tests, run inside an upstream namespace.

  --mode https   HTTPS (http.server over ssl), answers "hello from NAME ..."
  --mode http    plain HTTP, same answer
  --mode banner  server-speaks-first TCP (like SSH/SMTP): sends a banner
                 line at once, then echoes what it receives
"""
import argparse
import http.server
import socket
import socketserver
import ssl
import sys
import threading


def make_handler(name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = ("hello from %s host=%s path=%s\n" % (
                name, self.headers.get("Host", ""), self.path)).encode()
            if self.path.startswith("/big/"):
                body = b"x" * int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(): a reverse lookup that
        # stalls for seconds in a namespace with no resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]


class Server6(Server):
    address_family = socket.AF_INET6


def serve_banner(addrs, port, banner):
    def handle(conn):
        with conn:
            conn.sendall(banner.encode() + b"\r\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def loop(sock):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    for a in addrs:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, port))
        s.listen(128)
        threading.Thread(target=loop, args=(s,), daemon=True).start()
    threading.Event().wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["https", "http", "banner"], required=True)
    p.add_argument("--addr", action="append", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--name", default="upstream")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--banner", default="SSH-2.0-tollgate-test")
    a = p.parse_args()
    if a.mode == "banner":
        serve_banner(a.addr, a.port, a.banner)
        return
    ctx = None
    if a.mode == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    servers = []
    for addr in a.addr:
        cls = Server6 if ":" in addr else Server
        srv = cls((addr, a.port), make_handler(a.name))
        if ctx:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
