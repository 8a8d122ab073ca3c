#!/usr/bin/env python3
"""Turns the raw files scripts/bench collected into a table and a JSON file.

usage: report.py RESULTS_DIR OUT_JSON

RESULTS_DIR holds, per mode (direct|via; via is tollgate in passthrough, or
in MITM for the mitm_* phases):
  <mode>_bulk_up.json, <mode>_bulk_down.json   iperf3 -J output
  <mode>_tls_dl.json, <mode>_mitm_tls_dl.json  curl -w '%{json}' output
  <mode>_newconn.json, <mode>_keepalive.json,  wrk_report.lua output (or
  <mode>_mitm_keepalive.json,                  ab_report.py's, same shape:
  <mode>_mitm_newconn_resumed.json             mitm_newconn and
  <mode>_mitm_newconn{,_rsa}.json              mitm_newconn_rsa)
and for the gateway:
  cpu_<phase>.json     {"ticks": n, "clk_tck": n, "wall_s": s}
  idle.json, idle_mitm.json   RSS/fd readings around the idle-flow phases
  gateway.json         final readings (VmHWM, alive, exit code, ...)
  meta.json            run parameters
  tollgate.stderr, audit.jsonl (optional)
"""
import json
import os
import sys

TARGETS = {
    "bulk_ratio_min": 0.95,
    "newconn_ratio_min": 0.80,
    "cpu_ms_per_mb_max": 0.3,
    "cpu_us_per_conn_max": 150.0,
    "kib_per_idle_flow_max": 16.0,
    # MITM. Parity: via MITM the gateway does for each request, new flow or
    # MB what client and server together do direct (a server-side TLS
    # session toward the sandbox, a client-side one toward nginx, HTTP
    # parsing on both); where the phase is CPU-bound on shared cores, costing
    # no more than both together is a ratio >= 0.5.
    "mitm_keepalive_ratio_min": 0.5,
    "mitm_newconn_ratio_min": 0.5,
    "mitm_bulk_ratio_min": 0.5,
    # Two idle TLS connections (sandbox and upstream sides) holding no
    # record buffers while idle (OpenSSL keeps 2 x ~17 KiB per connection
    # unless SSL_MODE_RELEASE_BUFFERS).
    "mitm_kib_per_idle_flow_max": 32.0,
}

# Audit reasons that a flow cut by the client at a phase's end may carry
# (wrk and curl stop mid-connection): benign in small numbers.
END_OF_RUN_REASONS = ("client_closed", "client_closed_during_peek",
                      "client_closed_during_handshake", "client_tls_failed", "client_error",
                      "incomplete")


def load(d, name):
    p = os.path.join(d, name)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def iperf_gbps(j):
    if not j or "end" not in j:
        return None, None, (j or {}).get("error", "no iperf3 output")
    end = j["end"]
    recv = end.get("sum_received") or {}
    sent = end.get("sum_sent") or {}
    bps = recv.get("bits_per_second") or sent.get("bits_per_second")
    if bps is None:
        return None, None, j.get("error", "iperf3 reported no rate")
    # CPU is read over the whole transfer, the omitted warm-up (-O) included:
    # count its bytes too.
    nbytes = sum(i["sum"]["bytes"] for i in j.get("intervals", []))
    if not nbytes:
        nbytes = recv.get("bytes") or sent.get("bytes")
    return bps / 1e9, nbytes, j.get("error")


def curl_gbps(j):
    if not j:
        return None, None, "no curl output"
    err = None
    if j.get("exitcode", 0) != 0 or j.get("http_code") not in (200, 206):
        err = f"curl exit {j.get('exitcode')} http {j.get('http_code')}: {j.get('errormsg')}"
    size = j.get("size_download") or 0
    t = (j.get("time_total") or 0) - (j.get("time_starttransfer") or 0)
    if size <= 0 or t <= 0:
        return None, size, err or "nothing downloaded"
    return size * 8 / t / 1e9, size, err


def wrk_rate(j):
    if not j:
        return None, None, "no wrk output"
    e = j["errors"]
    nerr = sum(e.values())
    err = None
    if nerr:
        err = "wrk errors: " + ", ".join(f"{k} {v}" for k, v in e.items() if v)
    rate = j["requests"] / (j["duration_us"] / 1e6) if j["duration_us"] else None
    return rate, j["requests"], err


def bump(m, k):
    m[k] = m.get(k, 0) + 1


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{nd}f}"


def main():
    d, out_path = sys.argv[1], sys.argv[2]
    meta = load(d, "meta.json") or {}
    rows = []      # (label, direct, via, ratio, target_text, pass, busy)
    metrics = {}
    anomalies = []

    def busy(phase):
        if not phase:
            return None
        b = [load(d, f"{m}_{phase}_sys.json") for m in ("direct", "via")]
        return [x["busy_pct"] if x else None for x in b]

    def add(key, label, unit, direct, via, target_text=None, ok=None, phase=None):
        r = ratio(via, direct)
        metrics[key] = {"label": label, "unit": unit, "direct": direct, "via_tollgate": via,
                        "ratio": r, "target": target_text, "pass": ok,
                        "machine_busy_pct": busy(phase)}
        rows.append((label + f" ({unit})", direct, via, r, target_text, ok, busy(phase)))

    # --- throughput -------------------------------------------------------
    bulk_bytes = {}
    for key, label, fname, parse in (
        ("bulk_tcp_upload", "bulk TCP upload, 1 conn, iperf3", "bulk_up.json", iperf_gbps),
        ("bulk_tcp_download", "bulk TCP download, 1 conn, iperf3 -R", "bulk_down.json", iperf_gbps),
        ("bulk_tls_download", "bulk TLS download, 1 conn, curl", "tls_dl.json", curl_gbps),
    ):
        phase = fname[:-5]
        vals = {}
        for mode in ("direct", "via"):
            g, nbytes, err = parse(load(d, f"{mode}_{fname}"))
            vals[mode] = g
            if mode == "via":
                bulk_bytes[key] = nbytes
            if err:
                anomalies.append(f"{key} [{mode}]: {err}")
        r = ratio(vals["via"], vals["direct"])
        ok = None if r is None else r >= TARGETS["bulk_ratio_min"]
        add(key, label, "Gbit/s", vals["direct"], vals["via"],
            f">= {TARGETS['bulk_ratio_min']}x direct", ok, phase)

    wrk = {}
    for key in ("newconn", "keepalive", "mitm_keepalive", "mitm_newconn", "mitm_newconn_rsa",
                "mitm_newconn_resumed"):
        fname = key + ".json"
        for mode in ("direct", "via"):
            j = load(d, f"{mode}_{fname}")
            rate, n, err = wrk_rate(j)
            wrk[(key, mode)] = (j, rate, n)
            if err:
                anomalies.append(f"{key} [{mode}]: {err}")
    r = ratio(wrk[("newconn", "via")][1], wrk[("newconn", "direct")][1])
    add("new_tls_connections", "new TLS connections/s, wrk Connection: close", "conn/s",
        wrk[("newconn", "direct")][1], wrk[("newconn", "via")][1],
        f">= {TARGETS['newconn_ratio_min']}x direct",
        None if r is None else r >= TARGETS["newconn_ratio_min"], "newconn")
    add("keepalive_requests", "keep-alive HTTPS requests/s, wrk", "req/s",
        wrk[("keepalive", "direct")][1], wrk[("keepalive", "via")][1], phase="keepalive")

    def lat(key, mode, p):
        j = wrk[(key, mode)][0]
        return j["latency_us"][p] / 1000.0 if j else None

    for key, name in (("newconn", "new-connection"), ("keepalive", "keep-alive")):
        for p in ("p50", "p99"):
            add(f"{key}_latency_{p}", f"{name} latency {p}", "ms",
                lat(key, "direct", p), lat(key, "via", p))

    # --- MITM: tollgate terminates the sandbox's TLS ------------------------
    def wrk_ratio_row(key, wkey, label, unit, tkey):
        d_, v_ = wrk[(wkey, "direct")][1], wrk[(wkey, "via")][1]
        r = ratio(v_, d_)
        add(key, label, unit, d_, v_, f">= {TARGETS[tkey]}x direct",
            None if r is None else r >= TARGETS[tkey], wkey)

    wrk_ratio_row("mitm_keepalive_requests", "mitm_keepalive",
                  "MITM keep-alive HTTPS requests/s, wrk", "req/s", "mitm_keepalive_ratio_min")
    for p in ("p50", "p99"):
        add(f"mitm_keepalive_latency_{p}", f"MITM keep-alive latency {p}", "ms",
            lat("mitm_keepalive", "direct", p), lat("mitm_keepalive", "via", p))
    # Full handshakes on both sides (ab: a new TLS session per request).
    for wkey, leaf in (("mitm_newconn", "ECDSA P-256"), ("mitm_newconn_rsa", "RSA-2048")):
        sfx = "_rsa" if wkey.endswith("_rsa") else "_ecdsa"
        wrk_ratio_row(f"mitm_new_flows{sfx}", wkey,
                      f"MITM new flows/s, full handshakes, {leaf} leaves, ab", "flows/s",
                      "mitm_newconn_ratio_min")
        for p in ("p50", "p99"):
            add(f"mitm_new_flow_latency{sfx}_{p}", f"MITM new-flow latency {p}, {leaf} leaves",
                "ms", lat(wkey, "direct", p), lat(wkey, "via", p))
    # wrk resumes its TLS session on reconnect: via MITM the sandbox side
    # resumes (tollgate issues tickets), direct it cannot (nginx: tickets off).
    key = "mitm_newconn_resumed"
    add("mitm_new_flows_resumed", "MITM new flows/s, sandbox resumes TLS, wrk Connection: close",
        "flows/s", wrk[(key, "direct")][1], wrk[(key, "via")][1], phase=key)
    for p in ("p50", "p99"):
        add(f"mitm_new_flow_latency_resumed_{p}", f"MITM new-flow latency {p}, sandbox resumes",
            "ms", lat(key, "direct", p), lat(key, "via", p))
    vals = {}
    for mode in ("direct", "via"):
        g, nbytes, err = curl_gbps(load(d, f"{mode}_mitm_tls_dl.json"))
        vals[mode] = g
        if mode == "via":
            bulk_bytes["mitm_bulk_tls_download"] = nbytes
        if err:
            anomalies.append(f"mitm_bulk_tls_download [{mode}]: {err}")
    r = ratio(vals["via"], vals["direct"])
    add("mitm_bulk_tls_download", "MITM bulk TLS download, 1 conn, curl", "Gbit/s",
        vals["direct"], vals["via"], f">= {TARGETS['mitm_bulk_ratio_min']}x direct",
        None if r is None else r >= TARGETS["mitm_bulk_ratio_min"], "mitm_tls_dl")

    # --- gateway cost ------------------------------------------------------
    cost_rows = []   # (label, value, unit, target_text, pass)
    gateway = {}
    for key, phase in (("bulk_tcp_upload", "bulk_up"), ("bulk_tcp_download", "bulk_down"),
                       ("bulk_tls_download", "tls_dl")):
        c = load(d, f"cpu_{phase}.json")
        nbytes = bulk_bytes.get(key)
        v = None
        if c and nbytes:
            v = c["ticks"] * 1000.0 / c["clk_tck"] / (nbytes / 1e6)
        ok = None if v is None else v <= TARGETS["cpu_ms_per_mb_max"]
        gateway[f"cpu_ms_per_mb_{key}"] = v
        cost_rows.append((f"CPU per MB relayed, {metrics[key]['label']}", v, "ms/MB",
                          f"<= {TARGETS['cpu_ms_per_mb_max']}", ok))
    for key, phase, label, target in (
        ("newconn", "newconn", "CPU per new TLS connection", TARGETS["cpu_us_per_conn_max"]),
        ("keepalive", "keepalive", "CPU per keep-alive request", None),
    ):
        c = load(d, f"cpu_{phase}.json")
        n = wrk[(key, "via")][2]
        v = None
        if c and n:
            v = c["ticks"] * 1e6 / c["clk_tck"] / n
        ok = None if (v is None or target is None) else v <= target
        gateway[f"cpu_us_per_{'conn' if key == 'newconn' else 'request'}"] = v
        cost_rows.append((label, v, "us", f"<= {target:g}" if target else None, ok))
    # MITM costs.
    for wkey, gkey, label in (
        ("mitm_keepalive", "mitm_cpu_us_per_request", "MITM CPU per keep-alive request"),
        ("mitm_newconn", "mitm_cpu_us_per_flow_ecdsa",
         "MITM CPU per new flow, full handshakes, ECDSA P-256 leaves"),
        ("mitm_newconn_rsa", "mitm_cpu_us_per_flow_rsa",
         "MITM CPU per new flow, full handshakes, RSA-2048 leaves"),
        ("mitm_newconn_resumed", "mitm_cpu_us_per_flow_resumed",
         "MITM CPU per new flow, sandbox resumes TLS"),
    ):
        c = load(d, f"cpu_{wkey}.json")
        n = wrk[(wkey, "via")][2]
        v = c["ticks"] * 1e6 / c["clk_tck"] / n if (c and n) else None
        gateway[gkey] = v
        cost_rows.append((label, v, "us", None, None))
    c = load(d, "cpu_mitm_tls_dl.json")
    nbytes = bulk_bytes.get("mitm_bulk_tls_download")
    v = c["ticks"] * 1000.0 / c["clk_tck"] / (nbytes / 1e6) if (c and nbytes) else None
    gateway["mitm_cpu_ms_per_mb"] = v
    cost_rows.append(("MITM CPU per MB, bulk TLS download", v, "ms/MB", None, None))
    for phase in ("bulk_up", "bulk_down", "tls_dl", "newconn", "keepalive", "mitm_keepalive",
                  "mitm_newconn", "mitm_newconn_rsa", "mitm_newconn_resumed", "mitm_tls_dl"):
        c = load(d, f"cpu_{phase}.json")
        if c and c.get("wall_s"):
            gateway[f"cpu_util_{phase}"] = c["ticks"] / c["clk_tck"] / c["wall_s"]

    for fname, gkey, what, tkey in (
        ("idle.json", "", "idle flow", "kib_per_idle_flow_max"),
        ("idle_mitm.json", "mitm_", "idle MITM flow", "mitm_kib_per_idle_flow_max"),
    ):
        idle = load(d, fname)
        if not idle:
            anomalies.append(f"{fname[:-5]}: no result")
            continue
        est = idle.get("client", {}).get("established", 0)
        kib = None
        if est:
            kib = (idle["rss_after_kb"] - idle["rss_before_kb"]) / est
        gateway[gkey + "idle"] = idle
        gateway[f"{gkey}kib_per_idle_flow"] = kib
        ok = None if kib is None else kib <= TARGETS[tkey]
        cost_rows.append((f"{gkey.upper().replace('_', ' ')}RSS per {what} ({est} flows)", kib,
                          "KiB", f"<= {TARGETS[tkey]:g}", ok))
        if est:
            fds = (idle["fds_after"] - idle["fds_before"]) / est
            gateway[f"{gkey}fds_per_idle_flow"] = fds
            cost_rows.append((f"{gkey.upper().replace('_', ' ')}fds per {what}", fds, "fds",
                              None, None))
        cost_rows.append((f"{gkey.upper().replace('_', ' ')}RSS before / with {what}s",
                          f"{idle['rss_before_kb']:,} / {idle['rss_after_kb']:,}", "KiB",
                          None, None))
        cl = idle.get("client", {})
        if cl.get("failed") or cl.get("established", 0) < cl.get("requested", 0):
            anomalies.append(f"{what}s: {cl.get('established')} of {cl.get('requested')} "
                             f"established, errors {cl.get('errors')}")
        if idle.get("fds_after_close") is not None and idle["fds_after_close"] > idle["fds_before"] + 8:
            anomalies.append(f"{what}s: gateway fds {idle['fds_before']} before, "
                             f"{idle['fds_after_close']} {idle.get('close_wait_s')} s after the "
                             f"client closed its {est} flows (leak or slow teardown)")
    gw = load(d, "gateway.json") or {}
    gateway["lifecycle"] = gw
    try:
        with open(os.path.join(d, "gateway-instances.jsonl")) as f:
            gateway["per_instance"] = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        pass
    if gw.get("max_hwm_kb"):
        cost_rows.append(("peak RSS (max VmHWM of any instance)", f"{gw['max_hwm_kb']:,}", "KiB",
                          None, None))
    if gw.get("startup_ms"):
        st = sorted(gw["startup_ms"])
        cost_rows.append((f"start-up to ready (median of {len(st)})", float(st[len(st) // 2]),
                          "ms", None, None))
    for a in meta.get("phase_anomalies", []):
        anomalies.append(a)

    # --- audit log and stderr ---------------------------------------------
    audit = {"records": 0, "by_event": {}, "by_action": {}, "by_reason": {},
             "http_by_reason": {}, "http_by_status": {}}
    try:
        with open(os.path.join(d, "audit.jsonl")) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    audit.setdefault("unparsable", 0)
                    audit["unparsable"] += 1
                    continue
                audit["records"] += 1
                ev = str(rec.get("event"))
                bump(audit["by_event"], ev)
                if ev == "http":
                    # One per exchange inside a MITM flow; reason "" = relayed.
                    bump(audit["by_action"], "http:" + str(rec.get("action")))
                    bump(audit["http_by_reason"], str(rec.get("reason")))
                    status = str((rec.get("http") or {}).get("status"))
                    bump(audit["http_by_status"], status)
                    if not rec.get("reason") and status not in ("200", "206"):
                        bump(audit["http_by_status"], "relayed_not_2xx")
                    continue
                bump(audit["by_action"], str(rec.get("action")))
                bump(audit["by_reason"], str(rec.get("reason")))
    except OSError:
        audit = None
    if audit:
        # wrk and curl stop at the end of a phase with connections open: a
        # flow cut before its first byte ends as action "none", one cut mid
        # handshake or mid exchange with a MITM reason, its exchange
        # "incomplete". Benign while few: at most a phase's connections.
        cut_max = 2 * int(meta.get("wrk_connections") or 16) + 2
        wrk_phases = 6   # wrk and ab phases, via side
        cut = sum(v for k, v in audit["by_reason"].items() if k in END_OF_RUN_REASONS)
        http_cut = sum(v for k, v in audit["http_by_reason"].items() if k in END_OF_RUN_REASONS)
        odd = {k: v for k, v in audit["by_reason"].items()
               if k not in ("rule", "shutdown") + END_OF_RUN_REASONS}
        odd_http = {k: v for k, v in audit["http_by_reason"].items()
                    if k not in ("",) + END_OF_RUN_REASONS}
        # Every relayed exchange fetched /small or /large: 200, or 206 for a range.
        odd_status = audit["http_by_status"].get("relayed_not_2xx")
        other = {k: v for k, v in audit["by_action"].items()
                 if k not in ("passthrough", "mitm", "none", "http:mitm")}
        odd_events = {k: v for k, v in audit["by_event"].items() if k not in ("flow", "http")}
        if other or odd or odd_events:
            anomalies.append(f"audit: unexpected decisions {audit['by_action']} "
                             f"reasons {audit['by_reason']} events {audit['by_event']}")
        if cut > cut_max * wrk_phases or http_cut > cut_max * wrk_phases:
            anomalies.append(f"audit: {cut} flows and {http_cut} exchanges cut "
                             f"(more than the clients' connections at phase ends): "
                             f"{audit['by_reason']} {audit['http_by_reason']}")
        if odd_http or odd_status:
            anomalies.append(f"audit: MITM exchanges with unexpected reasons "
                             f"{audit['http_by_reason']} statuses {audit['http_by_status']}")
        if not audit["by_action"].get("mitm") or not audit["by_action"].get("http:mitm"):
            anomalies.append(f"audit: no MITM flow/exchange recorded: {audit['by_action']}")
    stderr_lines = []
    try:
        with open(os.path.join(d, "tollgate.stderr"), errors="replace") as f:
            stderr_lines = [l.rstrip("\n") for l in f]
    except OSError:
        pass
    # A client hanging up mid-handshake (wrk stopping) is logged: benign, bounded.
    hung_up = [l for l in stderr_lines
               if "warning: mitm " in l and ": client_tls_failed: " in l and "unexpected eof" in l]
    if len(hung_up) > 2 * int(meta.get("wrk_connections") or 16) * 6:
        anomalies.append(f"tollgate stderr: {len(hung_up)} MITM handshakes cut by the client")
    noisy = [l for l in stderr_lines if l not in hung_up
             and any(w in l.lower() for w in ("error", "warn", "fail", "abort", "sanitizer"))]
    if noisy:
        anomalies.append(f"tollgate stderr: {len(noisy)} warning/error lines, first: {noisy[0]}")

    # --- print -------------------------------------------------------------
    w0 = max(len(r[0]) for r in rows) + 2
    head = (f"{'metric':<{w0}}{'direct':>12}{'via tollgate':>14}{'ratio':>8}  {'target':<18}"
            f"{'ok':>4}{'CPU busy d/v':>15}")
    print(head)
    print("-" * len(head))
    for label, dv, vv, r, tt, ok, b in rows:
        okt = "" if ok is None else ("yes" if ok else "NO")
        bt = "" if not b else "/".join("-" if x is None else f"{x:.0f}" for x in b) + "%"
        print(f"{label:<{w0}}{fmt(dv):>12}{fmt(vv):>14}{fmt(r):>8}  {tt or '':<18}{okt:>4}{bt:>15}")
    print()
    w1 = max(len(r[0]) + len(r[2]) + 3 for r in cost_rows) + 2
    head2 = f"{'gateway cost (via tollgate)':<{w1}}{'value':>14}  {'target':<18}{'ok':>4}"
    print(head2)
    print("-" * len(head2))
    for label, v, unit, tt, ok in cost_rows:
        okt = "" if ok is None else ("yes" if ok else "NO")
        print(f"{label + ' (' + unit + ')':<{w1}}{fmt(v):>14}  {tt or '':<18}{okt:>4}")
    util = [f"{k[9:]} {v * 100:.0f}%" for k, v in gateway.items() if k.startswith("cpu_util_")]
    if util:
        print(f"gateway CPU use (% of one core): {', '.join(util)}")
    print("CPU busy d/v: the whole machine's CPU use during the direct / via-tollgate phase "
          "(100% = every CPU busy: the phase was CPU-bound)")
    if audit:
        print(f"audit records: {audit['records']} {audit['by_action']} "
              f"(http: one per MITM exchange)")
    print()
    if anomalies:
        print("anomalies:")
        for a in anomalies:
            print(f"  - {a}")
    else:
        print("anomalies: none")

    checks = [m["pass"] for m in metrics.values() if m["pass"] is not None]
    checks += [r[4] for r in cost_rows if r[4] is not None]
    result = {
        "meta": meta,
        "targets": TARGETS,
        "metrics": metrics,
        "gateway": gateway,
        "audit": audit,
        "anomalies": anomalies,
        "all_targets_met": bool(checks) and all(checks),
        "raw": {name[:-5]: load(d, name) for name in sorted(os.listdir(d))
                if name.endswith(".json") and name.startswith(("direct_", "via_"))
                and "bulk" not in name},
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2, sort_keys=False)
        f.write("\n")
    print(f"results written to {out_path}")
    return 0 if result["all_targets_met"] else 3


if __name__ == "__main__":
    sys.exit(main())
