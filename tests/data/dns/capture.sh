#!/usr/bin/env bash
# Regenerates the DNS captures in this folder: queries from real clients (dig,
# host, glibc's stub resolver through getent) and the answers of a real server
# (dnsmasq) to exactly those queries.
#
# Everything runs inside fresh network and mount namespaces (the script
# re-executes itself under `unshare --net --mount`): the only interface is
# loopback, so nothing can leave the machine, and /etc/resolv.conf is replaced
# for glibc only inside that mount namespace. A small python relay listens on
# 127.0.0.1:53 (UDP and TCP), saves each query as it arrived, forwards it to
# dnsmasq on 127.0.0.1:5353, saves the answer and hands it back to the client:
#   NAME.query / NAME.response          UDP payloads
#   NAME.query.tcp / NAME.response.tcp  TCP streams (2-byte length prefixes)
#
# Needs: root (unshare), python3, dnsmasq, dig and host (dnsutils), getent.
# Usage: tests/data/dns/capture.sh     (rewrites the capture files)
#
# Unit tests (tests/unit/dns/captures_test.cc) assert what each file parses
# to; regenerate only on purpose and update those expectations with them.
# Message ids and dig's cookies differ on every run; names, types, flags,
# addresses and TTLs do not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${TOLLGATE_DNS_CAPTURE_INSIDE:-}" ]; then
  exec env TOLLGATE_DNS_CAPTURE_INSIDE=1 unshare --net --mount --propagation private "$0" "$@"
fi

ip link set lo up
work=$(mktemp -d)
dnsmasq_pid=
cleanup() {
  if [ -n "$dnsmasq_pid" ]; then kill "$dnsmasq_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# glibc's resolver, in this mount namespace only.
printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\n' >"$work/resolv.conf"
mount --bind "$work/resolv.conf" "$(readlink -f /etc/resolv.conf)"

many=()
for i in $(seq 1 40); do many+=("--host-record=many.h.test,198.51.100.$i"); done
dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
  --listen-address=127.0.0.1 --bind-interfaces --port=5353 --pid-file= --user=root \
  --local-ttl=300 \
  --address=/x.test/192.0.2.1 --address=/x.test/2001:db8::1 \
  --address=/nx.test/ \
  --host-record=web.h.test,192.0.2.10,2001:db8::10 \
  --cname=alias.h.test,web.h.test --cname=alias2.h.test,alias.h.test \
  --txt-record=t.h.test,tollgate \
  "${many[@]}" &
dnsmasq_pid=$!
sleep 0.5

# relay PROTO NAME...: serves one exchange per NAME over PROTO (udp|tcp) on
# 127.0.0.1:53; sets $relay_pid.
relay() {
  rm -f "$work/ready"
  python3 - "$here" "$work/ready" "$@" <<'PY' &
import socket, struct, sys
out, ready, proto, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
UPSTREAM = ("127.0.0.1", 5353)

def save(name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(data)

def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def recv_framed(conn):
    head = recv_exact(conn, 2)
    return head + recv_exact(conn, struct.unpack("!H", head)[0])

if proto == "udp":
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 53))
    open(ready, "w").close()
    srv.settimeout(10)
    for name in names:
        query, client = srv.recvfrom(65535)
        save(name + ".query", query)
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        up.sendto(query, UPSTREAM)
        try:
            answer = up.recv(65535)
        except socket.timeout:
            continue  # the server stays silent: no .response file
        save(name + ".response", answer)
        srv.sendto(answer, client)
else:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 53))
    srv.listen(1)
    open(ready, "w").close()
    srv.settimeout(10)
    for name in names:
        conn, _ = srv.accept()
        conn.settimeout(3)
        query = recv_framed(conn)
        save(name + ".query.tcp", query)
        up = socket.create_connection(UPSTREAM, timeout=3)
        up.sendall(query)
        answer = recv_framed(up)
        save(name + ".response.tcp", answer)
        conn.sendall(answer)
        conn.close()
PY
  relay_pid=$!
  while [ ! -e "$work/ready" ]; do sleep 0.05; done
}

# capture PROTO NAMES CMD...: one relay, then the client; NAMES is a
# comma-separated list of the exchanges the client makes, in order.
capture() {
  local proto=$1 names=$2
  shift 2
  relay "$proto" ${names//,/ }
  "$@" >/dev/null 2>&1 || true
  wait "$relay_pid" || { echo "capture $names: relay failed" >&2; return 1; }
}

# dig 9.18 asks ANY over TCP unless told +notcp.
d=(dig @127.0.0.1 +tries=1 +time=3)
capture udp dig_a "${d[@]}" x.test A
capture udp dig_aaaa_noedns "${d[@]}" +noedns x.test AAAA
capture udp dig_dnssec "${d[@]}" +dnssec x.test A
capture udp dig_mixed_case "${d[@]}" WeB.H.TeSt A
capture udp dig_cname_chain "${d[@]}" alias2.h.test A
capture udp dig_cname_aaaa "${d[@]}" alias.h.test AAAA
capture udp dig_nxdomain "${d[@]}" nope.nx.test A
capture udp dig_txt "${d[@]}" t.h.test TXT
capture udp dig_dmarc_txt "${d[@]}" _dmarc.x.test TXT
capture udp dig_any "${d[@]}" +notcp x.test ANY
capture udp dig_chaos "${d[@]}" CH TXT version.bind
capture udp dig_edns1 "${d[@]}" +edns=1 +noednsnegotiation x.test A
capture udp dig_opcode_status "${d[@]}" +opcode=status x.test A
capture udp dig_many_noedns "${d[@]}" +noedns +ignore many.h.test A
capture tcp dig_tcp "${d[@]}" +tcp x.test A
capture tcp dig_tcp_many "${d[@]}" +tcp many.h.test A
capture udp host_a host -W 3 -t A web.h.test 127.0.0.1
capture udp glibc_a,glibc_aaaa getent ahosts web.h.test
printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:2 edns0 single-request\n' >"$work/resolv.conf"
capture udp glibc_edns_a,glibc_edns_aaaa getent ahosts alias.h.test
echo "captures written to $here"
