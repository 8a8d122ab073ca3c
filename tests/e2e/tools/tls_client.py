#!/usr/bin/env python3
"""A real TLS client (Python ssl) whose ClientHello goes out in pieces.

  tls_client.py HOST IP PORT CAFILE --chunk N --delay SECONDS [--hello-delay SECONDS]
Connects to IP:PORT, waits HELLO-DELAY after the connect, writes the ClientHello N bytes per write with DELAY
between writes, completes the handshake, sends GET / and prints the body.
Exit 0 on success, 3 on a TLS failure, 4 on a connection failure.
"""
import argparse
import socket
import ssl
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("cafile")
    p.add_argument("--chunk", type=int, default=1)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--hello-delay", type=float, default=0.0)
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.cafile)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=a.host)
    fam = socket.AF_INET6 if ":" in a.ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    try:
        s.connect((a.ip, a.port))
    except OSError as e:
        print("connect failed: %s" % e, file=sys.stderr)
        return 4
    first = True

    def flush():
        nonlocal first
        data = out.read()
        if first and data:
            first = False
            if a.hello_delay:
                time.sleep(a.hello_delay)
            for i in range(0, len(data), a.chunk):
                s.sendall(data[i:i + a.chunk])
                if a.delay:
                    time.sleep(a.delay)
        elif data:
            s.sendall(data)

    try:
        while True:
            try:
                obj.do_handshake()
                flush()
                break
            except ssl.SSLWantReadError:
                flush()
                chunk = s.recv(65536)
                if not chunk:
                    print("eof during handshake", file=sys.stderr)
                    return 3
                inc.write(chunk)
        obj.write(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % a.host).encode())
        flush()
        body = b""
        while True:
            try:
                body += obj.read(65536)
            except ssl.SSLWantReadError:
                chunk = s.recv(65536)
                if not chunk:
                    break
                inc.write(chunk)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        sys.stdout.write(body.decode(errors="replace"))
        return 0
    except (ssl.SSLError, ConnectionError) as e:
        print("tls failed: %s" % e, file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
