#!/usr/bin/env bash
# Regenerates the real-client captures in this folder. Each .bin file holds the
# first bytes one real client sent to a loopback listener (127.0.0.1, a fresh
# port per capture) that never answers: read until the client has been idle
# for 1 s, then closed. Nothing leaves the machine.
#
# Needs: python3, curl, openssl (s_client), node and java (JDK 17+; skipped if
# absent), wget. Usage: tests/data/sni/capture.sh   (rewrites the .bin files)
#
# The files are checked in (and copied to tests/fuzz/corpus/sni_peek/ as
# fuzzer seeds); unit tests (tests/unit/sni/captures_test.cc)
# assert what each one must parse to, so regenerate them only on purpose and
# update those expectations with them. Random bytes (Random, key shares,
# session ids) differ on every run; names, ALPN and versions do not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# listen OUT: starts a one-shot listener writing what it receives to OUT;
# sets $port and $listener_pid.
listen() {
  rm -f "$work/port"
  python3 - "$1" "$work/port" <<'PY' &
import os, socket, sys
out, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
srv.settimeout(30)
conn, _ = srv.accept()
conn.settimeout(1.0)
data = b""
while len(data) < 65536:
    try:
        chunk = conn.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    data += chunk
with open(out, "wb") as f:
    f.write(data)
conn.close()
PY
  listener_pid=$!
  while [ ! -s "$work/port" ]; do sleep 0.05; done
  port=$(cat "$work/port")
}

# capture NAME CMD...: runs CMD against a fresh listener; "{PORT}" in an
# argument is replaced by the listener's port.
capture() {
  local name=$1
  shift
  listen "$here/$name"
  local args=("${@//\{PORT\}/$port}")
  timeout 20 "${args[@]}" </dev/null >/dev/null 2>&1 || true
  wait "$listener_pid"
  printf '%-28s %6d bytes\n' "$name" "$(stat -c %s "$here/$name")"
}

host=api.example.test
resolve() { echo "$host:{PORT}:127.0.0.1"; }
# 20 protocol names of 17 bytes: with an 8192-bit FFDHE key share (1024 bytes)
# they lift OpenSSL 3.0's ClientHello past 1500 bytes, the size a ML-KEM
# hybrid key share gives on newer stacks (this OpenSSL has no PQ group).
many_alpn=$(printf 'tollgate-proto-%02d,' $(seq 1 20))
many_alpn=${many_alpn%,}

# TLS
capture curl_tls13.bin curl -sk --max-time 5 --resolve "$(resolve)" "https://$host:{PORT}/v1/models"
capture curl_tls12.bin curl -sk --max-time 5 --tls-max 1.2 --resolve "$(resolve)" "https://$host:{PORT}/"
capture openssl_servername.bin openssl s_client -connect "127.0.0.1:{PORT}" -servername "$host" -alpn h2,http/1.1
capture openssl_no_servername.bin openssl s_client -connect "127.0.0.1:{PORT}" -noservername
# An IP literal as SNI (RFC 6066 forbids it; clients still send it).
capture openssl_ip_servername.bin openssl s_client -connect "127.0.0.1:{PORT}" -servername 127.0.0.1
capture python_ssl.bin python3 -c '
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.set_alpn_protocols(["http/1.1"])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    ctx.wrap_socket(s, server_hostname="API.Example.Test.")
except Exception:
    pass
' "{PORT}"
capture large_pq.bin openssl s_client -connect "127.0.0.1:{PORT}" -servername "$host" \
  -groups ffdhe8192:x25519 -alpn "$many_alpn"
# The same large hello, cut by OpenSSL itself into records of <= 512 bytes.
capture openssl_fragmented.bin openssl s_client -connect "127.0.0.1:{PORT}" -servername "$host" \
  -groups ffdhe8192:x25519 -alpn "$many_alpn" -max_send_frag 512
if command -v node >/dev/null; then
  capture node_tls.bin node -e '
const tls = require("tls");
const s = tls.connect({host: "127.0.0.1", port: +process.argv[1], servername: "api.example.test",
                       ALPNProtocols: ["h2", "http/1.1"], rejectUnauthorized: false});
s.on("error", () => {});
' "{PORT}"
fi
if command -v java >/dev/null; then
  cat >"$work/Hello.java" <<'JAVA'
import java.util.List;
import javax.net.ssl.*;

public class Hello {
  public static void main(String[] args) throws Exception {
    SSLSocket s = (SSLSocket) SSLContext.getDefault().getSocketFactory()
        .createSocket("127.0.0.1", Integer.parseInt(args[0]));
    SSLParameters p = s.getSSLParameters();
    p.setServerNames(List.of(new SNIHostName("api.example.test")));
    p.setApplicationProtocols(new String[] {"h2", "http/1.1"});
    s.setSSLParameters(p);
    try { s.startHandshake(); } catch (Exception e) { }
  }
}
JAVA
  capture java_jsse.bin java "$work/Hello.java" "{PORT}"
fi

# HTTP/1.x
capture curl_http.bin curl -s --max-time 5 --resolve "$(resolve)" "http://$host:{PORT}/v1/models?limit=1"
capture curl_http_proxy.bin curl -s --max-time 5 -x "http://127.0.0.1:{PORT}" "http://$host/v1/models"
capture wget_http.bin wget -q -O /dev/null --tries=1 --timeout=5 "http://127.0.0.1:{PORT}/index.html"

# The captures also seed the peek fuzzer.
cp "$here"/*.bin "$here/../../fuzz/corpus/sni_peek/"
