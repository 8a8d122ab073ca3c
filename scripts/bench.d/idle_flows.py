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
"""
import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
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


def client(args):
    raise_nofile(args.n + 64)
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    pending = args.n      # not yet started
    inflight = 0          # connecting or waiting for the answer
    done = []             # established sockets
    failed = 0
    errors = {}

    def fail(s, why):
        nonlocal inflight, failed
        sel.unregister(s)
        s.close()
        inflight -= 1
        failed += 1
        errors[why] = errors.get(why, 0) + 1

    while (pending or inflight) and time.monotonic() < deadline:
        while pending and inflight < args.parallel:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((args.host, args.port))
            pending -= 1
            inflight += 1
            if rc not in (0, errno.EINPROGRESS):
                sel.register(s, selectors.EVENT_WRITE, "connect")
                fail(s, errno.errorcode.get(rc, str(rc)))
                continue
            sel.register(s, selectors.EVENT_WRITE, "connect")
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            if key.data == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(s, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    s.send(GREETING)
                except OSError as e:
                    fail(s, "send:" + errno.errorcode.get(e.errno, str(e.errno)))
                    continue
                sel.modify(s, selectors.EVENT_READ, b"")
            else:
                try:
                    data = s.recv(64)
                except OSError as e:
                    fail(s, "recv:" + errno.errorcode.get(e.errno, str(e.errno)))
                    continue
                if not data:
                    fail(s, "eof")
                    continue
                got = key.data + data
                if len(got) < len(ANSWER):
                    sel.modify(s, selectors.EVENT_READ, got)
                    continue
                sel.unregister(s)
                inflight -= 1
                done.append(s)
    for key in list(sel.get_map().values()):
        fail(key.fileobj, "timeout")
    summary = {
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
    args = p.parse_args()
    serve(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    main()
