#!/usr/bin/env python3
"""Idle-flow load for scripts/bench.

server: accept TCP connections on ADDR:PORT, answer the first bytes of each
        with b"pong\\n" and then hold the connection open, silent, until the
        peer closes it.
client: open N connections to HOST:PORT (at most --parallel handshakes in
        flight), send a short opaque (neither TLS nor HTTP) greeting on each,
        wait for the server's answer (so the flow is known to be relayed end
        to end), write a JSON summary to --ready-file and hold every
        connection until SIGTERM/SIGINT.
        With --tls (an HTTPS server instead of the sink): complete a verified
        TLS handshake (SNI --sni, CA bundle --cafile), send one keep-alive
        GET --path and read the whole 200 response on each connection before
        it counts as established; then the same hold.
"""
import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
import ssl
import sys
import time

GREETING = b"\x00\x01tollgate-bench idle flow\n"
ANSWER = b"pong\n"


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        sys.exit(f"idle_flows: RLIMIT_NOFILE {soft} < {need} needed")


def serve(args):
    raise_nofile(args.max_conns + 64)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.addr, args.port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        for key, _ in sel.select(timeout=0.5):
            if key.data is None:
                while True:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            print(f"idle_flows server: accept: {e}", file=sys.stderr)
                            break
                        raise
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, {"answered": False})
            else:
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except (ConnectionResetError, OSError):
                    data = b""
                if not data:
                    sel.unregister(c)
                    c.close()
                elif not key.data["answered"]:
                    key.data["answered"] = True
                    try:
                        c.send(ANSWER)
                    except OSError:
                        pass


class Conn:
    """One client connection's progress: connect, [TLS handshake], send, read."""
    __slots__ = ("sock", "state", "out", "got")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connect"
        self.out = b""
        self.got = b""


def http_response_complete(got):
    """None while incomplete; else "" (a complete 200) or why it is not usable."""
    head_end = got.find(b"\r\n\r\n")
    if head_end < 0:
        return None if len(got) < 65536 else "http:head too large"
    lines = got[:head_end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        return "http:status " + (parts[1] if len(parts) > 1 else "?")
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    if length is None:
        return "http:no content-length"
    return "" if len(got) - head_end - 4 >= length else None


def client(args):
    raise_nofile(args.n + 64)
    ctx = None
    request = b""
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.cafile)
        request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.sni}\r\n"
                   "User-Agent: tollgate-bench-idle\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    pending = args.n      # not yet started
    inflight = 0          # connecting, handshaking or waiting for the answer
    done = []             # established sockets
    failed = 0
    errors = {}

    def fail(c, why):
        nonlocal inflight, failed
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        inflight -= 1
        failed += 1
        errors[why] = errors.get(why, 0) + 1

    def established(c):
        nonlocal inflight
        sel.unregister(c.sock)
        inflight -= 1
        done.append(c.sock)

    def handshake(c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        except ssl.SSLWantWriteError:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        except ssl.SSLError as e:
            fail(c, "tls:" + (e.reason or type(e).__name__))
            return
        except OSError as e:
            fail(c, "handshake:" + errno.errorcode.get(e.errno or 0, str(e.errno)))
            return
        c.state = "send"
        c.out = request
        send(c)

    def send(c):
        try:
            n = c.sock.send(c.out)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        except OSError as e:
            fail(c, "send:" + errno.errorcode.get(e.errno or 0, str(e.errno)))
            return
        c.out = c.out[n:]
        if c.out:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        c.state = "read"
        sel.modify(c.sock, selectors.EVENT_READ, c)
        if args.tls:
            read(c)   # TLS may hold decrypted bytes the selector cannot see

    def read(c):
        while True:
            try:
                data = c.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return
            except ssl.SSLWantWriteError:
                return
            except OSError as e:
                fail(c, "recv:" + errno.errorcode.get(e.errno or 0, str(e.errno)))
                return
            if not data:
                fail(c, "eof")
                return
            c.got += data
            if args.tls:
                verdict = http_response_complete(c.got)
                if verdict is None:
                    continue
                if verdict:
                    fail(c, verdict)
                else:
                    established(c)
                return
            if len(c.got) >= len(ANSWER):
                established(c)
                return

    while (pending or inflight) and time.monotonic() < deadline:
        while pending and inflight < args.parallel:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((args.host, args.port))
            pending -= 1
            inflight += 1
            c = Conn(s)
            sel.register(s, selectors.EVENT_WRITE, c)
            if rc not in (0, errno.EINPROGRESS):
                fail(c, errno.errorcode.get(rc, str(rc)))
        for key, _ in sel.select(timeout=0.2):
            c = key.data
            if c.state == "connect":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(c, errno.errorcode.get(err, str(err)))
                    continue
                if args.tls:
                    # wrap_socket takes over the descriptor: re-register it.
                    sel.unregister(c.sock)
                    raw = c.sock
                    try:
                        c.sock = ctx.wrap_socket(raw, server_hostname=args.sni,
                                                 do_handshake_on_connect=False)
                    except OSError as e:   # reset before the handshake began
                        raw.close()
                        inflight -= 1
                        failed += 1
                        why = "wrap:" + errno.errorcode.get(e.errno or 0, str(e.errno))
                        errors[why] = errors.get(why, 0) + 1
                        continue
                    sel.register(c.sock, selectors.EVENT_READ, c)
                    c.state = "handshake"
                    handshake(c)
                else:
                    c.state = "send"
                    c.out = GREETING
                    send(c)
            elif c.state == "handshake":
                handshake(c)
            elif c.state == "send":
                send(c)
            else:
                read(c)
    for key in list(sel.get_map().values()):
        fail(key.data, "timeout")
    summary = {
        "mode": "tls" if args.tls else "tcp",
        "requested": args.n,
        "established": len(done),
        "failed": failed,
        "errors": errors,
        "setup_s": round(time.monotonic() - t0, 3),
    }
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f)
    os.rename(tmp, args.ready_file)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    end = time.monotonic() + args.hold
    while not stop and time.monotonic() < end:
        time.sleep(0.1)
    for s in done:
        if args.tls:
            # A clean TLS close (close_notify first), so the gateway's audit
            # can tell it from a connection cut in error.
            try:
                s.unwrap()
            except (ssl.SSLError, OSError, ValueError):
                pass
        s.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--addr", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--max-conns", type=int, default=4096)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("-n", type=int, default=1000)
    c.add_argument("--parallel", type=int, default=100)
    c.add_argument("--timeout", type=float, default=60.0)
    c.add_argument("--hold", type=float, default=300.0, help="give up holding after this long")
    c.add_argument("--ready-file", required=True)
    c.add_argument("--tls", action="store_true",
                   help="TLS to an HTTPS server: handshake, one keep-alive GET, then idle")
    c.add_argument("--sni", default="bench.example.test", help="with --tls: SNI and Host")
    c.add_argument("--cafile", help="with --tls: the CA bundle to verify the server with")
    c.add_argument("--path", default="/small", help="with --tls: the path to GET")
    args = p.parse_args()
    serve(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    main()
