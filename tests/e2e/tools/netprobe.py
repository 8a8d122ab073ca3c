#!/usr/bin/env python3
"""Small bounded network probes for the UDP / ICMP / bypass e2e tests.

  netprobe.py udp-echo-server ADDR PORT [PORT...]   echo every datagram back; prints "got SRC PORT"
  netprobe.py banner-server ADDR PORT TEXT          TCP: send TEXT to every client
  netprobe.py tcp DST PORT [SEND]                   prints "recv <bytes repr>" or the error
  netprobe.py udp DST PORT COUNT [SRC]              prints "answered N/COUNT"
  netprobe.py ping DST PAYLOAD_BYTES [COUNT]        raw ICMP(v6) echo; prints "replies N/COUNT"
  netprobe.py spoof-udp SRC DST PORT                sends one UDP datagram from a forged source
  netprobe.py announce IFACE ADDR                   claims ADDR on the link: gratuitous ARP
                                                    (request and reply) or an unsolicited
                                                    override neighbour advertisement (IPv6)

Every wait is bounded (1 s per probe), so a dropped packet is a timeout.
"""
import os
import select
import socket
import struct
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp_echo_server(addr, ports):
    socks = []
    for p in ports:
        s = socket.socket(family(addr), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, int(p)))
        socks.append(s)
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, peer = s.recvfrom(65535)
            print("got %s %d" % (peer[0], s.getsockname()[1]), flush=True)
            s.sendto(data, peer)


def banner_server(addr, port, text):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        print("accepted %s" % peer[0], flush=True)
        try:
            c.sendall(text.encode())
        except OSError:
            pass
        c.close()


def tcp(dst, port, send):
    try:
        s = socket.create_connection((dst, port), timeout=3)
    except OSError as e:
        print("error %s" % e.__class__.__name__, flush=True)
        return
    data = b""
    err = ""
    try:
        if send:
            s.sendall(send.encode().decode("unicode_escape").encode("latin-1"))
        while len(data) < 4096:  # headers and body may come in separate reads
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        err = " error %s" % e.__class__.__name__
    print("recv %r%s" % (data, err), flush=True)


def udp(dst, port, count, src=None):
    s = socket.socket(family(dst), socket.SOCK_DGRAM)
    if src:
        s.bind((src, 0))
    s.settimeout(1.0)
    answered = 0
    for i in range(count):
        msg = b"tollgate-udp-%d" % i
        try:
            s.sendto(msg, (dst, port))
            data, _ = s.recvfrom(2048)
            if data == msg:
                answered += 1
        except (socket.timeout, ConnectionRefusedError, OSError):
            pass
    print("answered %d/%d" % (answered, count), flush=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(dst, size, count):
    v6 = ":" in dst
    if v6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    replies = 0
    for seq in range(count):
        payload = bytes((i & 0xFF for i in range(size)))
        typ = 128 if v6 else 8
        hdr = struct.pack("!BBHHH", typ, 0, 0, ident, seq)
        csum = 0 if v6 else checksum(hdr + payload)  # the kernel fills ICMPv6 checksums
        pkt = struct.pack("!BBHHH", typ, 0, csum, ident, seq) + payload
        s.sendto(pkt, (dst, 0))
        deadline = time.time() + 1.0
        while time.time() < deadline:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            data, peer = s.recvfrom(65535)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            want = 129 if v6 else 0
            if len(icmp) >= 8 and icmp[0] == want:
                _, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if rid == ident and rseq == seq:
                    replies += 1
                    break
        time.sleep(0.06)  # stay under the gateway's echo rate limit
    print("replies %d/%d" % (replies, count), flush=True)


def spoof_udp(src, dst, port):
    # IP_HDRINCL: the sandbox's root writes any source address it likes.
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    payload = b"spoofed"
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0x1234, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    udph = struct.pack("!HHHH", 40000, port, udp_len, 0)
    s.sendto(ip + udph + payload, (dst, 0))
    print("sent", flush=True)


def announce(iface, addr):
    mac = bytes(int(x, 16) for x in open("/sys/class/net/%s/address" % iface).read().strip().split(":"))
    if ":" not in addr:
        # The two forms hosts accept as an update of their neighbour entry
        # (RFC 5227 announcement and an unsolicited reply), broadcast.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        s.bind((iface, 0))
        ip = socket.inet_aton(addr)
        for op in (1, 2):
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, ip,
                              b"\xff" * 6 if op == 2 else b"\0" * 6, ip)
            s.send(b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + arp)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        # Type 136, flags override (0x20), target, option 2: target link-layer address.
        na = struct.pack("!BBHI16sBB6s", 136, 0, 0, 0x20000000,
                         socket.inet_pton(socket.AF_INET6, addr), 2, 1, mac)
        s.sendto(na, ("ff02::1", 0, 0, socket.if_nametoindex(iface)))
    print("announced", flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "udp-echo-server":
        udp_echo_server(sys.argv[2], sys.argv[3:])
    elif cmd == "banner-server":
        banner_server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "tcp":
        tcp(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    elif cmd == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    elif cmd == "ping":
        ping(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    elif cmd == "spoof-udp":
        spoof_udp(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "announce":
        announce(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
